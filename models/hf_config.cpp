// Checked reads of config.json values (interface: models/hf_config.h).
#include "models/hf_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace seqrun::models {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxConfigBytes = 16ull << 20;

std::string excerpt(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// An integral JSON number (4 or 4.0) as int64.
std::optional<int64_t> as_int(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

}  // namespace

Result<HfConfig> HfConfig::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return make_error("{}: missing (or not a file)", path);
  const uint64_t bytes = std::filesystem::file_size(path, ec);
  if (ec) return make_error("{}: cannot read: {}", path, ec.message());
  if (bytes > kMaxConfigBytes) return make_error("{}: {} bytes is too large for a config", path, bytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Result<HfConfig> HfConfig::parse(const std::string& text, const std::string& path) {
  auto root = std::make_shared<json>();
  try {
    *root = json::parse(text);
  } catch (const json::exception& e) {
    return make_error("{}: invalid JSON: {}", path, e.what());
  }
  if (!root->is_object()) return make_error("{}: must be a JSON object, is {}", path, root->type_name());
  HfConfig c;
  c.path_ = path;
  c.root_ = std::move(root);
  return c;
}

const json* HfConfig::lookup(const std::string& key) const {
  if (!root_) return nullptr;
  auto it = root_->find(key);
  if (it == root_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool HfConfig::has(const std::string& key) const {
  return lookup(key) != nullptr;
}

std::vector<std::string> HfConfig::keys() const {
  std::vector<std::string> out;
  if (!root_) return out;
  for (auto it = root_->begin(); it != root_->end(); ++it) out.push_back(it.key());
  return out;
}

std::string HfConfig::where(const std::string& key) const {
  return fmt::format("{}: '{}{}'", path_, prefix_, key);
}

Result<int64_t> HfConfig::get_int(const std::string& key) const {
  const json* v = lookup(key);
  if (v == nullptr) return make_error("{} is missing", where(key));
  auto i = as_int(*v);
  if (!i) return make_error("{} must be an integer, got {}", where(key), excerpt(*v));
  return *i;
}

Result<int64_t> HfConfig::get_int(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  return get_int(key);
}

Result<int64_t> HfConfig::get_positive_int(const std::string& key) const {
  SEQRUN_ASSIGN(int64_t v, get_int(key));
  // Capped at 2^31 so that products of two sizes (heads × head_dim, ...) cannot overflow int64.
  if (v <= 0 || v > (int64_t{1} << 31)) {
    return make_error("{} must be a positive size up to 2^31, got {}", where(key), v);
  }
  return v;
}

Result<int64_t> HfConfig::get_positive_int(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  return get_positive_int(key);
}

Result<double> HfConfig::get_float(const std::string& key) const {
  const json* v = lookup(key);
  if (v == nullptr) return make_error("{} is missing", where(key));
  if (!v->is_number()) return make_error("{} must be a number, got {}", where(key), excerpt(*v));
  double d = v->get<double>();
  if (!std::isfinite(d)) return make_error("{} must be finite, got {}", where(key), excerpt(*v));
  return d;
}

Result<double> HfConfig::get_float(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  return get_float(key);
}

Result<bool> HfConfig::get_bool(const std::string& key, bool fallback) const {
  const json* v = lookup(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return make_error("{} must be true or false, got {}", where(key), excerpt(*v));
  return v->get<bool>();
}

Result<std::string> HfConfig::get_string(const std::string& key) const {
  const json* v = lookup(key);
  if (v == nullptr) return make_error("{} is missing", where(key));
  if (!v->is_string()) return make_error("{} must be a string, got {}", where(key), excerpt(*v));
  return v->get<std::string>();
}

Result<std::string> HfConfig::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  return get_string(key);
}

Result<std::vector<int64_t>> HfConfig::get_int_list(const std::string& key) const {
  std::vector<int64_t> out;
  const json* v = lookup(key);
  if (v == nullptr) return out;
  if (!v->is_array()) {
    SEQRUN_ASSIGN(int64_t one, get_int(key));
    out.push_back(one);
    return out;
  }
  for (const json& e : *v) {
    auto i = as_int(e);
    if (!i) return make_error("{} must be an integer or a list of integers, got {}", where(key), excerpt(*v));
    out.push_back(*i);
  }
  return out;
}

Result<std::vector<std::string>> HfConfig::get_string_list(const std::string& key) const {
  std::vector<std::string> out;
  const json* v = lookup(key);
  if (v == nullptr) return out;
  if (!v->is_array()) return make_error("{} must be a list of strings, got {}", where(key), excerpt(*v));
  for (const json& e : *v) {
    if (!e.is_string()) return make_error("{} must be a list of strings, got {}", where(key), excerpt(*v));
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<HfConfig> HfConfig::get_object(const std::string& key) const {
  HfConfig sub;
  sub.path_ = path_;
  sub.prefix_ = prefix_ + key + ".";
  const json* v = lookup(key);
  if (v == nullptr) {
    sub.root_ = std::make_shared<json>(json::object());
    return sub;
  }
  if (!v->is_object()) return make_error("{} must be an object, got {}", where(key), excerpt(*v));
  sub.root_ = std::make_shared<json>(*v);
  return sub;
}

}  // namespace seqrun::models
