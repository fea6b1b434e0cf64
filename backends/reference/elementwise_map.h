// Private helpers of the elementwise reference kernels: one-input maps and N-input broadcasting
// maps over typed buffers, a numeric-or-bool dtype dispatch and wrapping integer arithmetic.
//
// Layout: dense row-major tensors; every map is one pass over the output (memory-bound).
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference::elementwise {

// SEQRUN_DISPATCH_NUMERIC with the unsupported-dtype error naming the node.
template <typename Fn>
Status dispatch_numeric(const KernelContext& ctx, DType dtype, Fn&& fn) {
  if (!is_integer(dtype) && dtype != DType::f32 && dtype != DType::f64) {
    return ctx.error("unsupported dtype {}", dtype_name(dtype));
  }
  return SEQRUN_DISPATCH_NUMERIC(dtype, fn);
}

// Like dispatch_numeric, with bool handled as its uint8_t storage.
template <typename Fn>
Status dispatch_numeric_or_bool(const KernelContext& ctx, DType dtype, Fn&& fn) {
  if (dtype == DType::boolean) return fn(static_cast<uint8_t*>(nullptr));
  return dispatch_numeric(ctx, dtype, fn);
}

// Integer +, -, * wrap modulo 2^bits (no signed-overflow UB); floats use plain arithmetic.
template <typename T>
T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return a + b;
  }
}
template <typename T>
T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  } else {
    return a - b;
  }
}
template <typename T>
T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return a * b;
  }
}

// out[i] = f(x[i]) for an f32 input (f16/bf16/f64 arrive as f32: the kernel is compute_in_f32).
// f works in double so f32 results are correctly rounded for the usual math functions.
template <typename F>
Status map_float(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::f32) return ctx.error("expects a float input, got {}", dtype_name(x.dtype()));
  Tensor out = Tensor::empty(DType::f32, x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(f(static_cast<double>(src[i])));
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

// out[i] = pred(x[i]) as bool, for an f32 input.
template <typename F>
Status map_float_to_bool(KernelContext& ctx, F pred) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::f32) return ctx.error("expects a float input, got {}", dtype_name(x.dtype()));
  Tensor out = Tensor::empty(DType::boolean, x.shape());
  const float* src = x.data<float>();
  uint8_t* dst = out.data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) dst[i] = pred(src[i]) ? 1 : 0;
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

// out[i] = f(x[i]) for any numeric input; f is generic over the element type T and returns T.
template <typename F>
Status map_numeric(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  return dispatch_numeric(ctx, x.dtype(), [&](auto* tag) -> Status {
    using T = std::remove_pointer_t<decltype(tag)>;
    Tensor out = Tensor::empty(x.dtype(), x.shape());
    const T* src = x.data<T>();
    T* dst = out.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) dst[i] = f(src[i]);
    ctx.outputs.push_back(std::move(out));
    return Status::ok();
  });
}

// The broadcast shape of the given inputs, or an error naming the node.
inline Result<Shape> broadcast_inputs(const KernelContext& ctx, int first, int count) {
  std::vector<Shape> shapes;
  for (int i = first; i < first + count; ++i) shapes.push_back(ctx.input(i).shape());
  Result<Shape> out = broadcast_shapes(shapes);
  if (!out) return out.status().with_context(ctx.node.describe());
  return out;
}

inline Status check_same_dtype(const KernelContext& ctx, int first, int count) {
  for (int i = first + 1; i < first + count; ++i) {
    if (ctx.input(i).dtype() != ctx.input(first).dtype()) {
      return ctx.error("input {} has dtype {}, input {} has {}", i, dtype_name(ctx.input(i).dtype()), first,
                       dtype_name(ctx.input(first).dtype()));
    }
  }
  return Status::ok();
}

// Binary op with numpy broadcasting: out[i] = f(a, b, status) where a, b are T (inputs 0 and 1)
// and the result is stored as `Out` in a tensor of `out_dtype`. f may set `status` to report a
// data error (integer division by zero).
template <typename T, typename Out, typename F>
Status map_binary(KernelContext& ctx, DType out_dtype, F f) {
  SEQRUN_ASSIGN(Shape out_shape, broadcast_inputs(ctx, 0, 2));
  Tensor out = Tensor::empty(out_dtype, out_shape);
  const T* a = ctx.input(0).data<T>();
  const T* b = ctx.input(1).data<T>();
  Out* dst = out.data<Out>();
  Status status;
  for_each_broadcast(out_shape, {ctx.input(0).shape(), ctx.input(1).shape()},
                     [&](int64_t i, const int64_t* off) { dst[i] = f(a[off[0]], b[off[1]], status); });
  if (!status) return status.with_context(ctx.node.describe());
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

// Variadic op over 1..N inputs of one dtype T with numpy broadcasting:
// acc = first, acc = combine(acc, next) for the rest, out = finish(acc) (all T).
template <typename T, typename Combine, typename Finish>
Status fold_broadcast(KernelContext& ctx, Combine combine, Finish finish) {
  const int n_in = ctx.num_inputs();
  if (n_in < 1) return ctx.error("needs at least one input");
  SEQRUN_ASSIGN(Shape out_shape, broadcast_inputs(ctx, 0, n_in));
  Tensor out = Tensor::empty(ctx.input(0).dtype(), out_shape);
  std::vector<Shape> shapes;
  std::vector<const T*> srcs;
  for (int k = 0; k < n_in; ++k) {
    shapes.push_back(ctx.input(k).shape());
    srcs.push_back(ctx.input(k).data<T>());
  }
  T* dst = out.data<T>();
  for_each_broadcast(out_shape, shapes, [&](int64_t i, const int64_t* off) {
    T acc = srcs[0][off[0]];
    for (int k = 1; k < n_in; ++k) acc = combine(acc, srcs[k][off[k]]);
    dst[i] = finish(acc);
  });
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

}  // namespace seqrun::reference::elementwise
