// Reference kernels: elementwise family. The unary math/activation kernels live in
// elementwise_unary.h, the broadcasting binary/variadic ones in elementwise_binary.h; this file
// has the dtype-preserving ops (Identity, Where, Cast, CastLike, Dropout, Not), Clip and the
// registration.
#include <cstring>

#include "backends/reference/elementwise_binary.h"
#include "backends/reference/elementwise_map.h"
#include "backends/reference/elementwise_unary.h"
#include "backends/reference/kernel.h"
#include "backends/reference/util.h"
#include "ir/ops/ops.h"

namespace seqrun::reference {

namespace {

using elementwise::broadcast_inputs;
using elementwise::check_same_dtype;
using elementwise::dispatch_numeric;

// Where(cond, x, y): copies element bytes, so every dtype (f16/bf16 included) passes unchanged.
Status where_kernel(KernelContext& ctx) {
  const Tensor& cond = ctx.input(0);
  if (cond.dtype() != DType::boolean)
    return ctx.error("condition must be bool, got {}", dtype_name(cond.dtype()));
  SEQRUN_TRY(check_same_dtype(ctx, 1, 2));
  SEQRUN_ASSIGN(Shape out_shape, broadcast_inputs(ctx, 0, 3));
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  Tensor out = Tensor::empty(x.dtype(), out_shape);
  const size_t elem = dtype_size(x.dtype());
  const auto* c = cond.data<uint8_t>();
  const auto* xs = static_cast<const unsigned char*>(x.raw());
  const auto* ys = static_cast<const unsigned char*>(y.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_broadcast(out_shape, {cond.shape(), x.shape(), y.shape()}, [&](int64_t i, const int64_t* off) {
    const unsigned char* src = c[off[0]] ? xs + off[1] * elem : ys + off[2] * elem;
    std::memcpy(dst + i * elem, src, elem);
  });
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

Status cast_to(KernelContext& ctx, DType to) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() == DType::undefined) return ctx.error("input has no dtype");
  ctx.outputs.push_back(x.cast(to));  // a copy even when the dtype already matches
  return Status::ok();
}

Status cast_kernel(KernelContext& ctx) {
  Result<DType> to = ops::dtype_from_onnx_type(ctx.node.get_int("to", 0));
  if (!to) return ctx.error("{}", to.status().message());
  return cast_to(ctx, *to);
}

Status cast_like_kernel(KernelContext& ctx) {
  return cast_to(ctx, ctx.input(1).dtype());
}

Status identity_kernel(KernelContext& ctx) {
  ctx.outputs.push_back(ctx.input(0).clone());
  return Status::ok();
}

// Inference-mode Dropout: the data passes through; the optional mask is all true. Training mode
// is random unless ratio = 0, where it is the same identity, so only that case is accepted.
Status dropout_kernel(KernelContext& ctx) {
  if (ctx.has_input(2)) {
    const Tensor& mode = ctx.input(2);
    if (mode.numel() != 1) return ctx.error("training_mode must hold one value, has {}", mode.numel());
    double ratio = 0.5;  // ONNX default
    if (ctx.has_input(1)) {
      if (ctx.input(1).numel() != 1)
        return ctx.error("ratio must hold one value, has {}", ctx.input(1).numel());
      ratio = ctx.input(1).get_f64(0);
    }
    if (mode.get_f64(0) != 0 && ratio != 0) {
      return ctx.error("training_mode = true with ratio {} is not supported (inference only)", ratio);
    }
  }
  const Tensor& x = ctx.input(0);
  ctx.outputs.push_back(x.clone());
  if (ctx.node.num_outputs() > 1) {
    Tensor mask = Tensor::empty(DType::boolean, x.shape());
    std::memset(mask.raw(), 1, mask.nbytes());
    ctx.outputs.push_back(std::move(mask));
  }
  return Status::ok();
}

Status not_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::boolean) return ctx.error("input must be bool, got {}", dtype_name(x.dtype()));
  Tensor out = Tensor::empty(DType::boolean, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) out.data<uint8_t>()[i] = x.data<uint8_t>()[i] ? 0 : 1;
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

// Clip(x, min?, max?) = min(max(x, min), max): with min > max everything becomes max; NaN passes.
Status clip_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  for (int i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    if (ctx.input(i).dtype() != x.dtype()) {
      return ctx.error("bound {} has dtype {}, input has {}", i, dtype_name(ctx.input(i).dtype()),
                       dtype_name(x.dtype()));
    }
    if (ctx.input(i).numel() != 1)
      return ctx.error("bound {} must hold one value, has {}", i, ctx.input(i).numel());
  }
  return dispatch_numeric(ctx, x.dtype(), [&](auto* tag) -> Status {
    using T = std::remove_pointer_t<decltype(tag)>;
    const bool has_lo = ctx.has_input(1);
    const bool has_hi = ctx.has_input(2);
    const T lo = has_lo ? ctx.input(1).data<T>()[0] : T(0);
    const T hi = has_hi ? ctx.input(2).data<T>()[0] : T(0);
    Tensor out = Tensor::empty(x.dtype(), x.shape());
    const T* src = x.data<T>();
    T* dst = out.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      T v = src[i];
      if (has_lo && v < lo) v = lo;
      if (has_hi && v > hi) v = hi;
      dst[i] = v;
    }
    ctx.outputs.push_back(std::move(out));
    return Status::ok();
  });
}

}  // namespace

void register_elementwise_kernels(KernelRegistry& r) {
  elementwise::register_numeric_unary_kernels(r);
  elementwise::register_math_kernels(r);
  elementwise::register_activation_kernels(r);
  elementwise::register_binary_kernels(r);
  r.add("Where", where_kernel);
  r.add("Cast", cast_kernel);
  r.add("CastLike", cast_like_kernel);
  r.add("Identity", identity_kernel);
  r.add("Dropout", dropout_kernel);
  r.add("Not", not_kernel);
  r.add("Clip", clip_kernel, true);
}

}  // namespace seqrun::reference
