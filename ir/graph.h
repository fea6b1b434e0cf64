// Value, Node and Graph: seqrun's SSA intermediate representation.
//
// A Graph owns its nodes and values. Every Value is produced by exactly one node output, or is a
// graph input, a constant (its bytes in a Tensor, possibly a view into a mapped model file), or a
// capture (a placeholder inside a nested graph that stands for a value of the enclosing graph).
// Each Value keeps its list of uses, which the mutation helpers keep consistent; code that edits
// the IR goes through Graph/Node methods, never through the vectors directly.
//
// Nodes are kept in a topological order (ONNX guarantees one; rewrites insert before the first
// user). `sort_topologically` restores the invariant after larger edits and detects cycles.
//
// Control flow (Scan, Loop, If) holds bodies as Graph attributes. A node whose bodies read values
// of the enclosing graph lists those values as its last `num_captures()` inputs; every body of that
// node has exactly `num_captures()` capture values, in the same order.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/attribute.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "ir/types.h"

namespace seqrun {

class Node;
class Graph;
struct OpSchema;

struct Use {
  Node* node;
  int input_index;
};

class Value {
 public:
  enum class Role : uint8_t { Intermediate = 0, Input = 1, Constant = 2, Capture = 3 };

  const std::string& name() const { return name_; }
  const TensorType& type() const { return type_; }
  void set_type(TensorType t) { type_ = std::move(t); }
  Role role() const { return role_; }
  Node* producer() const { return producer_; }
  int producer_output() const { return producer_output_; }
  bool is_constant() const { return role_ == Role::Constant; }
  // The constant's bytes; only for Role::Constant.
  const Tensor& constant() const { return constant_; }
  const std::vector<Use>& uses() const { return uses_; }
  Graph* owner() const { return owner_; }
  bool is_graph_output() const;

 private:
  friend class Graph;
  friend class Node;
  std::string name_;
  TensorType type_;
  Role role_ = Role::Intermediate;
  Node* producer_ = nullptr;
  int producer_output_ = -1;
  Tensor constant_;
  std::vector<Use> uses_;
  Graph* owner_ = nullptr;
};

class Node {
 public:
  const std::string& op() const { return op_; }
  // The registered schema, or null for an op the registry does not know (the verifier rejects it).
  const OpSchema* schema() const { return schema_; }
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  Graph* owner() const { return owner_; }

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  // Null for an absent optional input.
  Value* input(int i) const { return i < num_inputs() ? inputs_[i] : nullptr; }
  bool has_input(int i) const { return input(i) != nullptr; }
  Value* output(int i) const { return outputs_[i]; }
  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  int num_captures() const { return num_captures_; }
  int num_explicit_inputs() const { return num_inputs() - num_captures_; }
  void set_num_captures(int n) { num_captures_ = n; }

  void set_input(int i, Value* v);
  void add_input(Value* v);
  void remove_last_input();

  const std::map<std::string, Attribute>& attrs() const { return attrs_; }
  bool has_attr(const std::string& key) const { return attrs_.count(key) > 0; }
  const Attribute* attr(const std::string& key) const;
  void set_attr(const std::string& key, Attribute value) { attrs_[key] = std::move(value); }
  void remove_attr(const std::string& key) { attrs_.erase(key); }
  // Typed getters: the value if present, else the schema default, else `fallback`.
  int64_t get_int(const std::string& key, int64_t fallback = 0) const;
  float get_float(const std::string& key, float fallback = 0.0f) const;
  std::string get_string(const std::string& key, const std::string& fallback = "") const;
  std::vector<int64_t> get_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::vector<float> get_floats(const std::string& key, std::vector<float> fallback = {}) const;
  const Graph* get_graph(const std::string& key) const;  // null when absent

  // "Add 'name'" or "Add #3" for error messages.
  std::string describe() const;

 private:
  friend class Graph;
  std::string op_;
  const OpSchema* schema_ = nullptr;
  std::string name_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  std::map<std::string, Attribute> attrs_;
  int num_captures_ = 0;
  Graph* owner_ = nullptr;
};

class Graph {
 public:
  explicit Graph(std::string name = "main") : name_(std::move(name)) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  // --- building ---
  Value* add_input(const std::string& name, TensorType type);
  Value* add_constant(const std::string& name, Tensor data);
  Value* add_capture(const std::string& name, TensorType type);
  // Creates a node with `num_outputs` fresh outputs named from `output_names` (or "<op>_<n>").
  // Appends it at the end, or before `before` when given. Output types start unknown; call
  // infer_node_types (ir/infer.h) or set them.
  Node* add_node(const std::string& op, const std::vector<Value*>& inputs, int num_outputs,
                 std::map<std::string, Attribute> attrs = {}, const std::vector<std::string>& output_names = {},
                 Node* before = nullptr);
  void set_outputs(std::vector<Value*> outputs);
  void add_output(Value* v);
  void set_output(int i, Value* v);

  // --- reading ---
  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  const std::vector<Value*>& captures() const { return captures_; }
  std::vector<Node*> nodes() const;  // in the stored (topological) order
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  std::vector<Value*> values() const;  // every value, creation order
  std::vector<Value*> constants() const;
  Value* find_value(const std::string& name) const;
  // A name not used by any value of this graph, derived from `base`.
  std::string unique_name(const std::string& base);

  // --- editing ---
  void replace_all_uses(Value* old_value, Value* new_value);  // graph outputs included
  void erase_node(Node* node);  // its outputs must be unused
  // Removes nodes whose outputs are unused (transitively) and values nobody references.
  int remove_dead_code();
  void rename_value(Value* v, const std::string& name);
  void set_value_type(Value* v, TensorType t) { v->type_ = std::move(t); }
  void make_constant(Value* v, Tensor data);  // turns an unproduced input/intermediate into a constant
  Status sort_topologically();  // error names a node on a cycle
  std::unique_ptr<Graph> clone() const;

  // Total bytes of constant tensors (not counting nested graphs).
  size_t constant_bytes() const;

 private:
  Value* new_value(const std::string& name);
  std::string name_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  std::vector<Value*> captures_;
  int name_counter_ = 0;
};

}  // namespace seqrun
