// Reader of rwkv.cpp model files ("ggmf", file versions 100 and 101): the header and every tensor.
//
// Layout (little-endian): six uint32 `magic 0x67676d66, version, n_vocab, n_embed, n_layer,
// data_type`, then until the end of the file one record per tensor: int32 `dim_count, key_length,
// data_type`, int32 dims[dim_count] (innermost first), the key bytes, the raw data.
//
// The reader trusts nothing in the file: it checks the magic, the version, the header sizes against
// sane limits, every record's dim count, dims, key length, data type and data size against the bytes
// left in the file, and rejects duplicate keys. Every error is one line naming the file (and the
// tensor, when one is at fault); a truncated or hostile file is an error, never a crash. FP32 and
// FP16 tensors are read (FP16 converted to f32); rwkv.cpp's quantized types are reported as
// unsupported. What the tensors mean, and whether the set is complete, is the builder's business
// (models/rwkv/rwkv_builder.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::models::rwkv {

constexpr uint32_t kRwkvFileMagic = 0x67676d66;  // "ggmf"
constexpr uint32_t kRwkvFileVersionMin = 100;
constexpr uint32_t kRwkvFileVersionMax = 101;

// Limits that no real RWKV model comes near; a header beyond them is a damaged or hostile file.
constexpr uint32_t kMaxVocab = 1u << 24;
constexpr uint32_t kMaxEmbed = 1u << 16;
constexpr uint32_t kMaxLayers = 1u << 12;
constexpr int32_t kMaxKeyLength = 1024;

struct RwkvHeader {
  uint32_t version = 0;
  uint32_t n_vocab = 0;
  uint32_t n_embed = 0;
  uint32_t n_layer = 0;
  uint32_t data_type = 0;  // the file's main tensor type (0 FP32, 1 FP16, others quantized)
};

struct RwkvTensor {
  std::string name;
  Tensor value;  // f32; shape outermost first (the file's dims reversed), like the PyTorch tensor
};

struct RwkvFile {
  std::string path;
  RwkvHeader header;
  std::vector<RwkvTensor> tensors;        // in file order
  std::map<std::string, size_t> by_name;  // key -> index into tensors

  // The tensor with this key, or null.
  const Tensor* find(const std::string& name) const;
};

// The name of an rwkv.cpp data type number ("FP32", "Q5_1", ... or "unknown").
const char* rwkv_type_name(uint32_t data_type);

// Reads and checks the whole file; errors read "PATH: ...".
Result<RwkvFile> read_rwkv_file(const std::string& path);

}  // namespace seqrun::models::rwkv
