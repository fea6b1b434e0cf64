// fuse-attention: softmax attention written in primitive ops becomes one Attention node (ONNX 23/24).
//
// The pattern, anchored at a Softmax over the last axis of 3-D or 4-D scores:
//
//   scores = MatMul(Q·a, Kᵀ·b) · c ...        scalar constant factors anywhere on Q, on Kᵀ, after the MatMul
//            [Tanh(scores / cap) · cap]        softcap
//            [+ bias | Where(m, -inf, ·)]...   masks (attention_mask.h), after scale and softcap
//   probs  = Softmax(scores) [Where(all-masked row, 0, ·)]      the ONNX function body's row guard
//   out    = MatMul(probs, V)
//
// with float Casts allowed anywhere in the chain (the function body's softmax_precision casts). K is
// found behind its Transposes (attention_heads.h), un-repeated when written as a GQA repeat (K and V
// repeated alike), and split into past and new when K and V are Concat(past, new) along the sequence
// axis (the fused node then also produces present_key/present_value and the Concats disappear).
// 3-D attention ([B·H, S, D], nn.MultiheadAttention's bmm) is fused through Unsqueeze/Squeeze of a
// batch of one. The head split/merge Reshape/Transposes around the pattern stay: Attention reads 4-D.
//
// Exactness: the scale attribute is the product of the peeled constants; masks become is_causal /
// nonpad_kv_seqlen only when proven (attention_mask.h), otherwise the bias itself is the attn_mask;
// a chain value used outside the pattern is allowed only when it is one of the values Attention can
// return as qk_matmul_output (mode 0..3), and then it is. The one difference: a row in which every key
// is masked gives 0 (ONNX Attention's definition) where a graph without the function body's row guard
// computes softmax(all -inf) = NaN (or, for a finite fill like finfo.min, which is accepted only on proven
// causal/padding structure, the mean of V). Anything the pass cannot prove leaves the graph as it is.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class FuseAttentionPass : public Pass {
 public:
  std::string name() const override { return "fuse-attention"; }
  std::string description() const override {
    return "replace MatMul-scale-mask-Softmax-MatMul attention (GQA, KV cache, softcap) with Attention";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
