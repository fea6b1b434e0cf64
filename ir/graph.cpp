// Graph mutation helpers that keep use lists, names and the node order consistent.
#include "ir/graph.h"

#include <algorithm>
#include <functional>
#include <unordered_set>

#include "ir/op_schema.h"

namespace seqrun {

bool Value::is_graph_output() const {
  if (owner_ == nullptr) return false;
  const auto& outs = owner_->outputs();
  return std::find(outs.begin(), outs.end(), this) != outs.end();
}

void Node::set_input(int i, Value* v) {
  Value* old = inputs_[i];
  if (old != nullptr) {
    auto& u = old->uses_;
    for (size_t k = 0; k < u.size(); ++k) {
      if (u[k].node == this && u[k].input_index == i) {
        u.erase(u.begin() + static_cast<long>(k));
        break;
      }
    }
  }
  inputs_[i] = v;
  if (v != nullptr) v->uses_.push_back({this, i});
}

void Node::add_input(Value* v) {
  inputs_.push_back(nullptr);
  set_input(num_inputs() - 1, v);
}

void Node::remove_last_input() {
  set_input(num_inputs() - 1, nullptr);
  inputs_.pop_back();
}

const Attribute* Node::attr(const std::string& key) const {
  auto it = attrs_.find(key);
  if (it != attrs_.end()) return &it->second;
  if (schema_ != nullptr) {
    const AttrSpec* spec = schema_->find_attr(key);
    if (spec != nullptr && spec->default_value) return &*spec->default_value;
  }
  return nullptr;
}

int64_t Node::get_int(const std::string& key, int64_t fallback) const {
  const Attribute* a = attr(key);
  if (a == nullptr) return fallback;
  if (a->type() == AttrType::Int) return a->i();
  if (a->type() == AttrType::Float) return static_cast<int64_t>(a->f());
  return fallback;
}

float Node::get_float(const std::string& key, float fallback) const {
  const Attribute* a = attr(key);
  if (a == nullptr) return fallback;
  if (a->type() == AttrType::Float) return a->f();
  if (a->type() == AttrType::Int) return static_cast<float>(a->i());
  return fallback;
}

std::string Node::get_string(const std::string& key, const std::string& fallback) const {
  const Attribute* a = attr(key);
  return (a != nullptr && a->type() == AttrType::String) ? a->s() : fallback;
}

std::vector<int64_t> Node::get_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const Attribute* a = attr(key);
  return (a != nullptr && a->type() == AttrType::Ints) ? a->ints() : fallback;
}

std::vector<float> Node::get_floats(const std::string& key, std::vector<float> fallback) const {
  const Attribute* a = attr(key);
  return (a != nullptr && a->type() == AttrType::Floats) ? a->floats() : fallback;
}

const Graph* Node::get_graph(const std::string& key) const {
  const Attribute* a = attr(key);
  return (a != nullptr && a->type() == AttrType::Graph) ? a->graph().get() : nullptr;
}

std::string Node::describe() const {
  if (!name_.empty()) return op_ + " '" + name_ + "'";
  if (!outputs_.empty()) return op_ + " (output '" + outputs_[0]->name() + "')";
  return op_;
}

Value* Graph::new_value(const std::string& name) {
  auto v = std::make_unique<Value>();
  v->name_ = unique_name(name.empty() ? "v" : name);
  v->owner_ = this;
  Value* raw = v.get();
  by_name_[raw->name_] = raw;
  values_.push_back(std::move(v));
  return raw;
}

std::string Graph::unique_name(const std::string& base) {
  if (by_name_.count(base) == 0) return base;
  for (;;) {
    std::string candidate = base + "_" + std::to_string(++name_counter_);
    if (by_name_.count(candidate) == 0) return candidate;
  }
}

Value* Graph::add_input(const std::string& name, TensorType type) {
  Value* v = new_value(name);
  v->role_ = Value::Role::Input;
  v->type_ = std::move(type);
  inputs_.push_back(v);
  return v;
}

Value* Graph::add_constant(const std::string& name, Tensor data) {
  Value* v = new_value(name);
  v->role_ = Value::Role::Constant;
  v->type_ = TensorType::from_shape(data.dtype(), data.shape());
  v->constant_ = std::move(data);
  return v;
}

Value* Graph::add_capture(const std::string& name, TensorType type) {
  Value* v = new_value(name);
  v->role_ = Value::Role::Capture;
  v->type_ = std::move(type);
  captures_.push_back(v);
  return v;
}

void Graph::make_constant(Value* v, Tensor data) {
  if (v->role_ == Value::Role::Input) {
    inputs_.erase(std::remove(inputs_.begin(), inputs_.end(), v), inputs_.end());
  }
  v->role_ = Value::Role::Constant;
  v->type_ = TensorType::from_shape(data.dtype(), data.shape());
  v->constant_ = std::move(data);
}

Node* Graph::add_node(const std::string& op, const std::vector<Value*>& inputs, int num_outputs,
                      std::map<std::string, Attribute> attrs, const std::vector<std::string>& output_names,
                      Node* before) {
  auto n = std::make_unique<Node>();
  Node* node = n.get();
  node->op_ = op;
  node->schema_ = OpRegistry::global().find(op);
  node->owner_ = this;
  node->attrs_ = std::move(attrs);
  for (Value* in : inputs) node->add_input(in);
  for (int i = 0; i < num_outputs; ++i) {
    std::string oname = i < static_cast<int>(output_names.size()) && !output_names[i].empty()
                            ? output_names[i]
                            : op + "_" + std::to_string(values_.size());
    Value* out = new_value(oname);
    out->producer_ = node;
    out->producer_output_ = i;
    node->outputs_.push_back(out);
  }
  if (before == nullptr) {
    nodes_.push_back(std::move(n));
  } else {
    auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == before; });
    nodes_.insert(it, std::move(n));
  }
  return node;
}

void Graph::set_outputs(std::vector<Value*> outputs) { outputs_ = std::move(outputs); }
void Graph::add_output(Value* v) { outputs_.push_back(v); }
void Graph::set_output(int i, Value* v) { outputs_[i] = v; }

std::vector<Node*> Graph::nodes() const {
  std::vector<Node*> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

std::vector<Value*> Graph::values() const {
  std::vector<Value*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v.get());
  return out;
}

std::vector<Value*> Graph::constants() const {
  std::vector<Value*> out;
  for (const auto& v : values_) {
    if (v->is_constant()) out.push_back(v.get());
  }
  return out;
}

Value* Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void Graph::replace_all_uses(Value* old_value, Value* new_value) {
  if (old_value == new_value) return;
  std::vector<Use> uses = old_value->uses_;
  for (const Use& u : uses) u.node->set_input(u.input_index, new_value);
  for (auto& o : outputs_) {
    if (o == old_value) o = new_value;
  }
}

void Graph::erase_node(Node* node) {
  for (int i = 0; i < node->num_inputs(); ++i) node->set_input(i, nullptr);
  for (Value* out : node->outputs_) {
    out->producer_ = nullptr;
    out->producer_output_ = -1;
  }
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == node; }),
               nodes_.end());
}

int Graph::remove_dead_code() {
  int removed = 0;
  bool changed = true;
  while (changed) {
    changed = false;
    for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) {
      Node* n = nodes_[i].get();
      bool used = false;
      for (Value* out : n->outputs_) {
        if (!out->uses_.empty() || out->is_graph_output()) used = true;
      }
      if (!used) {
        erase_node(n);
        ++removed;
        changed = true;
      }
    }
  }
  // Drop orphaned values (no producer, not an input/capture, unused, not an output).
  std::unordered_set<const Value*> keep(inputs_.begin(), inputs_.end());
  keep.insert(captures_.begin(), captures_.end());
  keep.insert(outputs_.begin(), outputs_.end());
  std::vector<std::unique_ptr<Value>> kept;
  for (auto& v : values_) {
    bool orphan = v->producer_ == nullptr && v->uses_.empty() && keep.count(v.get()) == 0;
    if (orphan) {
      by_name_.erase(v->name_);
    } else {
      kept.push_back(std::move(v));
    }
  }
  values_ = std::move(kept);
  return removed;
}

void Graph::rename_value(Value* v, const std::string& name) {
  if (v->name_ == name) return;
  by_name_.erase(v->name_);
  v->name_ = unique_name(name);
  by_name_[v->name_] = v;
}

Status Graph::sort_topologically() {
  // Kahn's algorithm, stable with respect to the current order.
  std::unordered_map<const Node*, int> pending;
  std::unordered_map<const Node*, size_t> position;
  for (size_t i = 0; i < nodes_.size(); ++i) position[nodes_[i].get()] = i;
  for (const auto& n : nodes_) {
    int count = 0;
    for (Value* in : n->inputs_) {
      if (in != nullptr && in->producer_ != nullptr && position.count(in->producer_)) ++count;
    }
    pending[n.get()] = count;
  }
  std::vector<std::unique_ptr<Node>> ordered;
  std::vector<bool> done(nodes_.size(), false);
  size_t emitted = 0;
  std::vector<size_t> ready;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (pending[nodes_[i].get()] == 0) ready.push_back(i);
  }
  std::vector<size_t> order;
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<>());
    size_t i = ready.back();
    ready.pop_back();
    order.push_back(i);
    done[i] = true;
    ++emitted;
    for (Value* out : nodes_[i]->outputs_) {
      for (const Use& u : out->uses_) {
        auto it = pending.find(u.node);
        if (it != pending.end() && --it->second == 0) ready.push_back(position[u.node]);
      }
    }
  }
  if (emitted != nodes_.size()) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!done[i]) return make_error("graph '{}' has a cycle through node {}", name_, nodes_[i]->describe());
    }
  }
  for (size_t i : order) ordered.push_back(std::move(nodes_[i]));
  nodes_ = std::move(ordered);
  return Status::ok();
}

std::unique_ptr<Graph> Graph::clone() const {
  auto g = std::make_unique<Graph>(name_);
  std::unordered_map<const Value*, Value*> map;
  for (Value* in : inputs_) map[in] = g->add_input(in->name_, in->type_);
  for (Value* c : captures_) map[c] = g->add_capture(c->name_, c->type_);
  for (const auto& v : values_) {
    if (v->role_ == Value::Role::Constant) map[v.get()] = g->add_constant(v->name_, v->constant_);
  }
  for (const auto& n : nodes_) {
    std::vector<Value*> ins;
    for (Value* in : n->inputs_) ins.push_back(in == nullptr ? nullptr : map.at(in));
    std::map<std::string, Attribute> attrs;
    for (const auto& [k, a] : n->attrs_) {
      if (a.type() == AttrType::Graph) {
        attrs[k] = Attribute(std::shared_ptr<Graph>(a.graph()->clone()));
      } else {
        attrs[k] = a;
      }
    }
    std::vector<std::string> names;
    for (Value* out : n->outputs_) names.push_back(out->name_);
    Node* m = g->add_node(n->op_, ins, n->num_outputs(), std::move(attrs), names);
    m->name_ = n->name_;
    m->num_captures_ = n->num_captures_;
    for (int i = 0; i < n->num_outputs(); ++i) {
      m->outputs_[i]->type_ = n->outputs_[i]->type_;
      map[n->outputs_[i]] = m->outputs_[i];
    }
  }
  for (Value* o : outputs_) g->outputs_.push_back(map.at(o));
  return g;
}

size_t Graph::constant_bytes() const {
  size_t total = 0;
  for (const auto& v : values_) {
    if (v->is_constant()) total += v->constant_.nbytes();
  }
  return total;
}

}  // namespace seqrun
