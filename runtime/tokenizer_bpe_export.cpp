// The writer side of the GPT-2 BPE tokenizer: encoder.json + vocab.bpe, or a Hugging Face tokenizer.json
// (model.type BPE, ByteLevel pre-tokenizer), turned into the tokenizer.* metadata keys that
// tokenizer_bpe.cpp loads. Anything in a tokenizer.json that would make seqrun tokenize differently from
// Hugging Face (a normalizer, another split pattern, byte fallback, ...) is refused with the field named.
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/tokenizer_internal.h"

namespace seqrun::runtime::tokenizer_detail {

namespace {

using nlohmann::json;

const char kEndOfText[] = "<|endoftext|>";

Result<json> parse_json_file(const std::string& path) {
  SEQRUN_ASSIGN(std::string text, read_text_file(path));
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return make_error("{}: not valid JSON", path);
  return parsed;
}

bool is_null_or_absent(const json& object, const char* field) {
  return !object.contains(field) || object[field].is_null();
}

// Checks that a tokenizer.json's pre-tokenizer is exactly GPT-2's: ByteLevel with its regex (alone or as
// the only member of a Sequence). Returns its add_prefix_space.
Result<bool> check_byte_level_pre_tokenizer(const json& pre, const std::string& path) {
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") &&
      pre["pretokenizers"].is_array() && pre["pretokenizers"].size() == 1) {
    return check_byte_level_pre_tokenizer(pre["pretokenizers"][0], path);
  }
  if (!pre.is_object() || pre.value("type", "") != "ByteLevel") {
    return make_error("{}: pre_tokenizer {} is not supported (seqrun implements GPT-2's ByteLevel one)", path,
                      pre.is_object() ? "'" + pre.value("type", "?") + "'" : pre.dump());
  }
  if (pre.contains("use_regex") && pre["use_regex"].is_boolean() && !pre["use_regex"].get<bool>()) {
    return make_error("{}: pre_tokenizer ByteLevel with use_regex=false is not supported", path);
  }
  return pre.contains("add_prefix_space") && pre["add_prefix_space"].is_boolean() &&
         pre["add_prefix_space"].get<bool>();
}

// A bos_token / eos_token entry of tokenizer_config.json: a string or {"content": ...}.
std::string special_token_content(const json& config, const char* field) {
  if (!config.contains(field)) return "";
  const json& v = config[field];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

// Sets tokenizer.bos_id / eos_id from token contents, looked up among the added tokens and the vocab.
Status set_special_ids(const std::string& bos, const std::string& eos, const json& vocab, const json& added,
                       Metadata& metadata, const std::string& source) {
  auto lookup = [&](const std::string& content, const char* key) -> Status {
    if (content.empty()) return Status::ok();
    const json* found = nullptr;
    if (added.contains(content)) {
      found = &added[content];
    } else if (vocab.contains(content)) {
      found = &vocab[content];
    }
    if (found == nullptr || !found->is_number_integer()) {
      return make_error("{}: {} '{}' is not a token of the vocabulary", source, key, content);
    }
    metadata[std::string("tokenizer.") + key] = std::to_string(found->get<int64_t>());
    return Status::ok();
  };
  SEQRUN_TRY(lookup(bos, "bos_id"));
  SEQRUN_TRY(lookup(eos, "eos_id"));
  return Status::ok();
}

}  // namespace

Status gpt2_bpe_files_to_metadata(const std::string& encoder_json_path, const std::string& vocab_bpe_path,
                                  Metadata& metadata) {
  SEQRUN_ASSIGN(json vocab, parse_json_file(encoder_json_path));
  if (!vocab.is_object()) return make_error("{}: expected a JSON object of token -> id", encoder_json_path);
  SEQRUN_ASSIGN(std::string merges, read_text_file(vocab_bpe_path));
  metadata["tokenizer.vocab_json"] = vocab.dump();
  metadata["tokenizer.merges"] = merges;
  // GPT-2's one special token starts and ends every document.
  if (vocab.contains(kEndOfText)) {
    SEQRUN_TRY(set_special_ids(kEndOfText, kEndOfText, vocab, json::object(), metadata, encoder_json_path));
  }
  return Status::ok();
}

namespace {

Status hf_json_to_metadata_unchecked(const std::string& path, Metadata& metadata) {
  SEQRUN_ASSIGN(json root, parse_json_file(path));
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return make_error("{}: no \"model\" object (not a Hugging Face tokenizer.json)", path);
  }
  const json& model = root["model"];
  const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
  if (type != "BPE") {
    return make_error(
        "{}: model.type '{}' is not supported (seqrun reads byte-level BPE tokenizer.json files; "
        "use a SentencePiece .model for the others)",
        path, type);
  }
  if (!is_null_or_absent(root, "normalizer")) {
    return make_error("{}: normalizer '{}' is not supported", path, root["normalizer"].value("type", "?"));
  }
  if (!root.contains("pre_tokenizer")) return make_error("{}: no pre_tokenizer (expected ByteLevel)", path);
  SEQRUN_ASSIGN(bool add_prefix_space, check_byte_level_pre_tokenizer(root["pre_tokenizer"], path));
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
      model["byte_fallback"].get<bool>()) {
    return make_error("{}: model.byte_fallback is not supported", path);
  }
  if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean() &&
      model["ignore_merges"].get<bool>()) {
    return make_error("{}: model.ignore_merges is not supported", path);
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!is_null_or_absent(model, field) &&
        !(model[field].is_string() && model[field].get<std::string>().empty())) {
      return make_error("{}: model.{} is not supported", path, field);
    }
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return make_error("{}: model.vocab is missing or not an object", path);
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    return make_error("{}: model.merges is missing or not an array", path);
  }
  const json& vocab = model["vocab"];

  // Merges: "a b" strings (older files) or ["a", "b"] pairs (newer); stored as vocab.bpe lines.
  std::string merges = "#version: 0.2\n";
  size_t index = 0;
  for (const json& m : model["merges"]) {
    std::string left;
    std::string right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space != std::string::npos) {
        left = s.substr(0, space);
        right = s.substr(space + 1);
      }
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    }
    if (left.empty() || right.empty() || left.find_first_of(" \n") != std::string::npos ||
        right.find_first_of(" \n") != std::string::npos) {
      return make_error(
          "{}: model.merges[{}]: expected \"a b\" or [\"a\", \"b\"] of byte-level tokens, got {}", path,
          index, m.dump());
    }
    merges += left + " " + right + "\n";
    ++index;
  }

  // Added tokens that are not already the same vocab entry decode as their literal text.
  json added = json::object();
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& t : root["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
          !t["content"].is_string()) {
        return make_error("{}: added_tokens: expected objects with an integer id and a content string", path);
      }
      const std::string content = t["content"].get<std::string>();
      if (vocab.contains(content) && vocab[content] == t["id"]) continue;
      added[content] = t["id"];
    }
  }

  metadata["tokenizer.vocab_json"] = vocab.dump();
  metadata["tokenizer.merges"] = merges;
  if (!added.empty()) metadata["tokenizer.added_tokens_json"] = added.dump();
  if (add_prefix_space) metadata["tokenizer.add_prefix_space"] = "1";

  // bos/eos: from tokenizer_config.json beside the file when there is one, else GPT-2's <|endoftext|>.
  const std::filesystem::path config_path =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    SEQRUN_ASSIGN(json config, parse_json_file(config_path.string()));
    if (!config.is_object()) return make_error("{}: expected a JSON object", config_path.string());
    return set_special_ids(special_token_content(config, "bos_token"),
                           special_token_content(config, "eos_token"), vocab, added, metadata,
                           config_path.string());
  }
  if (vocab.contains(kEndOfText) || added.contains(kEndOfText)) {
    return set_special_ids(kEndOfText, kEndOfText, vocab, added, metadata, path);
  }
  return Status::ok();
}

}  // namespace

Status hf_tokenizer_json_to_metadata(const std::string& tokenizer_json_path, Metadata& metadata) {
  // nlohmann::json throws on a field of an unexpected type; that is a bad file, not a crash.
  try {
    return hf_json_to_metadata_unchecked(tokenizer_json_path, metadata);
  } catch (const nlohmann::json::exception& e) {
    return make_error("{}: unexpected JSON structure: {}", tokenizer_json_path, e.what());
  }
}

}  // namespace seqrun::runtime::tokenizer_detail
