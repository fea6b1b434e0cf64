// Safetensors reading: header validation, memory mapping, shard indexes (interface: models/safetensors.h).
#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace seqrun::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kLengthBytes = 8;
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";
constexpr uint64_t kMaxIndexBytes = 64ull << 20;

bool host_is_little_endian() {
  const uint16_t probe = 1;
  uint8_t first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A short, printable excerpt of a JSON value for error messages.
std::string excerpt(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Parses JSON text; `duplicate` receives the first key that appears twice in the top-level object.
Result<json> parse_json_object(const char* begin, const char* end, const std::string& what,
                               std::string* duplicate) {
  std::set<std::string> seen;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate != nullptr && duplicate->empty()) *duplicate = key;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(begin, end, callback);
  } catch (const json::exception& e) {
    return make_error("{}: invalid JSON: {}", what, e.what());
  }
  if (!root.is_object()) return make_error("{}: must be a JSON object, is {}", what, root.type_name());
  return root;
}

Result<Shape> parse_shape(const json& v, const std::string& path, const std::string& name) {
  if (!v.is_array()) {
    return make_error("{}: tensor '{}': 'shape' must be a list of sizes, got {}", path, name, excerpt(v));
  }
  Shape shape;
  for (const json& d : v) {
    if (!d.is_number_unsigned()) {
      return make_error("{}: tensor '{}': 'shape' must hold non-negative integers, got {}", path, name,
                        excerpt(v));
    }
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(INT64_MAX)) {
      return make_error("{}: tensor '{}': dimension {} is too large", path, name, dim);
    }
    shape.push_back(static_cast<int64_t>(dim));
  }
  return shape;
}

Status parse_metadata(const json& v, const std::string& path, std::map<std::string, std::string>& out) {
  if (!v.is_object()) {
    return make_error("{}: '__metadata__' must be an object of strings, got {}", path, excerpt(v));
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string()) {
      return make_error("{}: '__metadata__' entry '{}' must be a string, got {}", path, it.key(),
                        excerpt(it.value()));
    }
    out[it.key()] = it.value().get<std::string>();
  }
  return Status::ok();
}

// One header entry {dtype, shape, data_offsets}; checks its byte count against dtype and shape.
Result<SafetensorsTensor> parse_entry(const std::string& name, const json& v, uint64_t data_bytes,
                                      const std::string& path) {
  if (name.empty()) return make_error("{}: a tensor has an empty name", path);
  if (!v.is_object())
    return make_error("{}: tensor '{}': entry must be an object, got {}", path, name, excerpt(v));
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets") {
      return make_error("{}: tensor '{}': unexpected field '{}'", path, name, it.key());
    }
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(field)) return make_error("{}: tensor '{}': missing '{}'", path, name, field);
  }
  SafetensorsTensor t;
  t.name = name;
  const json& dtype = v["dtype"];
  if (!dtype.is_string()) return make_error("{}: tensor '{}': 'dtype' must be a string", path, name);
  auto dt = safetensors_dtype(dtype.get<std::string>());
  if (!dt) {
    return make_error(
        "{}: tensor '{}': unsupported dtype '{}' (seqrun reads F64 F32 F16 BF16 I64 I32 I16 I8 "
        "U64 U32 U16 U8 BOOL)",
        path, name, dtype.get<std::string>());
  }
  t.dtype = *dt;
  SEQRUN_ASSIGN(t.shape, parse_shape(v["shape"], path, name));
  const json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return make_error(
        "{}: tensor '{}': 'data_offsets' must be [begin, end] with non-negative integers, got {}", path, name,
        excerpt(offsets));
  }
  t.data_begin = offsets[0].get<uint64_t>();
  t.data_end = offsets[1].get<uint64_t>();
  if (t.data_begin > t.data_end) {
    return make_error("{}: tensor '{}': data_offsets [{}, {}) end before they begin", path, name,
                      t.data_begin, t.data_end);
  }
  if (t.data_end > data_bytes) {
    return make_error("{}: tensor '{}': data_offsets [{}, {}) exceed the {}-byte data section", path, name,
                      t.data_begin, t.data_end, data_bytes);
  }
  auto count = checked_num_elements(t.shape, dtype_size(t.dtype));
  if (!count) {
    return make_error("{}: tensor '{}': shape {}: {}", path, name, shape_to_string(t.shape),
                      count.status().message());
  }
  const uint64_t expected = static_cast<uint64_t>(count.value()) * dtype_size(t.dtype);
  if (t.data_end - t.data_begin != expected) {
    return make_error("{}: tensor '{}': {} {} needs {} bytes, data_offsets [{}, {}) hold {}", path, name,
                      dtype.get<std::string>(), shape_to_string(t.shape), expected, t.data_begin, t.data_end,
                      t.data_end - t.data_begin);
  }
  return t;
}

// Maps a whole file read-only; the returned pointer keeps the mapping alive.
Result<std::shared_ptr<const void>> map_file(const std::string& path, size_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("{}: not a regular file", path);
  }
  const size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes < kLengthBytes) {
    ::close(fd);
    return make_error("{}: file is {} bytes, shorter than the 8-byte header length", path, bytes);
  }
  void* base = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (base == MAP_FAILED) return make_error("{}: cannot map: {}", path, std::strerror(map_errno));
  *size = bytes;
  return std::shared_ptr<const void>(base, [bytes](const void* p) { ::munmap(const_cast<void*>(p), bytes); });
}

Result<std::string> read_text_file(const std::string& path, uint64_t limit) {
  std::error_code ec;
  const uint64_t bytes = fs::file_size(path, ec);
  if (ec) return make_error("{}: cannot read: {}", path, ec.message());
  if (bytes > limit)
    return make_error("{}: file is {} bytes, more than the {} an index may have", path, bytes, limit);
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True when `inner` (canonical) is `outer` (canonical) or below it.
bool path_is_inside(const fs::path& inner, const fs::path& outer) {
  auto mismatch = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return mismatch.first == outer.end();
}

// A shard file name from an index: a plain relative path that stays inside `dir`, also after symlinks.
Result<std::string> resolve_shard(const fs::path& dir, const std::string& shard,
                                  const std::string& index_path, const std::string& tensor) {
  const fs::path rel(shard);
  if (shard.empty() || rel.is_absolute() || shard.find('\\') != std::string::npos ||
      shard.find('\0') != std::string::npos) {
    return make_error("{}: tensor '{}' maps to '{}', which is not a file name relative to the index's folder",
                      index_path, tensor, shard);
  }
  for (const fs::path& part : rel) {
    if (part == "..") {
      return make_error("{}: tensor '{}' maps to '{}', which leaves the index's folder", index_path, tensor,
                        shard);
    }
  }
  std::error_code ec;
  const fs::path base = fs::canonical(dir, ec);
  if (ec) return make_error("{}: cannot resolve folder '{}': {}", index_path, dir.string(), ec.message());
  const fs::path full = fs::weakly_canonical(base / rel, ec);
  if (ec || !path_is_inside(full, base)) {
    return make_error("{}: tensor '{}' maps to '{}', which leaves the index's folder", index_path, tensor,
                      shard);
  }
  return (dir / rel).string();
}

}  // namespace

std::optional<DType> safetensors_dtype(const std::string& name) {
  static const std::map<std::string, DType> kNames = {
      {"F64", DType::f64},     {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16},
      {"I64", DType::i64},     {"I32", DType::i32}, {"I16", DType::i16}, {"I8", DType::i8},
      {"U64", DType::u64},     {"U32", DType::u32}, {"U16", DType::u16}, {"U8", DType::u8},
      {"BOOL", DType::boolean}};
  auto it = kNames.find(name);
  if (it == kNames.end()) return std::nullopt;
  return it->second;
}

Result<SafetensorsFile> parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                                          std::shared_ptr<const void> keepalive) {
  if (!host_is_little_endian()) return make_error("{}: safetensors needs a little-endian host", path);
  if (size < kLengthBytes) {
    return make_error("{}: file is {} bytes, shorter than the 8-byte header length", path, size);
  }
  const uint64_t header_bytes = read_u64_le(data);
  if (header_bytes > size - kLengthBytes) {
    return make_error("{}: header length {} exceeds the {} bytes after the length field", path, header_bytes,
                      size - kLengthBytes);
  }
  if (header_bytes > kMaxSafetensorsHeaderBytes) {
    return make_error("{}: header length {} is over the {}-byte limit", path, header_bytes,
                      kMaxSafetensorsHeaderBytes);
  }
  if (header_bytes < 2 || data[kLengthBytes] != '{') {
    return make_error("{}: header does not start with a JSON object", path);
  }
  const char* header_begin = reinterpret_cast<const char*>(data + kLengthBytes);
  std::string duplicate;
  SEQRUN_ASSIGN(json header,
                parse_json_object(header_begin, header_begin + header_bytes, path + ": header", &duplicate));
  if (!duplicate.empty()) return make_error("{}: header names tensor '{}' twice", path, duplicate);

  SafetensorsFile file;
  file.path = path;
  const uint64_t data_start = kLengthBytes + header_bytes;
  const uint64_t data_bytes = size - data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey) {
      SEQRUN_TRY(parse_metadata(it.value(), path, file.metadata));
      continue;
    }
    SEQRUN_ASSIGN(SafetensorsTensor t, parse_entry(it.key(), it.value(), data_bytes, path));
    file.tensors.push_back(std::move(t));
  }
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.data_begin != b.data_begin ? a.data_begin < b.data_begin : a.data_end < b.data_end;
            });
  // Sorted by begin, two byte ranges overlap exactly when one begins before its predecessor ends. Empty
  // tensors own no bytes and never overlap.
  const SafetensorsTensor* last = nullptr;
  for (const SafetensorsTensor& t : file.tensors) {
    if (t.data_begin == t.data_end) continue;
    if (last != nullptr && t.data_begin < last->data_end) {
      return make_error("{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", path, last->name,
                        last->data_begin, last->data_end, t.name, t.data_begin, t.data_end);
    }
    last = &t;
  }
  for (SafetensorsTensor& t : file.tensors) {
    const uint8_t* bytes = data + data_start + t.data_begin;
    const size_t elem = dtype_size(t.dtype);
    if (reinterpret_cast<uintptr_t>(bytes) % elem == 0) {
      t.data = Tensor::view(t.dtype, t.shape, const_cast<uint8_t*>(bytes), keepalive);
    } else {  // misaligned for its dtype: an owned, aligned copy
      t.data = Tensor::empty(t.dtype, t.shape);
      if (t.data_end > t.data_begin) std::memcpy(t.data.raw(), bytes, t.data_end - t.data_begin);
    }
  }
  return file;
}

Result<SafetensorsFile> read_safetensors(const std::string& path) {
  size_t size = 0;
  SEQRUN_ASSIGN(std::shared_ptr<const void> mapping, map_file(path, &size));
  return parse_safetensors(static_cast<const uint8_t*>(mapping.get()), size, path, mapping);
}

// ---- Checkpoint -------------------------------------------------------------------------------------

Result<Checkpoint> Checkpoint::from_files(std::vector<SafetensorsFile> files) {
  Checkpoint c;
  c.files_ = std::move(files);
  for (size_t f = 0; f < c.files_.size(); ++f) {
    for (size_t t = 0; t < c.files_[f].tensors.size(); ++t) {
      const std::string& name = c.files_[f].tensors[t].name;
      auto [it, inserted] = c.by_name_.emplace(name, Location{f, t});
      if (!inserted) {
        return make_error("{}: tensor '{}' is also in {}", c.files_[f].path, name,
                          c.files_[it->second.file].path);
      }
    }
  }
  return c;
}

Result<Checkpoint> Checkpoint::open_index(const std::string& index_path) {
  SEQRUN_ASSIGN(std::string text, read_text_file(index_path, kMaxIndexBytes));
  SEQRUN_ASSIGN(json index, parse_json_object(text.data(), text.data() + text.size(), index_path, nullptr));
  if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
    return make_error("{}: needs a 'weight_map' object of tensor name -> shard file", index_path);
  }
  const fs::path dir =
      fs::path(index_path).parent_path().empty() ? fs::path(".") : fs::path(index_path).parent_path();
  std::map<std::string, std::string> shard_of;  // tensor -> resolved shard path
  std::vector<std::string> shard_order;         // resolved paths, first-mention order
  std::set<std::string> shards_seen;
  const json& weight_map = index["weight_map"];
  if (weight_map.empty()) return make_error("{}: 'weight_map' is empty", index_path);
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    if (!it.value().is_string()) {
      return make_error("{}: tensor '{}' must map to a file name, got {}", index_path, it.key(),
                        excerpt(it.value()));
    }
    SEQRUN_ASSIGN(std::string shard, resolve_shard(dir, it.value().get<std::string>(), index_path, it.key()));
    shard_of[it.key()] = shard;
    if (shards_seen.insert(shard).second) shard_order.push_back(shard);
  }
  std::vector<SafetensorsFile> files;
  for (const std::string& shard : shard_order) {
    auto file = read_safetensors(shard);
    if (!file) return file.status().with_context(index_path);
    files.push_back(std::move(file).value());
  }
  SEQRUN_ASSIGN(Checkpoint c, from_files(std::move(files)));
  for (const auto& [tensor, shard] : shard_of) {
    auto it = c.by_name_.find(tensor);
    if (it == c.by_name_.end() || c.files_[it->second.file].path != shard) {
      return make_error("{}: tensor '{}' is mapped to {}, which does not hold it", index_path, tensor, shard);
    }
  }
  return c;
}

Result<Checkpoint> Checkpoint::open_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error("{}: not a folder", dir);
  const fs::path base(dir);
  if (fs::exists(base / kIndexFile, ec)) return open_index((base / kIndexFile).string());
  std::vector<std::string> paths;
  if (fs::exists(base / kSingleFile, ec)) {
    paths.push_back((base / kSingleFile).string());
  } else {
    for (const fs::directory_entry& e : fs::directory_iterator(base, ec)) {
      if (e.path().extension() == ".safetensors") paths.push_back(e.path().string());
    }
    if (ec) return make_error("{}: cannot list: {}", dir, ec.message());
    std::sort(paths.begin(), paths.end());
  }
  if (paths.empty()) {
    return make_error("{}: no {}, {} or *.safetensors file", dir, kIndexFile, kSingleFile);
  }
  std::vector<SafetensorsFile> files;
  for (const std::string& p : paths) {
    SEQRUN_ASSIGN(SafetensorsFile f, read_safetensors(p));
    files.push_back(std::move(f));
  }
  return from_files(std::move(files));
}

const SafetensorsTensor* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  return &files_[it->second.file].tensors[it->second.tensor];
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& entry : by_name_) out.push_back(entry.first);
  return out;
}

std::string Checkpoint::describe(const std::string& name) const {
  auto it = by_name_.find(name);
  std::string file = it != by_name_.end() ? files_[it->second.file].path
                     : files_.empty()     ? std::string("checkpoint")
                     : files_.size() == 1 ? files_[0].path
                                          : fs::path(files_[0].path).parent_path().string();
  return fmt::format("{}: tensor '{}'", file, name);
}

Result<Tensor> Checkpoint::f32(const std::string& name, const Shape& expected_shape) const {
  const SafetensorsTensor* t = find(name);
  if (t == nullptr) return make_error("{}: missing", describe(name));
  if (t->shape != expected_shape) {
    return make_error("{}: has shape {}, expected {}", describe(name), shape_to_string(t->shape),
                      shape_to_string(expected_shape));
  }
  const int64_t n = t->data.numel();
  switch (t->dtype) {
    case DType::f32:
      return t->data;
    case DType::f16: {
      Tensor out = Tensor::empty(DType::f32, t->shape);
      const uint16_t* src = static_cast<const uint16_t*>(t->data.raw());
      float* dst = out.data<float>();
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
      return out;
    }
    case DType::bf16: {
      Tensor out = Tensor::empty(DType::f32, t->shape);
      const uint16_t* src = static_cast<const uint16_t*>(t->data.raw());
      float* dst = out.data<float>();
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
      return out;
    }
    case DType::f64:
      return t->data.cast(DType::f32);
    default:
      return make_error("{}: has dtype {}, expected a float weight (f32, f16, bf16, f64)", describe(name),
                        dtype_name(t->dtype));
  }
}

std::string Checkpoint::dominant_dtype() const {
  std::map<DType, uint64_t> bytes;
  for (const SafetensorsFile& f : files_) {
    for (const SafetensorsTensor& t : f.tensors) bytes[t.dtype] += t.data_end - t.data_begin;
  }
  DType best = DType::undefined;
  uint64_t most = 0;
  for (const auto& [dt, b] : bytes) {
    if (b > most || best == DType::undefined) {
      best = dt;
      most = b;
    }
  }
  return best == DType::undefined ? std::string() : std::string(dtype_name(best));
}

}  // namespace seqrun::models
