// Choosing a tokenizer from model metadata and writing one into it; base64; the streaming UTF-8 decoder.
#include "runtime/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "runtime/tokenizer_internal.h"

namespace seqrun::runtime {

using tokenizer_detail::Metadata;

namespace {

constexpr char kTypeKey[] = "tokenizer.type";
constexpr char kKeyPrefix[] = "tokenizer.";

// An optional tokenizer.bos_id / eos_id: a decimal id below the vocabulary size.
Result<std::optional<int32_t>> read_special_id(const Metadata& metadata, const std::string& key,
                                               int32_t vocab_size) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return std::optional<int32_t>();
  const std::string& text = it->second;
  int64_t value = 0;
  bool ok = !text.empty() && text.size() <= 10;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + (c - '0');
  }
  if (!ok || value >= vocab_size) {
    return make_error("{}: '{}' is not a token id in [0, {})", key, text.substr(0, 20), vocab_size);
  }
  return std::optional<int32_t>(static_cast<int32_t>(value));
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace

// ---- base64 -------------------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k) {
      group = (group << 8) | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    }
    for (size_t k = 0; k < 4; ++k) {
      out += k <= n ? kAlphabet[(group >> (18 - 6 * k)) & 0x3F] : '=';
    }
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return make_error("bad base64: length {} is not a multiple of 4", text.size());
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    uint32_t group = 0;
    int padding = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int v = 0;
      if (c == '=' && last && k >= 2) {
        ++padding;
      } else {
        v = base64_value(c);
        if (v < 0 || padding > 0) {
          return make_error("bad base64: unexpected character 0x{:02X} at offset {}", static_cast<uint8_t>(c),
                            i + k);
        }
      }
      group = (group << 6) | static_cast<uint32_t>(v);
    }
    for (int k = 0; k < 3 - padding; ++k) out += static_cast<char>((group >> (16 - 8 * k)) & 0xFF);
  }
  return out;
}

// ---- streaming ----------------------------------------------------------------------------------

Result<std::string> StreamDecoder::push(int32_t id) {
  SEQRUN_ASSIGN(std::string piece, tokenizer_.decode_token(id));
  if (at_start_ && !piece.empty()) {
    at_start_ = false;
    if (tokenizer_.decode_drops_leading_space() && piece[0] == ' ') piece.erase(0, 1);
  }
  pending_ += piece;
  const size_t ready = tokenizer_detail::utf8_emit_length(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

// ---- metadata -> tokenizer ----------------------------------------------------------------------

bool has_tokenizer(const Metadata& metadata) {
  return metadata.count(kTypeKey) > 0;
}

Result<std::unique_ptr<Tokenizer>> tokenizer_from_metadata(const Metadata& metadata) {
  auto type = metadata.find(kTypeKey);
  if (type == metadata.end()) {
    return make_error("the model has no tokenizer (no '{}' in its metadata; export it with --tokenizer)",
                      kTypeKey);
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (type->second == "bytes") {
    tokenizer = tokenizer_detail::make_byte_tokenizer();
  } else if (type->second == "gpt2_bpe") {
    SEQRUN_ASSIGN(tokenizer, tokenizer_detail::load_gpt2_bpe(metadata));
  } else if (type->second == "sentencepiece") {
    SEQRUN_ASSIGN(tokenizer, tokenizer_detail::load_sentencepiece(metadata));
  } else {
    return make_error("{}: unknown tokenizer type '{}' (known: bytes, gpt2_bpe, sentencepiece)", kTypeKey,
                      type->second.substr(0, 60));
  }
  SEQRUN_ASSIGN(std::optional<int32_t> bos,
                read_special_id(metadata, "tokenizer.bos_id", tokenizer->vocab_size()));
  SEQRUN_ASSIGN(std::optional<int32_t> eos,
                read_special_id(metadata, "tokenizer.eos_id", tokenizer->vocab_size()));
  tokenizer->set_special_ids(bos ? bos : tokenizer->bos_id(), eos ? eos : tokenizer->eos_id());
  return tokenizer;
}

// ---- files -> metadata --------------------------------------------------------------------------

namespace tokenizer_detail {

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open the file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error("{}: read error", path);
  return ss.str();
}

}  // namespace tokenizer_detail

Status tokenizer_to_metadata(const std::string& kind, const std::vector<std::string>& files,
                             Metadata& metadata) {
  auto expect_files = [&](size_t n, const char* what) -> Status {
    if (files.size() != n) {
      return make_error("tokenizer kind '{}' takes {} file(s) ({}), got {}", kind, n, what, files.size());
    }
    return Status::ok();
  };
  Metadata keys;  // the new tokenizer.* keys
  if (kind == "bytes") {
    SEQRUN_TRY(expect_files(0, "none"));
    keys[kTypeKey] = "bytes";
  } else if (kind == "gpt2_bpe") {
    SEQRUN_TRY(expect_files(2, "encoder.json, vocab.bpe"));
    keys[kTypeKey] = "gpt2_bpe";
    SEQRUN_TRY(tokenizer_detail::gpt2_bpe_files_to_metadata(files[0], files[1], keys));
  } else if (kind == "hf_json") {
    SEQRUN_TRY(expect_files(1, "tokenizer.json"));
    keys[kTypeKey] = "gpt2_bpe";
    SEQRUN_TRY(tokenizer_detail::hf_tokenizer_json_to_metadata(files[0], keys));
  } else if (kind == "sentencepiece") {
    SEQRUN_TRY(expect_files(1, "tokenizer.model"));
    keys[kTypeKey] = "sentencepiece";
    SEQRUN_TRY(tokenizer_detail::sentencepiece_file_to_metadata(files[0], keys));
  } else {
    return make_error("unknown tokenizer kind '{}' (known: bytes, gpt2_bpe, hf_json, sentencepiece)", kind);
  }
  // What we store must load: check it now rather than when someone runs the model.
  Result<std::unique_ptr<Tokenizer>> check = tokenizer_from_metadata(keys);
  if (!check) {
    const std::string source = files.empty() ? kind : files[0];
    return check.status().with_context(source);
  }
  for (auto it = metadata.begin(); it != metadata.end();) {
    it = it->first.rfind(kKeyPrefix, 0) == 0 ? metadata.erase(it) : std::next(it);
  }
  for (auto& [key, value] : keys) metadata[key] = std::move(value);
  return Status::ok();
}

Status tokenizer_to_metadata_from_path(const std::string& path, Metadata& metadata) {
  namespace fs = std::filesystem;
  if (path == "bytes") return tokenizer_to_metadata("bytes", {}, metadata);
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (is_file(p / "tokenizer.json"))
      return tokenizer_to_metadata("hf_json", {(p / "tokenizer.json").string()}, metadata);
    if (is_file(p / "tokenizer.model")) {
      return tokenizer_to_metadata("sentencepiece", {(p / "tokenizer.model").string()}, metadata);
    }
    if (is_file(p / "encoder.json") && is_file(p / "vocab.bpe")) {
      return tokenizer_to_metadata("gpt2_bpe", {(p / "encoder.json").string(), (p / "vocab.bpe").string()},
                                   metadata);
    }
    if (is_file(p / "vocab.json") && is_file(p / "merges.txt")) {
      return tokenizer_to_metadata("gpt2_bpe", {(p / "vocab.json").string(), (p / "merges.txt").string()},
                                   metadata);
    }
    return make_error(
        "{}: no tokenizer.json, tokenizer.model, encoder.json + vocab.bpe or vocab.json + merges.txt "
        "in this folder",
        path);
  }
  if (!is_file(p)) return make_error("{}: no such tokenizer file or folder (or say 'bytes')", path);
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  if (name == "encoder.json" || name == "vocab.json") {
    const fs::path merges = p.parent_path() / (name == "encoder.json" ? "vocab.bpe" : "merges.txt");
    if (!is_file(merges))
      return make_error("{}: the merge list {} is missing beside it", path, merges.string());
    return tokenizer_to_metadata("gpt2_bpe", {path, merges.string()}, metadata);
  }
  if (ext == ".json") return tokenizer_to_metadata("hf_json", {path}, metadata);
  if (ext == ".model") return tokenizer_to_metadata("sentencepiece", {path}, metadata);
  return make_error(
      "{}: not a tokenizer (expected tokenizer.json, a .model, encoder.json, a folder, or 'bytes')", path);
}

}  // namespace seqrun::runtime
