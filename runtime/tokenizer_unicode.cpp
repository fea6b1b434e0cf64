// UTF-8 decoding, Unicode letter/number/space classes and GPT-2's pre-tokenization regex, by hand.
#include <algorithm>

#include "runtime/tokenizer_internal.h"

namespace seqrun::runtime::tokenizer_detail {

UnicodeClass classify_code_point(uint32_t cp) {
  // Binary search for the last range whose first code point is <= cp.
  size_t lo = 0;
  size_t hi = kLetterNumberRangeCount;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (kLetterNumberRanges[mid].first <= cp) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return UnicodeClass::other;
  const UnicodeRange& r = kLetterNumberRanges[lo - 1];
  return cp <= r.last ? r.cls : UnicodeClass::other;
}

bool is_unicode_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

namespace {

bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

// For a lead byte: the sequence length (2..4) and the allowed range of the second byte, which rules
// out overlong forms, surrogates and code points above U+10FFFF. Returns 0 for a byte that cannot lead.
int lead_info(uint8_t b, uint8_t& second_lo, uint8_t& second_hi) {
  second_lo = 0x80;
  second_hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) {
    if (b == 0xE0) second_lo = 0xA0;
    if (b == 0xED) second_hi = 0x9F;
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (b == 0xF0) second_lo = 0x90;
    if (b == 0xF4) second_hi = 0x8F;
    return 4;
  }
  return 0;
}

}  // namespace

size_t decode_utf8(std::string_view text, size_t pos, uint32_t& cp) {
  const uint8_t b0 = static_cast<uint8_t>(text[pos]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  uint8_t lo = 0;
  uint8_t hi = 0;
  const int len = lead_info(b0, lo, hi);
  cp = kInvalidCodePoint;
  if (len == 0 || pos + static_cast<size_t>(len) > text.size()) return 1;
  const uint8_t b1 = static_cast<uint8_t>(text[pos + 1]);
  if (b1 < lo || b1 > hi) return 1;
  for (int k = 2; k < len; ++k) {
    if (!is_continuation(static_cast<uint8_t>(text[pos + k]))) return 1;
  }
  uint32_t value = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (int k = 1; k < len; ++k) value = (value << 6) | (static_cast<uint8_t>(text[pos + k]) & 0x3F);
  cp = value;
  return static_cast<size_t>(len);
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t utf8_emit_length(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const uint8_t b0 = static_cast<uint8_t>(bytes[pos]);
    uint8_t lo = 0;
    uint8_t hi = 0;
    const int len = b0 < 0x80 ? 1 : lead_info(b0, lo, hi);
    const size_t avail = bytes.size() - pos;
    if (len > 1 && avail < static_cast<size_t>(len)) {
      // Too short to decode: hold it back if what is there is a valid start of a character.
      bool prefix_ok = true;
      if (avail >= 2) {
        const uint8_t b1 = static_cast<uint8_t>(bytes[pos + 1]);
        prefix_ok = b1 >= lo && b1 <= hi;
      }
      for (size_t k = 2; prefix_ok && k < avail; ++k) {
        prefix_ok = is_continuation(static_cast<uint8_t>(bytes[pos + k]));
      }
      if (prefix_ok) return pos;
    }
    uint32_t cp = 0;
    pos += decode_utf8(bytes, pos, cp);
  }
  return pos;
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  // Code points with their byte offsets (offsets has one extra entry: text.size()).
  std::vector<uint32_t> cps;
  std::vector<size_t> offsets;
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    size_t len = decode_utf8(text, pos, cp);
    cps.push_back(cp);
    offsets.push_back(pos);
    pos += len;
  }
  offsets.push_back(text.size());
  const size_t n = cps.size();

  auto is_letter = [&](size_t i) { return classify_code_point(cps[i]) == UnicodeClass::letter; };
  auto is_number = [&](size_t i) { return classify_code_point(cps[i]) == UnicodeClass::number; };
  // Invalid bytes (kInvalidCodePoint) are neither spaces, letters nor numbers: they are "other".
  auto is_space = [&](size_t i) { return is_unicode_whitespace(cps[i]); };
  auto is_other = [&](size_t i) {
    return !is_space(i) && classify_code_point(cps[i]) == UnicodeClass::other;
  };
  auto run_end = [&](size_t start, auto in_class) {
    size_t j = start;
    while (j < n && in_class(j)) ++j;
    return j;
  };

  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < n) {
    size_t end = i;  // exclusive end of the match, in code points
    // 's|'t|'re|'ve|'m|'ll|'d
    if (cps[i] == '\'' && i + 1 < n) {
      const uint32_t c1 = cps[i + 1];
      const uint32_t c2 = i + 2 < n ? cps[i + 2] : 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        end = i + 2;
      } else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        end = i + 3;
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional leading space, then a run of one class.
    if (end == i) {
      const size_t start = cps[i] == ' ' ? i + 1 : i;
      size_t j = run_end(start, is_letter);
      if (j == start) j = run_end(start, is_number);
      if (j == start) j = run_end(start, is_other);
      if (j > start) end = j;
    }
    // `\s+(?!\S)` then `\s+`: a whitespace run, less its last character when a non-space follows it
    // (that character then leads the next piece), unless the run is a single character.
    if (end == i && is_space(i)) {
      size_t j = i;
      while (j < n && is_space(j)) ++j;
      end = (j == n || j - i == 1) ? j : j - 1;
    }
    if (end == i) end = i + 1;  // unreachable: every character is a space, letter, number or other
    pieces.push_back(text.substr(offsets[i], offsets[end] - offsets[i]));
    i = end;
  }
  return pieces;
}

}  // namespace seqrun::runtime::tokenizer_detail
