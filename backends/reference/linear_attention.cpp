// Reference kernels: recurrent and positional ops of the attention family — LinearAttention
// (ONNX 27), CausalConvWithState (ONNX 27), RotaryEmbedding (ONNX 23).
//
// LinearAttention runs the recurrence token by token on a [dk, dv] state per (batch, kv head), in
// double precision; query head h reads the state of kv head h / (Hq/Hkv). Compute-bound
// O(B·T·Hkv·dk·dv); no parallel split.
#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

Status require_f32(const KernelContext& ctx, int i, const char* name) {
  if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
    return ctx.error("{} must be a float tensor, is {}", name, dtype_name(ctx.input(i).dtype()));
  }
  return Status::ok();
}

// update_rule: linear   S = S + k vᵀ
//              gated    S = exp(g) ⊙ S + k vᵀ
//              delta    S = S + β k (v − Sᵀk)ᵀ
//              gated_delta: S' = exp(g) ⊙ S, then the delta update on S'.
//              generalized_delta (seqrun, RWKV-7): S = exp(g) ⊙ S + b (aᵀS) + k vᵀ, a and b inputs 7, 8.
// Output o_t = scale · q_tᵀ S_t for every query head of the group; with the bonus u (input 6, RWKV)
// o_t = scale · (q_tᵀ S_{t-1} + ((q_t ⊙ u)·k_t) v_t) instead. decay may broadcast over B and T.
Status run_linear_attention(KernelContext& ctx) {
  const Node& node = ctx.node;
  const char* names[9] = {"query", "key",   "value",   "past_state", "decay",
                          "beta",  "bonus", "delta_a", "delta_b"};
  for (int i = 0; i < 9; ++i) SEQRUN_TRY(require_f32(ctx, i, names[i]));
  const std::string rule = node.get_string("update_rule", "gated_delta");
  const bool generalized = rule == "generalized_delta";
  const bool gated = rule == "gated" || rule == "gated_delta" || generalized;
  const bool delta = rule == "delta" || rule == "gated_delta";
  if (!gated && !delta && rule != "linear") {
    return ctx.error("unknown update_rule '{}' (linear, gated, delta, gated_delta, generalized_delta)", rule);
  }
  const bool bonus = ctx.has_input(6);
  if (bonus && (delta || generalized))
    return ctx.error("bonus is only defined for the linear and gated rules");
  const int64_t hq = node.get_int("q_num_heads", 0);
  const int64_t hkv = node.get_int("kv_num_heads", 0);
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    return ctx.error("q_num_heads {} must be a positive multiple of kv_num_heads {}", hq, hkv);
  }
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) {
    return ctx.error("query, key, value must be 3-D [B, T, H*D], are {}, {}, {}", shape_to_string(q.shape()),
                     shape_to_string(k.shape()), shape_to_string(v.shape()));
  }
  const int64_t B = q.dim(0), T = q.dim(1);
  if (q.dim(2) % hq != 0 || v.dim(2) % hkv != 0) {
    return ctx.error("query hidden {} / value hidden {} not divisible by q_num_heads {} / kv_num_heads {}",
                     q.dim(2), v.dim(2), hq, hkv);
  }
  const int64_t dk = q.dim(2) / hq, dv = v.dim(2) / hkv;
  if (k.shape() != Shape{B, T, hkv * dk} || v.dim(0) != B || v.dim(1) != T) {
    return ctx.error("key {} / value {} do not match query {} (key must be [B, T, kv_num_heads*dk])",
                     shape_to_string(k.shape()), shape_to_string(v.shape()), shape_to_string(q.shape()));
  }
  if (gated && !ctx.has_input(4)) return ctx.error("update_rule '{}' needs the decay input", rule);
  if (delta && !ctx.has_input(5)) return ctx.error("update_rule '{}' needs the beta input", rule);
  int64_t decay_width = 0, beta_width = 0;   // per-token entries: Hkv*dk or Hkv (decay); Hkv or 1 (beta)
  int64_t decay_batch = 0, decay_steps = 0;  // decay's first two dims: B or 1, T or 1 (broadcast)
  if (gated) {
    const Tensor& g = ctx.input(4);
    if (g.rank() != 3 || (g.dim(0) != B && g.dim(0) != 1) || (g.dim(1) != T && g.dim(1) != 1) ||
        (g.dim(2) != hkv * dk && g.dim(2) != hkv)) {
      return ctx.error("decay must be [B|1, T|1, kv_num_heads*dk] or [B|1, T|1, kv_num_heads], is {}",
                       shape_to_string(g.shape()));
    }
    decay_width = g.dim(2), decay_batch = g.dim(0), decay_steps = g.dim(1);
  }
  if (bonus && ctx.input(6).numel() != hkv * dk) {
    return ctx.error("bonus must be [kv_num_heads*dk = {}], is {}", hkv * dk,
                     shape_to_string(ctx.input(6).shape()));
  }
  for (int i = 7; generalized && i < 9; ++i) {
    if (!ctx.has_input(i) || ctx.input(i).shape() != k.shape()) {
      return ctx.error("update_rule 'generalized_delta' needs {} of the key's shape {}", names[i],
                       shape_to_string(k.shape()));
    }
  }
  if (delta) {
    const Tensor& beta = ctx.input(5);
    if (beta.rank() != 3 || beta.dim(0) != B || beta.dim(1) != T ||
        (beta.dim(2) != hkv && beta.dim(2) != 1)) {
      return ctx.error("beta must be [B, T, kv_num_heads] or [B, T, 1], is {}",
                       shape_to_string(beta.shape()));
    }
    beta_width = beta.dim(2);
  }
  if (ctx.has_input(3) && ctx.input(3).shape() != Shape{B, hkv, dk, dv}) {
    return ctx.error("past_state must be [B={}, Hkv={}, dk={}, dv={}], is {}", B, hkv, dk, dv,
                     shape_to_string(ctx.input(3).shape()));
  }
  const double scale =
      node.has_attr("scale") ? node.get_float("scale") : 1.0 / std::sqrt(static_cast<double>(dk));
  const int64_t group = hq / hkv;

  Tensor out = Tensor::zeros(DType::f32, {B, T, hq * dv});
  Tensor present = Tensor::zeros(DType::f32, {B, hkv, dk, dv});
  std::vector<double> state(dk * dv), retrieved(dv), update(dv);
  // The query heads' outputs read from the current `state`; with the bonus they also add the current token.
  auto emit_outputs = [&](int64_t b, int64_t h, int64_t t, const float* kt, const float* vt) {
    for (int64_t g = 0; g < group; ++g) {
      const int64_t qh = h * group + g;
      const float* qt = q.data<float>() + (b * T + t) * hq * dk + qh * dk;
      float* ot = out.data<float>() + (b * T + t) * hq * dv + qh * dv;
      double weight = 0.0;  // (q ⊙ u)·k
      for (int64_t r = 0; bonus && r < dk; ++r) {
        weight += static_cast<double>(qt[r]) * ctx.input(6).data<float>()[h * dk + r] * kt[r];
      }
      for (int64_t c = 0; c < dv; ++c) {
        double acc = bonus ? weight * vt[c] : 0.0;
        for (int64_t r = 0; r < dk; ++r) acc += qt[r] * state[r * dv + c];
        ot[c] = static_cast<float>(scale * acc);
      }
    }
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < hkv; ++h) {
      for (int64_t i = 0; i < dk * dv; ++i) {
        state[i] = ctx.has_input(3) ? ctx.input(3).data<float>()[(b * hkv + h) * dk * dv + i] : 0.0;
      }
      for (int64_t t = 0; t < T; ++t) {
        const float* kt = k.data<float>() + (b * T + t) * hkv * dk + h * dk;
        const float* vt = v.data<float>() + (b * T + t) * hkv * dv + h * dv;
        if (bonus) emit_outputs(b, h, t, kt, vt);
        if (generalized) {  // aᵀS of the state before this token's decay, kept in `retrieved`
          const float* at = ctx.input(7).data<float>() + (b * T + t) * hkv * dk + h * dk;
          for (int64_t c = 0; c < dv; ++c) {
            double acc = 0.0;
            for (int64_t r = 0; r < dk; ++r) acc += at[r] * state[r * dv + c];
            retrieved[c] = acc;
          }
        }
        if (gated) {
          const int64_t decay_row = (decay_batch == 1 ? 0 : b) * decay_steps + (decay_steps == 1 ? 0 : t);
          const float* g = ctx.input(4).data<float>() + decay_row * decay_width;
          for (int64_t r = 0; r < dk; ++r) {
            const double factor = std::exp(decay_width == hkv ? g[h] : g[h * dk + r]);
            for (int64_t c = 0; c < dv; ++c) state[r * dv + c] *= factor;
          }
        }
        if (delta) {
          const float* bp = ctx.input(5).data<float>() + (b * T + t) * beta_width;
          const double beta = beta_width == 1 ? bp[0] : bp[h];
          for (int64_t c = 0; c < dv; ++c) {
            double acc = 0.0;
            for (int64_t r = 0; r < dk; ++r) acc += state[r * dv + c] * kt[r];
            retrieved[c] = acc;
          }
          for (int64_t c = 0; c < dv; ++c) update[c] = beta * (vt[c] - retrieved[c]);
        } else {
          for (int64_t c = 0; c < dv; ++c) update[c] = vt[c];
        }
        for (int64_t r = 0; r < dk; ++r) {
          for (int64_t c = 0; c < dv; ++c) state[r * dv + c] += kt[r] * update[c];
        }
        if (generalized) {
          const float* bt = ctx.input(8).data<float>() + (b * T + t) * hkv * dk + h * dk;
          for (int64_t r = 0; r < dk; ++r) {
            for (int64_t c = 0; c < dv; ++c) state[r * dv + c] += bt[r] * retrieved[c];
          }
        }
        if (!bonus) emit_outputs(b, h, t, kt, vt);
      }
      float* ps = present.data<float>() + (b * hkv + h) * dk * dv;
      for (int64_t i = 0; i < dk * dv; ++i) ps[i] = static_cast<float>(state[i]);
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(out));
  if (node.num_outputs() > 1) ctx.outputs.push_back(std::move(present));
  return Status::ok();
}

// CausalConvWithState: per (b, c), seq = concat(past_state[b, c], input[b, c]) (zeros without
// past_state); output[t] = act(bias[c] + Σ_k weight[c, 0, k] · seq[t + k]); present = last K-1 of seq.
Status run_causal_conv(KernelContext& ctx) {
  const char* names[4] = {"input", "weight", "bias", "past_state"};
  for (int i = 0; i < 4; ++i) SEQRUN_TRY(require_f32(ctx, i, names[i]));
  const std::string activation = ctx.node.get_string("activation", "none");
  const bool silu = activation == "silu" || activation == "swish";
  if (!silu && activation != "none") {
    return ctx.error("unknown activation '{}' (none, silu, swish)", activation);
  }
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.rank() != 3) return ctx.error("input must be 3-D [B, C, L], is {}", shape_to_string(x.shape()));
  const int64_t B = x.dim(0), C = x.dim(1), L = x.dim(2);
  if (w.rank() != 3 || w.dim(0) != C || w.dim(1) != 1 || w.dim(2) < 1) {
    return ctx.error("weight must be [C={}, 1, K>=1], is {}", C, shape_to_string(w.shape()));
  }
  const int64_t K = w.dim(2), P = K - 1;
  if (ctx.has_input(2) && ctx.input(2).shape() != Shape{C}) {
    return ctx.error("bias must be [C={}], is {}", C, shape_to_string(ctx.input(2).shape()));
  }
  if (ctx.has_input(3) && ctx.input(3).shape() != Shape{B, C, P}) {
    return ctx.error("past_state must be [B={}, C={}, K-1={}], is {}", B, C, P,
                     shape_to_string(ctx.input(3).shape()));
  }
  Tensor out = Tensor::empty(DType::f32, {B, C, L});
  Tensor present = Tensor::empty(DType::f32, {B, C, P});
  std::vector<float> seq(P + L);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t i = 0; i < P; ++i)
        seq[i] = ctx.has_input(3) ? ctx.input(3).data<float>()[(b * C + c) * P + i] : 0.f;
      for (int64_t i = 0; i < L; ++i) seq[P + i] = x.data<float>()[(b * C + c) * L + i];
      const float* wc = w.data<float>() + c * K;
      const double bias = ctx.has_input(2) ? ctx.input(2).data<float>()[c] : 0.0;
      for (int64_t t = 0; t < L; ++t) {
        double acc = bias;
        for (int64_t j = 0; j < K; ++j) acc += static_cast<double>(wc[j]) * seq[t + j];
        if (silu) acc = acc / (1.0 + std::exp(-acc));
        out.data<float>()[(b * C + c) * L + t] = static_cast<float>(acc);
      }
      for (int64_t i = 0; i < P; ++i) present.data<float>()[(b * C + c) * P + i] = seq[L + i];
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(out));
  if (ctx.node.num_outputs() > 1) ctx.outputs.push_back(std::move(present));
  return Status::ok();
}

// RotaryEmbedding: input [B, H, S, D] or [B, S, H*D] (num_heads given). The first
// rotary_embedding_dim (default D) channels of each head rotate by (cos, sin) of the token's
// position: halves (x[i], x[i + rd/2]) or, interleaved, pairs (x[2i], x[2i+1]). Caches are
// [max_pos, >= rd/2] indexed by position_ids [B, S], or [B, S, >= rd/2] without position_ids.
Status run_rotary_embedding(KernelContext& ctx) {
  for (int i = 0; i < 3; ++i)
    SEQRUN_TRY(require_f32(ctx, i, i == 0 ? "input" : i == 1 ? "cos_cache" : "sin_cache"));
  const Tensor& x = ctx.input(0);
  const Tensor& cos_cache = ctx.input(1);
  const Tensor& sin_cache = ctx.input(2);
  const bool interleaved = ctx.node.get_int("interleaved", 0) != 0;
  int64_t B = 0, H = 0, S = 0, D = 0;
  if (x.rank() == 4) {
    B = x.dim(0), H = x.dim(1), S = x.dim(2), D = x.dim(3);
  } else if (x.rank() == 3) {
    H = ctx.node.get_int("num_heads", 0);
    if (H <= 0 || x.dim(2) % H != 0) {
      return ctx.error("3-D input {} needs num_heads dividing its hidden size, num_heads is {}",
                       shape_to_string(x.shape()), H);
    }
    B = x.dim(0), S = x.dim(1), D = x.dim(2) / H;
  } else {
    return ctx.error("input must be 3-D or 4-D, is {}", shape_to_string(x.shape()));
  }
  const int64_t rd_attr = ctx.node.get_int("rotary_embedding_dim", 0);
  const int64_t rd = rd_attr > 0 ? rd_attr : D;
  if (rd > D || rd % 2 != 0) {
    return ctx.error("rotary_embedding_dim {} must be even and <= head size {}", rd, D);
  }
  const int64_t half = rd / 2;
  if (cos_cache.shape() != sin_cache.shape()) {
    return ctx.error("cos_cache {} and sin_cache {} differ", shape_to_string(cos_cache.shape()),
                     shape_to_string(sin_cache.shape()));
  }
  std::vector<int64_t> positions;  // empty: caches are per (b, s)
  if (ctx.has_input(3)) {
    const Tensor& pos = ctx.input(3);
    if (!is_integer(pos.dtype()) || pos.shape() != Shape{B, S}) {
      return ctx.error("position_ids must be integer [B={}, S={}], is {} {}", B, S, dtype_name(pos.dtype()),
                       shape_to_string(pos.shape()));
    }
    if (cos_cache.rank() != 2 || cos_cache.dim(1) < half) {
      return ctx.error("with position_ids, caches must be [max_position, >= {}], are {}", half,
                       shape_to_string(cos_cache.shape()));
    }
    positions = pos.to_i64_vector();
    for (int64_t p : positions) {
      if (p < 0 || p >= cos_cache.dim(0)) {
        return ctx.error("position id {} out of range [0, {})", p, cos_cache.dim(0));
      }
    }
  } else if (cos_cache.rank() != 3 || cos_cache.dim(0) != B || cos_cache.dim(1) != S ||
             cos_cache.dim(2) < half) {
    return ctx.error("without position_ids, caches must be [B={}, S={}, >= {}], are {}", B, S, half,
                     shape_to_string(cos_cache.shape()));
  }
  const int64_t width = cos_cache.dim(-1);
  Tensor out = Tensor::empty(DType::f32, x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      const int64_t cache_row = positions.empty() ? b * S + s : positions[b * S + s];
      const float* cs = cos_cache.data<float>() + cache_row * width;
      const float* sn = sin_cache.data<float>() + cache_row * width;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t off = x.rank() == 4 ? ((b * H + h) * S + s) * D : (b * S + s) * H * D + h * D;
        const float* xi = src + off;
        float* yo = dst + off;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i1 = interleaved ? 2 * i : i;
          const int64_t i2 = interleaved ? 2 * i + 1 : i + half;
          const double x1 = xi[i1], x2 = xi[i2];
          yo[i1] = static_cast<float>(cs[i] * x1 - sn[i] * x2);
          yo[i2] = static_cast<float>(sn[i] * x1 + cs[i] * x2);
        }
        for (int64_t i = rd; i < D; ++i) yo[i] = xi[i];
      }
    }
  }
  ctx.outputs = {std::move(out)};
  return Status::ok();
}

}  // namespace

void register_linear_attention_kernels(KernelRegistry& r) {
  r.add("LinearAttention", run_linear_attention, /*compute_in_f32=*/true);
  r.add("CausalConvWithState", run_causal_conv, /*compute_in_f32=*/true);
  r.add("RotaryEmbedding", run_rotary_embedding, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
