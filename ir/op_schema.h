// OpSchema and OpRegistry: what seqrun knows about each op — arity, typed attributes with
// defaults, shape/dtype inference, extra verification and a one-line doc.
//
// Adding an op = one schema (ir/ops/*.cpp) + one reference kernel (backends/reference/*.cpp).
// Op names follow ONNX where ONNX has the op (Add, MatMul, LayerNormalization, ...) so the
// importer maps one to one; seqrun's own ops (Linear, LinearRecurrence, ...) have their own names.
// Semantics always follow the newest ONNX opset: the importer rewrites older forms.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/attribute.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/types.h"

namespace seqrun {

struct AttrSpec {
  std::string name;
  AttrType type;
  std::optional<Attribute> default_value;  // nullopt + required=false: optional with no default
  bool required = false;
};

// What shape inference sees of one node: its input types, constant inputs (when known at import
// or after folding) and attributes. The inference function fills `outputs` (one per node output).
class InferContext {
 public:
  explicit InferContext(const Node& node);
  const Node& node() const { return node_; }
  int num_inputs() const { return node_.num_explicit_inputs(); }
  bool has_input(int i) const { return i < num_inputs() && node_.input(i) != nullptr; }
  // Type of input i; an unknown-rank undefined type when absent.
  const TensorType& input_type(int i) const;
  DType input_dtype(int i) const { return input_type(i).dtype(); }
  // The input's value when it is a constant, else null.
  const Tensor* input_constant(int i) const;
  int num_outputs() const { return node_.num_outputs(); }
  std::vector<TensorType> outputs;

 private:
  const Node& node_;
};

using InferFn = std::function<Status(InferContext&)>;

struct OpSchema {
  std::string name;
  std::string doc;  // one line
  int min_inputs = 0;
  int max_inputs = 0;  // kVariadic for "any number"
  int min_outputs = 1;
  int max_outputs = 1;
  std::vector<AttrSpec> attrs;
  InferFn infer;  // may be empty: outputs keep whatever type they have
  // Attributes the schema does not list are rejected unless this is set (ONNX ops with
  // attributes seqrun ignores harmlessly).
  bool allow_extra_attrs = false;

  static constexpr int kVariadic = 1 << 20;
  const AttrSpec* find_attr(const std::string& attr_name) const;
};

// Builder-style helper: OpDef("Add").inputs(2).doc("...").attr(...).infer(fn)
class OpDef {
 public:
  explicit OpDef(std::string name) { schema_.name = std::move(name); }
  OpDef& doc(std::string d) {
    schema_.doc = std::move(d);
    return *this;
  }
  OpDef& inputs(int min, int max = -1) {
    schema_.min_inputs = min;
    schema_.max_inputs = max < 0 ? min : max;
    return *this;
  }
  OpDef& outputs(int min, int max = -1) {
    schema_.min_outputs = min;
    schema_.max_outputs = max < 0 ? min : max;
    return *this;
  }
  OpDef& attr(std::string attr_name, AttrType type, std::optional<Attribute> default_value = std::nullopt) {
    schema_.attrs.push_back({std::move(attr_name), type, std::move(default_value), false});
    return *this;
  }
  OpDef& required_attr(std::string attr_name, AttrType type) {
    schema_.attrs.push_back({std::move(attr_name), type, std::nullopt, true});
    return *this;
  }
  OpDef& infer(InferFn fn) {
    schema_.infer = std::move(fn);
    return *this;
  }
  OpDef& allow_extra_attrs() {
    schema_.allow_extra_attrs = true;
    return *this;
  }
  OpSchema build() { return std::move(schema_); }

 private:
  OpSchema schema_;
};

class OpRegistry {
 public:
  // The process-wide registry with every built-in op (registered on first use, thread-safe).
  static const OpRegistry& global();
  const OpSchema* find(const std::string& op) const;
  std::vector<std::string> op_names() const;  // sorted
  void add(OpSchema schema);

 private:
  std::map<std::string, OpSchema> schemas_;
};

// Checks arity and attribute names/types of one node against its schema (no types).
Status verify_node_signature(const Node& node);

}  // namespace seqrun
