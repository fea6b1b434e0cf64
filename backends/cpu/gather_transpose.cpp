// Gather (embedding rows and any axis) and Transpose (cache-blocked), any element type, OpenMP.
//
// Gather copies, for each outer position and index, one contiguous block of the data (a whole
// embedding row for axis 0). Indices are checked in one pass before anything is written: an index
// outside [-size, size) is an error naming the node. Transpose collapses the permutation (merging
// input dims that stay adjacent and in order), then either copies contiguous runs (the innermost
// output dim is also innermost in the input: StridedCopy) or moves 32 x 32 tiles between the two
// innermost dims, as 8 x 8 AVX register transposes for 4-byte types (contiguous loads and stores
// only: a strided scalar walk hit 7 GB/s on [1024, 4096] because its power-of-two stride thrashes
// one L1 set). Both memory-bound.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/strided_copy.h"

namespace seqrun::backends::cpu {
namespace {

class GatherKernel : public Kernel {
 public:
  GatherKernel(const Node* node, int64_t outer, int64_t axis_size, int64_t block_bytes, int64_t indices,
               DType index_dtype)
      : node_(node),
        outer_(outer),
        axis_size_(axis_size),
        block_bytes_(block_bytes),
        indices_(indices),
        index_dtype_(index_dtype) {}

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const int64_t* idx64 = index_dtype_ == DType::i64 ? inputs[1].as<const int64_t>() : nullptr;
    const int32_t* idx32 = index_dtype_ == DType::i32 ? inputs[1].as<const int32_t>() : nullptr;
    auto index = [&](int64_t i) { return idx64 != nullptr ? idx64[i] : static_cast<int64_t>(idx32[i]); };
    for (int64_t i = 0; i < indices_; ++i) {
      const int64_t v = index(i);
      if (v < -axis_size_ || v >= axis_size_) {
        return node_error(node_, "index {} (at position {}) is out of range [-{}, {})", v, i, axis_size_,
                          axis_size_);
      }
    }
    const auto* src = inputs[0].as<const char>();
    auto* dst = outputs[0].as<char>();
    const int64_t items = outer_ * indices_;
#pragma omp parallel for schedule(static) if (items * block_bytes_ >= 4 * kParallelMinElements)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t o = item / indices_, i = item % indices_;
      int64_t v = index(i);
      if (v < 0) v += axis_size_;
      std::memcpy(dst + item * block_bytes_, src + (o * axis_size_ + v) * block_bytes_,
                  static_cast<size_t>(block_bytes_));
    }
    return Status::ok();
  }
  std::string label() const override {
    return "cpu:gather";
  }

 private:
  const Node* node_;
  int64_t outer_, axis_size_, block_bytes_, indices_;
  DType index_dtype_;
};

// Transpose whose innermost output dim is strided in the input: 2-D tiles between the output's
// innermost dim (source stride `col_stride`) and the output dim `row_dim` that is innermost in the
// input (source stride 1). Every other output dim is walked by a multi-index.
class TiledTranspose {
 public:
  static constexpr int64_t kTile = 32;

  TiledTranspose(size_t element_bytes, std::vector<int64_t> dims, std::vector<int64_t> src_strides,
                 int row_dim)
      : esz_(static_cast<int64_t>(element_bytes)),
        dims_(std::move(dims)),
        src_strides_(std::move(src_strides)),
        row_dim_(row_dim) {
    const int rank = static_cast<int>(dims_.size());
    dst_strides_.assign(rank, 1);
    for (int d = rank - 1; d > 0; --d) dst_strides_[d - 1] = dst_strides_[d] * dims_[d];
    for (int d = 0; d < rank - 1; ++d) {
      if (d != row_dim_) outer_dims_.push_back(d);
    }
  }

  void run(const void* src, void* dst) const {
    switch (esz_) {
      case 4:
        return run_typed<uint32_t>(src, dst);
      case 8:
        return run_typed<uint64_t>(src, dst);
      case 2:
        return run_typed<uint16_t>(src, dst);
      default:
        return run_typed<uint8_t>(src, dst);
    }
  }

 private:
  template <typename T>
  void run_typed(const void* src_bytes, void* dst_bytes) const {
    const T* src = static_cast<const T*>(src_bytes);
    T* dst = static_cast<T*>(dst_bytes);
    const int last = static_cast<int>(dims_.size()) - 1;
    const int64_t rows = dims_[row_dim_], cols = dims_[last];
    const int64_t col_stride = src_strides_[last], row_dst_stride = dst_strides_[row_dim_];
    const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
    int64_t outer = 1;
    for (int d : outer_dims_) outer *= dims_[d];
    const int64_t items = outer * row_tiles * col_tiles;
#pragma omp parallel for schedule(static) if (outer * rows * cols * esz_ >= 4 * kParallelMinElements)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t tile = item % (row_tiles * col_tiles), o = item / (row_tiles * col_tiles);
      const int64_t r0 = (tile / col_tiles) * kTile, c0 = (tile % col_tiles) * kTile;
      int64_t src_base = 0, dst_base = 0, rest = o;
      for (size_t k = outer_dims_.size(); k-- > 0;) {
        const int d = outer_dims_[k];
        const int64_t i = rest % dims_[d];
        rest /= dims_[d];
        src_base += i * src_strides_[d];
        dst_base += i * dst_strides_[d];
      }
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      int64_t r_full = r0, c_full = c0;  // end of the part done in 8 x 8 register blocks
      if constexpr (sizeof(T) == 4) {
        r_full = r0 + (r1 - r0) / 8 * 8;
        c_full = c0 + (c1 - c0) / 8 * 8;
        for (int64_t r = r0; r < r_full; r += 8) {
          for (int64_t c = c0; c < c_full; c += 8) {
            transpose_8x8(src + src_base + r + c * col_stride, col_stride,
                          dst + dst_base + r * row_dst_stride + c, row_dst_stride);
          }
        }
      }
      // The rest of the tile (all of it for other element sizes), element by element.
      for (int64_t r = r0; r < r1; ++r) {
        const T* s = src + src_base + r;  // row_dim has source stride 1
        T* out = dst + dst_base + r * row_dst_stride;
        for (int64_t c = r < r_full ? c_full : c0; c < c1; ++c) out[c] = s[c * col_stride];
      }
    }
  }

  // dst[i * dst_stride + j] = src[i + j * src_stride] for an 8 x 8 block of 4-byte elements: eight
  // contiguous loads, the classic unpack/shuffle/permute register transpose, eight contiguous stores.
  // Pure bit moves, so any 4-byte type passes unchanged.
  template <typename T>
  static void transpose_8x8(const T* src, int64_t src_stride, T* dst, int64_t dst_stride) {
    __m256 v[8];
    for (int j = 0; j < 8; ++j) v[j] = _mm256_loadu_ps(reinterpret_cast<const float*>(src + j * src_stride));
    __m256 t[8], s[8];
    for (int j = 0; j < 8; j += 2) {
      t[j] = _mm256_unpacklo_ps(v[j], v[j + 1]);
      t[j + 1] = _mm256_unpackhi_ps(v[j], v[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
      s[j] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
      s[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
      s[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
      s[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      _mm256_storeu_ps(reinterpret_cast<float*>(dst + i * dst_stride),
                       _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
      _mm256_storeu_ps(reinterpret_cast<float*>(dst + (i + 4) * dst_stride),
                       _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
    }
  }

  int64_t esz_;
  std::vector<int64_t> dims_, src_strides_, dst_strides_;
  int row_dim_;
  std::vector<int> outer_dims_;
};

class TransposeKernel : public Kernel {
 public:
  TransposeKernel(std::unique_ptr<StridedCopy> runs, std::unique_ptr<TiledTranspose> tiles)
      : runs_(std::move(runs)), tiles_(std::move(tiles)) {}
  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    if (runs_) {
      runs_->run(inputs[0].data, outputs[0].data);
    } else {
      tiles_->run(inputs[0].data, outputs[0].data);
    }
    return Status::ok();
  }
  std::string label() const override { return runs_ ? "cpu:transpose(runs)" : "cpu:transpose(tiled)"; }

 private:
  std::unique_ptr<StridedCopy> runs_;
  std::unique_ptr<TiledTranspose> tiles_;
};

}  // namespace

std::unique_ptr<Kernel> make_gather_kernel(const KernelInfo& info) {
  if (info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  const TensorArg& data = info.inputs[0];
  const TensorArg& indices = info.inputs[1];
  if (indices.dtype != DType::i64 && indices.dtype != DType::i32) return nullptr;
  if (data.dtype == DType::undefined || info.outputs[0].dtype != data.dtype || data.shape.empty())
    return nullptr;
  const int rank = data.rank();
  const int axis = normalize_axis(info.node->get_int("axis", 0), rank);
  if (axis < 0) return nullptr;
  Shape out(data.shape.begin(), data.shape.begin() + axis);
  out.insert(out.end(), indices.shape.begin(), indices.shape.end());
  out.insert(out.end(), data.shape.begin() + axis + 1, data.shape.end());
  if (info.outputs[0].shape != out) return nullptr;
  const int64_t block =
      product(data.shape, axis + 1, data.shape.size()) * static_cast<int64_t>(dtype_size(data.dtype));
  if (data.shape[axis] == 0 && indices.numel() > 0) return nullptr;  // every index is out of range
  return std::make_unique<GatherKernel>(info.node, product(data.shape, 0, axis), data.shape[axis], block,
                                        indices.numel(), indices.dtype);
}

std::unique_ptr<Kernel> make_transpose_kernel(const KernelInfo& info) {
  if (info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  if (x.dtype == DType::undefined || info.outputs[0].dtype != x.dtype) return nullptr;
  const int rank = x.rank();
  std::vector<int64_t> perm = info.node->get_ints("perm");
  if (!info.node->has_attr("perm")) {
    perm.clear();
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != rank) return nullptr;
  std::vector<bool> seen(rank, false);
  for (int64_t& p : perm) {
    const int axis = normalize_axis(p, rank);
    if (axis < 0 || seen[axis]) return nullptr;
    seen[axis] = true;
    p = axis;
  }
  std::vector<int64_t> in_strides(rank, 1);
  for (int d = rank - 1; d > 0; --d) in_strides[d - 1] = in_strides[d] * x.shape[d];
  // Output dims (size-1 dropped) with their source strides, merged where the source is contiguous.
  std::vector<int64_t> dims, strides;
  Shape out_shape;
  for (int i = 0; i < rank; ++i) {
    const int64_t size = x.shape[perm[i]];
    out_shape.push_back(size);
    if (size == 1) continue;
    const int64_t stride = in_strides[perm[i]];
    if (!dims.empty() && strides.back() == stride * size) {
      dims.back() *= size;
      strides.back() = stride;
    } else {
      dims.push_back(size);
      strides.push_back(stride);
    }
  }
  if (info.outputs[0].shape != out_shape) return nullptr;
  const size_t esz = dtype_size(x.dtype);
  if (dims.empty() || strides.back() == 1) {
    return std::make_unique<TransposeKernel>(std::make_unique<StridedCopy>(esz, dims, strides, 0), nullptr);
  }
  if (esz != 1 && esz != 2 && esz != 4 && esz != 8) return nullptr;
  int row_dim = -1;
  for (size_t d = 0; d < strides.size(); ++d) {
    if (strides[d] == 1) row_dim = static_cast<int>(d);
  }
  if (row_dim < 0) return nullptr;  // cannot happen for a permutation of a contiguous tensor
  return std::make_unique<TransposeKernel>(nullptr,
                                           std::make_unique<TiledTranspose>(esz, dims, strides, row_dim));
}

}  // namespace seqrun::backends::cpu
