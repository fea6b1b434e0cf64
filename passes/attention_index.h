// Affine index expressions and predicates over a tensor's axes: how mask recognition (attention_mask.h)
// reads Range / Less / Trilu / Where constructions as "key j masked iff a·i + b·j + c + x[batch] > 0".
//
// An IndexExpr is an integer tensor whose element at index (n0, n1, ...) equals
//   sum_a coef[a]·n_a + constant + batch_coef·x[n_batch_axis]
// where `constant` may be symbolic (a past length from Shape -> Gather) and x is one per-batch integer
// vector (nonpad lengths). `extent` records the size each axis was computed over: a Range(0, n) along an
// axis has extent n there, a broadcast axis 1 — so a later check can insist that an index really runs over
// the whole query or key axis. An IndexPredicate is true iff any of its planes is > 0 (a union) or every
// plane is (an intersection); one plane is both. Everything is exact integer arithmetic, never sampled.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

// c + sum(coefficient · monomial): symbolic integer constants (monomials of SymDim atoms).
struct LinearConst {
  bool known = true;
  int64_t c = 0;
  std::map<std::string, int64_t> terms;
};

LinearConst linear_of(const SymDim& d);
LinearConst add(const LinearConst& a, const LinearConst& b, int64_t sign = 1);
bool same(const LinearConst& a, const LinearConst& b);  // both known and equal
bool is_static_linear(const LinearConst& a);

struct IndexExpr {
  std::vector<int64_t> coef;   // per axis of the tensor
  std::vector<SymDim> extent;  // per axis: the size the expression was computed over (1: broadcast)
  LinearConst constant;
  const Value* batch_var = nullptr;
  int batch_axis = -1;
  int64_t batch_coef = 0;
};

int rank_of(const IndexExpr& e);
// Pads on the left to `rank` axes (numpy right alignment).
void align(IndexExpr* e, int rank);
// a + sign·b with broadcasting; false when the extents cannot broadcast or two per-batch vectors meet.
bool combine(IndexExpr a, IndexExpr b, int64_t sign, IndexExpr* out);
// Inserts size-1 axes (Unsqueeze semantics).
bool unsqueeze(IndexExpr* e, const std::vector<int64_t>& axes);
// The plane m > 0 negated over the integers: -m + 1 > 0.
IndexExpr negate(const IndexExpr& e);

struct IndexPredicate {
  bool is_union = true;
  std::vector<IndexExpr> planes;
  int rank = 0;
};

class IndexAnalyzer {
 public:
  explicit IndexAnalyzer(ShapeReasoner& shapes) : shapes_(shapes) {}
  // Range(0, n, 1) along an axis, Unsqueeze, Add/Sub, one-element (possibly symbolic) constants, a
  // constant ramp, integer Casts, and any other 1-D integer vector as the per-batch variable.
  bool index_expr(Value* v, IndexExpr* out, int depth = 0);
  // Less/Greater/LessOrEqual/GreaterOrEqual of index expressions, Not, And/Or, Trilu of an all-true
  // tensor, Unsqueeze, uniform constants (all true: empty intersection; all false: empty union).
  bool predicate(Value* v, IndexPredicate* out, int depth = 0);
  // The region Trilu keeps, as one plane over its input's shape: upper keeps j - i >= k, lower j - i <= k.
  bool trilu_plane(const Node* trilu, IndexPredicate* out);

 private:
  ShapeReasoner& shapes_;
};

}  // namespace seqrun::passes
