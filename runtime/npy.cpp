// NumPy .npy reading and writing: header parsing, dtype mapping and size checks against the file.
//
// Layout of a .npy file: the magic "\x93NUMPY", a major and minor version byte, the header length
// (u16 little-endian for 1.0, u32 for 2.0 and 3.0), the header (a Python dict literal such as
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces and a newline),
// then the raw element bytes. Nothing read from the file is trusted: every length is checked
// against the file size before anything is allocated or copied.
#include "runtime/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

namespace seqrun::runtime {

namespace {

constexpr char kNpyMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kPrefixBytesV1 = 10;  // magic, 2 version bytes, u16 header length
constexpr size_t kPrefixBytesV2 = 12;  // magic, 2 version bytes, u32 header length
constexpr uint64_t kMaxHeaderBytes = 1 << 20;
constexpr size_t kArrayAlignBytes = 64;      // numpy aligns the data start to 64 bytes
constexpr size_t kGrowthAxisMaxDigits = 21;  // numpy pads the header so shape[0] can grow in place

struct DescrInfo {
  char kind;  // 'f', 'i', 'u', 'b'
  int size_bytes;
  DType dtype;
};
constexpr DescrInfo kDescrs[] = {
    {'f', 2, DType::f16}, {'f', 4, DType::f32}, {'f', 8, DType::f64}, {'i', 1, DType::i8},
    {'i', 2, DType::i16}, {'i', 4, DType::i32}, {'i', 8, DType::i64}, {'u', 1, DType::u8},
    {'u', 2, DType::u16}, {'u', 4, DType::u32}, {'u', 8, DType::u64}, {'b', 1, DType::boolean},
};
constexpr const char* kSupportedDescrs =
    "'<f2', '<f4', '<f8', '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '|b1'";

// One value of the header dict: a string, a bool, or a tuple of integers.
struct HeaderValue {
  enum class Kind { String, Bool, IntTuple, Other } kind = Kind::Other;
  std::string text;  // String: the string; Other: the raw token for error messages
  bool flag = false;
  std::vector<int64_t> ints;
};

// A minimal parser for the dict literal numpy writes. It accepts single or double quotes, optional
// trailing commas and Python 2's "3L" integers, and nothing else.
class HeaderParser {
 public:
  explicit HeaderParser(const std::string& text) : text_(text) {}

  Result<std::map<std::string, HeaderValue>> parse() {
    std::map<std::string, HeaderValue> dict;
    skip_space();
    if (!consume('{')) return error("expected '{'");
    while (true) {
      skip_space();
      if (consume('}')) break;
      SEQRUN_ASSIGN(std::string key, parse_string());
      skip_space();
      if (!consume(':')) return error("expected ':' after key '" + key + "'");
      skip_space();
      SEQRUN_ASSIGN(HeaderValue value, parse_value());
      if (!dict.emplace(key, value).second) return error("duplicate key '" + key + "'");
      skip_space();
      if (consume(',')) continue;
      skip_space();
      if (consume('}')) break;
      return error("expected ',' or '}'");
    }
    skip_space();
    if (pos_ != text_.size()) return error("unexpected text after the closing '}'");
    return dict;
  }

 private:
  Status error(const std::string& what) const {
    return make_error("malformed header at character {}: {} (header: {})", pos_, what, text_);
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool consume_word(const char* word) {
    size_t n = std::strlen(word);
    if (text_.compare(pos_, n, word) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }
  Result<std::string> parse_string() {
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"'))
      return error("expected a string");
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) return error("unterminated string");
    std::string s = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  Result<int64_t> parse_int() {
    size_t start = pos_;
    int64_t v = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      int digit = text_[pos_] - '0';
      if (v > (INT64_MAX - digit) / 10) return error("dimension too large");
      v = v * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) return error("expected a non-negative integer");
    consume('L');
    return v;
  }
  Result<HeaderValue> parse_value() {
    HeaderValue v;
    if (pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"')) {
      SEQRUN_ASSIGN(v.text, parse_string());
      v.kind = HeaderValue::Kind::String;
      return v;
    }
    if (consume_word("True")) {
      v.kind = HeaderValue::Kind::Bool;
      v.flag = true;
      return v;
    }
    if (consume_word("False")) {
      v.kind = HeaderValue::Kind::Bool;
      return v;
    }
    if (consume('(')) {
      v.kind = HeaderValue::Kind::IntTuple;
      while (true) {
        skip_space();
        if (consume(')')) break;
        SEQRUN_ASSIGN(int64_t d, parse_int());
        v.ints.push_back(d);
        skip_space();
        if (consume(',')) continue;
        skip_space();
        if (consume(')')) break;
        return error("expected ',' or ')' in the shape tuple");
      }
      return v;
    }
    if (pos_ < text_.size() && text_[pos_] == '[') {
      // A list descr: a structured (record) dtype. Keep the raw text for the message.
      size_t end = text_.find(']', pos_);
      v.text = text_.substr(pos_, end == std::string::npos ? std::string::npos : end - pos_ + 1);
      pos_ = end == std::string::npos ? text_.size() : end + 1;
      return v;
    }
    return error("unsupported value");
  }

  const std::string& text_;
  size_t pos_ = 0;
};

Result<DType> dtype_from_descr(const std::string& descr) {
  if (descr.size() >= 2 && (descr[1] == 'O' || descr == "O")) {
    return make_error("dtype '{}' is an object array (pickled Python objects), which is not supported",
                      descr);
  }
  if (descr.size() < 2) return make_error("unsupported dtype '{}' (supported: {})", descr, kSupportedDescrs);
  char order = descr[0];
  std::string rest = descr.substr(1);
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    order = '=';  // numpy also accepts descrs without a byte-order character, e.g. "f4"
    rest = descr;
  }
  if (rest.size() < 2) return make_error("unsupported dtype '{}' (supported: {})", descr, kSupportedDescrs);
  char kind = rest[0];
  int size = 0;
  for (size_t i = 1; i < rest.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(rest[i])) || size > 1000) {
      return make_error("unsupported dtype '{}' (supported: {})", descr, kSupportedDescrs);
    }
    size = size * 10 + (rest[i] - '0');
  }
  for (const DescrInfo& info : kDescrs) {
    if (info.kind != kind || info.size_bytes != size) continue;
    if (size > 1 && order == '>') {
      return make_error("dtype '{}' is big-endian, which is not supported (save it with arr.astype('<{}{}'))",
                        descr, kind, size);
    }
    if (size > 1 && order == '|') {
      return make_error("dtype '{}' has no byte order but elements of {} bytes", descr, size);
    }
    return info.dtype;
  }
  return make_error("unsupported dtype '{}' (supported: {})", descr, kSupportedDescrs);
}

std::optional<std::string> descr_for(DType dtype) {
  switch (dtype) {
    case DType::f16:
      return "<f2";
    case DType::f32:
      return "<f4";
    case DType::f64:
      return "<f8";
    case DType::i8:
      return "|i1";
    case DType::i16:
      return "<i2";
    case DType::i32:
      return "<i4";
    case DType::i64:
      return "<i8";
    case DType::u8:
      return "|u1";
    case DType::u16:
      return "<u2";
    case DType::u32:
      return "<u4";
    case DType::u64:
      return "<u8";
    case DType::boolean:
      return "|b1";
    default:
      return std::nullopt;
  }
}

// Python's repr of a shape tuple: "()", "(3,)", "(2, 3)".
std::string shape_repr(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

Result<Tensor> read_npy_impl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot open file: {}", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff file_end = in.tellg();
  in.seekg(0, std::ios::beg);
  if (file_end < 0) return make_error("cannot determine the file size");
  const uint64_t file_bytes = static_cast<uint64_t>(file_end);

  unsigned char prefix[kPrefixBytesV2] = {};
  if (file_bytes < kPrefixBytesV1) {
    return make_error("not a .npy file: {} bytes is shorter than the {}-byte preamble", file_bytes,
                      kPrefixBytesV1);
  }
  in.read(reinterpret_cast<char*>(prefix), kPrefixBytesV1);
  if (!in) return make_error("cannot read the preamble");
  if (std::memcmp(prefix, kNpyMagic, sizeof(kNpyMagic)) != 0) {
    return make_error("not a .npy file (missing the \\x93NUMPY magic)");
  }
  const int major = prefix[6];
  const int minor = prefix[7];
  uint64_t header_bytes = 0;
  size_t prefix_bytes = kPrefixBytesV1;
  if (major == 1) {
    header_bytes = static_cast<uint64_t>(prefix[8]) | (static_cast<uint64_t>(prefix[9]) << 8);
  } else if (major == 2 || major == 3) {
    prefix_bytes = kPrefixBytesV2;
    if (file_bytes < kPrefixBytesV2) return make_error("truncated preamble ({} bytes)", file_bytes);
    in.read(reinterpret_cast<char*>(prefix + kPrefixBytesV1), kPrefixBytesV2 - kPrefixBytesV1);
    if (!in) return make_error("cannot read the preamble");
    for (int i = 0; i < 4; ++i) header_bytes |= static_cast<uint64_t>(prefix[8 + i]) << (8 * i);
  } else {
    return make_error("unsupported .npy format version {}.{} (supported: 1.0, 2.0, 3.0)", major, minor);
  }
  if (header_bytes > kMaxHeaderBytes) {
    return make_error("header length {} bytes exceeds the {}-byte limit", header_bytes, kMaxHeaderBytes);
  }
  if (prefix_bytes + header_bytes > file_bytes) {
    return make_error("truncated header: it claims {} bytes but the file has only {} after the preamble",
                      header_bytes, file_bytes - prefix_bytes);
  }
  std::string header(static_cast<size_t>(header_bytes), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_bytes));
  if (!in) return make_error("cannot read the header");

  SEQRUN_ASSIGN(auto dict, HeaderParser(header).parse());
  for (const auto& [key, value] : dict) {
    if (key != "descr" && key != "fortran_order" && key != "shape") {
      return make_error("header has unexpected key '{}' (expected descr, fortran_order, shape)", key);
    }
  }
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    if (dict.count(key) == 0) return make_error("header lacks the '{}' key", key);
  }
  const HeaderValue& descr = dict["descr"];
  if (descr.kind != HeaderValue::Kind::String) {
    return make_error("structured dtype {} is not supported (one plain dtype per file)", descr.text);
  }
  SEQRUN_ASSIGN(DType dtype, dtype_from_descr(descr.text));
  const HeaderValue& fortran = dict["fortran_order"];
  if (fortran.kind != HeaderValue::Kind::Bool)
    return make_error("header 'fortran_order' must be True or False");
  if (fortran.flag) {
    return make_error(
        "the array is stored in Fortran (column-major) order, which is not supported "
        "(save np.ascontiguousarray(arr) instead)");
  }
  const HeaderValue& shape_value = dict["shape"];
  if (shape_value.kind != HeaderValue::Kind::IntTuple)
    return make_error("header 'shape' must be a tuple of integers");
  const Shape shape = shape_value.ints;

  const size_t elem_bytes = dtype_size(dtype);
  SEQRUN_ASSIGN(int64_t count, checked_num_elements(shape, elem_bytes));
  const uint64_t data_bytes = static_cast<uint64_t>(count) * elem_bytes;
  const uint64_t available = file_bytes - prefix_bytes - header_bytes;
  if (available != data_bytes) {
    return make_error("shape {} of '{}' needs {} data bytes, but the file has {} after the header ({})",
                      shape_repr(shape), descr.text, data_bytes, available,
                      available < data_bytes ? "truncated" : "trailing bytes");
  }

  Tensor tensor = Tensor::empty(dtype, shape);
  if (data_bytes > 0) {
    in.read(static_cast<char*>(tensor.raw()), static_cast<std::streamsize>(data_bytes));
    if (!in) return make_error("cannot read {} data bytes", data_bytes);
  }
  if (dtype == DType::boolean) {
    // numpy's bool is one byte 0/1; normalize anything else so kernels can rely on 0/1.
    uint8_t* p = tensor.data<uint8_t>();
    for (int64_t i = 0; i < count; ++i) p[i] = p[i] != 0 ? 1 : 0;
  }
  return tensor;
}

Status write_npy_impl(const std::string& path, const Tensor& tensor) {
  if (!tensor.defined()) return make_error("cannot write an undefined tensor");
  std::optional<std::string> descr = descr_for(tensor.dtype());
  if (!descr) {
    return make_error("dtype {} has no .npy equivalent (cast it to f32 first)", dtype_name(tensor.dtype()));
  }
  // The same dict text numpy writes (keys sorted, growth padding), so files match np.save byte for byte.
  std::string dict =
      "{'descr': '" + *descr + "', 'fortran_order': False, 'shape': " + shape_repr(tensor.shape()) + ", }";
  if (!tensor.shape().empty()) {
    size_t digits = std::to_string(tensor.shape()[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  // Like numpy: format 1.0 unless the padded header no longer fits its u16 length field.
  const size_t with_newline = dict.size() + 1;
  auto padding_for = [&](size_t prefix_bytes) {
    return kArrayAlignBytes - (prefix_bytes + with_newline) % kArrayAlignBytes;
  };
  const bool v1 = with_newline + padding_for(kPrefixBytesV1) <= 0xffff;
  const size_t pad = padding_for(v1 ? kPrefixBytesV1 : kPrefixBytesV2);
  const size_t header_bytes = with_newline + pad;

  std::string preamble(kNpyMagic, sizeof(kNpyMagic));
  preamble += static_cast<char>(v1 ? 1 : 2);
  preamble += '\0';
  for (size_t i = 0; i < (v1 ? 2u : 4u); ++i) preamble += static_cast<char>((header_bytes >> (8 * i)) & 0xff);
  std::string header = dict + std::string(pad, ' ') + "\n";

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error("cannot open for writing: {}", std::strerror(errno));
  out.write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  if (tensor.nbytes() > 0) {
    out.write(static_cast<const char*>(tensor.raw()), static_cast<std::streamsize>(tensor.nbytes()));
  }
  out.close();
  if (!out) return make_error("write failed: {}", std::strerror(errno));
  return Status::ok();
}

}  // namespace

Result<Tensor> read_npy(const std::string& path) {
  Result<Tensor> t = read_npy_impl(path);
  if (!t) return t.status().with_context(path);
  return t;
}

Status write_npy(const std::string& path, const Tensor& tensor) {
  return write_npy_impl(path, tensor).with_context(path);
}

}  // namespace seqrun::runtime
