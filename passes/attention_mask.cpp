// Attention mask recognition (see attention_mask.h): bias terms (zero, masked half-planes from
// attention_index.h, tensors), their shape checks, and their classification into causal / padding / window.
#include "passes/attention_mask.h"

#include <cmath>
#include <limits>

#include "passes/pattern.h"

namespace seqrun::passes {

namespace {

using Term = MaskAnalyzer::Term;
using Affine = IndexExpr;
using Linear = LinearConst;

constexpr double kMaskedFill = -65504.0;  // at or below: acts as -inf (see the header)
constexpr int kMaxDepth = 24;

bool is_masking_fill(double v) {
  return v <= kMaskedFill;
}

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

void MaskAnalyzer::add_fill(Value* condition, bool masked_where_true, bool fill_is_neg_inf) {
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
  IndexPredicate p;
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
  if (t.kind == Term::Kind::Tensor && !fill_is_neg_inf) {
    failed_ = true;
    failure_ = "a finite fill over the tensor mask '" + condition->name() + "'";
    return;
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
  IndexPredicate masked;
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
