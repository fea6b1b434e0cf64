// Reads rwkv.cpp model files record by record, checking every size against the bytes left in the file.
#include "models/rwkv/rwkv_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "ir/dtype.h"

namespace seqrun::models::rwkv {
namespace {

constexpr uint32_t kTypeFp32 = 0;
constexpr uint32_t kTypeFp16 = 1;
constexpr uint32_t kTypeCount = 10;

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};

// Sequential reads that know how many bytes remain; a short read is an error, not garbage.
class Reader {
 public:
  Reader(std::FILE* file, uint64_t size) : file_(file), size_(size) {}
  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return size_ - offset_; }
  bool read(void* dst, uint64_t bytes) {
    if (bytes > remaining()) return false;
    if (bytes > 0 && std::fread(dst, 1, static_cast<size_t>(bytes), file_) != bytes) return false;
    offset_ += bytes;
    return true;
  }
  bool read_u32(uint32_t& v) {
    unsigned char b[4];
    if (!read(b, 4)) return false;
    v = static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 | static_cast<uint32_t>(b[2]) << 16 |
        static_cast<uint32_t>(b[3]) << 24;
    return true;
  }
  bool read_i32(int32_t& v) {
    uint32_t u = 0;
    if (!read_u32(u)) return false;
    std::memcpy(&v, &u, 4);
    return true;
  }

 private:
  std::FILE* file_;
  uint64_t size_;
  uint64_t offset_ = 0;
};

bool little_endian_host() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

Status check_header(const std::string& path, const RwkvHeader& h) {
  if (h.version < kRwkvFileVersionMin || h.version > kRwkvFileVersionMax) {
    return make_error("{}: unsupported rwkv.cpp file version {} (supported: {}..{})", path, h.version,
                      kRwkvFileVersionMin, kRwkvFileVersionMax);
  }
  if (h.n_vocab == 0 || h.n_vocab > kMaxVocab) {
    return make_error("{}: header n_vocab {} is out of range [1, {}]", path, h.n_vocab, kMaxVocab);
  }
  if (h.n_embed == 0 || h.n_embed > kMaxEmbed) {
    return make_error("{}: header n_embed {} is out of range [1, {}]", path, h.n_embed, kMaxEmbed);
  }
  if (h.n_layer == 0 || h.n_layer > kMaxLayers) {
    return make_error("{}: header n_layer {} is out of range [1, {}]", path, h.n_layer, kMaxLayers);
  }
  if (h.data_type >= kTypeCount) {
    return make_error("{}: header data type {} is out of range [0, {}]", path, h.data_type, kTypeCount - 1);
  }
  if (h.data_type != kTypeFp32 && h.data_type != kTypeFp16) {
    return make_error("{}: {} files are not supported (only FP32 and FP16 rwkv.cpp files)", path,
                      rwkv_type_name(h.data_type));
  }
  return Status::ok();
}

// One tensor record at the reader's position; `index` counts records for errors before the key is known.
Status read_tensor(const std::string& path, Reader& in, size_t index, RwkvTensor& out) {
  const uint64_t record_offset = in.offset();
  const std::string where = fmt::format("{}: tensor #{} at offset {}", path, index, record_offset);
  int32_t dim_count = 0, key_length = 0, data_type = 0;
  if (!in.read_i32(dim_count) || !in.read_i32(key_length) || !in.read_i32(data_type)) {
    return make_error("{}: truncated tensor header ({} bytes left)", where, in.remaining());
  }
  if (dim_count < 1 || dim_count > 3)
    return make_error("{}: dim count {} is not 1, 2 or 3", where, dim_count);
  if (key_length < 1 || key_length > kMaxKeyLength) {
    return make_error("{}: key length {} is out of range [1, {}]", where, key_length, kMaxKeyLength);
  }
  if (data_type < 0 || static_cast<uint32_t>(data_type) >= kTypeCount) {
    return make_error("{}: data type {} is out of range [0, {}]", where, data_type, kTypeCount - 1);
  }
  int32_t dims[3] = {1, 1, 1};
  for (int d = 0; d < dim_count; ++d) {
    if (!in.read_i32(dims[d])) return make_error("{}: truncated dims ({} bytes left)", where, in.remaining());
  }
  if (static_cast<uint64_t>(key_length) > in.remaining()) {
    return make_error("{}: key length {} runs past the end of the file ({} bytes left)", where, key_length,
                      in.remaining());
  }
  std::string name(static_cast<size_t>(key_length), '\0');
  if (!in.read(name.data(), static_cast<uint64_t>(key_length))) {
    return make_error("{}: could not read the {}-byte key", where, key_length);
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      return make_error("{}: key contains a non-printable byte", where);
    }
  }
  const std::string tensor_where = fmt::format("{}: tensor '{}'", path, name);
  if (data_type != static_cast<int32_t>(kTypeFp32) && data_type != static_cast<int32_t>(kTypeFp16)) {
    return make_error("{}: data type {} is not supported (only FP32 and FP16)", tensor_where,
                      rwkv_type_name(static_cast<uint32_t>(data_type)));
  }
  Shape shape;  // outermost first
  for (int d = dim_count - 1; d >= 0; --d) {
    if (dims[d] < 1) return make_error("{}: dim {} is {} (must be >= 1)", tensor_where, d, dims[d]);
    shape.push_back(dims[d]);
  }
  const size_t elem_bytes = data_type == static_cast<int32_t>(kTypeFp32) ? 4 : 2;
  auto count = checked_num_elements(shape, elem_bytes);
  if (!count) return make_error("{}: shape {} is too large", tensor_where, shape_to_string(shape));
  const uint64_t data_bytes = static_cast<uint64_t>(count.value()) * elem_bytes;
  if (data_bytes > in.remaining()) {
    return make_error("{}: {} bytes of data (shape {}) run past the end of the file ({} bytes left)",
                      tensor_where, data_bytes, shape_to_string(shape), in.remaining());
  }
  Tensor value = Tensor::empty(DType::f32, shape);
  if (data_type == static_cast<int32_t>(kTypeFp32)) {
    if (!in.read(value.raw(), data_bytes)) return make_error("{}: could not read its data", tensor_where);
    if (!little_endian_host()) {
      auto* bytes = static_cast<unsigned char*>(value.raw());
      for (uint64_t i = 0; i < data_bytes; i += 4) {
        std::swap(bytes[i], bytes[i + 3]);
        std::swap(bytes[i + 1], bytes[i + 2]);
      }
    }
  } else {
    std::vector<unsigned char> halves(static_cast<size_t>(data_bytes));
    if (!in.read(halves.data(), data_bytes)) return make_error("{}: could not read its data", tensor_where);
    float* dst = value.data<float>();
    for (int64_t i = 0; i < count.value(); ++i) {
      const uint16_t h = static_cast<uint16_t>(halves[2 * i] | halves[2 * i + 1] << 8);
      dst[i] = f16_to_f32(h);
    }
  }
  out.name = std::move(name);
  out.value = std::move(value);
  return Status::ok();
}

}  // namespace

const Tensor* RwkvFile::find(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &tensors[it->second].value;
}

const char* rwkv_type_name(uint32_t data_type) {
  static const char* kNames[kTypeCount] = {"FP32", "FP16", "Q4_0", "Q4_1", "Q4_1_O",
                                           "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0"};
  return data_type < kTypeCount ? kNames[data_type] : "unknown";
}

Result<RwkvFile> read_rwkv_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return make_error("{}: cannot open: {}", path, std::strerror(errno));
  if (std::fseek(file.get(), 0, SEEK_END) != 0) return make_error("{}: cannot seek", path);
  const long end = std::ftell(file.get());
  if (end < 0) return make_error("{}: cannot determine the file size", path);
  std::rewind(file.get());
  Reader in(file.get(), static_cast<uint64_t>(end));

  RwkvFile result;
  result.path = path;
  uint32_t magic = 0;
  RwkvHeader& h = result.header;
  if (!in.read_u32(magic) || !in.read_u32(h.version) || !in.read_u32(h.n_vocab) || !in.read_u32(h.n_embed) ||
      !in.read_u32(h.n_layer) || !in.read_u32(h.data_type)) {
    return make_error("{}: truncated header ({} bytes, the header has 24)", path, end);
  }
  if (magic != kRwkvFileMagic) {
    return make_error("{}: bad magic 0x{:08x} (an rwkv.cpp file starts with 0x{:08x} 'ggmf')", path, magic,
                      kRwkvFileMagic);
  }
  SEQRUN_TRY(check_header(path, h));
  while (in.remaining() > 0) {
    RwkvTensor t;
    SEQRUN_TRY(read_tensor(path, in, result.tensors.size(), t));
    if (!result.by_name.emplace(t.name, result.tensors.size()).second) {
      return make_error("{}: tensor '{}' appears twice", path, t.name);
    }
    result.tensors.push_back(std::move(t));
  }
  if (result.tensors.empty()) return make_error("{}: the file holds no tensors", path);
  return result;
}

}  // namespace seqrun::models::rwkv
