// Reference kernels: TokenShift and RWKV4WKV, the token-mixing recurrences with explicit state
// (schemas and semantics: ir/ops/recurrence_ops.cpp).
//
// Layout: activations [B, T, C] row-major, states [B, C] (TokenShift) and [B, 3, C] (RWKV4WKV).
// TokenShift is a memory-bound copy; RWKV4WKV is a per-channel scan, O(B·T·C) exps, computed in
// double, one (batch, channel) at a time. No parallel split.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/reference/kernel.h"

namespace seqrun::reference {
namespace {

Status require_f32(const KernelContext& ctx, int i, const char* name) {
  if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
    return ctx.error("{} must be a float tensor, is {}", name, dtype_name(ctx.input(i).dtype()));
  }
  return Status::ok();
}

// shifted[b, t] = x[b, t-1], shifted[b, 0] = state[b] (zeros without state); new_state = x[b, T-1]
// (the old state when T = 0).
Status run_token_shift(KernelContext& ctx) {
  SEQRUN_TRY(require_f32(ctx, 0, "x"));
  SEQRUN_TRY(require_f32(ctx, 1, "state"));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 3) return ctx.error("x must be 3-D [B, T, C], is {}", shape_to_string(x.shape()));
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  const bool has_state = ctx.has_input(1);
  if (has_state && ctx.input(1).shape() != Shape{B, C}) {
    return ctx.error("state must be [B={}, C={}], is {}", B, C, shape_to_string(ctx.input(1).shape()));
  }
  Tensor shifted = Tensor::zeros(DType::f32, {B, T, C});
  Tensor last = Tensor::zeros(DType::f32, {B, C});
  const float* src = x.data<float>();
  float* dst = shifted.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    const float* prev = has_state ? ctx.input(1).data<float>() + b * C : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      float* row = dst + (b * T + t) * C;
      if (t > 0) {
        std::copy(src + (b * T + t - 1) * C, src + (b * T + t) * C, row);
      } else if (prev != nullptr) {
        std::copy(prev, prev + C, row);
      }
    }
    float* out_state = last.data<float>() + b * C;
    if (T > 0) {
      std::copy(src + (b * T + T - 1) * C, src + (b * T + T) * C, out_state);
    } else if (prev != nullptr) {
      std::copy(prev, prev + C, out_state);
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(shifted));
  if (ctx.node.num_outputs() > 1) ctx.outputs.push_back(std::move(last));
  return Status::ok();
}

// Per (b, c), with per-step log decay w and bonus u:
//   wkv_t = (Σ_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u + k_t} v_t) / (Σ_{i<t} e^{(t-1-i)w + k_i} + e^{u + k_t}),
// the history carried as (num, den, p) meaning num·e^p and den·e^p, p the running maximum exponent so no
// exp ever overflows. den = 0 is the empty history (p is then ignored), so a zero state is a fresh one.
Status run_rwkv4_wkv(KernelContext& ctx) {
  const char* names[5] = {"k", "v", "time_decay", "time_first", "state"};
  for (int i = 0; i < 5; ++i) SEQRUN_TRY(require_f32(ctx, i, names[i]));
  const Tensor& k = ctx.input(0);
  const Tensor& v = ctx.input(1);
  if (k.rank() != 3) return ctx.error("k must be 3-D [B, T, C], is {}", shape_to_string(k.shape()));
  const int64_t B = k.dim(0), T = k.dim(1), C = k.dim(2);
  if (v.shape() != k.shape()) {
    return ctx.error("v {} must have the shape of k {}", shape_to_string(v.shape()),
                     shape_to_string(k.shape()));
  }
  for (int i = 2; i < 4; ++i) {
    if (ctx.input(i).shape() != Shape{C}) {
      return ctx.error("{} must be [C={}], is {}", names[i], C, shape_to_string(ctx.input(i).shape()));
    }
  }
  const bool has_state = ctx.has_input(4);
  if (has_state && ctx.input(4).shape() != Shape{B, 3, C}) {
    return ctx.error("state must be [B={}, 3, C={}], is {}", B, C, shape_to_string(ctx.input(4).shape()));
  }
  const float* w = ctx.input(2).data<float>();
  const float* u = ctx.input(3).data<float>();
  Tensor out = Tensor::zeros(DType::f32, {B, T, C});
  Tensor new_state = Tensor::zeros(DType::f32, {B, 3, C});
  const double kEmpty = -std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      double num = 0.0, den = 0.0, p = kEmpty;
      if (has_state) {
        const float* s = ctx.input(4).data<float>() + b * 3 * C;
        num = s[c];
        den = s[C + c];
        p = den > 0.0 ? static_cast<double>(s[2 * C + c]) : kEmpty;
        if (!(den > 0.0)) num = den = 0.0;
      }
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * T + t) * C + c;
        const double kt = k.data<float>()[i], vt = v.data<float>()[i];
        // Output: the history plus the current token weighted by e^{u + k}.
        const double ww = u[c] + kt;
        double q = std::max(p, ww);
        double e_hist = std::exp(p - q), e_cur = std::exp(ww - q);
        out.data<float>()[i] = static_cast<float>((e_hist * num + e_cur * vt) / (e_hist * den + e_cur));
        // State: decay the history by e^w, then add the current token with weight e^k.
        const double decayed = p + w[c];
        q = std::max(decayed, kt);
        e_hist = std::exp(decayed - q);
        e_cur = std::exp(kt - q);
        num = e_hist * num + e_cur * vt;
        den = e_hist * den + e_cur;
        p = q;
      }
      float* s = new_state.data<float>() + b * 3 * C;
      s[c] = static_cast<float>(num);
      s[C + c] = static_cast<float>(den);
      s[2 * C + c] = den > 0.0 ? static_cast<float>(p) : 0.0f;
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(out));
  if (ctx.node.num_outputs() > 1) ctx.outputs.push_back(std::move(new_state));
  return Status::ok();
}

}  // namespace

void register_recurrence_kernels(KernelRegistry& r) {
  r.add("TokenShift", run_token_shift, /*compute_in_f32=*/true);
  r.add("RWKV4WKV", run_rwkv4_wkv, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
