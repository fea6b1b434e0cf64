// Helpers shared by the shape-family reference kernels (private to backends/reference/shape*.{h,cpp}).
//
// Shape ops move bytes, so they work on raw element bytes of any dtype (dtype_size() wide). These
// helpers give them a checked output allocation (no negative dims, at most 2^31 elements, so a bad
// shape tensor is an error rather than a terabyte allocation), integer reads of index tensors of any
// integer dtype, and one strided copy that Transpose, Slice, Expand and DepthToSpace all reduce to.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference::shape_detail {

// Largest output (in elements) a shape kernel will allocate.
constexpr int64_t kMaxOutputElements = int64_t{1} << 31;

inline Result<Tensor> alloc_output(const KernelContext& ctx, DType dtype, const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) return ctx.error("output shape {} has a negative dim", shape_to_string(shape));
  }
  Result<int64_t> n = checked_num_elements(shape, 0, static_cast<uint64_t>(kMaxOutputElements));
  if (!n) return ctx.error("output shape {} has more than 2^31 elements", shape_to_string(shape));
  return Tensor::empty(dtype, shape);
}

// Checks that the first `count` inputs are present (required inputs may not be null).
inline Status require_inputs(const KernelContext& ctx, int count) {
  for (int i = 0; i < count; ++i) {
    if (!ctx.has_input(i)) return ctx.error("required input {} is missing", i);
  }
  return Status::ok();
}

// Input i as int64 values; it must have an integer dtype.
inline Result<std::vector<int64_t>> read_ints(const KernelContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (!is_integer(t.dtype())) {
    return ctx.error("input '{}' must be an integer tensor, is {}", what, dtype_name(t.dtype()));
  }
  return t.to_i64_vector();
}

// The single value of a scalar (or one-element) integer input.
inline Result<int64_t> read_scalar_int(const KernelContext& ctx, int i, const char* what) {
  SEQRUN_ASSIGN(std::vector<int64_t> v, read_ints(ctx, i, what));
  if (v.size() != 1) return ctx.error("input '{}' must hold one value, has {}", what, v.size());
  return v[0];
}

// Normalizes an axis in [-rank, rank) (or [-rank, rank] with `allow_end`).
inline Result<int> normalize_axis(const KernelContext& ctx, int64_t axis, int rank, bool allow_end = false) {
  const int64_t hi = allow_end ? rank : rank - 1;
  if (axis < -rank || axis > hi) return ctx.error("axis {} out of range for rank {}", axis, rank);
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// Normalizes a list of axes against `rank`, rejecting duplicates.
inline Result<std::vector<int>> normalize_axes(const KernelContext& ctx, const std::vector<int64_t>& axes,
                                               int rank) {
  std::vector<int> out;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    SEQRUN_ASSIGN(int axis, normalize_axis(ctx, a, rank));
    if (seen[axis]) return ctx.error("axis {} appears twice", a);
    seen[axis] = true;
    out.push_back(axis);
  }
  return out;
}

// Index `v` of an axis of `size`, negative counting from the end; error when outside [-size, size).
inline Result<int64_t> resolve_index(const KernelContext& ctx, int64_t v, int64_t size, int axis) {
  if (v < -size || v >= size) return ctx.error("index {} out of range for axis {} of size {}", v, axis, size);
  return v < 0 ? v + size : v;
}

inline int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) p *= shape[i];
  return p;
}

// Copies one element of `elem_bytes` bytes (fixed-size moves for the common widths).
inline void copy_elem(uint8_t* dst, const uint8_t* src, size_t elem_bytes) {
  switch (elem_bytes) {
    case 1:
      *dst = *src;
      break;
    case 2:
      std::memcpy(dst, src, 2);
      break;
    case 4:
      std::memcpy(dst, src, 4);
      break;
    case 8:
      std::memcpy(dst, src, 8);
      break;
    default:
      std::memcpy(dst, src, elem_bytes);
      break;
  }
}

// dst (dense, row-major, `out_shape`) = src walked with element strides `src_strides` from element
// `src_offset`. Strides may be 0 (broadcast) or negative (reversed slices); the caller guarantees every
// element visited lies inside src. Rows whose source is contiguous are copied with one memcpy.
inline void strided_copy(uint8_t* dst, const uint8_t* src, size_t elem_bytes, const Shape& out_shape,
                         const std::vector<int64_t>& src_strides, int64_t src_offset) {
  const int rank = static_cast<int>(out_shape.size());
  const int64_t n = num_elements(out_shape);
  if (n == 0) return;
  const int64_t esz = static_cast<int64_t>(elem_bytes);
  if (rank == 0) {
    copy_elem(dst, src + src_offset * esz, elem_bytes);
    return;
  }
  const int64_t row = out_shape[rank - 1];
  const int64_t row_stride = src_strides[rank - 1];
  const int64_t rows = n / row;
  std::vector<int64_t> idx(static_cast<size_t>(rank - 1), 0);
  int64_t offset = src_offset;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* d = dst + r * row * esz;
    if (row_stride == 1) {
      std::memcpy(d, src + offset * esz, static_cast<size_t>(row * esz));
    } else {
      for (int64_t k = 0; k < row; ++k)
        copy_elem(d + k * esz, src + (offset + k * row_stride) * esz, elem_bytes);
    }
    for (int dim = rank - 2; dim >= 0; --dim) {
      ++idx[dim];
      offset += src_strides[dim];
      if (idx[dim] < out_shape[dim]) break;
      offset -= src_strides[dim] * out_shape[dim];
      idx[dim] = 0;
    }
  }
}

// The bytes of the number `value` stored as `dtype` (for EyeLike's 1 and Range's values).
inline std::vector<uint8_t> value_bytes(double value, DType dtype) {
  Tensor one = Tensor::scalar<double>(value).cast(dtype);
  const auto* p = static_cast<const uint8_t*>(one.raw());
  return std::vector<uint8_t>(p, p + dtype_size(dtype));
}

// Whether element i of t is non-zero (floats compare as numbers: -0.0 is zero, NaN is not).
inline bool is_nonzero(const Tensor& t, int64_t i) {
  if (is_float(t.dtype())) return t.get_f64(i) != 0.0;
  return t.get_i64(i) != 0;
}

}  // namespace seqrun::reference::shape_detail
