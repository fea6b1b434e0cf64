// HfConfig: typed, checked reads of a checkpoint's config.json (Hugging Face or state-spaces style).
//
// Every getter names the file and the key in its error ("DIR/config.json: 'n_head' must be an integer,
// got \"4\""). A key whose value is JSON null counts as absent, as transformers treats it. Sub-objects
// (state-spaces' ssm_cfg, rope_scaling) are HfConfigs of their own whose errors say "FILE: ssm_cfg.KEY".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ir/status.h"

namespace seqrun::models {

class HfConfig {
 public:
  static Result<HfConfig> load(const std::string& path);
  // `text` is the file's content; `path` names it in errors.
  static Result<HfConfig> parse(const std::string& text, const std::string& path);

  const std::string& path() const { return path_; }
  // Present and not null.
  bool has(const std::string& key) const;
  std::vector<std::string> keys() const;

  Result<int64_t> get_int(const std::string& key) const;
  Result<int64_t> get_int(const std::string& key, int64_t fallback) const;
  Result<double> get_float(const std::string& key) const;
  Result<double> get_float(const std::string& key, double fallback) const;
  Result<bool> get_bool(const std::string& key, bool fallback) const;
  Result<std::string> get_string(const std::string& key) const;
  Result<std::string> get_string(const std::string& key, const std::string& fallback) const;
  // An integer or a list of integers (eos_token_id may be either); empty when absent.
  Result<std::vector<int64_t>> get_int_list(const std::string& key) const;
  // A list of strings (architectures); empty when absent.
  Result<std::vector<std::string>> get_string_list(const std::string& key) const;
  // A nested object; an empty config when absent.
  Result<HfConfig> get_object(const std::string& key) const;
  // A positive integer up to 2^31 (sizes, counts), with the same error style.
  Result<int64_t> get_positive_int(const std::string& key) const;
  Result<int64_t> get_positive_int(const std::string& key, int64_t fallback) const;

  // "FILE: 'prefix.key'" for messages about a value that parsed but makes no sense.
  std::string where(const std::string& key) const;

 private:
  const nlohmann::json* lookup(const std::string& key) const;
  std::string path_;
  std::string prefix_;  // "ssm_cfg." inside a sub-object
  std::shared_ptr<const nlohmann::json> root_;
};

}  // namespace seqrun::models
