// Q/K/V operand peeling, GQA head-repeat and past-KV concat recognition (see attention_heads.h).
#include "passes/attention_heads.h"

#include <cmath>

#include "passes/pattern.h"

namespace seqrun::passes {

std::optional<double> scalar_factor(const Node* n, const Value* v, ShapeReasoner& shapes) {
  if (n == nullptr || (n->op() != "Mul" && n->op() != "Div") || n->num_inputs() != 2) return std::nullopt;
  const Value* c = n->input(0) == v ? n->input(1) : n->input(1) == v ? n->input(0) : nullptr;
  if (c == nullptr || (n->op() == "Div" && n->input(0) != v)) return std::nullopt;
  const int rank_c = ShapeReasoner::rank(c), rank_v = ShapeReasoner::rank(v);
  if (rank_c < 0 || rank_v < 0 || rank_c > rank_v || !is_float(c->type().dtype())) return std::nullopt;
  std::optional<double> x = shapes.constant_value(c);
  if (!x || !std::isfinite(*x) || *x == 0.0) return std::nullopt;
  return n->op() == "Mul" ? *x : 1.0 / *x;
}

namespace {

// One scalar factor step from the value `v` toward its producer: the Mul/Div's other input, or null.
Value* peel_factor_step(Value* v, ShapeReasoner& shapes, double* scale) {
  Node* n = producer(v);
  if (n == nullptr || !single_use(v)) return nullptr;
  for (int i = 0; i < 2 && i < n->num_inputs(); ++i) {
    Value* operand = n->input(i);
    if (std::optional<double> f = scalar_factor(n, operand, shapes)) {
      *scale *= *f;
      return operand;
    }
  }
  return nullptr;
}

}  // namespace

HeadOperand peel_query(Value* q, ShapeReasoner& shapes) {
  HeadOperand out;
  out.base = q;
  while (Value* next = peel_factor_step(out.base, shapes, &out.scale)) out.base = next;
  return out;
}

std::optional<HeadOperand> peel_key(Value* kt, ShapeReasoner& shapes) {
  const int rank = ShapeReasoner::rank(kt);
  if (rank < 2) return std::nullopt;
  HeadOperand out;
  out.base = kt;
  std::vector<int64_t> t(rank);  // kt[a] = base[t[a]]
  for (int a = 0; a < rank; ++a) t[a] = a;
  for (;;) {
    if (Value* next = peel_factor_step(out.base, shapes, &out.scale)) {
      out.base = next;
      continue;
    }
    Node* tr = producer(out.base, "Transpose");
    if (tr == nullptr || !single_use(out.base)) break;
    std::vector<int64_t> p = transpose_perm(tr);
    if (static_cast<int>(p.size()) != rank) break;
    for (int a = 0; a < rank; ++a) t[a] = p[t[a]];
    out.base = tr->input(0);
  }
  // K[a] = kt[swap[a]] = base[t[swap[a]]].
  std::swap(t[rank - 1], t[rank - 2]);
  bool identity = true;
  for (int a = 0; a < rank; ++a) identity = identity && t[a] == a;
  if (!identity) out.perm = t;
  return out;
}

std::optional<HeadRepeat> match_head_repeat(Value* v, ShapeReasoner& shapes) {
  Node* reshape = producer(v, "Reshape");
  if (reshape == nullptr || reshape->get_int("allowzero", 0) != 0) return std::nullopt;
  Value* grown = reshape->input(0);
  Node* grow = producer(grown);
  if (grow == nullptr || (grow->op() != "Expand" && grow->op() != "Tile")) return std::nullopt;
  Node* unsq = producer(grow->input(0), "Unsqueeze");
  if (unsq == nullptr) return std::nullopt;
  std::optional<std::vector<int64_t>> axes = constant_ints(unsq->input(1));
  if (!axes || axes->size() != 1 || ((*axes)[0] != 2 && (*axes)[0] != -3)) return std::nullopt;
  Value* x = unsq->input(0);
  std::optional<std::vector<SymDim>> dx = shapes.dims(x);
  std::optional<std::vector<SymDim>> sizes = shapes.elements(grow->input(1));
  if (!dx || dx->size() != 4 || !sizes || sizes->size() != 5) return std::nullopt;
  const std::vector<SymDim> unsqueezed = {(*dx)[0], (*dx)[1], SymDim::of(1), (*dx)[2], (*dx)[3]};
  SymDim r;
  for (int k = 0; k < 5; ++k) {
    const SymDim& s = (*sizes)[k];
    if (k == 2) {
      r = s;
      if (!r.known() || (r.is_static() && r.value() < 1)) return std::nullopt;
      continue;
    }
    // Expand keeps the size when asked for 1 or the size itself; Tile keeps it only for repeat 1.
    const bool keeps = s.is(1) || (grow->op() == "Expand" && s == unsqueezed[k]);
    if (!keeps) return std::nullopt;
  }
  const std::vector<SymDim> grown_dims = {(*dx)[0], (*dx)[1], r, (*dx)[2], (*dx)[3]};
  const std::vector<SymDim> want = {(*dx)[0], (*dx)[1].times(r), (*dx)[2], (*dx)[3]};
  std::optional<std::vector<SymDim>> target = shapes.elements(reshape->input(1));
  if (!target || target->size() != 4) return std::nullopt;
  int inferred = 0;
  for (int k = 0; k < 4; ++k) {
    SymDim t = (*target)[k];
    if (t.is(-1)) {
      ++inferred;
      continue;
    }
    if (t.is(0)) t = grown_dims[k];
    if (!(t == want[k])) return std::nullopt;
  }
  if (inferred > 1) return std::nullopt;
  HeadRepeat out;
  out.unrepeated = x;
  out.factor = r;
  return out;
}

std::optional<PastConcat> match_past_concat(Value* v) {
  Node* cat = producer(v, "Concat");
  if (cat == nullptr || cat->num_explicit_inputs() != 2 || ShapeReasoner::rank(v) != 4) return std::nullopt;
  const int64_t axis = cat->get_int("axis", 0);
  if (axis != 2 && axis != -2) return std::nullopt;
  if (ShapeReasoner::rank(cat->input(0)) != 4 || ShapeReasoner::rank(cat->input(1)) != 4) return std::nullopt;
  return PastConcat{cat->input(0), cat->input(1), cat};
}

}  // namespace seqrun::passes
