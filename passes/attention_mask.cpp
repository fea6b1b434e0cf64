// Attention mask recognition (see attention_mask.h): bias terms, affine index expressions over the
// scores' axes, masked half-planes, and their classification into causal / padding / window / tensor.
#include "passes/attention_mask.h"

#include <cmath>
#include <limits>

#include "passes/pattern.h"

namespace seqrun::passes {

namespace {

using Linear = MaskAnalyzer::Linear;
using Affine = MaskAnalyzer::Affine;
using Term = MaskAnalyzer::Term;

constexpr double kMaskedFill = -65504.0;  // at or below: acts as -inf (see the header)
constexpr int kMaxDepth = 24;

bool is_masking_fill(double v) {
  return v <= kMaskedFill;
}

// ------------------------------------------------------------------------------------ Linear constants

Linear linear_of(const SymDim& d) {
  Linear l;
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

Linear add(const Linear& a, const Linear& b, int64_t sign = 1) {
  Linear r = a;
  r.known = a.known && b.known;
  r.c += sign * b.c;
  for (const auto& [k, v] : b.terms) {
    r.terms[k] += sign * v;
    if (r.terms[k] == 0) r.terms.erase(k);
  }
  return r;
}

bool same(const Linear& a, const Linear& b) {
  return a.known && b.known && a.c == b.c && a.terms == b.terms;
}
bool is_static_linear(const Linear& a) {
  return a.known && a.terms.empty();
}

// ------------------------------------------------------------------------------------ affine expressions

// An index expression: an Affine with its per-axis extents.
using IndexExpr = Affine;
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

// A predicate: true iff any plane > 0 (union) or every plane > 0 (intersection). One plane is both.
struct Predicate {
  bool is_union = true;
  std::vector<IndexExpr> planes;
  int rank = 0;
};

// m > 0 negated, over the integers: -m + 1 > 0.
IndexExpr negate(const IndexExpr& e) {
  IndexExpr r = e;
  for (int64_t& c : r.coef) c = -c;
  r.batch_coef = -r.batch_coef;
  Linear one;
  one.c = 1;
  Linear zero;
  r.constant = add(add(zero, e.constant, -1), one);
  return r;
}

class IndexAnalyzer {
 public:
  explicit IndexAnalyzer(ShapeReasoner& shapes) : shapes_(shapes) {}

  bool index_expr(Value* v, IndexExpr* out, int depth = 0) {
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

  bool predicate(Value* v, Predicate* out, int depth = 0) {
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
      Predicate a, b;
      if (!predicate(n->input(0), &a, depth + 1) || !predicate(n->input(1), &b, depth + 1)) return false;
      const bool want_union = op == "Or";
      for (const Predicate* p : {&a, &b}) {
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
  bool trilu_plane(const Node* trilu, Predicate* out) {
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

 private:
  ShapeReasoner& shapes_;
};

}  // namespace

// ------------------------------------------------------------------------------------------ MaskAnalyzer

MaskAnalyzer::MaskAnalyzer(ShapeReasoner& shapes, ScoreFrame frame)
    : shapes_(shapes), frame_(std::move(frame)) {}

void MaskAnalyzer::add_bias(Value* bias) {
  bias_values_.push_back(bias);
  if (!collect_bias(bias, &terms_, 0)) {
    failed_ = true;
    if (failure_.empty()) failure_ = "bias '" + bias->name() + "' is not a float tensor of known rank";
  }
}

void MaskAnalyzer::add_fill(Value* condition, bool masked_where_true) {
  ++fills_;
  Term t;
  t.value = condition;
  t.is_bool = true;
  t.bool_masked_where_true = masked_where_true;
  t.rank = ShapeReasoner::rank(condition);
  if (t.rank < 0 || condition->type().dtype() != DType::boolean) {
    failed_ = true;
    failure_ = "fill condition '" + condition->name() + "' is not a bool tensor of known rank";
    return;
  }
  IndexAnalyzer ix(shapes_);
  Predicate p;
  if (ix.predicate(condition, &p)) {
    if (!masked_where_true) {
      for (IndexExpr& e : p.planes) e = negate(e);
      p.is_union = !p.is_union;
    }
    if (p.is_union || p.planes.size() == 1) {
      t.kind = p.planes.empty() ? Term::Kind::Zero : Term::Kind::Masked;
      for (IndexExpr& e : p.planes) {
        align(&e, t.rank);
        t.planes.push_back(e);
      }
    }
  }
  terms_.push_back(t);
}

bool MaskAnalyzer::collect_bias(Value* bias, std::vector<Term>* out, int depth) {
  if (bias == nullptr || !is_float(bias->type().dtype()) || ShapeReasoner::rank(bias) < 0) return false;
  Node* n = producer(bias);
  if (depth < kMaxDepth && n != nullptr && n->op() == "Add" && is_float(n->input(0)->type().dtype()) &&
      is_float(n->input(1)->type().dtype())) {
    return collect_bias(n->input(0), out, depth + 1) && collect_bias(n->input(1), out, depth + 1);
  }
  if (depth < kMaxDepth && is_float_cast(n)) return collect_bias(n->input(0), out, depth + 1);
  Term t;
  t.value = bias;
  t.rank = ShapeReasoner::rank(bias);
  if (auto u = uniform_value(bias); u && *u == 0.0) {
    t.kind = Term::Kind::Zero;
  } else if (masked_term(bias, &t)) {
    t.kind = t.planes.empty() ? Term::Kind::Zero : Term::Kind::Masked;
  } else {
    t = Term();
    t.kind = Term::Kind::Tensor;
    t.value = bias;
    t.rank = ShapeReasoner::rank(bias);
    Term simpler;
    if (tensor_term(bias, &simpler, depth)) t = simpler;
  }
  out->push_back(t);
  return true;
}

// A simpler tensor for an unrecognized bias: the bool mask m of Where(m, 0, -inf) / Where(m, -inf, 0),
// and the unpadded mask of Pad(x, [0, .., 0, 0, .., e], -inf) (Attention pads short masks with -inf).
bool MaskAnalyzer::tensor_term(Value* value, Term* term, int depth) {
  Node* n = producer(value);
  if (n == nullptr || depth > kMaxDepth) return false;
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  if (is_float_cast(n)) return tensor_term(n->input(0), term, depth + 1);
  if ((n->op() == "Mul" || n->op() == "Div") && ShapeReasoner::rank(n->input(1)) >= 0 &&
      ShapeReasoner::rank(n->input(1)) <= ShapeReasoner::rank(n->input(0))) {
    // A -inf/0 mask scaled by a positive constant is the same mask (nn.MultiheadAttention's baddbmm).
    auto c = shapes_.constant_value(n->input(1));
    Term inner;
    if (!c || !(*c > 0.0) || std::isinf(*c) || !tensor_term(n->input(0), &inner, depth + 1) ||
        !inner.is_bool) {
      return false;
    }
    *term = inner;
    return true;
  }
  if (n->op() == "Where" && n->input(0)->type().dtype() == DType::boolean) {
    Value* cond = n->input(0);
    auto a = uniform_value(n->input(1));
    if (!a) a = shapes_.constant_value(n->input(1));
    auto b = uniform_value(n->input(2));
    if (!b) b = shapes_.constant_value(n->input(2));
    const int rank = ShapeReasoner::rank(cond);
    if (!a || !b || rank < 0) return false;
    const bool keep = *a == 0.0 && *b == kNegInf;
    const bool masked = *b == 0.0 && *a == kNegInf;
    if (!keep && !masked) return false;
    *term = Term();
    term->kind = Term::Kind::Tensor;
    term->value = cond;
    term->is_bool = true;
    term->bool_masked_where_true = masked;
    term->rank = rank;
    return true;
  }
  if (n->op() == "Pad" && n->get_string("mode", "constant") == "constant" && n->input(2) != nullptr) {
    auto fill = shapes_.constant_value(n->input(2));
    const int rank = ShapeReasoner::rank(value);
    auto pads = shapes_.elements(n->input(1));
    if (!fill || *fill != kNegInf || rank < 1 || !pads) return false;
    std::vector<int64_t> axes;
    if (n->input(3) != nullptr) {
      auto given = constant_ints(n->input(3));
      if (!given) return false;
      axes = *given;
    } else {
      for (int k = 0; k < rank; ++k) axes.push_back(k);
    }
    if (pads->size() != 2 * axes.size()) return false;
    SymDim end_pad = SymDim::of(0);
    for (size_t k = 0; k < axes.size(); ++k) {
      const int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
      const SymDim& begin = (*pads)[k];
      const SymDim& end = (*pads)[k + axes.size()];
      if (!begin.is(0)) return false;
      if (a == rank - 1) {
        end_pad = end;
      } else if (!end.is(0)) {
        return false;
      }
    }
    Term inner;
    inner.kind = Term::Kind::Tensor;
    inner.value = n->input(0);
    inner.rank = ShapeReasoner::rank(n->input(0));
    if (inner.rank != rank || !is_float(inner.value->type().dtype())) return false;
    Term simpler;
    if (tensor_term(inner.value, &simpler, depth + 1)) inner = simpler;
    if (inner.padded_keys.known()) return false;
    inner.padded_keys = end_pad;
    *term = inner;
    return true;
  }
  return false;
}

// A float value that is -inf (or a masking fill) on a provable set of positions and 0 elsewhere.
bool MaskAnalyzer::masked_term(Value* value, Term* term) {
  IndexAnalyzer ix(shapes_);
  Predicate masked;
  Value* v = value;
  std::vector<std::vector<int64_t>> unsqueezes;  // innermost last
  bool found = false;
  for (int depth = 0; depth < kMaxDepth && !found; ++depth) {
    Node* n = producer(v);
    if (n == nullptr) return false;
    if (is_float_cast(n)) {
      v = n->input(0);
    } else if (n->op() == "Unsqueeze") {
      auto axes = constant_ints(n->input(1));
      if (!axes) return false;
      unsqueezes.push_back(*axes);
      v = n->input(0);
    } else if (n->op() == "Mul" || n->op() == "Div") {
      // -inf and 0 scaled by a positive constant stay -inf and 0.
      auto c = shapes_.constant_value(n->input(1));
      const int rank_c = ShapeReasoner::rank(n->input(1));
      if (!c || !(*c > 0.0) || std::isinf(*c) || rank_c < 0 || rank_c > ShapeReasoner::rank(n->input(0))) {
        return false;
      }
      v = n->input(0);
    } else if (n->op() == "Where") {
      auto a = uniform_value(n->input(1));
      if (!a) a = shapes_.constant_value(n->input(1));
      auto b = uniform_value(n->input(2));
      if (!b) b = shapes_.constant_value(n->input(2));
      if (!a || !b || !ix.predicate(n->input(0), &masked)) return false;
      if (*a == 0.0 && is_masking_fill(*b)) {
        for (IndexExpr& e : masked.planes) e = negate(e);
        masked.is_union = !masked.is_union;
      } else if (!(is_masking_fill(*a) && *b == 0.0)) {
        return false;
      }
      masked.rank = std::max(masked.rank, ShapeReasoner::rank(v));
      found = true;
    } else if (n->op() == "Trilu") {
      auto fill = uniform_value(n->input(0));
      if (!fill || !is_masking_fill(*fill) || !ix.trilu_plane(n, &masked)) return false;
      found = true;
    } else {
      return false;
    }
  }
  if (!found || (!masked.is_union && masked.planes.size() != 1)) return false;
  for (IndexExpr& e : masked.planes) align(&e, masked.rank);
  for (auto it = unsqueezes.rbegin(); it != unsqueezes.rend(); ++it) {
    for (IndexExpr& e : masked.planes) {
      if (!unsqueeze(&e, *it)) return false;
    }
    masked.rank += static_cast<int>(it->size());
  }
  term->rank = ShapeReasoner::rank(value);
  if (masked.rank > term->rank) return false;
  term->planes.clear();
  for (IndexExpr& e : masked.planes) {
    align(&e, term->rank);
    term->planes.push_back(e);
  }
  return true;
}

bool MaskAnalyzer::check_term_shape(const Term& t, bool last_must_be_keys) {
  auto d = shapes_.dims(t.value);
  const int frame_rank = static_cast<int>(frame_.dims.size());
  if (!d || static_cast<int>(d->size()) > frame_rank) return false;
  if (last_must_be_keys && d->empty()) return false;  // attn_mask needs a key axis
  const int offset = frame_rank - static_cast<int>(d->size());
  for (int a = 0; a < static_cast<int>(d->size()); ++a) {
    const SymDim& want = frame_.dims[a + offset];
    const bool last = a + offset == frame_rank - 1;
    if ((*d)[a] == want) continue;
    if (last && t.padded_keys.known() && (*d)[a].plus(t.padded_keys) == want) continue;
    if ((*d)[a].is(1) && !(last && last_must_be_keys)) continue;
    return false;
  }
  return true;
}

namespace {

enum class PlaneKind { Never, Causal, CausalPerBatch, Padding, Window, Unknown };

struct PlaneClass {
  PlaneKind kind = PlaneKind::Unknown;
  const Value* var = nullptr;
  int64_t window = -1;
};

PlaneClass classify_plane(const Affine& p, const ScoreFrame& frame, ShapeReasoner& shapes) {
  PlaneClass out;
  const int frame_rank = static_cast<int>(frame.dims.size());
  const int offset = frame_rank - static_cast<int>(p.coef.size());
  if (offset < 0) return out;
  int64_t ci = 0, cj = 0;
  for (size_t a = 0; a < p.coef.size(); ++a) {
    if (p.coef[a] == 0) continue;
    const int fa = static_cast<int>(a) + offset;
    if (fa != frame_rank - 1 && fa != frame_rank - 2) return out;
    if (!(p.extent[a] == frame.dims[fa])) return out;  // must index the whole query / key axis
    (fa == frame_rank - 1 ? cj : ci) = p.coef[a];
  }
  int64_t cb = 0;
  if (p.batch_var != nullptr) {
    if (frame_rank != 4 || p.batch_axis + offset != 0 || !(shapes.dim(p.batch_var, 0) == frame.dims[0])) {
      return out;
    }
    cb = p.batch_coef;
  }
  const Linear& k = p.constant;
  if (!k.known) return out;
  if (ci == 0 && cj == 0 && cb == 0) {
    if (is_static_linear(k) && k.c <= 0) out.kind = PlaneKind::Never;
    return out;
  }
  if (ci == -1 && cj == 1 && cb == 0) {  // masked iff j > i - k
    Linear offset_needed = add(Linear(), linear_of(frame.causal_offset), -1);
    if (same(k, offset_needed)) out.kind = PlaneKind::Causal;
    return out;
  }
  if (ci == -1 && cj == 1 && cb == -1) {  // masked iff j > i + x[b] - k, ONNX's frontier when k == Sq
    if (same(k, linear_of(frame.dims[frame_rank - 2]))) {
      out.kind = PlaneKind::CausalPerBatch;
      out.var = p.batch_var;
    }
    return out;
  }
  if (ci == 0 && cj == 1 && cb == -1) {  // masked iff j >= x[b] - k + 1
    if (is_static_linear(k) && k.c == 1) {
      out.kind = PlaneKind::Padding;
      out.var = p.batch_var;
    }
    return out;
  }
  if (ci == 1 && cj == -1 && cb == 0 && is_static_linear(k) && k.c <= 0) {  // masked iff j < i + k
    out.kind = PlaneKind::Window;
    out.window = -k.c;
  }
  return out;
}

}  // namespace

bool MaskAnalyzer::finish(MaskPlan* plan) {
  *plan = MaskPlan();
  if (failed_) return false;
  // Whatever the terms are, adding a bias must not grow the scores (numpy broadcasting would).
  for (Value* b : bias_values_) {
    Term whole;
    whole.value = b;
    if (!check_term_shape(whole, false)) {
      failure_ = "bias '" + b->name() + "' does not broadcast to the scores";
      return false;
    }
  }
  // 1. Classify every plane; a masked term is absorbable when all of its planes are.
  std::vector<std::vector<PlaneClass>> classes(terms_.size());
  std::vector<bool> absorbable(terms_.size(), false);
  for (size_t t = 0; t < terms_.size(); ++t) {
    if (terms_[t].kind != Term::Kind::Masked) continue;
    bool ok = true;
    for (const Affine& p : terms_[t].planes) {
      PlaneClass c = classify_plane(p, frame_, shapes_);
      if (c.kind == PlaneKind::Unknown) ok = false;
      if ((c.kind == PlaneKind::CausalPerBatch || c.kind == PlaneKind::Padding) && !frame_.allow_nonpad)
        ok = false;
      if (c.kind == PlaneKind::Window && !frame_.allow_window) ok = false;
      classes[t].push_back(c);
    }
    absorbable[t] = ok;
  }
  // 2. One per-batch length vector at most; with one, a plain causal term would move the frontier.
  const Value* var = nullptr;
  bool several_vars = false;
  for (size_t t = 0; t < terms_.size(); ++t) {
    if (!absorbable[t]) continue;
    for (const PlaneClass& c : classes[t]) {
      if (c.var == nullptr) continue;
      if (var != nullptr && var != c.var) several_vars = true;
      var = c.var;
    }
  }
  for (size_t t = 0; t < terms_.size(); ++t) {
    for (const PlaneClass& c : classes[t]) {
      if ((several_vars && c.var != nullptr) || (var != nullptr && c.kind == PlaneKind::Causal)) {
        absorbable[t] = false;
      }
    }
  }
  if (several_vars) var = nullptr;
  // 3. Absorb; everything else must be a tensor the fused op takes as attn_mask.
  std::vector<const Term*> tensors;
  for (size_t t = 0; t < terms_.size(); ++t) {
    const Term& term = terms_[t];
    if (term.kind == Term::Kind::Zero || (term.kind == Term::Kind::Masked && absorbable[t])) {
      if (!check_term_shape(term, false)) {
        failure_ = "mask term '" + term.value->name() + "' does not broadcast to the scores";
        return false;
      }
      for (const PlaneClass& c : classes[t]) {
        if (c.kind == PlaneKind::Causal || c.kind == PlaneKind::CausalPerBatch) plan->is_causal = true;
        if (c.var != nullptr) plan->nonpad = const_cast<Value*>(c.var);
        if (c.kind == PlaneKind::Window)
          plan->window = plan->window < 0 ? c.window : std::min(plan->window, c.window);
      }
      continue;
    }
    tensors.push_back(&term);
  }
  const Term* tensor = tensors.empty() ? nullptr : tensors[0];
  Term whole;
  if (tensors.size() > 1) {
    // Several unrecognized terms of one Add-form bias: the bias itself is the mask, nothing absorbed.
    if (bias_values_.size() != 1 || fills_ != 0) {
      failure_ = "more than one mask tensor";
      return false;
    }
    *plan = MaskPlan();
    whole.kind = Term::Kind::Tensor;
    whole.value = bias_values_[0];
    whole.rank = ShapeReasoner::rank(whole.value);
    tensor = &whole;
  }
  if (tensor != nullptr) {
    if (!check_term_shape(*tensor, true)) {
      failure_ = "mask '" + tensor->value->name() + "' does not broadcast to the scores over every key";
      return false;
    }
    plan->tensor = tensor->value;
    plan->tensor_is_bool = tensor->is_bool;
    plan->tensor_needs_not = tensor->is_bool && tensor->bool_masked_where_true;
    plan->tensor_rank = tensor->rank;
  }
  plan->bias_values = bias_values_;
  plan->fills = fills_;
  return true;
}

}  // namespace seqrun::passes
