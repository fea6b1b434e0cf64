// linearize-attention: softmax-free attention written quadratically is reassociated to linear time.
//
// Pattern (any feature map φ — elu+1, relu, identity, ... — stays as the primitive ops that compute it):
//   A = scale? · mask?(Q' · K'ᵀ)          Q' = φ(Q) [..., T, dk], K'ᵀ [..., dk, T], optional scalar Mul/Div
//   Y = A · V                              V [..., T, dv]
//   den = ReduceSum(A, axes = [-1], keepdims = 1)   optional: the normalizer φ(q_t)·Σ_{s<=t} φ(k_s); whatever
//                                                   the graph does with it (Add eps, Div) stays as it is
// where mask is absent (non-causal) or a causal zero mask (causal_zero_mask.h: torch.tril, a sliced tril
// buffer, masked_fill with 0). A's only users are that MatMul and the optional ReduceSum; the values between
// Q'K'ᵀ and A have no other users.
//
// Causal: Y and den come from one LinearAttention node (ONNX opset 27 semantics, update_rule "linear",
// scale = the product of the scalar factors): o_t = scale · Σ_{s<=t} (q_t·k_s) v_s is exactly Y's row t.
// The normalizer rides along as an extra value column of ones (A·[V, 1] = [A·V, rowsum A]), so the op's
// own ONNX semantics are untouched and its kernels (reference, CUDA) run it unchanged. Inputs of rank 3
// [N, T, d] map to one head; rank 4 [B, H, T, d] (H static) is transposed to [B, T, H·d] and back.
// Requires provably equal batch dims for Q', K', V and a square score matrix (Sq = T).
// Non-causal: Y = Q'·(K'ᵀ·V) and den = Q'·ReduceSum(K'ᵀ, -1), two small MatMuls each (any batch
// broadcasting the original had is kept), times the scale.
//
// Exact: the same sums in another order (float rounding only). Skipped when the key length is static and the
// quadratic form is provably cheaper (T·(dk + dv) <= 2·dk·dv).
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

// The linear-time form of softmax-free attention, for every rewrite that builds one (this pass,
// approximate-attention). q [..., Sq, dk], kt = K'ᵀ [..., dk, T], v [..., T, dv]; returns
// num = scale·mask(q·kt)·v and, with row_sums, den = scale·rowsum(mask(q·kt)) [..., Sq, 1], where mask is
// causal or nothing. Causal needs rank 3, or rank 4 [B, H, T, d] with `heads` = H (static), and equal
// batch dims; the nodes it adds are unsorted (call Graph::sort_topologically) and carry inferred types.
struct LinearAttentionSpec {
  bool causal = false;
  bool row_sums = false;
  double scale = 1.0;
  int rank = 4;
  int64_t heads = 1;
  DType dtype = DType::f32;
};
struct LinearAttentionForm {
  Value* num = nullptr;
  Value* den = nullptr;
};
LinearAttentionForm emit_linear_attention(Graph& graph, const std::string& base, Value* q, Value* kt,
                                          Value* v, const LinearAttentionSpec& spec);

class LinearizeAttentionPass : public Pass {
 public:
  std::string name() const override { return "linearize-attention"; }
  std::string description() const override {
    return "softmax-free (φ(Q)φ(K)ᵀ ⊙ causal mask)·V [/ row sums] -> LinearAttention (causal) or Q(KᵀV)";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
