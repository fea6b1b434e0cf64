// What the tokenizer sources share inside runtime/: UTF-8 and Unicode classification, the GPT-2
// pre-tokenizer, and the per-kind loaders and metadata writers that runtime/tokenizer.cpp dispatches to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ir/status.h"
#include "runtime/tokenizer.h"

namespace seqrun::runtime::tokenizer_detail {

using Metadata = std::map<std::string, std::string>;

// ---- Unicode ------------------------------------------------------------------------------------

enum class UnicodeClass : uint8_t { other = 0, letter = 1, number = 2 };
struct UnicodeRange {
  uint32_t first;
  uint32_t last;  // inclusive
  UnicodeClass cls;
};
// Generated table (runtime/tokenizer_unicode_table.cpp, tools/gen_unicode_table.py).
extern const UnicodeRange kLetterNumberRanges[];
extern const size_t kLetterNumberRangeCount;
extern const char kUnicodeTableVersion[];

UnicodeClass classify_code_point(uint32_t cp);
// The Unicode White_Space property (what \s matches in the regex GPT-2 was trained with).
bool is_unicode_whitespace(uint32_t cp);

constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;
// Decodes the character starting at text[pos]; returns its length in bytes (>= 1). A byte that does not
// start a valid, complete, shortest-form sequence decodes as kInvalidCodePoint with length 1.
size_t decode_utf8(std::string_view text, size_t pos, uint32_t& cp);
void append_utf8(uint32_t cp, std::string& out);
// The length of the longest prefix of `bytes` that does not end inside a UTF-8 character that later
// bytes could still complete (invalid bytes count as complete: they are passed through).
size_t utf8_emit_length(std::string_view bytes);

// Splits text the way GPT-2's pattern does:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The pieces are views into `text` and concatenate to it. Invalid UTF-8 bytes count as "other".
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// ---- per-kind loaders and writers ---------------------------------------------------------------

std::unique_ptr<Tokenizer> make_byte_tokenizer();
Result<std::unique_ptr<Tokenizer>> load_gpt2_bpe(const Metadata& metadata);
Result<std::unique_ptr<Tokenizer>> load_sentencepiece(const Metadata& metadata);

// Fill tokenizer.* keys (besides tokenizer.type) from files; errors name the file.
Status gpt2_bpe_files_to_metadata(const std::string& encoder_json_path, const std::string& vocab_bpe_path,
                                  Metadata& metadata);
Status hf_tokenizer_json_to_metadata(const std::string& tokenizer_json_path, Metadata& metadata);
Status sentencepiece_file_to_metadata(const std::string& model_path, Metadata& metadata);

Result<std::string> read_text_file(const std::string& path);

}  // namespace seqrun::runtime::tokenizer_detail
