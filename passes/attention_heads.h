// How Q, K and V reach the two MatMuls of a softmax attention, for fuse-attention.
//
// The scores MatMul reads Q (possibly scaled: Mul/Div by a constant scalar) and Kᵀ (K behind one or more
// Transposes and scalar factors, in whatever order the exporter wrote them). The fused Attention reads
// Q and K in [.., S, D] layout: peel_query / peel_key return the value to read, the Transpose the rewrite
// must insert (composed from the ones peeled, empty when they cancel) and the scalar factors, which the
// rewrite folds into the `scale` attribute. Only single-use intermediates are peeled: a value used
// elsewhere stays as it is and is read as it is.
//
// GQA written as a K/V repeat (HF's repeat_kv, the ONNX function body):
//   Reshape(Expand(Unsqueeze(x, axes=[2]), [B, Hkv, r, T, D]), [B, Hkv*r, T, D])   (or Tile [1, 1, r, 1, 1])
// is recognized only when every size is proven: the Expand keeps x's sizes (1 or equal, never growing
// them), and the Reshape target is exactly [B, Hkv*r, T, D] (0 and one -1 resolved). The repeat
// interleaves (query head h reads kv head h / r), which is Attention's grouping.
#pragma once

#include <optional>
#include <vector>

#include "ir/graph.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

struct HeadOperand {
  Value* base = nullptr;      // the value the fused op reads (through `perm` when not empty)
  std::vector<int64_t> perm;  // a Transpose to insert on `base`; empty when none is needed
  double scale = 1.0;         // product of the scalar factors peeled off
};

// A Mul/Div of v by a one-element constant whose rank does not exceed v's (so no broadcasting grows v).
std::optional<double> scalar_factor(const Node* n, const Value* v, ShapeReasoner& shapes);

HeadOperand peel_query(Value* q, ShapeReasoner& shapes);
// `kt` is the scores MatMul's second operand; the result reads K as [.., T, D].
std::optional<HeadOperand> peel_key(Value* kt, ShapeReasoner& shapes);

struct HeadRepeat {
  Value* unrepeated = nullptr;  // x: [B, Hkv, T, D]
  SymDim factor;                // r
};
std::optional<HeadRepeat> match_head_repeat(Value* v, ShapeReasoner& shapes);

// K = Concat(past, fresh) along the sequence axis of a 4-D [B, H, S, D] tensor.
struct PastConcat {
  Value* past = nullptr;
  Value* fresh = nullptr;
  Node* concat = nullptr;
};
std::optional<PastConcat> match_past_concat(Value* v);

}  // namespace seqrun::passes
