// DAG pattern matcher and shared graph helpers for rewrites (see pattern.h).
#include "passes/pattern.h"

#include <cmath>
#include <unordered_set>

namespace seqrun::passes {

Pattern any(const std::string& capture) {
  Pattern p;
  p.capture = capture;
  return p;
}

Pattern scalar(const std::string& capture, std::optional<double> expected) {
  Pattern p;
  p.kind = Pattern::Kind::Scalar;
  p.capture = capture;
  p.expected = expected;
  return p;
}

Pattern op(const std::string& op_name, std::vector<Pattern> operands, const std::string& capture) {
  Pattern p;
  p.kind = Pattern::Kind::Op;
  p.op = op_name;
  p.operands = std::move(operands);
  p.capture = capture;
  return p;
}

Pattern commutative(const std::string& op_name, Pattern a, Pattern b, const std::string& capture) {
  Pattern p = op(op_name, {std::move(a), std::move(b)}, capture);
  p.commutative = true;
  return p;
}

Value* Match::operator[](const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? nullptr : it->second;
}

namespace {

bool bind(const std::string& name, Value* v, Match* m) {
  if (name.empty()) return true;
  auto it = m->values.find(name);
  if (it != m->values.end()) return it->second == v;
  m->values[name] = v;
  return true;
}

bool close_to(double a, double b) {
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b));
}

bool match_operands(const Pattern& p, const Node* n, const std::vector<int>& order, ShapeReasoner& shapes,
                    Match* m) {
  for (size_t i = 0; i < order.size(); ++i) {
    if (!match_pattern(p.operands[i], n->input(order[i]), shapes, m)) return false;
  }
  return true;
}

}  // namespace

bool match_pattern(const Pattern& p, Value* v, ShapeReasoner& shapes, Match* m) {
  if (v == nullptr) return false;
  switch (p.kind) {
    case Pattern::Kind::Any:
      return bind(p.capture, v, m);
    case Pattern::Kind::Scalar: {
      std::optional<double> c = shapes.constant_value(v);
      if (!c || (p.expected && !close_to(*c, *p.expected))) return false;
      if (!p.capture.empty()) {
        // A scalar name used twice must have the same value, not necessarily the same Value.
        auto it = m->scalars.find(p.capture);
        if (it != m->scalars.end() && !close_to(it->second, *c)) return false;
        m->scalars[p.capture] = *c;
        m->values.emplace(p.capture, v);
      }
      return true;
    }
    case Pattern::Kind::Op: {
      Node* n = producer(v, p.op);
      if (n == nullptr || n->num_explicit_inputs() != static_cast<int>(p.operands.size())) return false;
      std::vector<int> order;
      for (size_t i = 0; i < p.operands.size(); ++i) order.push_back(static_cast<int>(i));
      Match saved = *m;
      m->nodes.push_back(n);
      if (match_operands(p, n, order, shapes, m) && bind(p.capture, v, m)) return true;
      if (p.commutative && order.size() == 2) {
        *m = saved;
        m->nodes.push_back(n);
        if (match_operands(p, n, {1, 0}, shapes, m) && bind(p.capture, v, m)) return true;
      }
      *m = saved;
      return false;
    }
  }
  return false;
}

Node* producer(const Value* v, const std::string& op) {
  if (v == nullptr || v->role() != Value::Role::Intermediate) return nullptr;
  Node* n = v->producer();
  if (n == nullptr || n->num_captures() > 0) return nullptr;
  return op.empty() || n->op() == op ? n : nullptr;
}

bool single_use(const Value* v) {
  return v != nullptr && v->uses().size() == 1 && !v->is_graph_output();
}

Value* other_operand(const Node* n, const Value* v) {
  if (n == nullptr || n->num_inputs() != 2) return nullptr;
  if (n->input(0) == v && n->input(1) != v) return n->input(1);
  if (n->input(1) == v && n->input(0) != v) return n->input(0);
  return nullptr;
}

std::vector<int64_t> transpose_perm(const Node* transpose) {
  std::vector<int64_t> perm = transpose->get_ints("perm");
  if (!perm.empty()) return perm;
  const Value* in = transpose->input(0);
  if (in == nullptr || !in->type().has_rank()) return {};
  for (int i = in->type().rank() - 1; i >= 0; --i) perm.push_back(i);
  return perm;
}

std::optional<std::vector<int64_t>> constant_ints(const Value* v) {
  if (v == nullptr || !v->is_constant() || !is_integer(v->constant().dtype())) return std::nullopt;
  return v->constant().to_i64_vector();
}

bool is_float_cast(const Node* n) {
  return n != nullptr && n->op() == "Cast" && n->input(0) != nullptr &&
         is_float(n->input(0)->type().dtype()) && is_float(n->output(0)->type().dtype());
}

std::optional<double> uniform_value(const Value* v) {
  for (int depth = 0; v != nullptr && depth < 8; ++depth) {
    if (v->is_constant()) {
      const Tensor& t = v->constant();
      if (t.numel() == 0) return std::nullopt;
      const double first = t.get_f64(0);
      for (int64_t i = 1; i < t.numel(); ++i) {
        const double x = t.get_f64(i);
        if (!(x == first || (std::isnan(x) && std::isnan(first)))) return std::nullopt;
      }
      return first;
    }
    Node* n = producer(v);
    if (n == nullptr) return std::nullopt;
    if (n->op() == "ConstantOfShape") {
      const Attribute* a = n->attr("value");
      if (a == nullptr) return 0.0;
      if (a->tensor().numel() != 1) return std::nullopt;
      return a->tensor().get_f64(0);
    }
    if (n->op() != "Cast" && n->op() != "Expand" && n->op() != "Identity" && n->op() != "Reshape" &&
        n->op() != "Unsqueeze") {
      return std::nullopt;
    }
    if (n->op() == "Cast" && v->type().dtype() == DType::boolean) {
      std::optional<double> x = uniform_value(n->input(0));
      if (!x) return std::nullopt;
      return *x != 0.0 ? 1.0 : 0.0;
    }
    v = n->input(0);
  }
  return std::nullopt;
}

std::vector<Node*> ancestors(const std::vector<Value*>& from) {
  std::vector<Node*> out;
  std::unordered_set<const Node*> seen;
  std::vector<const Value*> stack(from.begin(), from.end());
  while (!stack.empty()) {
    const Value* v = stack.back();
    stack.pop_back();
    if (v == nullptr || v->role() != Value::Role::Intermediate) continue;
    Node* n = v->producer();
    if (n == nullptr || !seen.insert(n).second) continue;
    out.push_back(n);
    for (Value* in : n->inputs()) stack.push_back(in);
  }
  return out;
}

bool depends_on(const std::vector<Value*>& from, const Value* target) {
  for (const Value* v : from) {
    if (v == target) return true;
  }
  for (const Node* n : ancestors(from)) {
    for (const Value* in : n->inputs()) {
      if (in == target) return true;
    }
  }
  return false;
}

void take_place_of(Graph& graph, Value* old, Value* replacement) {
  const std::string name = old->name();
  graph.rename_value(old, name + "_unfused");
  graph.rename_value(replacement, name);
  graph.replace_all_uses(old, replacement);
}

Value* add_i64_constant(Graph& graph, const std::string& base, const std::vector<int64_t>& values) {
  return graph.add_constant(graph.unique_name(base),
                            Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values));
}

}  // namespace seqrun::passes
