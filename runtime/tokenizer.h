// Tokenizers that turn text into token ids and back, chosen from a model file's metadata.
//
// The exporter stores a tokenizer inside the model (`seqrun-export ... --tokenizer PATH`), as string
// key/value pairs under "tokenizer.*" in the model metadata (ir/serialize.h), so a .seqrun file carries
// everything needed to run it on text. Three kinds:
//   bytes          ids are the UTF-8 bytes of the text (0..255): RWKV's tiny models.
//   gpt2_bpe       GPT-2's byte-level BPE (GPT-2 pre-tokenization, byte-to-unicode alphabet, merge ranks),
//                  from encoder.json + vocab.bpe or from a Hugging Face tokenizer.json with model.type BPE.
//   sentencepiece  a SentencePiece .model (Llama and friends), run by Debian's libsentencepiece.
//
// Metadata keys (all strings):
//   tokenizer.type                 "bytes" | "gpt2_bpe" | "sentencepiece"
//   tokenizer.vocab_json           gpt2_bpe: encoder.json's object {token (byte alphabet): id}
//   tokenizer.merges               gpt2_bpe: vocab.bpe's lines "a b", rank = line order ("#" lines skipped)
//   tokenizer.added_tokens_json    gpt2_bpe, optional: {content: id} tokens decoded as their literal text
//   tokenizer.add_prefix_space     gpt2_bpe, optional: "1" prepends a space to text not starting with one
//   tokenizer.model_base64         sentencepiece: the .model file's bytes, base64
//   tokenizer.bos_id, .eos_id      optional decimal ids (sentencepiece: the model's own when absent)
//
// encode() takes text literally: special-token strings such as "<|endoftext|>" or "<s>" in the text are
// tokenized as text, never mapped to their ids (callers add bos/eos themselves). decode() of ids that
// form invalid UTF-8 passes the bytes through unchanged (sentencepiece: as libsentencepiece does).
// Every loader validates what it reads; a bad vocabulary, merge list or model is an error naming the key.
// Tokenizers are immutable after loading and safe to use from several threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/status.h"

namespace seqrun::runtime {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // "bytes", "gpt2_bpe" or "sentencepiece" (the value of tokenizer.type).
  virtual std::string kind() const = 0;
  virtual Result<std::vector<int32_t>> encode(std::string_view text) const = 0;
  // Ids outside [0, vocab_size()) or not in the vocabulary are an error naming the id.
  virtual Result<std::string> decode(const std::vector<int32_t>& ids) const = 0;
  // The bytes one token contributes in the middle of a text (a byte-level piece may be part of a UTF-8
  // character; use StreamDecoder to print tokens as they come).
  virtual Result<std::string> decode_token(int32_t id) const = 0;
  // One more than the largest id.
  virtual int32_t vocab_size() const = 0;
  // True when decode() drops the leading space of the first visible piece (sentencepiece's dummy prefix).
  virtual bool decode_drops_leading_space() const { return false; }

  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  void set_special_ids(std::optional<int32_t> bos, std::optional<int32_t> eos) {
    bos_id_ = bos;
    eos_id_ = eos;
  }

 private:
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
};

// Turns a stream of token ids into text as they arrive, holding back the bytes of a UTF-8 character
// until it is complete, so every string push() returns is whole characters. Bytes that can never start
// or continue a valid character are passed through at once. The concatenation of every push() and the
// final flush() equals tokenizer.decode(all ids) (sentencepiece: except invalid byte pieces, which
// libsentencepiece replaces with U+FFFD and this passes through).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  Result<std::string> push(int32_t id);
  // The held-back bytes of an unfinished character (empty when the stream ended on a boundary).
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;   // bytes of a UTF-8 character not yet complete
  bool at_start_ = true;  // nothing visible emitted yet (for decode_drops_leading_space)
};

// Builds the tokenizer a model's metadata describes. No "tokenizer.type" key is an error that says the
// model has no tokenizer (export it with --tokenizer).
Result<std::unique_ptr<Tokenizer>> tokenizer_from_metadata(
    const std::map<std::string, std::string>& metadata);
bool has_tokenizer(const std::map<std::string, std::string>& metadata);

// The writer side, used by seqrun-export. `kind` and `files`:
//   "bytes"          no files
//   "gpt2_bpe"       {encoder.json, vocab.bpe}   (Hugging Face's vocab.json + merges.txt are the same files)
//   "hf_json"        {tokenizer.json}, model.type BPE with a ByteLevel pre-tokenizer; stored as gpt2_bpe
//   "sentencepiece"  {tokenizer.model}
// Adds the tokenizer.* keys to `metadata` (replacing old ones) after checking that they load.
// A tokenizer_config.json next to a tokenizer.json may name bos_token / eos_token.
Status tokenizer_to_metadata(const std::string& kind, const std::vector<std::string>& files,
                             std::map<std::string, std::string>& metadata);
// `--tokenizer PATH`: "bytes"; a tokenizer.json (*.json); a SentencePiece model (*.model); or a folder
// holding tokenizer.json, tokenizer.model, encoder.json + vocab.bpe, or vocab.json + merges.txt (first
// found).
Status tokenizer_to_metadata_from_path(const std::string& path, std::map<std::string, std::string>& metadata);

// Base64 (RFC 4648, with padding), as the sentencepiece model is stored. Decoding rejects any character
// outside the alphabet, bad padding and a wrong length, naming the offset.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace seqrun::runtime
