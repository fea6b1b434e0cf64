// Reference kernel: MixedChunkAttention (GAU/FLASH; schema and formula in ir/ops/mixed_chunk_attention.cpp).
//
// Layout: every input [B, T, D] row-major, output [B, T, E]. Per batch row, chunks are visited in order;
// inside a chunk the squared-ReLU scores are formed one (query, key) pair at a time, and the linear part
// reads a [Sl, E] state that holds lin_scale · Σ lin_k_jᵀ v_j over the earlier chunks (causal) or over the
// whole sequence (non-causal). Double-precision accumulation. Compute-bound O(B·T·(C·(Sq + E) + Sl·E));
// no parallel split.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

// state += lin_scale · Σ_{t in [begin, end)} lin_k_tᵀ v_t for one batch row.
void accumulate_state(const float* lin_k, const float* v, int64_t begin, int64_t end, int64_t sl, int64_t e,
                      double lin_scale, std::vector<double>& state) {
  for (int64_t t = begin; t < end; ++t) {
    const float* kt = lin_k + t * sl;
    const float* vt = v + t * e;
    for (int64_t r = 0; r < sl; ++r) {
      const double kr = lin_scale * kt[r];
      for (int64_t c = 0; c < e; ++c) state[r * e + c] += kr * vt[c];
    }
  }
}

Status run_mixed_chunk_attention(KernelContext& ctx) {
  const char* names[6] = {"quad_q", "quad_k", "lin_q", "lin_k", "value", "bias"};
  for (int i = 0; i < 6; ++i) {
    if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
      return ctx.error("{} must be a float tensor, is {}", names[i], dtype_name(ctx.input(i).dtype()));
    }
  }
  const int64_t chunk = ctx.node.get_int("chunk_size", 0);
  if (chunk <= 0) return ctx.error("chunk_size must be positive, is {}", chunk);
  const bool causal = ctx.node.get_int("causal", 1) != 0;
  const double quad_scale =
      ctx.node.has_attr("quad_scale") ? ctx.node.get_float("quad_scale") : 1.0 / static_cast<double>(chunk);
  const double lin_scale =
      ctx.node.has_attr("lin_scale") ? ctx.node.get_float("lin_scale") : 1.0 / static_cast<double>(chunk);
  for (int i = 0; i < 5; ++i) {
    if (ctx.input(i).rank() != 3) {
      return ctx.error("{} must be 3-D [B, T, D], is {}", names[i], shape_to_string(ctx.input(i).shape()));
    }
  }
  const Tensor& quad_q = ctx.input(0);
  const Tensor& quad_k = ctx.input(1);
  const Tensor& lin_q = ctx.input(2);
  const Tensor& lin_k = ctx.input(3);
  const Tensor& v = ctx.input(4);
  const int64_t B = v.dim(0), T = v.dim(1), E = v.dim(2);
  const int64_t sq = quad_q.dim(2), sl = lin_q.dim(2);
  if (quad_q.shape() != Shape{B, T, sq} || quad_k.shape() != Shape{B, T, sq} ||
      lin_q.shape() != Shape{B, T, sl} || lin_k.shape() != Shape{B, T, sl}) {
    return ctx.error(
        "quad_q {} and quad_k {} must be [B, T, Sq], lin_q {} and lin_k {} [B, T, Sl], with value {} [B, T, "
        "E]",
        shape_to_string(quad_q.shape()), shape_to_string(quad_k.shape()), shape_to_string(lin_q.shape()),
        shape_to_string(lin_k.shape()), shape_to_string(v.shape()));
  }
  const float* bias = nullptr;
  if (ctx.has_input(5)) {
    if (ctx.input(5).shape() != Shape{chunk, chunk}) {
      return ctx.error("bias must be [chunk_size = {}, chunk_size], is {}", chunk,
                       shape_to_string(ctx.input(5).shape()));
    }
    bias = ctx.input(5).data<float>();
  }

  Tensor out = Tensor::zeros(DType::f32, {B, T, E});
  std::vector<double> state(sl * E), acc(E);
  for (int64_t b = 0; b < B; ++b) {
    const float* qq = quad_q.data<float>() + b * T * sq;
    const float* qk = quad_k.data<float>() + b * T * sq;
    const float* lq = lin_q.data<float>() + b * T * sl;
    const float* lk = lin_k.data<float>() + b * T * sl;
    const float* vb = v.data<float>() + b * T * E;
    std::fill(state.begin(), state.end(), 0.0);
    if (!causal) accumulate_state(lk, vb, 0, T, sl, E, lin_scale, state);
    for (int64_t begin = 0; begin < T; begin += chunk) {
      const int64_t end = std::min(begin + chunk, T);
      for (int64_t t = begin; t < end; ++t) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const int64_t last_key = causal ? t + 1 : end;
        for (int64_t j = begin; j < last_key; ++j) {
          double score = 0.0;
          for (int64_t r = 0; r < sq; ++r) score += static_cast<double>(qq[t * sq + r]) * qk[j * sq + r];
          score = quad_scale * score + (bias != nullptr ? bias[(t - begin) * chunk + (j - begin)] : 0.0);
          const double weight = score > 0.0 ? score * score : 0.0;
          for (int64_t c = 0; c < E; ++c) acc[c] += weight * vb[j * E + c];
        }
        for (int64_t r = 0; r < sl; ++r) {
          const double qr = lq[t * sl + r];
          for (int64_t c = 0; c < E; ++c) acc[c] += qr * state[r * E + c];
        }
        float* ot = out.data<float>() + (b * T + t) * E;
        for (int64_t c = 0; c < E; ++c) ot[c] = static_cast<float>(acc[c]);
      }
      if (causal) accumulate_state(lk, vb, begin, end, sl, E, lin_scale, state);
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

}  // namespace

void register_mixed_chunk_attention_kernels(KernelRegistry& r) {
  r.add("MixedChunkAttention", run_mixed_chunk_attention, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
