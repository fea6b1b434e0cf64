// StridedCopy: copies a strided view of a tensor into a contiguous output, as memcpy runs where the
// view's innermost dims are contiguous (Slice, Transpose's easy case), element by element otherwise.
//
// The view is collapsed first (size-1 dims dropped, dims merged where the source is contiguous
// across them), so most slices become a few long runs. Work is split into runs of at most kChunk
// bytes over the OpenMP team. Memory-bound; any element size.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_common.h"

namespace seqrun::backends::cpu {

class StridedCopy {
 public:
  static constexpr int64_t kChunkBytes = 1 << 16;

  // out_dims: the output shape; in_strides: source element stride per output dim; in_offset: the
  // source element of output element 0.
  StridedCopy(size_t element_bytes, const std::vector<int64_t>& out_dims,
              const std::vector<int64_t>& in_strides, int64_t in_offset)
      : esz_(static_cast<int64_t>(element_bytes)), offset_(in_offset), total_(num_elements(out_dims)) {
    for (size_t d = 0; d < out_dims.size(); ++d) {
      if (out_dims[d] == 1) continue;
      if (!dims_.empty() && strides_.back() == in_strides[d] * out_dims[d]) {
        dims_.back() *= out_dims[d];
        strides_.back() = in_strides[d];
      } else {
        dims_.push_back(out_dims[d]);
        strides_.push_back(in_strides[d]);
      }
    }
    if (dims_.empty()) {
      dims_.push_back(1);
      strides_.push_back(1);
    }
  }

  void run(const void* src, void* dst) const {
    if (total_ == 0) return;
    const auto* in = static_cast<const char*>(src) + offset_ * esz_;
    auto* out = static_cast<char*>(dst);
    const int outer_rank = static_cast<int>(dims_.size()) - 1;
    const int64_t run = dims_.back(), inner_stride = strides_.back();
    const int64_t run_bytes = run * esz_;
    // Contiguous runs are cut into chunks; strided runs are copied element by element.
    const int64_t chunk_elems = inner_stride == 1 ? std::max<int64_t>(1, kChunkBytes / esz_) : run;
    const int64_t chunks = (run + chunk_elems - 1) / chunk_elems;
    const int64_t rows = total_ / run;
#pragma omp parallel for schedule(static) if (total_ * esz_ >= 4 * kChunkBytes && rows * chunks > 1)
    for (int64_t item = 0; item < rows * chunks; ++item) {
      const int64_t row = item / chunks, begin = (item % chunks) * chunk_elems;
      const int64_t n = std::min(chunk_elems, run - begin);
      int64_t src_off = 0, rest = row;
      for (int d = outer_rank - 1; d >= 0; --d) {
        src_off += (rest % dims_[d]) * strides_[d];
        rest /= dims_[d];
      }
      const char* s = in + (src_off + begin * inner_stride) * esz_;
      char* o = out + row * run_bytes + begin * esz_;
      if (inner_stride == 1) {
        std::memcpy(o, s, static_cast<size_t>(n * esz_));
      } else {
        copy_strided(s, o, n, inner_stride);
      }
    }
  }

 private:
  void copy_strided(const char* s, char* o, int64_t n, int64_t stride) const {
    switch (esz_) {
      case 4:
        return copy_typed<uint32_t>(s, o, n, stride);
      case 8:
        return copy_typed<uint64_t>(s, o, n, stride);
      case 2:
        return copy_typed<uint16_t>(s, o, n, stride);
      case 1:
        return copy_typed<uint8_t>(s, o, n, stride);
      default:
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(o + i * esz_, s + i * stride * esz_, static_cast<size_t>(esz_));
    }
  }
  template <typename T>
  static void copy_typed(const char* s, char* o, int64_t n, int64_t stride) {
    const T* src = reinterpret_cast<const T*>(s);
    T* dst = reinterpret_cast<T*>(o);
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i * stride];
  }

  int64_t esz_;
  int64_t offset_;
  int64_t total_;
  std::vector<int64_t> dims_, strides_;  // collapsed output dims and source strides (elements)
};

}  // namespace seqrun::backends::cpu
