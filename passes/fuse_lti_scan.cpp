// fuse-lti-scan pass (see fuse_lti_scan.h): match each Loop (lti_match.h), hoist the loop-invariant
// coefficients out of the body, bring every input into LTIScan's layout ([B, H, L], [H, N], [H]), emit the
// LTIScan node and the Transpose that gives its y the Loop output's layout; dead-code removal drops the Loop.
#include "passes/fuse_lti_scan.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "passes/lti_match.h"

namespace seqrun::passes {
namespace {

using lti::Coefficient;
using lti::LtiMatch;

// Adds nodes before the Loop, each with inferred types, and copies body values out of the body.
class Emitter {
 public:
  Emitter(Graph& graph, Node* loop) : graph_(graph), loop_(loop), body_(loop->get_graph("body")) {}

  Result<Value*> node(const std::string& op, const std::vector<Value*>& inputs, const std::string& base,
                      std::map<std::string, Attribute> attrs = {}) {
    Node* n = graph_.add_node(op, inputs, 1, std::move(attrs), {graph_.unique_name(base)}, loop_);
    SEQRUN_TRY(infer_node_types(*n));
    return n->output(0);
  }

  Value* ints(const std::vector<int64_t>& values, const std::string& base) {
    return graph_.add_constant(graph_.unique_name(base),
                               Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values));
  }

  // The top-graph value that computes the loop-invariant body value `v`.
  Result<Value*> hoist(const Value* v) {
    auto it = hoisted_.find(v);
    if (it != hoisted_.end()) return it->second;
    Value* out = nullptr;
    if (v->role() == Value::Role::Capture) {
      const auto& caps = body_->captures();
      for (size_t i = 0; i < caps.size() && out == nullptr; ++i) {
        if (caps[i] == v) out = loop_->input(loop_->num_explicit_inputs() + static_cast<int>(i));
      }
    } else if (v->is_constant()) {
      out = graph_.add_constant(graph_.unique_name(v->name()), v->constant());
    } else if (const Node* n = v->producer()) {
      std::vector<Value*> inputs;
      for (int i = 0; i < n->num_inputs(); ++i) {
        Value* in = nullptr;
        if (n->has_input(i)) {
          SEQRUN_ASSIGN(in, hoist(n->input(i)));
        }
        inputs.push_back(in);
      }
      std::vector<std::string> names;
      for (const Value* o : n->outputs()) names.push_back(graph_.unique_name(o->name()));
      Node* copy = graph_.add_node(n->op(), inputs, n->num_outputs(), n->attrs(), names, loop_);
      SEQRUN_TRY(infer_node_types(*copy));
      for (int o = 0; o < n->num_outputs(); ++o) hoisted_[n->output(o)] = copy->output(o);
      return hoisted_.at(v);
    }
    if (out == nullptr) return make_error("fuse-lti-scan: cannot hoist '{}' out of the loop body", v->name());
    hoisted_[v] = out;
    return out;
  }

  // ± the product of the coefficient's factors, laid out as [H, N]; null when absent.
  Result<Value*> coefficient(const Coefficient& c, int64_t H, int64_t N, double scale,
                             const std::string& base) {
    if (!c.present()) return static_cast<Value*>(nullptr);
    SEQRUN_ASSIGN(Value * v, hoist(c.factors[0]));
    for (size_t i = 1; i < c.factors.size(); ++i) {
      SEQRUN_ASSIGN(Value * f, hoist(c.factors[i]));
      SEQRUN_ASSIGN(v, node("Mul", {v, f}, base));
    }
    if (scale != 1.0) {
      Value* s = graph_.add_constant(graph_.unique_name(base + "_scale"),
                                     Tensor::from_vector<float>({}, {static_cast<float>(scale)}));
      SEQRUN_ASSIGN(v, node("Mul", {v, s}, base));
    }
    if (c.negative) {
      SEQRUN_ASSIGN(v, node("Neg", {v}, base));
    }
    if (v->type().rank() == 3) {
      SEQRUN_ASSIGN(v, node("Squeeze", {v, ints({0}, base + "_axes")}, base));
    }
    auto shape = v->type().static_shape();
    if (!shape || *shape != std::vector<int64_t>{H, N}) {
      SEQRUN_ASSIGN(v, node("Expand", {v, ints({H, N}, base + "_shape")}, base));
    }
    return v;
  }

 private:
  Graph& graph_;
  Node* loop_;
  const Graph* body_;
  std::map<const Value*, Value*> hoisted_;
};

// Points every use of `old_value` (graph outputs included) at `new_value`, which takes over its name.
void replace_value(Graph& graph, Value* old_value, Value* new_value) {
  const std::string name = old_value->name();
  graph.replace_all_uses(old_value, new_value);
  graph.rename_value(old_value, graph.unique_name(name + "_unfused"));
  graph.rename_value(new_value, name);
}

// y + u·D after the Loop (u the scan's own input, D per channel: [H, 1] or [1, H, 1]): the Add and D, or
// nothing when the pattern is not there or the product has other users.
struct Skip {
  Node* add = nullptr;
  Value* d = nullptr;
};

Skip match_skip(const LtiMatch& m) {
  if (m.u_time_axis != 2 || m.y_perm != std::vector<int64_t>{0, 1, 2} || m.y->uses().size() != 1 ||
      m.y->is_graph_output()) {
    return {};
  }
  Node* add = m.y->uses()[0].node;
  if (add->op() != "Add" || add->num_inputs() != 2) return {};
  Value* other = add->input(0) == m.y ? add->input(1) : add->input(0);
  Node* mul = other->producer();
  if (mul == nullptr || mul->op() != "Mul" || other->uses().size() != 1 || other->is_graph_output())
    return {};
  for (int k = 0; k < 2; ++k) {
    if (mul->input(k) != m.u) continue;
    Value* d = mul->input(1 - k);
    auto s = d->type().static_shape();
    if (!s || s->size() > 3 || s->size() < 2 || !is_float(d->type().dtype())) continue;
    // Right-aligned against [B, H, L]: only H may be non-1.
    bool per_channel = true;
    for (size_t i = 0; i < s->size(); ++i) {
      const size_t axis = 3 - s->size() + i;
      per_channel = per_channel && (*s)[i] == (axis == 1 ? m.channels : 1);
    }
    if (per_channel && add->output(0)->type() == m.y->type()) return {add, d};
  }
  return {};
}

Status rewrite(Graph& graph, const LtiMatch& m) {
  Node* loop = m.loop;
  const std::string base = (m.y->name().empty() ? std::string("lti") : m.y->name()) + "_lti";
  Emitter e(graph, loop);
  const int64_t H = m.channels, N = m.modes;
  std::vector<Value*> inputs(10, nullptr);
  Value* u = m.u;
  if (m.u_time_axis != 2) {
    const std::vector<int64_t> perm =
        m.u_time_axis == 0 ? std::vector<int64_t>{1, 2, 0} : std::vector<int64_t>{0, 2, 1};
    SEQRUN_ASSIGN(u, e.node("Transpose", {u}, base + "_u", {{"perm", perm}}));
  }
  inputs[0] = u;
  SEQRUN_ASSIGN(inputs[1], e.coefficient(m.dA_re, H, N, 1.0, base + "_dA_re"));
  SEQRUN_ASSIGN(inputs[2], e.coefficient(m.dA_im, H, N, 1.0, base + "_dA_im"));
  SEQRUN_ASSIGN(inputs[3], e.coefficient(m.dB_re, H, N, 1.0, base + "_dB_re"));
  SEQRUN_ASSIGN(inputs[4], e.coefficient(m.dB_im, H, N, 1.0, base + "_dB_im"));
  SEQRUN_ASSIGN(inputs[5], e.coefficient(m.C_re, H, N, m.readout_scale, base + "_C_re"));
  SEQRUN_ASSIGN(inputs[6], e.coefficient(m.C_im, H, N, m.readout_scale, base + "_C_im"));
  const Skip skip = match_skip(m);
  if (skip.add != nullptr) {
    // D as [H]: through the layout ops that made it [1, H, 1], else one Reshape.
    Value* d = skip.d;
    while (d->producer() != nullptr && d->producer()->num_inputs() >= 1 &&
           (d->producer()->op() == "Unsqueeze" || d->producer()->op() == "Reshape") &&
           d->producer()->input(0)->type().static_shape().has_value() &&
           num_elements(Shape(*d->producer()->input(0)->type().static_shape())) == H) {
      d = d->producer()->input(0);
    }
    if (d->type().static_shape() != std::vector<int64_t>{H}) {
      SEQRUN_ASSIGN(d, e.node("Reshape", {d, e.ints({H}, base + "_D_shape")}, base + "_D"));
    }
    inputs[7] = d;
  }
  inputs[8] = m.h0_re;
  inputs[9] = m.h0_im;
  if (m.h0_im != nullptr && m.h0_re == nullptr) {
    // A zero real part with a non-zero imaginary one: LTIScan takes both or neither as given.
    Value* zeros =
        graph.add_constant(graph.unique_name(base + "_h0_re"), Tensor::zeros(DType::f32, {m.batch, H, N}));
    inputs[8] = zeros;
  }
  while (inputs.back() == nullptr) inputs.pop_back();
  const int outputs = m.h_im != nullptr ? 3 : m.h_re != nullptr ? 2 : 1;
  std::vector<std::string> names = {graph.unique_name(base), graph.unique_name(base + "_h_re"),
                                    graph.unique_name(base + "_h_im")};
  names.resize(static_cast<size_t>(outputs));
  Node* scan = graph.add_node("LTIScan", inputs, outputs, {}, names, loop);
  scan->set_name((loop->name().empty() ? std::string("Loop") : loop->name()) + "/LTIScan");
  SEQRUN_TRY(infer_node_types(*scan));
  Value* y = scan->output(0);
  if (m.y_perm != std::vector<int64_t>{0, 1, 2}) {
    SEQRUN_ASSIGN(y, e.node("Transpose", {y}, base + "_y", {{"perm", m.y_perm}}));
  }
  replace_value(graph, skip.add != nullptr ? skip.add->output(0) : m.y, y);
  if (m.h_re != nullptr) replace_value(graph, m.h_re, scan->output(1));
  if (m.h_im != nullptr) replace_value(graph, m.h_im, scan->output(2));
  return Status::ok();
}

}  // namespace

Result<bool> FuseLtiScanPass::run(Graph& graph) {
  bool changed = false;
  for (Node* node : graph.nodes()) {
    if (node->op() != "Loop") continue;
    std::optional<LtiMatch> m = lti::match_lti_loop(node);
    if (!m) continue;
    SEQRUN_TRY(rewrite(graph, *m));
    changed = true;
  }
  if (changed) {
    graph.remove_dead_code();
    SEQRUN_TRY(graph.sort_topologically());
  }
  return changed;
}

}  // namespace seqrun::passes
