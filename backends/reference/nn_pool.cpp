// Reference kernels for pooling: MaxPool (with optional Indices), AveragePool, LpPool and the
// global max/average pools, all N-d over X [N, C, spatial...].
//
// One loop per output position over the window's taps; taps in the padding are skipped (max, Lp)
// or counted per count_include_pad (average). Memory-bound, single-threaded.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/reference/kernel.h"
#include "backends/reference/nn_window.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

using namespace nn_detail;

Status require_nchw(const KernelContext& ctx, const Tensor& x) {
  if (x.rank() < 3)
    return ctx.error("X must be [N, C, spatial...] (rank >= 3), got {}", shape_to_string(x.shape()));
  return Status::ok();
}

Result<WindowGeometry> pool_window(const KernelContext& ctx, const Tensor& x) {
  SEQRUN_TRY(require_nchw(ctx, x));
  std::vector<int64_t> kernel = ctx.node.get_ints("kernel_shape");
  if (kernel.empty()) return ctx.error("kernel_shape is required");
  return resolve_window(ctx, std::vector<int64_t>(x.shape().begin() + 2, x.shape().end()), kernel,
                        ctx.node.get_int("ceil_mode") != 0);
}

Shape pooled_shape(const Tensor& x, const WindowGeometry& geo) {
  Shape s = {x.dim(0), x.dim(1)};
  s.insert(s.end(), geo.out.begin(), geo.out.end());
  return s;
}

// Calls visit(o, taps) for every output position o of one [spatial...] plane, where taps lists the
// (padded-coordinate) positions of the window: `inside` = within the input, `offset` = row-major
// offset into the plane, `in_padding` = within [-pad_begin, in + pad_end) (the explicitly padded input).
struct Tap {
  bool inside;
  bool in_padding;
  int64_t offset;
  int64_t column_major_offset;
};

template <typename Visit>
void for_each_window(const WindowGeometry& geo, Visit&& visit) {
  const size_t n = geo.rank();
  const int64_t out_plane = product(geo.out), k_plane = product(geo.kernel);
  if (out_plane == 0 || k_plane == 0) return;
  std::vector<Tap> taps(static_cast<size_t>(k_plane));
  std::vector<int64_t> oi(n, 0);
  for (int64_t o = 0; o < out_plane; ++o, next_index(oi, geo.out)) {
    std::vector<int64_t> ki(n, 0);
    for (int64_t t = 0; t < k_plane; ++t, next_index(ki, geo.kernel)) {
      Tap tap{true, true, 0, 0};
      int64_t column_stride = 1;
      for (size_t i = 0; i < n; ++i) {
        const int64_t p = oi[i] * geo.strides[i] - geo.pad_begin[i] + ki[i] * geo.dilations[i];
        tap.inside = tap.inside && p >= 0 && p < geo.in[i];
        tap.in_padding = tap.in_padding && p >= -geo.pad_begin[i] && p < geo.in[i] + geo.pad_end[i];
        tap.offset = tap.offset * geo.in[i] + p;
        tap.column_major_offset += p * column_stride;
        column_stride *= geo.in[i];
      }
      taps[t] = tap;
    }
    visit(o, taps);
  }
}

template <typename T>
Status max_pool_typed(KernelContext& ctx, const Tensor& x, const WindowGeometry& geo) {
  const int64_t storage_order = ctx.node.get_int("storage_order");
  if (storage_order != 0 && storage_order != 1)
    return ctx.error("storage_order must be 0 or 1, got {}", storage_order);
  const Shape out_shape = pooled_shape(x, geo);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, x.dtype(), out_shape));
  const bool want_indices = ctx.node.num_outputs() > 1;
  Tensor indices;
  if (want_indices) {
    SEQRUN_ASSIGN(indices, alloc_output(ctx, DType::i64, out_shape));
  }
  const int64_t planes = x.dim(0) * x.dim(1), in_plane = product(geo.in), out_plane = product(geo.out);
  const T* xd = x.data<T>();
  T* yd = y.data<T>();
  int64_t* id = want_indices ? indices.data<int64_t>() : nullptr;
  T lowest = std::numeric_limits<T>::lowest();
  if constexpr (std::is_floating_point_v<T>) lowest = -std::numeric_limits<T>::infinity();
  for_each_window(geo, [&](int64_t o, const std::vector<Tap>& taps) {
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* xp = xd + pl * in_plane;
      T best = lowest;
      int64_t best_tap = -1;
      for (size_t t = 0; t < taps.size(); ++t) {
        if (!taps[t].inside) continue;
        const T v = xp[taps[t].offset];
        if (best_tap < 0 || v > best) {
          best = v;
          best_tap = static_cast<int64_t>(t);
        }
      }
      yd[pl * out_plane + o] = best;
      if (id != nullptr) {
        const int64_t within = best_tap < 0         ? 0
                               : storage_order == 0 ? taps[best_tap].offset
                                                    : taps[best_tap].column_major_offset;
        id[pl * out_plane + o] = pl * in_plane + within;
      }
    }
  });
  ctx.outputs = {y};
  if (want_indices) ctx.outputs.push_back(indices);
  return Status::ok();
}

Status max_pool_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SEQRUN_ASSIGN(WindowGeometry geo, pool_window(ctx, x));
  Status st = SEQRUN_DISPATCH_NUMERIC(x.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return max_pool_typed<T>(ctx, x, geo);
  });
  return st.is_ok() ? st : st.with_context(ctx.node.describe());
}

Status require_f32(const KernelContext& ctx, const Tensor& x) {
  if (x.dtype() != DType::f32) return ctx.error("X must be a float tensor, got {}", dtype_name(x.dtype()));
  return Status::ok();
}

Status average_pool_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SEQRUN_TRY(require_f32(ctx, x));
  SEQRUN_ASSIGN(WindowGeometry geo, pool_window(ctx, x));
  const bool include_pad = ctx.node.get_int("count_include_pad") != 0;
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, pooled_shape(x, geo)));
  const int64_t planes = x.dim(0) * x.dim(1), in_plane = product(geo.in), out_plane = product(geo.out);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for_each_window(geo, [&](int64_t o, const std::vector<Tap>& taps) {
    // Taps added by ceil_mode beyond the explicit padding never count.
    int64_t count = 0;
    for (const Tap& t : taps) count += include_pad ? t.in_padding : t.inside;
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* xp = xd + pl * in_plane;
      float sum = 0.0f;
      for (const Tap& t : taps) {
        if (t.inside) sum += xp[t.offset];
      }
      yd[pl * out_plane + o] = count > 0 ? sum / static_cast<float>(count) : 0.0f;
    }
  });
  ctx.outputs = {y};
  return Status::ok();
}

Status lp_pool_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SEQRUN_TRY(require_f32(ctx, x));
  SEQRUN_ASSIGN(WindowGeometry geo, pool_window(ctx, x));
  const int64_t p = ctx.node.get_int("p", 2);
  if (p <= 0) return ctx.error("p must be positive, got {}", p);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, pooled_shape(x, geo)));
  const int64_t planes = x.dim(0) * x.dim(1), in_plane = product(geo.in), out_plane = product(geo.out);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  const float pf = static_cast<float>(p);
  for_each_window(geo, [&](int64_t o, const std::vector<Tap>& taps) {
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* xp = xd + pl * in_plane;
      float sum = 0.0f;
      for (const Tap& t : taps) {
        if (t.inside) sum += std::pow(std::fabs(xp[t.offset]), pf);
      }
      yd[pl * out_plane + o] = std::pow(sum, 1.0f / pf);
    }
  });
  ctx.outputs = {y};
  return Status::ok();
}

Shape global_shape(const Tensor& x) {
  Shape s(x.rank(), 1);
  s[0] = x.dim(0);
  s[1] = x.dim(1);
  return s;
}

Status global_average_pool_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SEQRUN_TRY(require_f32(ctx, x));
  SEQRUN_TRY(require_nchw(ctx, x));
  Tensor y = Tensor::empty(DType::f32, global_shape(x));
  const int64_t planes = x.dim(0) * x.dim(1), plane = x.numel() / std::max<int64_t>(planes, 1);
  for (int64_t pl = 0; pl < planes; ++pl) {
    double sum = 0.0;
    for (int64_t i = 0; i < plane; ++i) sum += x.data<float>()[pl * plane + i];
    y.data<float>()[pl] = plane > 0 ? static_cast<float>(sum / static_cast<double>(plane)) : 0.0f;
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status global_max_pool_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SEQRUN_TRY(require_nchw(ctx, x));
  Tensor y = Tensor::empty(x.dtype(), global_shape(x));
  const int64_t planes = x.dim(0) * x.dim(1), plane = x.numel() / std::max<int64_t>(planes, 1);
  Status st = SEQRUN_DISPATCH_NUMERIC(x.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* xp = x.data<T>() + pl * plane;
      T best = plane > 0 ? xp[0] : T{};
      for (int64_t i = 1; i < plane; ++i) best = xp[i] > best ? xp[i] : best;
      y.data<T>()[pl] = best;
    }
    return Status::ok();
  });
  if (!st) return st.with_context(ctx.node.describe());
  ctx.outputs = {y};
  return Status::ok();
}

}  // namespace

void register_pool_kernels(KernelRegistry& r) {
  r.add("MaxPool", max_pool_kernel, true);
  r.add("AveragePool", average_pool_kernel, true);
  r.add("LpPool", lp_pool_kernel, true);
  r.add("GlobalAveragePool", global_average_pool_kernel, true);
  r.add("GlobalMaxPool", global_max_pool_kernel, true);
}

}  // namespace seqrun::reference
