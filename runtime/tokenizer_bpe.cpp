// GPT-2's byte-level BPE tokenizer, loaded from the tokenizer.vocab_json / tokenizer.merges metadata keys.
//
// Encoding: split the text with GPT-2's pattern (tokenizer_unicode.cpp), start each piece as one token
// per byte, then repeatedly merge every occurrence of the adjacent pair with the lowest merge rank until
// no pair has a rank (GPT-2's encoder.py algorithm). Vocabulary tokens are spelled in GPT-2's byte
// alphabet (each byte shown as a printable code point); the loader maps them back to raw bytes, so the
// merge loop works on token ids and decoding is concatenating bytes.
#include <array>
#include <climits>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/tokenizer_internal.h"

namespace seqrun::runtime::tokenizer_detail {

namespace {

constexpr int64_t kMaxVocabIds = int64_t{1} << 22;  // bounds what a corrupt id can make us allocate
constexpr size_t kMaxCachedPieces = 1 << 16;

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes map to
// U+0100.. in byte order. Returns the code point for every byte.
std::array<uint32_t, 256> byte_to_code_point() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? b : next++;
  }
  return map;
}

std::string shown(std::string_view s) {
  constexpr size_t kMaxShown = 60;
  return std::string(s.size() <= kMaxShown ? s : s.substr(0, kMaxShown));
}

class Gpt2BpeTokenizer final : public Tokenizer {
 public:
  std::string kind() const override { return "gpt2_bpe"; }

  Status load(const Metadata& metadata) {
    SEQRUN_TRY(load_vocab(metadata));
    SEQRUN_TRY(load_added_tokens(metadata));
    SEQRUN_TRY(load_merges(metadata));
    auto prefix = metadata.find("tokenizer.add_prefix_space");
    add_prefix_space_ = prefix != metadata.end() && prefix->second == "1";
    return Status::ok();
  }

  Result<std::vector<int32_t>> encode(std::string_view text) const override {
    std::string prefixed;
    if (add_prefix_space_ && !text.empty() && text[0] != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    std::vector<int32_t> ids;
    for (std::string_view piece : gpt2_pretokenize(text)) {
      std::vector<int32_t> piece_ids = encode_piece(piece);
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
    return ids;
  }

  Result<std::string> decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
      Status st = check_id(ids[i]);
      if (!st) return st.with_context(fmt::format("token #{}", i));
      text += token_bytes_[static_cast<size_t>(ids[i])];
    }
    return text;
  }

  Result<std::string> decode_token(int32_t id) const override {
    SEQRUN_TRY(check_id(id));
    return token_bytes_[static_cast<size_t>(id)];
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(token_bytes_.size()); }

 private:
  std::vector<std::string> token_bytes_;  // by id: the raw bytes the token stands for
  std::vector<uint8_t> token_present_;    // by id: 1 when some token has this id
  std::array<int32_t, 256> byte_token_{};
  std::unordered_map<std::string, int32_t> id_of_spelling_;  // vocab spelling (byte alphabet) -> id
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank and merged id
  bool add_prefix_space_ = false;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // piece -> ids

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  Status check_id(int32_t id) const {
    if (id < 0 || id >= vocab_size()) return make_error("id {} is out of range [0, {})", id, vocab_size());
    if (!token_present_[static_cast<size_t>(id)]) return make_error("id {} is not in the vocabulary", id);
    return Status::ok();
  }

  Status set_token(int64_t id, std::string bytes, const std::string& key, const std::string& name) {
    if (id < 0 || id >= kMaxVocabIds) {
      return make_error("{}: token '{}' has id {} (ids must be in [0, {}))", key, shown(name), id,
                        kMaxVocabIds);
    }
    const size_t index = static_cast<size_t>(id);
    if (index >= token_bytes_.size()) {
      token_bytes_.resize(index + 1);
      token_present_.resize(index + 1, 0);
    }
    token_bytes_[index] = std::move(bytes);
    token_present_[index] = 1;
    return Status::ok();
  }

  Status load_vocab(const Metadata& metadata) {
    const std::string key = "tokenizer.vocab_json";
    auto it = metadata.find(key);
    if (it == metadata.end())
      return make_error("{}: missing (a gpt2_bpe tokenizer needs its vocabulary)", key);
    nlohmann::json vocab = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (vocab.is_discarded()) return make_error("{}: not valid JSON", key);
    if (!vocab.is_object() || vocab.empty()) return make_error("{}: expected a non-empty JSON object", key);

    std::unordered_map<uint32_t, uint8_t> byte_of_code_point;
    const std::array<uint32_t, 256> code_points = byte_to_code_point();
    for (uint32_t b = 0; b < 256; ++b) byte_of_code_point[code_points[b]] = static_cast<uint8_t>(b);

    for (auto& [spelling, id_json] : vocab.items()) {
      if (!id_json.is_number_integer()) {
        return make_error("{}: token '{}' has a non-integer id", key, shown(spelling));
      }
      const int64_t id = id_json.get<int64_t>();
      std::string bytes;
      for (size_t pos = 0; pos < spelling.size();) {
        uint32_t cp = 0;
        pos += decode_utf8(spelling, pos, cp);
        auto b = byte_of_code_point.find(cp);
        if (b == byte_of_code_point.end()) {
          return make_error("{}: token '{}' (id {}) has a character outside GPT-2's byte alphabet", key,
                            shown(spelling), id);
        }
        bytes += static_cast<char>(b->second);
      }
      if (bytes.empty()) return make_error("{}: empty token (id {})", key, id);
      if (id >= 0 && id < static_cast<int64_t>(token_present_.size()) &&
          token_present_[static_cast<size_t>(id)]) {
        return make_error("{}: id {} is used by two tokens (one is '{}')", key, id, shown(spelling));
      }
      SEQRUN_TRY(set_token(id, std::move(bytes), key, spelling));
      id_of_spelling_[spelling] = static_cast<int32_t>(id);
    }
    for (uint32_t b = 0; b < 256; ++b) {
      std::string spelling;
      append_utf8(code_points[b], spelling);
      auto found = id_of_spelling_.find(spelling);
      if (found == id_of_spelling_.end()) {
        return make_error("{}: no token for byte 0x{:02X} ('{}'): a byte-level vocabulary has all 256", key,
                          b, spelling);
      }
      byte_token_[b] = found->second;
    }
    return Status::ok();
  }

  Status load_added_tokens(const Metadata& metadata) {
    const std::string key = "tokenizer.added_tokens_json";
    auto it = metadata.find(key);
    if (it == metadata.end()) return Status::ok();
    nlohmann::json added = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (added.is_discarded() || !added.is_object()) return make_error("{}: expected a JSON object", key);
    for (auto& [content, id_json] : added.items()) {
      if (!id_json.is_number_integer())
        return make_error("{}: token '{}' has a non-integer id", key, shown(content));
      if (content.empty()) return make_error("{}: empty token", key);
      SEQRUN_TRY(set_token(id_json.get<int64_t>(), content, key, content));
    }
    return Status::ok();
  }

  Status load_merges(const Metadata& metadata) {
    const std::string key = "tokenizer.merges";
    auto it = metadata.find(key);
    if (it == metadata.end())
      return make_error("{}: missing (a gpt2_bpe tokenizer needs its merge list)", key);
    const std::string& text = it->second;
    int32_t rank = 0;
    size_t line_number = 0;
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      start = end + 1;
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      if (line_number == 1 && line.substr(0, 8) == "#version") continue;
      const size_t space = line.find(' ');
      if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
          line.find(' ', space + 1) != std::string_view::npos) {
        return make_error("{}: line {}: expected two tokens separated by one space, got '{}'", key,
                          line_number, shown(line));
      }
      const std::string left(line.substr(0, space));
      const std::string right(line.substr(space + 1));
      int32_t ids[3] = {0, 0, 0};
      const std::string parts[3] = {left, right, left + right};
      for (int k = 0; k < 3; ++k) {
        auto found = id_of_spelling_.find(parts[k]);
        if (found == id_of_spelling_.end()) {
          return make_error("{}: line {}: merge '{}' refers to token '{}', which is not in the vocabulary",
                            key, line_number, shown(line), shown(parts[k]));
        }
        ids[k] = found->second;
      }
      merges_.emplace(pair_key(ids[0], ids[1]), Merge{rank, ids[2]});  // the first (lowest) rank wins
      ++rank;
    }
    return Status::ok();
  }

  // BPE on one pre-token: returns its token ids.
  std::vector<int32_t> encode_piece(std::string_view piece) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto hit = cache_.find(std::string(piece));
      if (hit != cache_.end()) return hit->second;
    }
    std::vector<int32_t> word;
    word.reserve(piece.size());
    for (char c : piece) word.push_back(byte_token_[static_cast<uint8_t>(c)]);
    std::vector<int32_t> merged;
    while (word.size() > 1) {
      // The adjacent pair with the lowest rank...
      int32_t best_rank = INT32_MAX;
      const Merge* best = nullptr;
      int32_t best_left = 0;
      int32_t best_right = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto found = merges_.find(pair_key(word[i], word[i + 1]));
        if (found != merges_.end() && found->second.rank < best_rank) {
          best_rank = found->second.rank;
          best = &found->second;
          best_left = word[i];
          best_right = word[i + 1];
        }
      }
      if (best == nullptr) break;
      // ...is merged wherever it occurs, left to right without overlap.
      merged.clear();
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == best_left && word[i + 1] == best_right) {
          merged.push_back(best->result);
          i += 2;
        } else {
          merged.push_back(word[i]);
          i += 1;
        }
      }
      word.swap(merged);
    }
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCachedPieces) cache_.clear();
    cache_.emplace(std::string(piece), word);
    return word;
  }
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_gpt2_bpe(const Metadata& metadata) {
  auto tokenizer = std::make_unique<Gpt2BpeTokenizer>();
  try {
    SEQRUN_TRY(tokenizer->load(metadata));
  } catch (const nlohmann::json::exception& e) {  // a field of an unexpected type: a bad model, not a crash
    return make_error("tokenizer metadata: unexpected JSON structure: {}", e.what());
  }
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace seqrun::runtime::tokenizer_detail
