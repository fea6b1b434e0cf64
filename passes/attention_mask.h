// Recognizing attention masks written in primitive ops, for fuse-attention and chunk-attention.
//
// A mask reaches the scores as an additive bias (Add(s, bias)), or as a fill (Where(c, -inf, s) /
// Where(c, s, -inf), the form of torch's masked_fill). MaskAnalyzer splits every bias into terms and
// tries to prove what each term is, in the coordinates of the scores tensor [B, H, Sq, T] (or [N, Sq, T];
// a term of lower rank is right-aligned, as broadcasting aligns it):
//
//   zero            ConstantOfShape(0), a zero constant                       -> dropped
//   causal          key j masked iff j > i + offset, offset 0 (or the routed past length):
//                   Trilu(ones or a fill <= -65504, k=1), Less(Range_i + offset, Range_j), ...
//   causal per batch j > i + x[b] - Sq (ONNX's nonpad causal frontier)      -> is_causal + nonpad x
//   padding         j >= x[b] for a per-batch length vector x                  -> nonpad_kv_seqlen x
//   window          j < i - w (left context w)                                 -> chunk-attention only
//   anything else   kept as a tensor: the additive float value, or a bool mask (true = keep) when the
//                   bias is Where(m, 0, -inf) / Where(m, -inf, 0) of a bool m; a Pad of it with -inf at
//                   the end of the key axis is dropped (Attention pads a short mask with -inf itself)
//
// Index expressions are affine: Range(0, n, 1) along an axis, Unsqueeze, Add/Sub of constants, symbolic
// sizes (Shape -> Gather) and of one per-batch integer vector; predicates are Less/Greater/..., Not,
// And/Or (a union of masked half-planes) and Trilu of an all-true tensor. Every recognized term is also
// checked against the scores' shape: axes that vary must span exactly Sq or T, the others must be 1 or
// equal to the scores' size there, so the rewrite never changes what broadcasting would have done.
// A fill value counts as -inf when it is -inf or <= -65504 (the lowest half float; torch.finfo(dtype).min):
// exp() of it underflows to exactly 0 for every score a model produces.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/attention_index.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

// The scores tensor a mask applies to.
struct ScoreFrame {
  std::vector<SymDim> dims;  // [B, H, Sq, T] or [N, Sq, T]
  SymDim causal_offset =
      SymDim::of(0);          // the offset is_causal will use (the past length when past is routed)
  bool allow_nonpad = true;   // false with a routed past (ONNX forbids nonpad with past_key)
  bool allow_window = false;  // chunk-attention: a window term becomes an attribute
};

// What the fused op gets for one scores tensor.
struct MaskPlan {
  bool is_causal = false;
  int64_t window = -1;            // left context, only when ScoreFrame::allow_window
  Value* nonpad = nullptr;        // nonpad_kv_seqlen (an integer [B] vector)
  Value* tensor = nullptr;        // the attn_mask input, or null
  bool tensor_is_bool = false;    // true: bool mask, true = attend
  bool tensor_needs_not = false;  // a bool mask that is true where masked: the rewrite inserts Not
  int tensor_rank = 0;
  // Every bias added to the scores (Add form) and the number of fills (Where form): the all-masked-row
  // guard of the ONNX function body is only Attention's rule when the bias is exactly one Add.
  std::vector<Value*> bias_values;
  int fills = 0;
};

class MaskAnalyzer {
 public:
  MaskAnalyzer(ShapeReasoner& shapes, ScoreFrame frame);
  // Mask applications found between the scores and the softmax, in any order and number.
  void add_bias(Value* bias);  // Add(s, bias)
  // Where(c, fill, s) / Where(c, s, fill). A finite fill (<= -65504) only counts as -inf when the
  // condition is proven structural: on a bool tensor mask it differs from -inf on fully masked rows.
  void add_fill(Value* condition, bool masked_where_true, bool fill_is_neg_inf = true);
  // Proves the collected terms and turns them into a plan; false when they cannot be expressed exactly.
  bool finish(MaskPlan* plan);
  // Why finish() failed (for logs and tests).
  const std::string& failure() const { return failure_; }

  // Term bookkeeping is internal; declared here so the implementation file can name it.
  struct Term {
    enum class Kind { Zero, Masked, Tensor } kind = Kind::Tensor;
    Value* value = nullptr;  // materialized value (float bias, or the bool condition of a fill)
    bool is_bool = false;    // value is a bool condition
    bool bool_masked_where_true = false;
    int rank = 0;                   // rank of `value`, the planes' coefficient length
    std::vector<IndexExpr> planes;  // Masked: key masked iff any plane > 0
    SymDim padded_keys;             // Tensor: keys the graph appends as -inf (Pad): Attention's own rule
  };

 private:
  bool collect_bias(Value* bias, std::vector<Term>* out, int depth);
  bool masked_term(Value* value, Term* term);
  bool tensor_term(Value* value, Term* term, int depth);
  bool check_term_shape(const Term& t, bool last_must_be_keys);

  ShapeReasoner& shapes_;
  ScoreFrame frame_;
  std::vector<Term> terms_;
  std::vector<Value*> bias_values_;
  int fills_ = 0;
  bool failed_ = false;
  std::string failure_;
};

}  // namespace seqrun::passes
