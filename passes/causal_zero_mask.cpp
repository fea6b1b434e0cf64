// Causal zero-mask recognition (see causal_zero_mask.h): evaluate constant-derived masks, or hand bool
// index predicates to MaskAnalyzer, and check that the mask broadcasts to exactly the scores' shape.
#include "passes/causal_zero_mask.h"

#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>

#include "passes/attention_mask.h"
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

constexpr int kMaxDepth = 16;
constexpr int64_t kMaxCheckedEntries = int64_t{1} << 24;

// The values of a mask over its last two axes, as a function of (row, column). A bounded mask comes from a
// constant of rows × cols; an unbounded one (Trilu of a uniform tensor) depends only on column - row and is
// constant beyond |column - row| > band. `size` is the mask's extent along its last two axes: a static size,
// or the end E of a prefix slice [:E] of an axis of static size >= 2 (E when E fits; when E exceeds the axis,
// the mask is shorter than the scores it must cover, so broadcasting fails and the graph never runs).
// Leading axes are always 1: constants with leading ones, Unsqueeze of leading axes, one-element scalars.
struct MaskValues {
  bool bounded = true;
  int64_t rows = 0, cols = 0;
  int64_t band = 0;
  std::function<double(int64_t, int64_t)> at;
  SymDim size[2];
};

std::optional<std::vector<int64_t>> normalized_axes(const std::vector<int64_t>& axes, int rank) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank) return std::nullopt;
    out.push_back(a);
  }
  return out;
}

std::optional<MaskValues> evaluate_mask(Value* v, ShapeReasoner& shapes, int depth) {
  if (v == nullptr || depth > kMaxDepth) return std::nullopt;
  const int rank = ShapeReasoner::rank(v);
  if (rank < 2) return std::nullopt;
  if (v->is_constant()) {
    const Tensor& t = v->constant();
    for (int i = 0; i + 2 < t.rank(); ++i) {
      if (t.dim(i) != 1) return std::nullopt;
    }
    MaskValues m;
    m.rows = t.dim(-2);
    m.cols = t.dim(-1);
    m.size[0] = SymDim::of(m.rows);
    m.size[1] = SymDim::of(m.cols);
    const int64_t cols = m.cols;
    Tensor data = t;  // a handle: keeps the bytes alive inside the function
    m.at = [data, cols](int64_t i, int64_t j) { return data.get_f64(i * cols + j); };
    return m;
  }
  Node* n = producer(v);
  if (n == nullptr) return std::nullopt;
  const std::string& op = n->op();
  if (op == "Identity") return evaluate_mask(n->input(0), shapes, depth + 1);
  if (op == "Unsqueeze") {  // new leading axes only: the last two axes stay the input's
    auto axes = constant_ints(n->input(1));
    if (!axes) return std::nullopt;
    auto norm = normalized_axes(*axes, rank);
    if (!norm) return std::nullopt;
    for (int64_t a : *norm) {
      if (a >= rank - 2) return std::nullopt;
    }
    return evaluate_mask(n->input(0), shapes, depth + 1);
  }
  if (op == "Slice") {  // [:r, :c] prefixes of the last two axes keep every (i, j) they keep
    auto starts = shapes.elements(n->input(1));
    auto ends = shapes.elements(n->input(2));
    if (!starts || !ends || ends->size() != starts->size()) return std::nullopt;
    for (const SymDim& s : *starts) {
      if (!s.is(0)) return std::nullopt;
    }
    std::vector<int64_t> axes;
    if (n->input(3) != nullptr) {
      auto a = constant_ints(n->input(3));
      if (!a) return std::nullopt;
      axes = *a;
    } else {
      for (size_t i = 0; i < starts->size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    auto norm = normalized_axes(axes, rank);
    if (!norm || norm->size() != starts->size()) return std::nullopt;
    if (n->input(4) != nullptr) {
      auto steps = constant_ints(n->input(4));
      if (!steps) return std::nullopt;
      for (int64_t s : *steps) {
        if (s != 1) return std::nullopt;
      }
    }
    auto inner = evaluate_mask(n->input(0), shapes, depth + 1);
    if (!inner) return std::nullopt;
    for (size_t k = 0; k < norm->size(); ++k) {
      if ((*norm)[k] < rank - 2) return std::nullopt;
      SymDim& size = inner->size[(*norm)[k] - (rank - 2)];
      const SymDim& end = (*ends)[k];
      if (end == size) continue;
      if (end.is_static() && size.is_static()) {
        int64_t e = end.value() < 0 ? end.value() + size.value() : end.value();
        size = SymDim::of(std::min(std::max<int64_t>(e, 0), size.value()));
      } else if (end.known() && !end.is_static() && size.is_static() && size.value() >= 2) {
        size = end;
      } else {
        return std::nullopt;
      }
    }
    return inner;
  }
  if (op == "Cast" || op == "Not") {
    auto inner = evaluate_mask(n->input(0), shapes, depth + 1);
    if (!inner) return std::nullopt;
    const DType to = v->type().dtype();
    auto f = inner->at;
    if (op == "Not") {
      inner->at = [f](int64_t i, int64_t j) { return f(i, j) == 0.0 ? 1.0 : 0.0; };
    } else if (to == DType::boolean) {
      inner->at = [f](int64_t i, int64_t j) { return f(i, j) != 0.0 ? 1.0 : 0.0; };
    } else if (is_integer(to)) {
      inner->at = [f](int64_t i, int64_t j) { return std::trunc(f(i, j)); };
    } else if (!is_float(to)) {
      return std::nullopt;
    }
    return inner;
  }
  if (op == "Equal") {
    for (int side = 0; side < 2; ++side) {
      auto c = shapes.constant_value(n->input(1 - side));
      if (!c || ShapeReasoner::rank(n->input(1 - side)) > rank) continue;
      auto inner = evaluate_mask(n->input(side), shapes, depth + 1);
      if (!inner) return std::nullopt;
      auto f = inner->at;
      const double target = *c;
      inner->at = [f, target](int64_t i, int64_t j) { return f(i, j) == target ? 1.0 : 0.0; };
      return inner;
    }
    return std::nullopt;
  }
  if (op == "Trilu") {
    auto u = uniform_value(n->input(0));
    if (!u) return std::nullopt;
    int64_t k = 0;
    if (n->input(1) != nullptr) {
      auto s = shapes.scalar(n->input(1));
      if (!s || !s->is_static()) return std::nullopt;
      k = s->value();
    }
    auto dims = shapes.dims(n->input(0));
    if (!dims || dims->size() < 2) return std::nullopt;
    MaskValues m;
    m.bounded = false;
    m.size[0] = (*dims)[dims->size() - 2];
    m.size[1] = (*dims)[dims->size() - 1];
    m.band = std::llabs(k);
    const bool upper = n->get_int("upper", 1) != 0;
    const double fill = *u;
    m.at = [upper, k, fill](int64_t i, int64_t j) {
      const bool kept = upper ? j - i >= k : j - i <= k;
      return kept ? fill : 0.0;
    };
    return m;
  }
  return std::nullopt;
}

// Every entry is what a causal mask needs: `exact_ones` (a Mul mask) means 1.0 exactly where j <= i and
// 0.0 elsewhere; otherwise (a bool condition) nonzero exactly where the key is kept (keep_where_true) or
// exactly where it is masked.
bool is_causal(const MaskValues& m, bool exact_ones, bool keep_where_true) {
  const int64_t rows = m.bounded ? m.rows : 2 * m.band + 4;
  const int64_t cols = m.bounded ? m.cols : 2 * m.band + 4;
  if (rows <= 0 || cols <= 0 || rows * cols > kMaxCheckedEntries) return false;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const double x = m.at(i, j);
      const bool keep = j <= i;
      if (exact_ones) {
        if (x != (keep ? 1.0 : 0.0)) return false;
      } else if ((x != 0.0) != (keep == keep_where_true)) {
        return false;
      }
    }
  }
  return true;
}

// The mask's dims broadcast to exactly the scores' dims: same last two, leading ones 1.
bool mask_fits_scores(Value* mask, Value* scores, ShapeReasoner& shapes) {
  auto md = shapes.dims(mask);
  auto sd = shapes.dims(scores);
  if (!md || !sd || md->size() < 2 || md->size() > sd->size()) return false;
  const size_t off = sd->size() - md->size();
  for (size_t a = 0; a < md->size(); ++a) {
    if (a + 2 >= md->size()) {
      if (!((*md)[a] == (*sd)[a + off])) return false;
    } else if (!(*md)[a].is(1)) {
      return false;
    }
  }
  return true;
}

// An evaluated mask covers exactly the scores' last two axes (its leading axes are 1 by construction).
bool values_fit_scores(const MaskValues& m, Value* mask, Value* scores, ShapeReasoner& shapes) {
  const int rank = ShapeReasoner::rank(scores);
  if (ShapeReasoner::rank(mask) > rank || rank < 2) return false;
  const SymDim rows = shapes.dim(scores, -2), cols = shapes.dim(scores, -1);
  return rows.known() && cols.known() && m.size[0] == rows && m.size[1] == cols;
}

// A bool condition that is true exactly where keys are kept (keep_where_true) or masked.
bool causal_condition(Value* cond, Value* scores, bool keep_where_true, ShapeReasoner& shapes) {
  if (cond == nullptr || cond->type().dtype() != DType::boolean) return false;
  if (auto m = evaluate_mask(cond, shapes, 0)) {
    return is_causal(*m, false, keep_where_true) && values_fit_scores(*m, cond, scores, shapes);
  }
  auto dims = shapes.dims(scores);
  if (!dims || dims->size() < 2) return false;
  ScoreFrame frame;
  frame.dims = *dims;
  frame.allow_nonpad = false;
  MaskAnalyzer analyzer(shapes, frame);
  analyzer.add_fill(cond, /*masked_where_true=*/!keep_where_true);
  MaskPlan plan;
  return analyzer.finish(&plan) && plan.is_causal && plan.tensor == nullptr && plan.nonpad == nullptr &&
         plan.window < 0;
}

// A fill value 0 with one element and no more axes than `like` (so Where keeps the scores' shape).
bool is_zero_scalar(Value* v, Value* like, ShapeReasoner& shapes) {
  if (v == nullptr || !v->type().has_rank() || v->type().rank() > ShapeReasoner::rank(like)) return false;
  for (const Dim& d : v->type().dims()) {
    if (!d.is_static() || d.value() != 1) return false;
  }
  auto c = shapes.constant_value(v);
  if (!c) c = uniform_value(v);
  return c && *c == 0.0;
}

}  // namespace

bool match_causal_zero_mask(Value* masked, ShapeReasoner& shapes, CausalZeroMask* out) {
  Node* n = producer(masked);
  if (n == nullptr || !is_float(masked->type().dtype())) return false;
  if (n->op() == "Trilu") {
    if (n->get_int("upper", 1) != 0) return false;
    if (n->input(1) != nullptr) {
      auto k = shapes.scalar(n->input(1));
      if (!k || !k->is(0)) return false;
    }
    *out = {n->input(0), n};
    return ShapeReasoner::rank(n->input(0)) >= 2;
  }
  if (n->op() == "Mul") {
    for (int side = 0; side < 2; ++side) {
      Value* s = n->input(side);
      Value* m = n->input(1 - side);
      if (s == m || ShapeReasoner::rank(s) < 2) continue;
      Node* cast = producer(m, "Cast");
      if (cast != nullptr && cast->input(0)->type().dtype() == DType::boolean &&
          is_float(m->type().dtype())) {
        if (causal_condition(cast->input(0), s, /*keep_where_true=*/true, shapes) &&
            mask_fits_scores(m, s, shapes)) {
          *out = {s, n};
          return true;
        }
        continue;
      }
      auto values = evaluate_mask(m, shapes, 0);
      if (values && is_causal(*values, /*exact_ones=*/true, true) &&
          values_fit_scores(*values, m, s, shapes)) {
        *out = {s, n};
        return true;
      }
    }
    return false;
  }
  if (n->op() == "Where") {
    Value* cond = n->input(0);
    for (int side = 1; side <= 2; ++side) {
      Value* s = n->input(side);
      Value* zero = n->input(3 - side);
      if (ShapeReasoner::rank(s) < 2 || !is_zero_scalar(zero, s, shapes)) continue;
      // Where(c, s, 0) keeps s where c is true; Where(c, 0, s) keeps it where c is false.
      if (causal_condition(cond, s, /*keep_where_true=*/side == 1, shapes)) {
        *out = {s, n};
        return true;
      }
    }
    return false;
  }
  return false;
}

}  // namespace seqrun::passes
