// Reference kernel: SelectiveScan (Mamba's selective scan; semantics in ir/ops/ssm.cpp).
//
// Layout: u, delta, z, y [B, D, L]; A [D, N]; Bmat, Cmat [B, N, L] or grouped [B, G, N, L]; state [D, N].
// One batch at a time, steps in order, channels inside a step: the only state is one [D, N] buffer
// (h0's slice or zeros), so no B×L×D×N tensor is ever formed. The readout sums in double. No parallel
// split; compute-bound on the exp (B·L·D·N of them).
#include <cmath>
#include <vector>

#include "backends/reference/kernel.h"

namespace seqrun::reference {
namespace {

// PyTorch's softplus (beta 1, threshold 20): x above the threshold passes through unchanged.
float softplus(float x) {
  return x > 20.0f ? x : std::log1p(std::exp(x));
}

Status check_shape(const KernelContext& ctx, int i, const char* name, const Shape& expected) {
  if (!ctx.has_input(i)) return Status::ok();
  if (ctx.input(i).dtype() != DType::f32) {
    return ctx.error("{} must be a float tensor, is {}", name, dtype_name(ctx.input(i).dtype()));
  }
  if (ctx.input(i).shape() != expected) {
    return ctx.error("{} must be {}, is {}", name, shape_to_string(expected),
                     shape_to_string(ctx.input(i).shape()));
  }
  return Status::ok();
}

Status run_selective_scan(KernelContext& ctx) {
  for (int i = 0; i < 5; ++i) {
    if (!ctx.has_input(i)) return ctx.error("input {} is required (u, delta, A, Bmat, Cmat)", i);
  }
  const Tensor& u = ctx.input(0);
  if (u.rank() != 3) return ctx.error("u must be [B, D, L], is {}", shape_to_string(u.shape()));
  const int64_t B = u.dim(0), D = u.dim(1), L = u.dim(2);
  const Tensor& A = ctx.input(2);
  if (A.rank() != 2 || A.dim(0) != D) {
    return ctx.error("A must be [D={}, N], is {}", D, shape_to_string(A.shape()));
  }
  const int64_t N = A.dim(1);
  const Tensor& Bm = ctx.input(3);
  const int64_t G = Bm.rank() == 4 ? Bm.dim(1) : 1;
  if (G <= 0 || D % G != 0) return ctx.error("Bmat's {} groups do not divide D = {}", G, D);
  const Shape bc_shape = Bm.rank() == 4 ? Shape{B, G, N, L} : Shape{B, N, L};
  SEQRUN_TRY(check_shape(ctx, 0, "u", {B, D, L}));
  SEQRUN_TRY(check_shape(ctx, 1, "delta", {B, D, L}));
  SEQRUN_TRY(check_shape(ctx, 2, "A", {D, N}));
  SEQRUN_TRY(check_shape(ctx, 3, "Bmat", bc_shape));
  SEQRUN_TRY(check_shape(ctx, 4, "Cmat", bc_shape));
  SEQRUN_TRY(check_shape(ctx, 5, "Dskip", {D}));
  SEQRUN_TRY(check_shape(ctx, 6, "z", {B, D, L}));
  SEQRUN_TRY(check_shape(ctx, 7, "delta_bias", {D}));
  SEQRUN_TRY(check_shape(ctx, 8, "h0", {B, D, N}));
  const int64_t softplus_flag = ctx.node.get_int("delta_softplus", 1);
  if (softplus_flag != 0 && softplus_flag != 1) {
    return ctx.error("delta_softplus must be 0 or 1, is {}", softplus_flag);
  }

  const float* ud = u.data<float>();
  const float* dd = ctx.input(1).data<float>();
  const float* ad = A.data<float>();
  const float* bd = Bm.data<float>();
  const float* cd = ctx.input(4).data<float>();
  const float* skip = ctx.has_input(5) ? ctx.input(5).data<float>() : nullptr;
  const float* zd = ctx.has_input(6) ? ctx.input(6).data<float>() : nullptr;
  const float* bias = ctx.has_input(7) ? ctx.input(7).data<float>() : nullptr;
  const float* h0 = ctx.has_input(8) ? ctx.input(8).data<float>() : nullptr;
  Tensor y = Tensor::empty(DType::f32, {B, D, L});
  Tensor h_out = Tensor::empty(DType::f32, {B, D, N});
  float* yd = y.data<float>();
  const int64_t channels_per_group = D / G;
  std::vector<float> state(static_cast<size_t>(D * N));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < D * N; ++i) state[i] = h0 != nullptr ? h0[b * D * N + i] : 0.0f;
    for (int64_t t = 0; t < L; ++t) {
      for (int64_t d = 0; d < D; ++d) {
        const int64_t at = (b * D + d) * L + t;  // [B, D, L] element (b, d, t)
        float dt = dd[at] + (bias != nullptr ? bias[d] : 0.0f);
        if (softplus_flag != 0) dt = softplus(dt);
        const float x = ud[at];
        const int64_t g = d / channels_per_group;
        const float* bt = bd + (b * G + g) * N * L + t;  // Bmat[b, g, n, t] = bt[n * L]
        const float* ct = cd + (b * G + g) * N * L + t;
        float* h = state.data() + d * N;
        double acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          h[n] = std::exp(dt * ad[d * N + n]) * h[n] + dt * bt[n * L] * x;
          acc += static_cast<double>(ct[n * L]) * h[n];
        }
        float out = static_cast<float>(acc) + (skip != nullptr ? skip[d] * x : 0.0f);
        if (zd != nullptr) out *= zd[at] / (1.0f + std::exp(-zd[at]));
        yd[at] = out;
      }
    }
    for (int64_t i = 0; i < D * N; ++i) h_out.data<float>()[b * D * N + i] = state[i];
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(y));
  if (ctx.node.num_outputs() > 1) ctx.outputs.push_back(std::move(h_out));
  return Status::ok();
}

}  // namespace

void register_ssm_kernels(KernelRegistry& r) {
  r.add("SelectiveScan", run_selective_scan, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
