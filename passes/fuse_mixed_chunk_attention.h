// fuse-mixed-chunk-attention: the chunked attention of a GAU/FLASH layer (Hua et al. 2022), as torch exports
// it, becomes one MixedChunkAttention node (ir/ops/mixed_chunk_attention.cpp).
//
// Pattern, with X·c meaning X reshaped [B, T, d] -> [B, G, C, d] (C static; every chunked value shares B, T,
// C):
//   S      = MatMul(quad_q·c, Transpose(quad_k·c, [0, 1, 3, 2]))     then scalar Mul/Div factors (quad_scale)
//   kernel = Pow(Relu(S' + bias?), 2) or Mul(r, r)                   bias: [C, C] (leading dims 1), any value
//   quad   = MatMul(mask?(kernel), v·c)                              mask: a causal zero mask over [C, C]
//   KV     = MatMul(Transpose(lin_k·c, [0, 1, 3, 2]), v·c)           scalar factors anywhere on the linear
//   path causal:     KVx = exclusive prefix sum over chunks (axis 1) of KV, written as
//               Slice(Pad(CumSum(KV, 1), one zero chunk in front), [:, :-1])  (torch: F.pad(...)[:, :-1]),
//               Sub(CumSum(KV, 1), KV), or CumSum(KV, 1) {exclusive = 1}
//   non-causal: KVx = ReduceSum(KV, axes = [1], keepdims = 1)
//   lin    = MatMul(lin_q·c, KVx)
//   y      = Reshape(Add(quad, lin), [B, T, E])
// The causal mask and the exclusive prefix sum come together (causal = 1) or not at all (causal = 0). Every
// intermediate has no user outside the pattern. y's users move to
//   MixedChunkAttention(quad_q, quad_k, lin_q, lin_k, v, bias?) {chunk_size = C, causal, quad_scale,
//   lin_scale}.
// Exact: the op computes the same sums (float rounding only). The gating (u ⊙ ...), the shared Z and its
// per-dim scale/offset stay primitive ops.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class FuseMixedChunkAttentionPass : public Pass {
 public:
  std::string name() const override { return "fuse-mixed-chunk-attention"; }
  std::string description() const override {
    return "GAU/FLASH chunked relu² attention + cross-chunk linear attention -> MixedChunkAttention";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
