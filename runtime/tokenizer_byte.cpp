// The byte-level tokenizer: token ids are the bytes of the UTF-8 text (RWKV's tiny models, vocabulary 256).
#include <fmt/format.h>

#include "runtime/tokenizer_internal.h"

namespace seqrun::runtime::tokenizer_detail {

namespace {

// Encoding is the identity on bytes, so any byte string (valid UTF-8 or not) round-trips exactly.
class ByteTokenizer final : public Tokenizer {
 public:
  std::string kind() const override { return "bytes"; }

  Result<std::vector<int32_t>> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (char c : text) ids.push_back(static_cast<uint8_t>(c));
    return ids;
  }

  Result<std::string> decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    text.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] > 255) {
        return make_error("token #{}: id {} is out of range for the byte tokenizer (0..255)", i, ids[i]);
      }
      text += static_cast<char>(ids[i]);
    }
    return text;
  }

  Result<std::string> decode_token(int32_t id) const override {
    if (id < 0 || id > 255)
      return make_error("token id {} is out of range for the byte tokenizer (0..255)", id);
    return std::string(1, static_cast<char>(id));
  }

  int32_t vocab_size() const override { return 256; }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() {
  return std::make_unique<ByteTokenizer>();
}

}  // namespace seqrun::runtime::tokenizer_detail
