// Recognizing causal masks that ZERO scores, the masks of softmax-free attention (linear attention written
// quadratically, GAU/FLASH's squared-ReLU chunks), for linearize-attention and fuse-mixed-chunk-attention.
//
// A softmax-free score matrix s [..., Sq, T] is causally masked when every entry with key j > query i
// becomes exactly 0 and every other entry stays s. The forms torch code exports:
//   Trilu(s) with upper = 0 and k absent or 0                          torch.tril(s)
//   Mul(s, m) / Mul(m, s), m a 0/1 float mask, 1 exactly where j <= i    s * tril_buffer[:T, :T]
//   Where(c, 0, s) with c true exactly where j > i                     s.masked_fill(~tril, 0)
//   Where(c, s, 0) with c true exactly where j <= i
// The mask (m or c) is proved one of two ways: (1) it is computed from one constant by prefix Slices
// (starts 0, step 1, on its last two axes: [:T, :T] of a bigger buffer), Unsqueeze, Cast, Equal with a
// scalar, Not, or it is Trilu of a uniform tensor — then its values are evaluated; (2) the bool condition
// is an index predicate MaskAnalyzer (attention_mask.h) proves causal (Range/Less/Trilu forms). Either way
// its last two dims must provably equal s's last two dims and its leading dims be 1, so broadcasting
// gives the mask exactly s's shape. A prefix slice [:E] of a buffer axis of static size >= 2 counts as
// size E: when E exceeds the buffer, the mask is shorter than the scores and the original graph fails to
// broadcast, so the rewrite only differs on inputs the original rejects (sequences past the buffer).
#pragma once

#include "ir/graph.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

struct CausalZeroMask {
  Value* scores = nullptr;  // s, the unmasked scores
  Node* node = nullptr;     // the Trilu / Mul / Where that applies the mask
};

// When `masked` is a causal zero-masking of some scores value (one of the forms above), returns it.
bool match_causal_zero_mask(Value* masked, ShapeReasoner& shapes, CausalZeroMask* out);

}  // namespace seqrun::passes
