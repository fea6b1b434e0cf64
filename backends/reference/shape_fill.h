// Reference kernels of the shape family's generators: Range, ConstantOfShape, EyeLike (private to
// backends/reference/shape.cpp).
//
// Their output sizes come from tensor values, so each refuses (with an error naming the node) a request
// for more than 2^31 elements instead of trying to allocate it.
#pragma once

#include <cmath>
#include <type_traits>

#include "backends/reference/shape_util.h"
#include "ir/ops/ops.h"

namespace seqrun::reference {
namespace shape_detail {

// Stores the double `v` as element i of a float tensor (f32, f64, f16, bf16).
inline void store_float(Tensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DType::f32:
      t.data<float>()[i] = static_cast<float>(v);
      break;
    case DType::f64:
      t.data<double>()[i] = v;
      break;
    case DType::f16:
      t.data<uint16_t>()[i] = f32_to_f16(static_cast<float>(v));
      break;
    case DType::bf16:
      t.data<uint16_t>()[i] = f32_to_bf16(static_cast<float>(v));
      break;
    default:
      break;
  }
}

inline Status range_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const Tensor& start = ctx.input(0);
  const Tensor& limit = ctx.input(1);
  const Tensor& delta = ctx.input(2);
  const DType dt = start.dtype();
  if (start.numel() != 1 || limit.numel() != 1 || delta.numel() != 1) {
    return ctx.error("start, limit and delta must be scalars (have {}, {}, {} elements)", start.numel(),
                     limit.numel(), delta.numel());
  }
  if (limit.dtype() != dt || delta.dtype() != dt) {
    return ctx.error("start, limit and delta must share a dtype ({}, {}, {})", dtype_name(dt),
                     dtype_name(limit.dtype()), dtype_name(delta.dtype()));
  }
  if (dt == DType::boolean) return ctx.error("Range does not support bool");
  if (is_float(dt)) {
    const double s = start.get_f64(0), l = limit.get_f64(0), d = delta.get_f64(0);
    if (d == 0.0) return ctx.error("delta is 0");
    const double count = std::ceil((l - s) / d);
    if (!(count <= static_cast<double>(kMaxOutputElements))) {  // also catches NaN and infinities
      return ctx.error("Range({}, {}, {}) would produce more than 2^31 elements", s, l, d);
    }
    const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
    SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, dt, {n}));
    for (int64_t i = 0; i < n; ++i) store_float(out, i, s + static_cast<double>(i) * d);
    ctx.outputs = {std::move(out)};
    return Status::ok();
  }
  const __int128 s = start.get_i64(0), l = limit.get_i64(0), d = delta.get_i64(0);
  if (d == 0) return ctx.error("delta is 0");
  __int128 count = 0;
  if (d > 0 && l > s) count = (l - s + d - 1) / d;
  if (d < 0 && l < s) count = (s - l - d - 1) / (-d);
  if (count > kMaxOutputElements) {
    return ctx.error("Range({}, {}, {}) would produce more than 2^31 elements", start.get_i64(0),
                     limit.get_i64(0), delta.get_i64(0));
  }
  const int64_t n = static_cast<int64_t>(count);
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, dt, {n}));
  Status st = SEQRUN_DISPATCH_NUMERIC(dt, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    for (int64_t i = 0; i < n; ++i) out.data<T>()[i] = static_cast<T>(s + i * d);
    return Status::ok();
  });
  if (!st) return ctx.error("{}", st.message());
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

inline Status constant_of_shape_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  SEQRUN_ASSIGN(std::vector<int64_t> shape, read_ints(ctx, 0, "input"));
  Tensor value = Tensor::scalar<float>(0.0f);
  if (const Attribute* attr = ctx.node.attr("value")) {
    if (attr->type() != AttrType::Tensor) return ctx.error("attribute 'value' must be a tensor");
    value = attr->tensor();
    if (value.numel() != 1)
      return ctx.error("attribute 'value' must hold one element, has {}", value.numel());
  }
  for (int64_t d : shape) {
    if (d < 0) return ctx.error("shape {} has a negative dim", shape_to_string(shape));
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, value.dtype(), shape));
  const size_t esz = dtype_size(value.dtype());
  auto* dst = static_cast<uint8_t*>(out.raw());
  const auto* src = static_cast<const uint8_t*>(value.raw());
  for (int64_t i = 0; i < out.numel(); ++i) copy_elem(dst + i * static_cast<int64_t>(esz), src, esz);
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

inline Status eye_like_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 2) return ctx.error("input {} must be 2-D", shape_to_string(x.shape()));
  DType dt = x.dtype();
  if (ctx.node.has_attr("dtype")) {
    Result<DType> t = ops::dtype_from_onnx_type(ctx.node.get_int("dtype"));
    if (!t) return ctx.error("attribute 'dtype': {}", t.status().message());
    dt = *t;
  }
  const int64_t k = ctx.node.get_int("k", 0);
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, dt, x.shape()));
  const int64_t rows = x.dim(0), cols = x.dim(1);
  if (k >= cols || k <= -rows) {  // the diagonal misses the matrix (and i + k cannot overflow below)
    ctx.outputs = {std::move(out)};
    return Status::ok();
  }
  const std::vector<uint8_t> one = value_bytes(1.0, dt);
  const int64_t esz = static_cast<int64_t>(one.size());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t j = i + k;
    if (j >= 0 && j < cols) std::memcpy(dst + (i * cols + j) * esz, one.data(), one.size());
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

}  // namespace shape_detail

inline void register_shape_fill_kernels(KernelRegistry& r) {
  r.add("Range", shape_detail::range_kernel);
  r.add("ConstantOfShape", shape_detail::constant_of_shape_kernel);
  r.add("EyeLike", shape_detail::eye_like_kernel);
}

}  // namespace seqrun::reference
