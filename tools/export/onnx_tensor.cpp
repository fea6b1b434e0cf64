// ONNX TensorProto -> Tensor: dtype mapping, raw and typed data fields, external data files, and
// the reader for test_data_set_*/input_N.pb files. Every size is checked against the dims.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tools/export/onnx_import.h"
#include "tools/export/onnx_internal.h"

namespace seqrun::onnx_import {

namespace detail {

namespace fs = std::filesystem;

std::optional<DType> dtype_from_onnx(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT:
      return DType::f32;
    case onnx::TensorProto::UINT8:
      return DType::u8;
    case onnx::TensorProto::INT8:
      return DType::i8;
    case onnx::TensorProto::UINT16:
      return DType::u16;
    case onnx::TensorProto::INT16:
      return DType::i16;
    case onnx::TensorProto::INT32:
      return DType::i32;
    case onnx::TensorProto::INT64:
      return DType::i64;
    case onnx::TensorProto::BOOL:
      return DType::boolean;
    case onnx::TensorProto::FLOAT16:
      return DType::f16;
    case onnx::TensorProto::DOUBLE:
      return DType::f64;
    case onnx::TensorProto::UINT32:
      return DType::u32;
    case onnx::TensorProto::UINT64:
      return DType::u64;
    case onnx::TensorProto::BFLOAT16:
      return DType::bf16;
    default:
      return std::nullopt;
  }
}

int32_t onnx_from_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return onnx::TensorProto::FLOAT;
    case DType::u8:
      return onnx::TensorProto::UINT8;
    case DType::i8:
      return onnx::TensorProto::INT8;
    case DType::u16:
      return onnx::TensorProto::UINT16;
    case DType::i16:
      return onnx::TensorProto::INT16;
    case DType::i32:
      return onnx::TensorProto::INT32;
    case DType::i64:
      return onnx::TensorProto::INT64;
    case DType::boolean:
      return onnx::TensorProto::BOOL;
    case DType::f16:
      return onnx::TensorProto::FLOAT16;
    case DType::f64:
      return onnx::TensorProto::DOUBLE;
    case DType::u32:
      return onnx::TensorProto::UINT32;
    case DType::u64:
      return onnx::TensorProto::UINT64;
    case DType::bf16:
      return onnx::TensorProto::BFLOAT16;
    default:
      return onnx::TensorProto::UNDEFINED;
  }
}

std::string onnx_dtype_name(int32_t onnx_type) {
  // Names of the element types newer than ONNX 1.12's enum are spelled out here.
  static const char* const kNames[] = {
      "UNDEFINED",      "FLOAT",    "UINT8",        "INT8",           "UINT16",
      "INT16",          "INT32",    "INT64",        "STRING",         "BOOL",
      "FLOAT16",        "DOUBLE",   "UINT32",       "UINT64",         "COMPLEX64",
      "COMPLEX128",     "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
      "FLOAT8E5M2FNUZ", "UINT4",    "INT4",         "FLOAT4E2M1",     "FLOAT8E8M0",
      "UINT2",          "INT2"};
  if (onnx_type >= 0 && onnx_type < static_cast<int32_t>(sizeof(kNames) / sizeof(kNames[0]))) {
    return kNames[onnx_type];
  }
  return "element type " + std::to_string(onnx_type);
}

namespace {

Result<uint64_t> parse_u64(const std::string& key, const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return make_error("external data {} '{}' is not a non-negative integer", key, text);
  }
  return value;
}

struct ExternalSpan {
  std::string location;  // as written in the file, for messages
  fs::path path;
  uint64_t offset = 0;
};

// Validates a tensor's external data entry: the path stays inside `external_dir` (symbolic links
// included), the file exists and holds `nbytes` bytes at the offset. Nothing is allocated before
// this passes, so hostile dims cannot make the importer allocate more than the file holds.
Result<ExternalSpan> locate_external(const onnx::TensorProto& proto, const std::string& external_dir,
                                     uint64_t nbytes) {
  ExternalSpan span;
  std::optional<uint64_t> length;
  for (const auto& entry : proto.external_data()) {
    if (entry.key() == "location") {
      span.location = entry.value();
    } else if (entry.key() == "offset") {
      SEQRUN_ASSIGN(span.offset, parse_u64("offset", entry.value()));
    } else if (entry.key() == "length") {
      SEQRUN_ASSIGN(length, parse_u64("length", entry.value()));
    }
  }
  const std::string& location = span.location;
  if (location.empty()) return make_error("external data has no 'location'");
  if (external_dir.empty()) return make_error("external data '{}' is not allowed here", location);
  fs::path rel(location);
  fs::path normal = rel.lexically_normal();
  if (rel.is_absolute() || rel.has_root_name() || normal.empty() || *normal.begin() == "..") {
    return make_error("external data path '{}' leaves the model directory", location);
  }
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::path(external_dir), ec);
  if (ec) return make_error("external data directory '{}': {}", external_dir, ec.message());
  span.path = fs::weakly_canonical(dir / normal, ec);
  if (ec) return make_error("external data file '{}': {}", location, ec.message());
  auto mismatch = std::mismatch(dir.begin(), dir.end(), span.path.begin(), span.path.end());
  if (mismatch.first != dir.end()) {
    return make_error("external data path '{}' leaves the model directory", location);
  }
  if (!fs::is_regular_file(span.path, ec)) {
    return make_error("external data file '{}' does not exist", location);
  }
  uint64_t file_size = fs::file_size(span.path, ec);
  if (ec) return make_error("external data file '{}': {}", location, ec.message());
  if (length && *length != nbytes) {
    return make_error("external data '{}': length {} does not match the {} bytes the dims need", location,
                      *length, nbytes);
  }
  if (span.offset > file_size || file_size - span.offset < nbytes) {
    return make_error("external data '{}': offset {} + {} bytes exceeds file size {}", location, span.offset,
                      nbytes, file_size);
  }
  return span;
}

Status read_external(const ExternalSpan& span, void* dst, uint64_t nbytes) {
  std::ifstream in(span.path, std::ios::binary);
  if (!in) return make_error("external data file '{}' cannot be opened", span.location);
  in.seekg(static_cast<std::streamoff>(span.offset));
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(nbytes));
  if (!in || static_cast<uint64_t>(in.gcount()) != nbytes) {
    return make_error("external data file '{}': short read", span.location);
  }
  return Status::ok();
}

// The typed field that holds `dtype`'s values and its element count.
std::pair<const char*, int64_t> typed_field(const onnx::TensorProto& proto, DType dtype) {
  switch (dtype) {
    case DType::f32:
      return {"float_data", proto.float_data_size()};
    case DType::f64:
      return {"double_data", proto.double_data_size()};
    case DType::i64:
      return {"int64_data", proto.int64_data_size()};
    case DType::u32:
    case DType::u64:
      return {"uint64_data", proto.uint64_data_size()};
    default:
      return {"int32_data", proto.int32_data_size()};
  }
}

Status count_mismatch(const char* field, int64_t have, int64_t want, const Tensor& t) {
  return make_error("{} has {} values, dims {} need {}", field, have, shape_to_string(t.shape()), want);
}

// Copies a repeated typed field into `t`, converting each element with `convert`.
template <typename Dst, typename Field, typename Convert>
Status copy_field(const Field& field, const char* field_name, Tensor& t, Convert convert) {
  int64_t n = t.numel();
  if (static_cast<int64_t>(field.size()) != n) return count_mismatch(field_name, field.size(), n, t);
  Dst* out = t.data<Dst>();
  for (int64_t i = 0; i < n; ++i) out[i] = convert(field.Get(static_cast<int>(i)));
  return Status::ok();
}

template <typename T>
T same(T v) {
  return v;
}

Status copy_typed_fields(const onnx::TensorProto& proto, Tensor& t) {
  switch (t.dtype()) {
    case DType::f32:
      return copy_field<float>(proto.float_data(), "float_data", t, same<float>);
    case DType::f64:
      return copy_field<double>(proto.double_data(), "double_data", t, same<double>);
    case DType::i64:
      return copy_field<int64_t>(proto.int64_data(), "int64_data", t, same<int64_t>);
    case DType::i32:
      return copy_field<int32_t>(proto.int32_data(), "int32_data", t, same<int32_t>);
    case DType::i16:
      return copy_field<int16_t>(proto.int32_data(), "int32_data", t,
                                 [](int32_t v) { return static_cast<int16_t>(v); });
    case DType::i8:
      return copy_field<int8_t>(proto.int32_data(), "int32_data", t,
                                [](int32_t v) { return static_cast<int8_t>(v); });
    case DType::u8:
      return copy_field<uint8_t>(proto.int32_data(), "int32_data", t,
                                 [](int32_t v) { return static_cast<uint8_t>(v); });
    case DType::boolean:
      return copy_field<uint8_t>(proto.int32_data(), "int32_data", t,
                                 [](int32_t v) { return static_cast<uint8_t>(v != 0 ? 1 : 0); });
    case DType::u16:
    case DType::f16:
    case DType::bf16:  // the 16-bit patterns sit in the low bits of int32_data
      return copy_field<uint16_t>(proto.int32_data(), "int32_data", t,
                                  [](int32_t v) { return static_cast<uint16_t>(v & 0xffff); });
    case DType::u32:
      return copy_field<uint32_t>(proto.uint64_data(), "uint64_data", t,
                                  [](uint64_t v) { return static_cast<uint32_t>(v); });
    case DType::u64:
      return copy_field<uint64_t>(proto.uint64_data(), "uint64_data", t, same<uint64_t>);
    default:
      return make_error("no typed data field for dtype {}", dtype_name(t.dtype()));
  }
}

}  // namespace

Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto, const std::string& external_dir) {
  if (proto.has_segment()) return make_error("segmented tensors are not supported");
  std::optional<DType> dtype = dtype_from_onnx(proto.data_type());
  if (!dtype) return make_error("unsupported dtype {}", onnx_dtype_name(proto.data_type()));
  Shape shape(proto.dims().begin(), proto.dims().end());
  SEQRUN_ASSIGN(int64_t count, checked_num_elements(shape, dtype_size(*dtype)));
  uint64_t nbytes = static_cast<uint64_t>(count) * dtype_size(*dtype);
  // Every size is checked before the tensor is allocated.
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    SEQRUN_ASSIGN(ExternalSpan span, locate_external(proto, external_dir, nbytes));
    Tensor t = Tensor::empty(*dtype, shape);
    SEQRUN_TRY(read_external(span, t.raw(), nbytes));
    return t;
  }
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != nbytes) {
      return make_error("raw_data has {} bytes, dims {} of {} need {}", proto.raw_data().size(),
                        shape_to_string(shape), dtype_name(*dtype), nbytes);
    }
    Tensor t = Tensor::empty(*dtype, shape);
    if (nbytes > 0) std::memcpy(t.raw(), proto.raw_data().data(), nbytes);
    if (*dtype == DType::boolean) {
      uint8_t* b = t.data<uint8_t>();
      for (int64_t i = 0; i < count; ++i) b[i] = b[i] != 0 ? 1 : 0;
    }
    return t;
  }
  auto [field_name, field_count] = typed_field(proto, *dtype);
  if (field_count != count) {
    return make_error("{} has {} values, dims {} need {}", field_name, field_count, shape_to_string(shape),
                      count);
  }
  Tensor t = Tensor::empty(*dtype, shape);
  SEQRUN_TRY(copy_typed_fields(proto, t));
  return t;
}

}  // namespace detail

Result<Tensor> read_tensor_proto_file(const std::string& path, std::string* name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open file", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  onnx::TensorProto proto;
  if (!proto.ParseFromString(buffer.str())) return make_error("{}: not a serialized ONNX TensorProto", path);
  if (proto.data_type() == onnx::TensorProto::UNDEFINED) {
    return make_error("{}: not a serialized ONNX TensorProto (no data type)", path);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  auto tensor = detail::tensor_from_proto(proto, dir.empty() ? "." : dir);
  if (!tensor) return tensor.status().with_context(path);
  if (name != nullptr) *name = proto.name();
  return tensor;
}

}  // namespace seqrun::onnx_import
