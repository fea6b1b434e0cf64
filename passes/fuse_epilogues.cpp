// fuse-epilogues pass (see fuse_epilogues.h): match base -> bias -> activation, check that the
// pattern is closed (no outside users of its inner values), insert FusedLinear before the pattern's
// last node, and let dead-code removal drop the old nodes.
#include "passes/fuse_epilogues.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace seqrun::passes {
namespace {

// --- small matching helpers ----------------------------------------------------------------------

// The value of a one-element float constant.
std::optional<double> scalar_constant(const Value* v) {
  if (v == nullptr || !v->is_constant()) return std::nullopt;
  const Tensor& t = v->constant();
  if (t.numel() != 1 || !is_float(t.dtype())) return std::nullopt;
  return t.get_f64(0);
}

// A one-element constant close to `expected` (exported constants are f32 roundings) whose rank does
// not exceed `like`'s, so combining it with `like` cannot change the shape.
bool is_scalar(const Value* c, const Value* like, double expected) {
  const std::optional<double> v = scalar_constant(c);
  if (!v || std::fabs(*v - expected) > 1e-5 * std::fabs(expected)) return false;
  return c->type().has_rank() && like->type().has_rank() && c->type().rank() <= like->type().rank();
}

// v's producer when it is an `op` node without nested graphs.
Node* produced_by(const Value* v, const char* op) {
  if (v == nullptr || v->role() != Value::Role::Intermediate) return nullptr;
  Node* n = v->producer();
  return n != nullptr && n->op() == op && n->num_captures() == 0 ? n : nullptr;
}

// The other operand of a two-input node that has `v` as one operand.
Value* other_input(const Node* n, const Value* v) {
  if (n == nullptr || n->num_inputs() != 2) return nullptr;
  if (n->input(0) == v && n->input(1) != v) return n->input(1);
  if (n->input(1) == v && n->input(0) != v) return n->input(0);
  return nullptr;
}

// The one node using v, when v has exactly one use and is not a graph output.
Node* single_user(const Value* v, const char* op) {
  if (v == nullptr || v->uses().size() != 1 || v->is_graph_output()) return nullptr;
  Node* n = v->uses()[0].node;
  return n->op() == op && n->num_captures() == 0 ? n : nullptr;
}

// Expands v through Mul nodes (and Pow(., 3)) into its factors, recording the expanded nodes.
// Values in `stop` stay leaves.
void factors(Value* v, const std::vector<Value*>& stop, std::vector<Value*>& leaves,
             std::vector<Node*>& nodes, int depth = 0) {
  if (depth < 6 && std::find(stop.begin(), stop.end(), v) == stop.end()) {
    if (Node* m = produced_by(v, "Mul")) {
      nodes.push_back(m);
      factors(m->input(0), stop, leaves, nodes, depth + 1);
      factors(m->input(1), stop, leaves, nodes, depth + 1);
      return;
    }
    Node* p = produced_by(v, "Pow");
    if (p != nullptr && scalar_constant(p->input(1)) == 3.0) {
      nodes.push_back(p);
      leaves.insert(leaves.end(), 3, p->input(0));
      return;
    }
  }
  leaves.push_back(v);
}

// True when `leaves` is y (y_count times), `other` (once, if given) and one scalar ~ `constant`.
bool leaves_are(const std::vector<Value*>& leaves, Value* y, int y_count, Value* other, double constant) {
  if (static_cast<int>(leaves.size()) != y_count + (other != nullptr ? 1 : 0) + 1) return false;
  int ys = 0, others = 0, scalars = 0;
  for (Value* v : leaves) {
    if (v == y) {
      ++ys;
    } else if (other != nullptr && v == other) {
      ++others;
    } else if (is_scalar(v, y, constant)) {
      ++scalars;
    }
  }
  return ys == y_count && others == (other != nullptr ? 1 : 0) && scalars == 1;
}

// --- the three parts of a pattern -----------------------------------------------------------------

struct Base {
  Node* node = nullptr;
  Value* x = nullptr;
  Value* w = nullptr;
  int64_t trans_b = 0;
  int64_t out_features = 0;
  Value* bias = nullptr;            // an existing [N] value
  std::optional<Tensor> bias_data;  // or a constant to create
};

std::optional<Base> match_base(Node* n) {
  if (n->num_captures() > 0 || n->num_outputs() != 1) return std::nullopt;
  const TensorType& out = n->output(0)->type();
  if (!is_float(out.dtype()) || !out.has_rank() || out.rank() == 0) return std::nullopt;
  Base b;
  b.node = n;
  b.x = n->input(0);
  b.w = n->input(1);
  if (b.x == nullptr || b.w == nullptr || !b.w->type().has_rank() || b.w->type().rank() != 2)
    return std::nullopt;
  if (!b.x->type().has_rank() || b.x->type().rank() == 0) return std::nullopt;
  if (n->op() == "MatMul") {
    b.trans_b = 0;
  } else if (n->op() == "Linear") {
    b.trans_b = 1;
    b.bias = n->input(2);
  } else if (n->op() == "Gemm") {
    if (n->get_int("transA", 0) != 0 || n->get_float("alpha", 1.0f) != 1.0f || b.x->type().rank() != 2) {
      return std::nullopt;
    }
    b.trans_b = n->get_int("transB", 0) != 0 ? 1 : 0;
  } else {
    return std::nullopt;
  }
  const Dim& n_dim = b.w->type().dim(b.trans_b ? 0 : 1);
  if (!n_dim.is_static()) return std::nullopt;
  b.out_features = n_dim.value();
  if (n->op() == "Gemm" && n->input(2) != nullptr && n->get_float("beta", 1.0f) != 0.0f) {
    // C becomes the bias when it is a constant row: [N] or [1, N], with beta = 1.
    const Value* c = n->input(2);
    if (n->get_float("beta", 1.0f) != 1.0f || !c->is_constant()) return std::nullopt;
    const Shape& s = c->constant().shape();
    if (s != Shape{b.out_features} && s != Shape{1, b.out_features}) return std::nullopt;
    if (s.size() == 1) {
      b.bias = n->input(2);
    } else {
      b.bias_data = c->constant().reshaped({b.out_features});
    }
  }
  return b;
}

// Add(y, c) with a constant c of y's dtype that varies along the last axis only.
Node* match_bias_add(Value* y, int64_t out_features, Tensor& bias) {
  Node* add = single_user(y, "Add");
  Value* c = other_input(add, y);
  if (c == nullptr || !c->is_constant()) return nullptr;
  const Tensor& t = c->constant();
  if (t.dtype() != y->type().dtype() || t.rank() == 0 || t.rank() > y->type().rank()) return nullptr;
  if (t.dim(-1) != out_features || t.numel() != out_features) return nullptr;
  bias = t.reshaped({out_features});
  return add;
}

struct Activation {
  std::string name;  // FusedLinear's activation attribute
  Node* root = nullptr;
  std::vector<Node*> nodes;  // every node of the activation, root included
};

// The node computing y * A * 0.5 in any association, starting at A's consumer.
Node* find_half_product(Value* y, Value* a, std::vector<Node*>& nodes) {
  Node* root = single_user(a, "Mul");
  for (int step = 0; root != nullptr && step < 2; ++step) {
    std::vector<Value*> leaves;
    std::vector<Node*> inner;
    factors(root->output(0), {y, a}, leaves, inner);
    if (leaves_are(leaves, y, 1, a, 0.5)) {
      nodes.insert(nodes.end(), inner.begin(), inner.end());
      return root;
    }
    root = single_user(root->output(0), "Mul");
  }
  return nullptr;
}

// 1 + f(...) as Add(f, 1): returns the Add when `v` (f's output) feeds exactly that.
Node* plus_one(Value* v) {
  Node* a = single_user(v, "Add");
  return a != nullptr && is_scalar(other_input(a, v), v, 1.0) ? a : nullptr;
}

std::optional<Activation> gelu_erf_pattern(Value* y, Node* d) {
  const bool divide = d->op() == "Div" && d->input(0) == y && is_scalar(d->input(1), y, std::sqrt(2.0));
  const bool multiply = d->op() == "Mul" && is_scalar(other_input(d, y), y, std::sqrt(0.5));
  if (!divide && !multiply) return std::nullopt;
  Node* erf = single_user(d->output(0), "Erf");
  if (erf == nullptr) return std::nullopt;
  Node* add = plus_one(erf->output(0));
  if (add == nullptr) return std::nullopt;
  Activation act{"gelu", nullptr, {d, erf, add}};
  act.root = find_half_product(y, add->output(0), act.nodes);
  if (act.root == nullptr) return std::nullopt;
  return act;
}

std::optional<Activation> gelu_tanh_pattern(Value* y, Node* inner_add) {
  if (inner_add->op() != "Add") return std::nullopt;
  Value* cubic = other_input(inner_add, y);
  if (cubic == nullptr) return std::nullopt;
  Activation act{"gelu_tanh", nullptr, {inner_add}};
  std::vector<Value*> leaves;
  factors(cubic, {y}, leaves, act.nodes);
  if (!leaves_are(leaves, y, 3, nullptr, 0.044715)) return std::nullopt;
  Node* scale = single_user(inner_add->output(0), "Mul");
  if (scale == nullptr || !is_scalar(other_input(scale, inner_add->output(0)), y, std::sqrt(2.0 / M_PI))) {
    return std::nullopt;
  }
  Node* tanh = single_user(scale->output(0), "Tanh");
  if (tanh == nullptr) return std::nullopt;
  Node* add = plus_one(tanh->output(0));
  if (add == nullptr) return std::nullopt;
  act.nodes.insert(act.nodes.end(), {scale, tanh, add});
  act.root = find_half_product(y, add->output(0), act.nodes);
  if (act.root == nullptr) return std::nullopt;
  return act;
}

// True when no value inside the pattern escapes it: y and every non-root node's outputs are used
// only by pattern nodes and are not graph outputs.
bool closed(const Value* y, const std::vector<Node*>& nodes, const Node* root) {
  const std::set<const Node*> inside(nodes.begin(), nodes.end());
  auto internal = [&](const Value* v) {
    if (v->is_graph_output()) return false;
    for (const Use& u : v->uses()) {
      if (inside.count(u.node) == 0) return false;
    }
    return true;
  };
  if (!internal(y)) return false;
  for (const Node* n : nodes) {
    if (n == root) continue;
    for (const Value* o : n->outputs()) {
      if (!internal(o)) return false;
    }
  }
  return true;
}

std::optional<Activation> match_activation(Value* y) {
  std::vector<Activation> candidates;
  for (const Use& use : y->uses()) {
    Node* n = use.node;
    if (n->num_captures() > 0) continue;
    const std::string& op = n->op();
    if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Silu") {
      std::string name = op;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](char c) { return static_cast<char>(std::tolower(c)); });
      candidates.push_back({name, n, {n}});
    } else if (op == "Swish" && n->get_float("alpha", 1.0f) == 1.0f) {
      candidates.push_back({"silu", n, {n}});
    } else if (op == "Gelu") {
      const std::string approximate = n->get_string("approximate", "none");
      if (approximate == "none" || approximate == "tanh") {
        candidates.push_back({approximate == "none" ? "gelu" : "gelu_tanh", n, {n}});
      }
    }
    if (op == "Sigmoid") {  // y * Sigmoid(y)
      Node* mul = single_user(n->output(0), "Mul");
      if (mul != nullptr && other_input(mul, n->output(0)) == y)
        candidates.push_back({"silu", mul, {n, mul}});
    }
    if (auto g = gelu_erf_pattern(y, n)) candidates.push_back(*g);
    if (auto g = gelu_tanh_pattern(y, n)) candidates.push_back(*g);
  }
  for (const Activation& a : candidates) {
    if (closed(y, a.nodes, a.root)) return a;
  }
  return std::nullopt;
}

// Rewrites one match; `root` is the pattern's last node, whose output the fused node replaces.
void rewrite(Graph& graph, const Base& base, Value* bias, const std::string& activation, Node* root) {
  Value* old_out = root->output(0);
  const std::string name = old_out->name();
  std::vector<Value*> inputs = {base.x, base.w};
  if (bias != nullptr) inputs.push_back(bias);
  Node* fused =
      graph.add_node("FusedLinear", inputs, 1, {{"activation", activation}, {"transB", base.trans_b}},
                     {graph.unique_name(name + "_fused")}, root);
  fused->set_name(root->name());
  graph.set_value_type(fused->output(0), old_out->type());
  graph.replace_all_uses(old_out, fused->output(0));
  graph.rename_value(old_out, graph.unique_name(name + "_unfused"));
  graph.rename_value(fused->output(0), name);
}

}  // namespace

Result<bool> FuseEpiloguesPass::run(Graph& graph) {
  bool changed = false;
  std::set<const Node*> consumed;
  for (Node* node : graph.nodes()) {
    if (consumed.count(node) > 0) continue;
    std::optional<Base> base = match_base(node);
    if (!base) continue;
    Value* y = node->output(0);
    Value* bias = base->bias;
    std::optional<Tensor> bias_data = base->bias_data;
    Node* add = nullptr;
    if (bias == nullptr && !bias_data) {
      Tensor t;
      add = match_bias_add(y, base->out_features, t);
      if (add != nullptr) {
        bias_data = t;
        y = add->output(0);
      }
    }
    std::optional<Activation> act = match_activation(y);
    if (add == nullptr && !act) continue;  // nothing to fuse
    if (bias_data) {
      bias = graph.add_constant(graph.unique_name(node->output(0)->name() + "_bias"), *bias_data);
    }
    Node* root = act ? act->root : add;
    rewrite(graph, *base, bias, act ? act->name : "none", root);
    consumed.insert(node);
    if (add != nullptr) consumed.insert(add);
    if (act) consumed.insert(act->nodes.begin(), act->nodes.end());
    changed = true;
  }
  if (changed) graph.remove_dead_code();
  return changed;
}

}  // namespace seqrun::passes
