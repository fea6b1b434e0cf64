// Reading safetensors checkpoints: single files, and folders of shards tied together by
// model.safetensors.index.json.
//
// A safetensors file is `u64 little-endian N | N bytes of JSON header | data`. The header maps each tensor
// name to {dtype, shape, data_offsets: [begin, end)} (offsets relative to the data section) plus an
// optional "__metadata__" object of strings. Nothing in the file is trusted: the header length is
// checked against the file size, the JSON must parse and have exactly that form (no duplicate names),
// every dtype must be known, every tensor's byte count must equal its shape times its element size and lie
// inside the data section, and no two tensors may overlap. Every error names the file and, where there
// is one, the tensor.
//
// Files are memory-mapped. A tensor's `data` is a zero-copy view into the mapping (kept alive by the
// tensor) when its bytes are aligned for its dtype, and an owned copy otherwise; either way it has the
// stored dtype. `Checkpoint::f32` converts f16 / bf16 / f64 weights to f32 and hands f32 ones out as is.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::models {

// Header lengths above this are rejected before parsing (the reference implementation's limit).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::undefined;
  Shape shape;
  uint64_t data_begin = 0;  // offsets into the data section, as the header gives them
  uint64_t data_end = 0;
  Tensor data;  // stored dtype and shape
};

struct SafetensorsFile {
  std::string path;                             // as given (used in error messages)
  std::map<std::string, std::string> metadata;  // the header's "__metadata__"
  std::vector<SafetensorsTensor> tensors;       // in data-offset order
};

// "F32" -> f32, ...; nullopt for names seqrun does not read (F8_E4M3, ...).
std::optional<DType> safetensors_dtype(const std::string& name);

// Maps and validates one file.
Result<SafetensorsFile> read_safetensors(const std::string& path);
// Validates `size` bytes at `data` that `keepalive` keeps alive (tests, fuzzing); `path` names them in
// errors.
Result<SafetensorsFile> parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                                          std::shared_ptr<const void> keepalive);

// The tensors of one checkpoint, possibly spread over several files, by name.
class Checkpoint {
 public:
  // A folder: model.safetensors.index.json when present, else model.safetensors, else every *.safetensors
  // file in it (sorted by name). A name held by two files is an error.
  static Result<Checkpoint> open_dir(const std::string& dir);
  // A shard index {"metadata": {...}, "weight_map": {tensor: file}}. Shard names must be plain relative
  // paths that stay inside the index's folder (no "..", no absolute paths, no symlink escaping it); every
  // mapped tensor must be in the shard the map names.
  static Result<Checkpoint> open_index(const std::string& index_path);
  static Result<Checkpoint> from_files(std::vector<SafetensorsFile> files);

  const std::vector<SafetensorsFile>& files() const { return files_; }
  // Null when absent.
  const SafetensorsTensor* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;  // sorted
  // "DIR/model-00001-of-00002.safetensors: tensor 'name'" (or the first file, for an absent tensor).
  std::string describe(const std::string& name) const;
  // The tensor converted to f32 (f16, bf16, f64 are converted; an f32 tensor is returned as is, usually a
  // zero-copy view). Errors: absent tensor, a non-float dtype, a shape other than `expected_shape`.
  Result<Tensor> f32(const std::string& name, const Shape& expected_shape) const;
  // The dtype most tensors are stored in ("f32", "f16", "bf16"; "" for an empty checkpoint).
  std::string dominant_dtype() const;

 private:
  struct Location {
    size_t file;
    size_t tensor;
  };
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Location> by_name_;
};

}  // namespace seqrun::models
