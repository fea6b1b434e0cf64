// Affine index expressions and mask predicates (see attention_index.h).
#include "passes/attention_index.h"

#include <algorithm>

#include "passes/pattern.h"

namespace seqrun::passes {

namespace {
constexpr int kMaxDepth = 24;
}  // namespace

// ------------------------------------------------------------------------------------ Linear constants

LinearConst linear_of(const SymDim& d) {
  LinearConst l;
  if (!d.known()) {
    l.known = false;
  } else if (d.is_static()) {
    l.c = d.value();
  } else {
    std::string key;
    for (const std::string& a : d.atoms()) key += a + "\x1f";
    l.terms[key] = d.value();
  }
  return l;
}

LinearConst add(const LinearConst& a, const LinearConst& b, int64_t sign) {
  LinearConst r = a;
  r.known = a.known && b.known;
  r.c += sign * b.c;
  for (const auto& [k, v] : b.terms) {
    r.terms[k] += sign * v;
    if (r.terms[k] == 0) r.terms.erase(k);
  }
  return r;
}

bool same(const LinearConst& a, const LinearConst& b) {
  return a.known && b.known && a.c == b.c && a.terms == b.terms;
}
bool is_static_linear(const LinearConst& a) {
  return a.known && a.terms.empty();
}

// ------------------------------------------------------------------------------------ affine expressions

int rank_of(const IndexExpr& e) {
  return static_cast<int>(e.coef.size());
}

// Pads on the left to `rank` axes (numpy right alignment).
void align(IndexExpr* e, int rank) {
  const int pad = rank - rank_of(*e);
  if (pad <= 0) return;
  e->coef.insert(e->coef.begin(), pad, 0);
  e->extent.insert(e->extent.begin(), pad, SymDim::of(1));
  if (e->batch_var != nullptr) e->batch_axis += pad;
}

// a + sign * b with broadcasting; false when the extents provably cannot broadcast or two different
// per-batch vectors meet.
bool combine(IndexExpr a, IndexExpr b, int64_t sign, IndexExpr* out) {
  const int rank = std::max(rank_of(a), rank_of(b));
  align(&a, rank);
  align(&b, rank);
  IndexExpr r = a;
  for (int k = 0; k < rank; ++k) {
    r.coef[k] = a.coef[k] + sign * b.coef[k];
    r.extent[k] = broadcast_dim({a.extent[k], b.extent[k]});
    if (!r.extent[k].known()) return false;
  }
  r.constant = add(a.constant, b.constant, sign);
  if (b.batch_var != nullptr) {
    if (a.batch_var != nullptr && (a.batch_var != b.batch_var || a.batch_axis != b.batch_axis)) {
      return false;
    }
    r.batch_var = b.batch_var;
    r.batch_axis = b.batch_axis;
    r.batch_coef = a.batch_coef + sign * b.batch_coef;
    if (r.batch_coef == 0) r.batch_var = nullptr;
  }
  *out = r;
  return true;
}

// Inserts size-1 axes (Unsqueeze).
bool unsqueeze(IndexExpr* e, const std::vector<int64_t>& axes) {
  const int out_rank = rank_of(*e) + static_cast<int>(axes.size());
  std::vector<bool> marked(out_rank, false);
  for (int64_t a : axes) {
    if (a < 0) a += out_rank;
    if (a < 0 || a >= out_rank || marked[a]) return false;
    marked[a] = true;
  }
  IndexExpr r;
  r.constant = e->constant;
  r.batch_var = e->batch_var;
  r.batch_coef = e->batch_coef;
  int src = 0;
  for (int k = 0; k < out_rank; ++k) {
    if (marked[k]) {
      r.coef.push_back(0);
      r.extent.push_back(SymDim::of(1));
    } else {
      if (src == e->batch_axis) r.batch_axis = k;
      r.coef.push_back(e->coef[src]);
      r.extent.push_back(e->extent[src]);
      ++src;
    }
  }
  *e = r;
  return true;
}

// m > 0 negated, over the integers: -m + 1 > 0.
IndexExpr negate(const IndexExpr& e) {
  IndexExpr r = e;
  for (int64_t& c : r.coef) c = -c;
  r.batch_coef = -r.batch_coef;
  LinearConst one;
  one.c = 1;
  LinearConst zero;
  r.constant = add(add(zero, e.constant, -1), one);
  return r;
}

bool IndexAnalyzer::index_expr(Value* v, IndexExpr* out, int depth) {
  if (v == nullptr || depth > kMaxDepth) return false;
  const int rank = ShapeReasoner::rank(v);
  if (rank < 0) return false;
  Node* n = producer(v);
  const DType dt = v->type().dtype();
  // A one-element value: a constant term (possibly a symbolic size, e.g. the past length).
  if (auto s = shapes_.scalar(v); s && (n == nullptr || n->op() != "Range")) {
    IndexExpr e;
    e.coef.assign(rank, 0);
    e.extent.assign(rank, SymDim::of(1));
    e.constant = linear_of(*s);
    if (!e.constant.known) return false;
    *out = e;
    return true;
  }
  if (n != nullptr && n->op() == "Cast" && !is_float(dt) && dt != DType::boolean) {
    return index_expr(n->input(0), out, depth + 1);
  }
  if (n != nullptr && n->op() == "Range" && rank == 1) {
    auto start = shapes_.scalar(n->input(0));
    auto limit = shapes_.scalar(n->input(1));
    auto delta = shapes_.scalar(n->input(2));
    if (!start || !limit || !delta || !delta->is(1)) return false;
    IndexExpr e;
    e.coef = {1};
    e.extent = {limit->minus(*start)};
    e.constant = linear_of(*start);
    if (!e.extent[0].known() || !e.constant.known) return false;
    *out = e;
    return true;
  }
  if (n != nullptr && n->op() == "Unsqueeze") {
    auto axes = constant_ints(n->input(1));
    return axes && index_expr(n->input(0), out, depth + 1) && unsqueeze(out, *axes);
  }
  if (n != nullptr && (n->op() == "Add" || n->op() == "Sub")) {
    IndexExpr a, b;
    return index_expr(n->input(0), &a, depth + 1) && index_expr(n->input(1), &b, depth + 1) &&
           combine(a, b, n->op() == "Add" ? 1 : -1, out);
  }
  // A constant ramp s, s+1, ..., s+n-1 (a Range the exporter folded) indexes its axis like Range.
  if (auto ramp = constant_ints(v); ramp && rank == 1 && !ramp->empty()) {
    bool consecutive = true;
    for (size_t k = 1; k < ramp->size(); ++k)
      consecutive = consecutive && (*ramp)[k] == (*ramp)[0] + int64_t(k);
    if (consecutive) {
      IndexExpr e;
      e.coef = {1};
      e.extent = {SymDim::of(static_cast<int64_t>(ramp->size()))};
      e.constant.c = (*ramp)[0];
      *out = e;
      return true;
    }
  }
  // Any other 1-D integer vector: a per-batch variable (e.g. nonpad_kv_seqlen).
  if (rank == 1 && is_integer(dt)) {
    IndexExpr e;
    e.coef = {0};
    e.extent = {shapes_.dim(v, 0)};
    e.batch_var = v;
    e.batch_axis = 0;
    e.batch_coef = 1;
    *out = e;
    return true;
  }
  return false;
}

bool IndexAnalyzer::predicate(Value* v, IndexPredicate* out, int depth) {
  if (v == nullptr || depth > kMaxDepth || v->type().dtype() != DType::boolean) return false;
  const int rank = ShapeReasoner::rank(v);
  if (rank < 0) return false;
  if (auto u = uniform_value(v)) {  // all true: an empty intersection; all false: an empty union
    out->is_union = *u == 0.0;
    out->planes.clear();
    out->rank = rank;
    return true;
  }
  Node* n = producer(v);
  if (n == nullptr) return false;
  const std::string& op = n->op();
  if (op == "Cast" || op == "Identity") return predicate(n->input(0), out, depth + 1);
  if (op == "Less" || op == "Greater" || op == "LessOrEqual" || op == "GreaterOrEqual") {
    IndexExpr a, b, m;
    if (!index_expr(n->input(0), &a, depth + 1) || !index_expr(n->input(1), &b, depth + 1)) return false;
    // Less: b - a > 0; Greater: a - b > 0; the OrEqual forms add 1 (integers).
    const bool less = op == "Less" || op == "LessOrEqual";
    if (!combine(less ? b : a, less ? a : b, -1, &m)) return false;
    if (op == "LessOrEqual" || op == "GreaterOrEqual") m.constant.c += 1;
    out->is_union = true;
    out->planes = {m};
    out->rank = rank_of(m);
    return true;
  }
  if (op == "Not") {
    if (!predicate(n->input(0), out, depth + 1)) return false;
    for (IndexExpr& p : out->planes) p = negate(p);
    out->is_union = !out->is_union;
    return true;
  }
  if (op == "And" || op == "Or") {
    IndexPredicate a, b;
    if (!predicate(n->input(0), &a, depth + 1) || !predicate(n->input(1), &b, depth + 1)) return false;
    const bool want_union = op == "Or";
    for (const IndexPredicate* p : {&a, &b}) {
      if (p->planes.size() > 1 && p->is_union != want_union) return false;
    }
    out->is_union = want_union;
    out->rank = std::max(a.rank, b.rank);
    out->planes = a.planes;
    out->planes.insert(out->planes.end(), b.planes.begin(), b.planes.end());
    for (IndexExpr& p : out->planes) align(&p, out->rank);
    return true;
  }
  if (op == "Trilu") {
    auto u = uniform_value(n->input(0));
    if (!u || *u == 0.0) return false;
    return trilu_plane(n, out);
  }
  if (op == "Unsqueeze") {
    auto axes = constant_ints(n->input(1));
    if (!axes || !predicate(n->input(0), out, depth + 1)) return false;
    for (IndexExpr& p : out->planes) {
      align(&p, out->rank);
      if (!unsqueeze(&p, *axes)) return false;
    }
    out->rank += static_cast<int>(axes->size());
    return true;
  }
  return false;
}

// The region Trilu keeps, as one plane over its input's shape: upper keeps j - i >= k, lower j - i <= k.
bool IndexAnalyzer::trilu_plane(const Node* trilu, IndexPredicate* out) {
  auto dims = shapes_.dims(trilu->input(0));
  if (!dims || dims->size() < 2) return false;
  int64_t k = 0;
  if (trilu->input(1) != nullptr) {
    auto s = shapes_.scalar(trilu->input(1));
    if (!s || !s->is_static()) return false;
    k = s->value();
  }
  const int rank = static_cast<int>(dims->size());
  IndexExpr e;
  e.coef.assign(rank, 0);
  e.extent = *dims;
  const bool upper = trilu->get_int("upper", 1) != 0;
  e.coef[rank - 1] = upper ? 1 : -1;
  e.coef[rank - 2] = upper ? -1 : 1;
  e.constant.c = upper ? 1 - k : k + 1;
  out->is_union = true;
  out->planes = {e};
  out->rank = rank;
  return true;
}

}  // namespace seqrun::passes
