// Reference kernel: CachedAttention (ir/ops/cached_attention.cpp) — causal attention of T new tokens over
// a KV cache that they are appended to.
//
// Layout [B, H, S, D]; caches [B, Hkv, C, D]. The kernel copies the old caches into fresh outputs, writes
// K and V into rows P .. P+T-1 (P read from the position input at run time), then computes each query
// row's softmax over keys max(0, P+i-window) .. P+i of the new cache in double precision, one row at a
// time. (The reference executor always allocates outputs, so the in-place form of the op, outputs over
// the old caches, only exists in the CPU kernel.) Compute-bound O(B·Hq·T·(P+T)·D); no parallel split.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The position input: an i64 scalar or [1] tensor holding P.
Status read_position(const KernelContext& ctx, int64_t* position) {
  const Tensor& pos = ctx.input(5);
  if (pos.dtype() != DType::i64) return ctx.error("position must be i64, is {}", dtype_name(pos.dtype()));
  if (pos.numel() != 1 || pos.rank() > 1)
    return ctx.error("position must be a scalar or [1], is {}", shape_to_string(pos.shape()));
  *position = pos.data<int64_t>()[0];
  return Status::ok();
}

Status run_cached_attention(KernelContext& ctx) {
  const Node& node = ctx.node;
  const char* names[5] = {"Q", "K", "V", "k_cache", "v_cache"};
  for (int i = 0; i < 5; ++i) {
    if (!ctx.has_input(i)) return ctx.error("{} is missing", names[i]);
    const Tensor& t = ctx.input(i);
    if (t.rank() != 4)
      return ctx.error("{} must be 4-D [B, H, S, D], is {}", names[i], shape_to_string(t.shape()));
    if (t.dtype() != DType::f32) return ctx.error("{} must be float, is {}", names[i], dtype_name(t.dtype()));
  }
  if (!ctx.has_input(5)) return ctx.error("position is missing");
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  const Tensor& k_cache = ctx.input(3);
  const Tensor& v_cache = ctx.input(4);
  const int64_t B = q.dim(0), Hq = q.dim(1), T = q.dim(2), Dk = q.dim(3);
  const int64_t Hkv = k.dim(1), C = k_cache.dim(2), Dv = v.dim(3);
  if (k.shape() != Shape({B, Hkv, T, Dk}) || v.shape() != Shape({B, Hkv, T, Dv}) ||
      k_cache.shape() != Shape({B, Hkv, C, Dk}) || v_cache.shape() != Shape({B, Hkv, C, Dv})) {
    return ctx.error(
        "shapes Q {}, K {}, V {}, k_cache {}, v_cache {} do not match (want K [B, Hkv, T, Dk], "
        "V [B, Hkv, T, Dv], caches [B, Hkv, C, Dk] and [B, Hkv, C, Dv])",
        shape_to_string(q.shape()), shape_to_string(k.shape()), shape_to_string(v.shape()),
        shape_to_string(k_cache.shape()), shape_to_string(v_cache.shape()));
  }
  if (Hkv <= 0 || Hq % Hkv != 0)
    return ctx.error("q heads {} must be a positive multiple of kv heads {}", Hq, Hkv);
  int64_t P = 0;
  SEQRUN_TRY(read_position(ctx, &P));
  if (P < 0) return ctx.error("position {} is negative", P);
  if (P > C - T) return ctx.error("position {} + {} new tokens exceeds the cache capacity {}", P, T, C);
  const int64_t window = node.get_int("window", -1);
  if (window < -1) return ctx.error("window must be -1 or >= 0, is {}", window);
  const double softcap = node.get_float("softcap", 0.0f);
  const double scale =
      node.has_attr("scale") ? node.get_float("scale") : 1.0 / std::sqrt(static_cast<double>(Dk));

  // New caches: the old rows, then rows P .. P+T-1 replaced by K and V.
  Tensor new_k = k_cache.clone();
  Tensor new_v = v_cache.clone();
  for (int64_t bh = 0; bh < B * Hkv; ++bh) {
    for (int64_t t = 0; t < T; ++t) {
      std::memcpy(new_k.data<float>() + (bh * C + P + t) * Dk, k.data<float>() + (bh * T + t) * Dk,
                  sizeof(float) * Dk);
      std::memcpy(new_v.data<float>() + (bh * C + P + t) * Dv, v.data<float>() + (bh * T + t) * Dv,
                  sizeof(float) * Dv);
    }
  }

  Tensor y = Tensor::zeros(DType::f32, {B, Hq, T, Dv});
  const int64_t group = Hq / Hkv;
  std::vector<double> scores;
  std::vector<double> out(static_cast<size_t>(Dv));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const float* kb = new_k.data<float>() + (b * Hkv + h / group) * C * Dk;
      const float* vb = new_v.data<float>() + (b * Hkv + h / group) * C * Dv;
      for (int64_t i = 0; i < T; ++i) {
        const int64_t last = P + i;  // the query's own position: the last key it sees
        const int64_t first = window >= 0 ? std::max<int64_t>(0, last - window) : 0;
        const float* qr = q.data<float>() + ((b * Hq + h) * T + i) * Dk;
        scores.assign(static_cast<size_t>(last - first + 1), 0.0);
        double row_max = kNegInf;
        for (int64_t j = first; j <= last; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < Dk; ++d) dot += static_cast<double>(qr[d]) * kb[j * Dk + d];
          double s = dot * scale;
          if (softcap > 0.0) s = softcap * std::tanh(s / softcap);
          scores[j - first] = s;
          row_max = std::max(row_max, s);
        }
        double sum = 0.0;
        std::fill(out.begin(), out.end(), 0.0);
        for (int64_t j = first; j <= last; ++j) {
          const double p = std::exp(scores[j - first] - row_max);
          sum += p;
          for (int64_t d = 0; d < Dv; ++d) out[d] += p * vb[j * Dv + d];
        }
        float* yr = y.data<float>() + ((b * Hq + h) * T + i) * Dv;
        for (int64_t d = 0; d < Dv; ++d) yr[d] = static_cast<float>(out[d] / sum);
      }
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(y));
  ctx.outputs.push_back(std::move(new_k));
  ctx.outputs.push_back(std::move(new_v));
  return Status::ok();
}

}  // namespace

void register_cached_attention_kernels(KernelRegistry& r) {
  r.add("CachedAttention", run_cached_attention, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
