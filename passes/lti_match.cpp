// fuse-lti-scan's matcher (lti_match.h): the Loop's trip count and condition, the state update as linear
// forms over {previous states, u_t}, the readout Σ_N (C_re·re' - C_im·im') (times a scalar), and where each
// step's readout goes — a scan output, or the torch.jit.script idiom `y[:, :, t] = ...` (ScatterND into a
// loop-carried buffer, lti_output.h).
#include "passes/lti_match.h"

#include <algorithm>
#include <map>
#include <string>

#include "passes/lti_output.h"

namespace seqrun::passes::lti {
namespace {

constexpr int kMaxDepth = 32;

// Which variable a term multiplies.
enum Var { kFirst = 0, kSecond = 1, kInput = 2, kNumVars = 3 };

struct Term {
  Var var;
  Coefficient coef;
};

Node* producer_op(const Value* v, const char* op) {
  Node* n = v != nullptr ? v->producer() : nullptr;
  return n != nullptr && n->op() == op ? n : nullptr;
}

bool static_dims(const TensorType& t, Shape* out) {
  auto s = t.static_shape();
  if (!s) return false;
  *out = Shape(s->begin(), s->end());
  return true;
}

// The single value of a one-element float constant (a body constant or a capture of a top constant).
std::optional<double> scalar_constant(const Value* v, const Node* loop) {
  if (v->role() == Value::Role::Capture) {
    const auto& caps = v->owner()->captures();
    for (size_t i = 0; i < caps.size(); ++i) {
      if (caps[i] == v) v = loop->input(loop->num_explicit_inputs() + static_cast<int>(i));
    }
  }
  if (!v->is_constant() || v->constant().numel() != 1 || !is_float(v->constant().dtype()))
    return std::nullopt;
  return v->constant().get_f64(0);
}

std::optional<std::vector<int64_t>> int_constant(const Value* v) {
  if (v == nullptr || !v->is_constant() || is_float(v->constant().dtype())) return std::nullopt;
  return v->constant().to_i64_vector();
}

// A zero initial state: an all-zero constant or ConstantOfShape with value 0.
bool is_zero(const Value* v) {
  if (v->is_constant()) {
    const Tensor& t = v->constant();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (t.get_f64(i) != 0.0) return false;
    }
    return true;
  }
  const Node* n = producer_op(v, "ConstantOfShape");
  if (n == nullptr) return false;
  const Attribute* value = n->attr("value");
  return value == nullptr || (value->type() == AttrType::Tensor && value->tensor().numel() == 1 &&
                              value->tensor().get_f64(0) == 0.0);
}

bool unused(const Value* v) {
  return v->uses().empty() && !v->is_graph_output();
}

class BodyMatcher {
 public:
  BodyMatcher(Node* loop, const Graph* body) : loop_(loop), body_(body), index_eval_(body->inputs()[0]) {}

  std::optional<LtiMatch> match();

 private:
  bool invariant(const Value* v, int depth = 0);
  // The top-graph value a capture stands for (null for other values).
  Value* outer(const Value* capture) const;
  // u_t: Unsqueeze(Gather(u, t, axis), [-1]) of a captured rank-3 u, shaped [B, H, 1]; sets u_ / axis_.
  bool is_input_step(const Value* v);
  // v as ± a product: appends factors; `var` receives the one variable factor (or stays -1).
  bool product(Value* v, const std::vector<const Value*>& vars, Coefficient& coef, int& var, int depth);
  // v as a sum of Terms over `vars` (kInput is recognized by is_input_step).
  bool linear(Value* v, bool negative, const std::vector<const Value*>& vars, std::vector<Term>& terms,
              int depth);
  // The coefficient of each variable in a linear form (at most one term per variable).
  static bool by_var(const std::vector<Term>& terms, Coefficient (&out)[kNumVars]);
  bool coefficient_shape_ok(const Coefficient& c) const;
  // The readout: scale · ReduceSum(linear form over the new states, axis N). Fills C and the scale.
  bool readout(Value* v, const Value* new_first, const Value* new_second, LtiMatch& m, int depth = 0);
  // Where the readout goes: a scan output, or a ScatterND buffer slot proven to receive slice t.
  bool place_output(int first, int second, LtiMatch& m);
  bool try_slots(int first, int second, LtiMatch& m);

  Node* loop_;
  const Graph* body_;
  ssm::AffineEvaluator index_eval_;
  std::map<const Value*, bool> invariant_memo_;
  Value* u_ = nullptr;
  int axis_ = -1;
  int64_t steps_ = 0;
  Shape state_;  // [B, H, N]
};

Value* BodyMatcher::outer(const Value* capture) const {
  const auto& caps = body_->captures();
  for (size_t i = 0; i < caps.size(); ++i) {
    if (caps[i] == capture) return loop_->input(loop_->num_explicit_inputs() + static_cast<int>(i));
  }
  return nullptr;
}

bool BodyMatcher::invariant(const Value* v, int depth) {
  if (v->role() == Value::Role::Capture || v->is_constant()) return true;
  if (v->role() == Value::Role::Input || depth > kMaxDepth) return false;
  auto it = invariant_memo_.find(v);
  if (it != invariant_memo_.end()) return it->second;
  const Node* n = v->producer();
  // Random ops draw new values every iteration whatever their inputs.
  bool result =
      n != nullptr && n->op().rfind("Random", 0) != 0 && n->op() != "Multinomial" && n->op() != "Bernoulli";
  for (const auto& [name, attr] : n != nullptr ? n->attrs() : std::map<std::string, Attribute>{}) {
    if (attr.type() == AttrType::Graph) result = false;  // no nested control flow
  }
  for (int i = 0; result && i < n->num_inputs(); ++i) {
    if (n->has_input(i)) result = invariant(n->input(i), depth + 1);
  }
  invariant_memo_[v] = result;
  return result;
}

bool BodyMatcher::is_input_step(const Value* v) {
  const Node* unsqueeze = producer_op(v, "Unsqueeze");
  Shape shape;
  if (unsqueeze == nullptr || !static_dims(v->type(), &shape) || shape.size() != 3 || shape[0] != state_[0] ||
      shape[1] != state_[1] || shape[2] != 1) {
    return false;
  }
  auto axes = int_constant(unsqueeze->input(1));
  if (!axes || axes->size() != 1 || ((*axes)[0] != 2 && (*axes)[0] != -1)) return false;
  const Node* gather = producer_op(unsqueeze->input(0), "Gather");
  if (gather == nullptr || gather->input(1) != body_->inputs()[0]) return false;
  Value* source = outer(gather->input(0));
  Shape u_shape;
  if (source == nullptr || !static_dims(source->type(), &u_shape) || u_shape.size() != 3) return false;
  int axis = static_cast<int>(gather->get_int("axis", 0));
  if (axis < 0) axis += 3;
  if (axis < 0 || axis > 2 || u_shape[axis] != steps_) return false;
  if ((u_ != nullptr && u_ != source) || (axis_ >= 0 && axis_ != axis)) return false;  // one input sequence
  u_ = source;
  axis_ = axis;
  return true;
}

bool BodyMatcher::product(Value* v, const std::vector<const Value*>& vars, Coefficient& coef, int& var,
                          int depth) {
  if (depth > kMaxDepth) return false;
  for (size_t k = 0; k < vars.size(); ++k) {
    if (v == vars[k]) {
      if (var >= 0) return false;  // a product of two variables: not linear
      var = static_cast<int>(k);
      return true;
    }
  }
  if (is_input_step(v)) {
    if (var >= 0) return false;
    var = kInput;
    return true;
  }
  if (Node* n = producer_op(v, "Mul")) {
    return product(n->input(0), vars, coef, var, depth + 1) &&
           product(n->input(1), vars, coef, var, depth + 1);
  }
  if (Node* n = producer_op(v, "Neg")) {
    coef.negative = !coef.negative;
    return product(n->input(0), vars, coef, var, depth + 1);
  }
  if (!invariant(v)) return false;
  coef.factors.push_back(v);
  return true;
}

bool BodyMatcher::linear(Value* v, bool negative, const std::vector<const Value*>& vars,
                         std::vector<Term>& terms, int depth) {
  if (depth > kMaxDepth) return false;
  if (std::find(vars.begin(), vars.end(), v) != vars.end())
    return false;  // coefficient 1: not an SSM we emit
  if (Node* n = producer_op(v, "Add")) {
    return linear(n->input(0), negative, vars, terms, depth + 1) &&
           linear(n->input(1), negative, vars, terms, depth + 1);
  }
  if (Node* n = producer_op(v, "Sub")) {
    return linear(n->input(0), negative, vars, terms, depth + 1) &&
           linear(n->input(1), !negative, vars, terms, depth + 1);
  }
  if (Node* n = producer_op(v, "Neg")) return linear(n->input(0), !negative, vars, terms, depth + 1);
  Term t{kFirst, {}};
  t.coef.negative = negative;
  int var = -1;
  if (!product(v, vars, t.coef, var, depth + 1) || var < 0) return false;
  t.var = static_cast<Var>(var);
  terms.push_back(t);
  return true;
}

bool BodyMatcher::by_var(const std::vector<Term>& terms, Coefficient (&out)[kNumVars]) {
  bool seen[kNumVars] = {false, false, false};
  for (const Term& t : terms) {
    if (seen[t.var]) return false;
    seen[t.var] = true;
    out[t.var] = t.coef;
    if (out[t.var].factors.empty()) return false;  // a bare variable (coefficient 1): not an SSM we emit
  }
  return true;
}

// Same factors (as a multiset) and, with `same_sign`, the same sign (else opposite signs).
bool same_coefficient(Coefficient a, Coefficient b, bool same_sign) {
  std::sort(a.factors.begin(), a.factors.end());
  std::sort(b.factors.begin(), b.factors.end());
  return a.factors == b.factors && (a.negative == b.negative) == same_sign;
}

bool BodyMatcher::coefficient_shape_ok(const Coefficient& c) const {
  for (const Value* f : c.factors) {
    Shape s;
    if (!static_dims(f->type(), &s) || s.size() > 3 || !is_float(f->type().dtype())) return false;
    // Right-aligned against [B, H, N]: nothing along B, H and N sized 1 or full.
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t axis = 3 - s.size() + i;
      if (axis == 0 ? s[i] != 1 : (s[i] != 1 && s[i] != state_[axis])) return false;
    }
  }
  return true;
}

bool BodyMatcher::readout(Value* v, const Value* new_first, const Value* new_second, LtiMatch& m, int depth) {
  if (depth > kMaxDepth) return false;
  for (const char* op : {"Mul", "Div"}) {
    Node* n = producer_op(v, op);
    if (n == nullptr) continue;
    for (int k = 0; k < (op[0] == 'M' ? 2 : 1); ++k) {
      auto c = scalar_constant(n->input(1 - k), loop_);
      if (c && *c != 0.0) {
        m.readout_scale *= op[0] == 'M' ? *c : 1.0 / *c;
        return readout(n->input(k), new_first, new_second, m, depth + 1);
      }
    }
    return false;
  }
  if (Node* n = producer_op(v, "Neg")) {
    m.readout_scale = -m.readout_scale;
    return readout(n->input(0), new_first, new_second, m, depth + 1);
  }
  Node* sum = producer_op(v, "ReduceSum");
  if (sum == nullptr || !sum->has_input(1)) return false;
  auto axes = int_constant(sum->input(1));
  if (!axes || axes->size() != 1 || ((*axes)[0] != 2 && (*axes)[0] != -1)) return false;
  std::vector<Term> terms;
  std::vector<const Value*> vars = {new_first};
  if (new_second != nullptr) vars.push_back(new_second);
  Coefficient c[kNumVars];
  if (!linear(sum->input(0), false, vars, terms, depth + 1) || !by_var(terms, c) || c[kInput].present() ||
      !c[kFirst].present()) {
    return false;
  }
  m.C_re = c[kFirst];
  if (c[kSecond].present()) {  // y = Σ C_re·re - C_im·im: the second coefficient is -C_im
    m.C_im = c[kSecond];
    m.C_im.negative = !m.C_im.negative;
  }
  return coefficient_shape_ok(m.C_re) && coefficient_shape_ok(m.C_im);
}

bool BodyMatcher::place_output(int first, int second, LtiMatch& m) {
  const int carried = loop_->num_explicit_inputs() - 2;
  const Value* new_first = body_->outputs()[1 + first];
  const Value* new_second = second >= 0 ? body_->outputs()[1 + second] : nullptr;
  Shape readout_shape;
  int y_output = -1;
  // Carried buffers written by ScatterND.
  for (int k = 0; k < carried && y_output < 0; ++k) {
    if (k == first || k == second) continue;
    Node* scatter = producer_op(body_->outputs()[1 + k], "ScatterND");
    if (scatter == nullptr || scatter->input(0) != body_->inputs()[2 + k]) continue;
    LtiMatch attempt = m;
    Value* r = through_reshapes(scatter->input(2), index_eval_);
    if (!static_dims(r->type(), &readout_shape)) continue;
    auto perm = scatter_step_perm(scatter, index_eval_, state_[0], state_[1], steps_);
    if (perm && readout(r, new_first, new_second, attempt)) {
      attempt.y_perm = *perm;
      m = attempt;
      y_output = k;
    }
  }
  // Scan outputs: stacked along a new axis 0, so [L, B, H] from a [B, H] readout.
  for (int k = 1 + carried; k < static_cast<int>(body_->outputs().size()) && y_output < 0; ++k) {
    Value* r = body_->outputs()[k];
    LtiMatch attempt = m;
    if (!static_dims(r->type(), &readout_shape) || readout_shape != Shape{state_[0], state_[1]}) continue;
    if (readout(r, new_first, new_second, attempt)) {
      m = attempt;
      m.y_perm = {2, 0, 1};
      y_output = k - 1;  // Loop outputs: carried values first, then scan outputs
    }
  }
  if (y_output < 0) return false;
  m.y = loop_->output(y_output);
  // The readout sums over N into [B, H] or [B, H, 1]; both are b·H + h in row-major order.
  if (readout_shape != Shape{state_[0], state_[1]} && readout_shape != Shape{state_[0], state_[1], 1})
    return false;
  for (int o = 0; o < loop_->num_outputs(); ++o) {
    if (o == y_output || o == first || o == second) continue;
    if (!unused(loop_->output(o))) return false;  // the rewrite removes the Loop
  }
  return true;
}

bool BodyMatcher::try_slots(int first, int second, LtiMatch& m) {
  u_ = nullptr;
  axis_ = -1;
  const Value* prev_first = body_->inputs()[2 + first];
  Value* new_first = body_->outputs()[1 + first];
  Shape shape;
  if (!static_dims(new_first->type(), &shape) || shape.size() != 3 || !is_float(new_first->type().dtype()) ||
      prev_first->type() != new_first->type()) {
    return false;
  }
  state_ = shape;
  std::vector<const Value*> vars = {prev_first};
  Value* new_second = nullptr;
  if (second >= 0) {
    new_second = body_->outputs()[1 + second];
    if (body_->inputs()[2 + second]->type() != new_first->type() || new_second->type() != new_first->type())
      return false;
    vars.push_back(body_->inputs()[2 + second]);
  }
  std::vector<Term> terms_first, terms_second;
  Coefficient a[kNumVars], b[kNumVars];
  if (!linear(new_first, false, vars, terms_first, 0) || !by_var(terms_first, a)) return false;
  if (!a[kFirst].present() || !a[kInput].present()) return false;
  if (second >= 0) {
    // re' = a·re - b·im + c·u, im' = b·re + a·im + d·u.
    if (!linear(new_second, false, vars, terms_second, 0) || !by_var(terms_second, b)) return false;
    if (!a[kSecond].present() || !b[kFirst].present() || !b[kSecond].present()) return false;
    if (!same_coefficient(a[kFirst], b[kSecond], true) || !same_coefficient(a[kSecond], b[kFirst], false))
      return false;
    m.dA_im = b[kFirst];
    m.dB_im = b[kInput];
  } else if (a[kSecond].present()) {
    return false;
  }
  m.dA_re = a[kFirst];
  m.dB_re = a[kInput];
  for (const Coefficient* c : {&m.dA_re, &m.dA_im, &m.dB_re, &m.dB_im}) {
    if (!coefficient_shape_ok(*c)) return false;
  }
  if (!place_output(first, second, m)) return false;
  // Initial states: zero, or a [B, H, N] value of the top graph.
  Value* init_first = loop_->input(2 + first);
  Value* init_second = second >= 0 ? loop_->input(2 + second) : nullptr;
  for (Value* init : {init_first, init_second}) {
    Shape s;
    if (init != nullptr && !is_zero(init) && (!static_dims(init->type(), &s) || s != state_)) return false;
  }
  m.h0_re = is_zero(init_first) ? nullptr : init_first;
  m.h0_im = init_second == nullptr || is_zero(init_second) ? nullptr : init_second;
  m.h_re = unused(loop_->output(first)) ? nullptr : loop_->output(first);
  m.h_im = second < 0 || unused(loop_->output(second)) ? nullptr : loop_->output(second);
  m.u = u_;
  m.u_time_axis = axis_;
  m.batch = state_[0];
  m.channels = state_[1];
  m.modes = state_[2];
  m.steps = steps_;
  return u_ != nullptr;
}

std::optional<LtiMatch> BodyMatcher::match() {
  const int carried = loop_->num_explicit_inputs() - 2;
  if (carried < 1 || static_cast<int>(body_->inputs().size()) != 2 + carried ||
      static_cast<int>(body_->outputs().size()) < 1 + carried) {
    return std::nullopt;
  }
  // Exactly `steps` iterations: a constant trip count, an always-true condition.
  auto trip = int_constant(loop_->input(0));
  if (!trip || trip->size() != 1 || (*trip)[0] <= 0) return std::nullopt;
  steps_ = (*trip)[0];
  if (loop_->has_input(1)) {
    auto cond = int_constant(loop_->input(1));
    if (!cond || cond->size() != 1 || (*cond)[0] == 0) return std::nullopt;
  }
  const Value* cond_out = body_->outputs()[0];
  while (const Node* id = producer_op(cond_out, "Identity")) cond_out = id->input(0);
  if (cond_out != body_->inputs()[1]) {
    auto c =
        cond_out->role() == Value::Role::Capture ? int_constant(outer(cond_out)) : int_constant(cond_out);
    if (!c || c->size() != 1 || (*c)[0] == 0) return std::nullopt;
  }
  // A complex pair reads as (re, im) and as the conjugate (im, re) alike: prefer the order whose dA_im has no
  // sign to flip (re' = a·re - b·im as written), so LTIScan's h_re is the slot the model calls re.
  std::optional<LtiMatch> conjugate;
  for (int first = 0; first < carried; ++first) {
    for (int second = 0; second < carried; ++second) {
      LtiMatch m;
      m.loop = loop_;
      if (second == first || !try_slots(first, second, m)) continue;
      if (!m.dA_im.negative) return m;
      if (!conjugate) conjugate = m;
    }
  }
  if (conjugate) return conjugate;
  for (int first = 0; first < carried; ++first) {
    LtiMatch m;
    m.loop = loop_;
    if (try_slots(first, -1, m)) return m;
  }
  return std::nullopt;
}

}  // namespace

std::optional<LtiMatch> match_lti_loop(Node* loop) {
  if (loop->op() != "Loop" || loop->num_inputs() < 3) return std::nullopt;
  const Graph* body = loop->get_graph("body");
  if (body == nullptr) return std::nullopt;
  return BodyMatcher(loop, body).match();
}

}  // namespace seqrun::passes::lti
