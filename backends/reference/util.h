// Shared helpers for reference kernels: broadcasting index walks, strides, dtype dispatch.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/dtype.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::reference {

std::vector<int64_t> row_major_strides(const Shape& shape);
// Numpy broadcast of shapes; error text names the shapes.
Result<Shape> broadcast_shapes(const std::vector<Shape>& shapes);
// For each input, strides into it for walking `out` (0 along broadcast dims).
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Calls fn(out_index, in_offsets) for every element of `out`, in row-major order, where
// in_offsets[k] is the flat element offset into input k.
template <typename Fn>
void for_each_broadcast(const Shape& out, const std::vector<Shape>& ins, Fn&& fn) {
  const int rank = static_cast<int>(out.size());
  const int64_t n = num_elements(out);
  std::vector<std::vector<int64_t>> st;
  for (const Shape& s : ins) st.push_back(broadcast_strides(s, out));
  std::vector<int64_t> idx(rank, 0);
  std::vector<int64_t> off(ins.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    fn(i, off.data());
    for (int d = rank - 1; d >= 0; --d) {
      ++idx[d];
      for (size_t k = 0; k < ins.size(); ++k) off[k] += st[k][d];
      if (idx[d] < out[d]) break;
      for (size_t k = 0; k < ins.size(); ++k) off[k] -= st[k][d] * idx[d];
      idx[d] = 0;
    }
  }
}

}  // namespace seqrun::reference

// Dispatch on a runtime dtype to a generic lambda taking a typed null pointer:
//   SEQRUN_DISPATCH_NUMERIC(t.dtype(), [&](auto* tag) { using T = std::remove_pointer_t<decltype(tag)>; ... });
// Numeric = f32, f64, i64, i32, i16, i8, u8, u16, u32, u64 (f16/bf16 are converted by the executor).
#define SEQRUN_DISPATCH_NUMERIC(dtype, fn)                               \
  [&]() -> ::seqrun::Status {                                            \
    switch (dtype) {                                                     \
      case ::seqrun::DType::f32: return fn(static_cast<float*>(nullptr)); \
      case ::seqrun::DType::f64: return fn(static_cast<double*>(nullptr)); \
      case ::seqrun::DType::i64: return fn(static_cast<int64_t*>(nullptr)); \
      case ::seqrun::DType::i32: return fn(static_cast<int32_t*>(nullptr)); \
      case ::seqrun::DType::i16: return fn(static_cast<int16_t*>(nullptr)); \
      case ::seqrun::DType::i8: return fn(static_cast<int8_t*>(nullptr)); \
      case ::seqrun::DType::u8: return fn(static_cast<uint8_t*>(nullptr)); \
      case ::seqrun::DType::u16: return fn(static_cast<uint16_t*>(nullptr)); \
      case ::seqrun::DType::u32: return fn(static_cast<uint32_t*>(nullptr)); \
      case ::seqrun::DType::u64: return fn(static_cast<uint64_t*>(nullptr)); \
      default:                                                           \
        return ::seqrun::make_error("unsupported dtype {}", ::seqrun::dtype_name(dtype)); \
    }                                                                    \
  }()
