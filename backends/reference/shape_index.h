// Reference kernels of the shape family's indexing ops: Gather, GatherElements, GatherND, ScatterND,
// ScatterElements, Compress, NonZero, OneHot (private to backends/reference/shape.cpp).
//
// Indices may be any integer dtype (i32 and i64 in practice); negative indices count from the end of
// their axis and anything outside [-size, size) is an error naming the node, checked before any byte
// is read. Data moves as raw bytes; only the Scatter reductions look at values, through one typed
// combiner picked per dtype (f16/bf16 combine in f32 and round back).
#pragma once

#include <algorithm>
#include <type_traits>

#include "backends/reference/shape_util.h"

namespace seqrun::reference {
namespace shape_detail {

inline Status gather_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (data.rank() == 0) return ctx.error("cannot gather from a scalar");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", 0), data.rank()));
  SEQRUN_ASSIGN(std::vector<int64_t> idx, read_ints(ctx, 1, "indices"));
  const int64_t size = data.dim(axis);
  for (int64_t& v : idx) {
    SEQRUN_ASSIGN(v, resolve_index(ctx, v, size, axis));
  }
  Shape shape(data.shape().begin(), data.shape().begin() + axis);
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, data.dtype(), shape));
  const int64_t esz = static_cast<int64_t>(dtype_size(data.dtype()));
  const int64_t outer = product(data.shape(), 0, axis);
  const int64_t block = product(data.shape(), axis + 1, data.shape().size()) * esz;
  const auto* src = static_cast<const uint8_t*>(data.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t v : idx) {
      std::memcpy(dst, src + (o * size + v) * block, static_cast<size_t>(block));
      dst += block;
    }
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

// Checks that indices (same rank as data) fit inside data on every axis but `axis`.
inline Status check_element_indices_shape(const KernelContext& ctx, const Tensor& data, const Tensor& indices,
                                          int axis) {
  if (indices.rank() != data.rank()) {
    return ctx.error("indices {} must have the rank of data {}", shape_to_string(indices.shape()),
                     shape_to_string(data.shape()));
  }
  for (int d = 0; d < data.rank(); ++d) {
    if (d != axis && indices.dim(d) > data.dim(d)) {
      return ctx.error("indices {} exceed data {} on axis {}", shape_to_string(indices.shape()),
                       shape_to_string(data.shape()), d);
    }
  }
  return Status::ok();
}

// Calls fn(i, data_offset) for each element i of `indices` (row-major), where data_offset is the flat
// offset in data of the element it addresses along `axis`. Fails before calling fn on a bad index.
template <typename Fn>
Status for_each_element_index(const KernelContext& ctx, const Tensor& data, const Tensor& indices, int axis,
                              Fn&& fn) {
  SEQRUN_TRY(check_element_indices_shape(ctx, data, indices, axis));
  std::vector<int64_t> idx = indices.to_i64_vector();
  const int64_t size = data.dim(axis);
  for (int64_t& v : idx) {
    SEQRUN_ASSIGN(v, resolve_index(ctx, v, size, axis));
  }
  const std::vector<int64_t> strides = row_major_strides(data.shape());
  const int rank = indices.rank();
  std::vector<int64_t> pos(static_cast<size_t>(rank), 0);
  for (int64_t i = 0; i < static_cast<int64_t>(idx.size()); ++i) {
    int64_t offset = 0;
    for (int d = 0; d < rank; ++d) offset += (d == axis ? idx[i] : pos[d]) * strides[d];
    fn(i, offset);
    for (int d = rank - 1; d >= 0; --d) {
      if (++pos[d] < indices.dim(d)) break;
      pos[d] = 0;
    }
  }
  return Status::ok();
}

inline Status gather_elements_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (!is_integer(indices.dtype()))
    return ctx.error("indices must be integers, are {}", dtype_name(indices.dtype()));
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", 0), data.rank()));
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, data.dtype(), indices.shape()));
  const size_t esz = dtype_size(data.dtype());
  const auto* src = static_cast<const uint8_t*>(data.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  SEQRUN_TRY(for_each_element_index(ctx, data, indices, axis, [&](int64_t i, int64_t offset) {
    copy_elem(dst + i * static_cast<int64_t>(esz), src + offset * static_cast<int64_t>(esz), esz);
  }));
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

// GatherND / ScatterND addressing: `indices` holds tuples of k indices into data's dims [b, b + k) (b = batch
// dims). Returns, for every tuple, the flat offset in data of the slice it addresses, in units of elements.
inline Result<std::vector<int64_t>> nd_slice_offsets(const KernelContext& ctx, const Tensor& data,
                                                     const Tensor& indices, int64_t batch_dims) {
  const int r = data.rank(), q = indices.rank();
  if (r < 1 || q < 1) return ctx.error("data and indices must have rank >= 1");
  if (batch_dims < 0 || batch_dims >= std::min(q, r)) {
    return ctx.error("batch_dims {} must be in [0, {})", batch_dims, std::min(q, r));
  }
  const int b = static_cast<int>(batch_dims);
  const int64_t k = indices.dim(-1);
  if (b + k > r)
    return ctx.error("index tuples of length {} after {} batch dims exceed data rank {}", k, b, r);
  for (int d = 0; d < b; ++d) {
    if (indices.dim(d) != data.dim(d)) {
      return ctx.error("batch dim {} differs: data {} vs indices {}", d, shape_to_string(data.shape()),
                       shape_to_string(indices.shape()));
    }
  }
  if (!is_integer(indices.dtype()))
    return ctx.error("indices must be integers, are {}", dtype_name(indices.dtype()));
  const std::vector<int64_t> strides = row_major_strides(data.shape());
  const int64_t batch_count = product(data.shape(), 0, b);
  const int64_t batch_stride = product(data.shape(), b, data.shape().size());
  const int64_t tuples = product(indices.shape(), 0, static_cast<size_t>(q - 1));
  const int64_t tuples_per_batch = batch_count == 0 ? 0 : tuples / batch_count;
  std::vector<int64_t> offsets(static_cast<size_t>(tuples), 0);
  const std::vector<int64_t> idx = indices.to_i64_vector();
  if (k == 0) {
    for (int64_t t = 0; t < tuples; ++t)
      offsets[t] = (t / std::max<int64_t>(tuples_per_batch, 1)) * batch_stride;
    return offsets;
  }
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t offset = (t / tuples_per_batch) * batch_stride;
    for (int64_t j = 0; j < k; ++j) {
      const int axis = b + static_cast<int>(j);
      SEQRUN_ASSIGN(int64_t v, resolve_index(ctx, idx[t * k + j], data.dim(axis), axis));
      offset += v * strides[axis];
    }
    offsets[t] = offset;
  }
  return offsets;
}

inline Status gather_nd_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t b = ctx.node.get_int("batch_dims", 0);
  SEQRUN_ASSIGN(std::vector<int64_t> offsets, nd_slice_offsets(ctx, data, indices, b));
  const int64_t k = indices.dim(-1);
  Shape shape(indices.shape().begin(), indices.shape().end() - 1);
  shape.insert(shape.end(), data.shape().begin() + b + k, data.shape().end());
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, data.dtype(), shape));
  const int64_t esz = static_cast<int64_t>(dtype_size(data.dtype()));
  const int64_t slice = product(data.shape(), static_cast<size_t>(b + k), data.shape().size());
  const auto* src = static_cast<const uint8_t*>(data.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (size_t t = 0; t < offsets.size(); ++t) {
    std::memcpy(dst + static_cast<int64_t>(t) * slice * esz, src + offsets[t] * esz,
                static_cast<size_t>(slice * esz));
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

enum class Reduction { none, add, mul, max, min };

inline Result<Reduction> parse_reduction(const KernelContext& ctx) {
  const std::string r = ctx.node.get_string("reduction", "none");
  if (r == "none") return Reduction::none;
  if (r == "add") return Reduction::add;
  if (r == "mul") return Reduction::mul;
  if (r == "max") return Reduction::max;
  if (r == "min") return Reduction::min;
  return ctx.error("reduction '{}' is not one of none, add, mul, max, min", r);
}

template <typename T>
T reduce_pair(Reduction r, T a, T b) {
  switch (r) {
    case Reduction::add:  // integers wrap around instead of overflowing
      if constexpr (std::is_integral_v<T>) {
        return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
      } else {
        return a + b;
      }
    case Reduction::mul:
      if constexpr (std::is_integral_v<T>) {
        return static_cast<T>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
      } else {
        return a * b;
      }
    case Reduction::max:
      return std::max(a, b);
    case Reduction::min:
      return std::min(a, b);
    case Reduction::none:
      break;
  }
  return b;
}

// Calls fn(combine) with combine(uint8_t* dst, const uint8_t* src) storing reduce(dst, src) into dst for one
// element of `dtype`: a byte copy for 'none', typed arithmetic otherwise.
template <typename Fn>
Status with_combiner(const KernelContext& ctx, DType dtype, Reduction r, Fn&& fn) {
  const size_t esz = dtype_size(dtype);
  if (r == Reduction::none) {
    fn([esz](uint8_t* dst, const uint8_t* src) { copy_elem(dst, src, esz); });
    return Status::ok();
  }
  if (dtype == DType::f16 || dtype == DType::bf16) {
    const bool half = dtype == DType::f16;
    fn([r, half](uint8_t* dst, const uint8_t* src) {
      uint16_t a, b;
      std::memcpy(&a, dst, 2);
      std::memcpy(&b, src, 2);
      const float fa = half ? f16_to_f32(a) : bf16_to_f32(a), fb = half ? f16_to_f32(b) : bf16_to_f32(b);
      const float v = reduce_pair(r, fa, fb);
      const uint16_t out = half ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(dst, &out, 2);
    });
    return Status::ok();
  }
  if (dtype == DType::boolean) {  // add/max = or, mul/min = and
    const bool is_or = r == Reduction::add || r == Reduction::max;
    fn([is_or](uint8_t* dst, const uint8_t* src) { *dst = is_or ? (*dst || *src) : (*dst && *src); });
    return Status::ok();
  }
  Status st = SEQRUN_DISPATCH_NUMERIC(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fn([r](uint8_t* dst, const uint8_t* src) {
      T a, b;
      std::memcpy(&a, dst, sizeof(T));
      std::memcpy(&b, src, sizeof(T));
      a = reduce_pair(r, a, b);
      std::memcpy(dst, &a, sizeof(T));
    });
    return Status::ok();
  });
  if (!st) return ctx.error("reduction on {}", st.message());
  return Status::ok();
}

inline Status scatter_nd_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  SEQRUN_ASSIGN(Reduction reduction, parse_reduction(ctx));
  if (updates.dtype() != data.dtype()) {
    return ctx.error("updates dtype {} differs from data dtype {}", dtype_name(updates.dtype()),
                     dtype_name(data.dtype()));
  }
  SEQRUN_ASSIGN(std::vector<int64_t> offsets, nd_slice_offsets(ctx, data, indices, 0));
  const int64_t k = indices.dim(-1);
  Shape expected(indices.shape().begin(), indices.shape().end() - 1);
  expected.insert(expected.end(), data.shape().begin() + k, data.shape().end());
  if (updates.shape() != expected) {
    return ctx.error("updates have shape {}, expected {} for data {} and indices {}",
                     shape_to_string(updates.shape()), shape_to_string(expected),
                     shape_to_string(data.shape()), shape_to_string(indices.shape()));
  }
  Tensor out = data.clone();
  const int64_t esz = static_cast<int64_t>(dtype_size(data.dtype()));
  const int64_t slice = product(data.shape(), static_cast<size_t>(k), data.shape().size());
  const auto* src = static_cast<const uint8_t*>(updates.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  SEQRUN_TRY(with_combiner(ctx, data.dtype(), reduction, [&](auto combine) {
    for (size_t t = 0; t < offsets.size(); ++t) {
      for (int64_t e = 0; e < slice; ++e) {
        combine(dst + (offsets[t] + e) * esz, src + (static_cast<int64_t>(t) * slice + e) * esz);
      }
    }
  }));
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

inline Status scatter_elements_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  SEQRUN_ASSIGN(Reduction reduction, parse_reduction(ctx));
  if (!is_integer(indices.dtype()))
    return ctx.error("indices must be integers, are {}", dtype_name(indices.dtype()));
  if (updates.dtype() != data.dtype()) {
    return ctx.error("updates dtype {} differs from data dtype {}", dtype_name(updates.dtype()),
                     dtype_name(data.dtype()));
  }
  if (updates.shape() != indices.shape()) {
    return ctx.error("updates {} must have the shape of indices {}", shape_to_string(updates.shape()),
                     shape_to_string(indices.shape()));
  }
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", 0), data.rank()));
  Tensor out = data.clone();
  const int64_t esz = static_cast<int64_t>(dtype_size(data.dtype()));
  const auto* src = static_cast<const uint8_t*>(updates.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  // Collect the targets first, so a bad index fails before anything is written.
  std::vector<int64_t> targets;
  SEQRUN_TRY(for_each_element_index(ctx, data, indices, axis,
                                    [&](int64_t, int64_t offset) { targets.push_back(offset); }));
  SEQRUN_TRY(with_combiner(ctx, data.dtype(), reduction, [&](auto combine) {
    for (size_t i = 0; i < targets.size(); ++i)
      combine(dst + targets[i] * esz, src + static_cast<int64_t>(i) * esz);
  }));
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

inline Status compress_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  if (cond.rank() != 1)
    return ctx.error("condition must be 1-D, has shape {}", shape_to_string(cond.shape()));
  const bool has_axis = ctx.node.has_attr("axis");
  int axis = 0;
  Shape view = {x.numel()};  // without an axis, the flattened input
  if (has_axis) {
    SEQRUN_ASSIGN(axis, normalize_axis(ctx, ctx.node.get_int("axis"), x.rank()));
    view = x.shape();
  }
  const int64_t dim = view[axis];
  if (cond.numel() > dim)
    return ctx.error("condition has {} entries, axis {} has only {}", cond.numel(), axis, dim);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (is_nonzero(cond, i)) kept.push_back(i);
  }
  Shape shape = view;
  shape[axis] = static_cast<int64_t>(kept.size());
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
  const int64_t esz = static_cast<int64_t>(dtype_size(x.dtype()));
  const int64_t outer = product(view, 0, axis);
  const int64_t block = product(view, axis + 1, view.size()) * esz;
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i : kept) {
      std::memcpy(dst, src + (o * dim + i) * block, static_cast<size_t>(block));
      dst += block;
    }
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

inline Status nonzero_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (is_nonzero(x, i)) hits.push_back(i);
  }
  const int rank = x.rank();
  const int64_t count = static_cast<int64_t>(hits.size());
  // A scalar is treated as a 1-element vector (numpy, onnxruntime): output [1, count] of zeros.
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, DType::i64, {std::max(rank, 1), count}));
  const std::vector<int64_t> strides = row_major_strides(x.shape());
  int64_t* dst = out.data<int64_t>();
  for (int64_t h = 0; h < count; ++h) {
    int64_t rest = hits[h];
    for (int d = 0; d < rank; ++d) {
      dst[d * count + h] = rest / strides[d];
      rest %= strides[d];
    }
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

inline Status onehot_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const Tensor& indices = ctx.input(0);
  const Tensor& depth_t = ctx.input(1);
  const Tensor& values = ctx.input(2);
  if (depth_t.numel() != 1) return ctx.error("depth must hold one value, has {}", depth_t.numel());
  if (values.numel() != 2) return ctx.error("values must hold 2 elements (off, on), has {}", values.numel());
  if (indices.dtype() == DType::boolean) return ctx.error("indices must be numeric, are bool");
  const int64_t depth = depth_t.get_i64(0);
  if (depth < 0) return ctx.error("depth {} is negative", depth);
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", -1), indices.rank() + 1));
  Shape shape = indices.shape();
  shape.insert(shape.begin() + axis, depth);
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, values.dtype(), shape));
  const int64_t esz = static_cast<int64_t>(dtype_size(values.dtype()));
  const auto* off = static_cast<const uint8_t*>(values.raw());
  const uint8_t* on = off + esz;
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i) copy_elem(dst + i * esz, off, static_cast<size_t>(esz));
  const int64_t outer = product(indices.shape(), 0, axis);
  const int64_t inner = product(indices.shape(), axis, indices.shape().size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      int64_t v = indices.get_i64(o * inner + i);
      if (v < 0) v += depth;
      if (v < 0 || v >= depth) continue;  // out of range: all 'off', as ONNX specifies
      copy_elem(dst + ((o * depth + v) * inner + i) * esz, on, static_cast<size_t>(esz));
    }
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

}  // namespace shape_detail

inline void register_shape_index_kernels(KernelRegistry& r) {
  r.add("Gather", shape_detail::gather_kernel);
  r.add("GatherElements", shape_detail::gather_elements_kernel);
  r.add("GatherND", shape_detail::gather_nd_kernel);
  r.add("ScatterND", shape_detail::scatter_nd_kernel);
  r.add("ScatterElements", shape_detail::scatter_elements_kernel);
  r.add("Compress", shape_detail::compress_kernel);
  r.add("NonZero", shape_detail::nonzero_kernel);
  r.add("OneHot", shape_detail::onehot_kernel);
}

}  // namespace seqrun::reference
