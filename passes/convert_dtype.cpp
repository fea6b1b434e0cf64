// convert-dtype pass (see convert_dtype.h): marks the values computed on activations, picks the nodes to
// convert, then rewrites them in order with cached Casts and converted constants at the boundaries.
#include "passes/convert_dtype.h"

#include <map>
#include <set>
#include <unordered_map>

#include "ir/infer.h"

namespace seqrun::passes {

namespace {

// ONNX TensorProto numbers of the float types a Cast here produces.
int64_t onnx_type_of(DType dtype) {
  switch (dtype) {
    case DType::f16:
      return 10;
    case DType::bf16:
      return 16;
    case DType::f64:
      return 11;
    default:
      return 1;  // f32
  }
}

// Inputs / outputs that stay f32 on a converted node (the kernels take them so, and precision matters).
bool keeps_f32_input(const Node& node, int input) {
  if (node.op() == "SelectiveScan") return input == 2 || input == 5 || input == 7;  // A, D, delta_bias
  return false;
}
bool keeps_f32_output(const Node& node, int output) {
  // LayerNormalization's Mean / InvStdDev follow stash_type (f32), not the input.
  return node.op() == "LayerNormalization" && output > 0;
}

// Ops that only reinterpret their input's bytes (the plan makes them aliases, no kernel runs): they follow
// their input's producer instead of asking the predicate, so a view between two converted nodes never gets
// Casts around it.
bool is_view_op(const Node& node) {
  const std::string& op = node.op();
  return op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" || op == "Flatten" || op == "Identity";
}

bool has_nested_graph(const Node& node) {
  for (const auto& [key, attr] : node.attrs()) {
    (void)key;
    if (attr.type() == AttrType::Graph) return true;
  }
  return false;
}

// Every float input and output in f32, at least one float output, no nested graph, not a Cast.
bool eligible(const Node& node) {
  if (node.op() == "Cast" || node.op() == "CastLike" || has_nested_graph(node)) return false;
  bool float_output = false;
  for (const Value* out : node.outputs()) {
    const DType dt = out->type().dtype();
    if (dt == DType::undefined) return false;
    if (is_float(dt)) {
      if (dt != DType::f32) return false;
      float_output = true;
    }
  }
  if (!float_output) return false;
  for (const Value* in : node.inputs()) {
    if (in == nullptr) continue;
    const DType dt = in->type().dtype();
    if (dt == DType::undefined || (is_float(dt) && dt != DType::f32)) return false;
  }
  return true;
}

// Float values computed on activations: graph inputs, anything computed from them, and lookups of float
// constants by data (Gather of an embedding by token ids). Values computed only from constants and
// integers (positions, cos/sin tables, masks built from shapes) are not.
std::set<const Value*> activation_values(const Graph& graph) {
  std::set<const Value*> activation;
  std::set<const Value*> from_data;  // depends on a graph input (any dtype)
  for (const Value* in : graph.inputs()) {
    from_data.insert(in);
    if (is_float(in->type().dtype())) activation.insert(in);
  }
  for (const Node* node : graph.nodes()) {
    // data_in: any input depends on a graph input; index_in: an integer (or bool) one does.
    bool float_activation_in = false, float_constant_in = false, data_in = false, index_in = false;
    for (const Value* in : node->inputs()) {
      if (in == nullptr) continue;
      if (from_data.count(in) > 0) data_in = true;
      if (!is_float(in->type().dtype())) {
        index_in = index_in || from_data.count(in) > 0;
        continue;
      }
      if (activation.count(in) > 0) float_activation_in = true;
      if (in->is_constant()) float_constant_in = true;
    }
    const bool is_cast = node->op() == "Cast" || node->op() == "CastLike";
    const bool lookup = !is_cast && float_constant_in && index_in;
    for (const Value* out : node->outputs()) {
      if (data_in) from_data.insert(out);
      if (is_float(out->type().dtype()) && (float_activation_in || lookup)) activation.insert(out);
    }
  }
  return activation;
}

// The rewrite: low_of caches the low-dtype version of an f32 value (a Cast or a converted constant),
// high_of the f32 version of a value a converted node produced.
class Rewriter {
 public:
  Rewriter(Graph& graph, DType dtype) : g_(graph), dtype_(dtype) {}

  Result<Value*> low(Value* v, Node* before) {
    auto it = low_of_.find(v);
    if (it != low_of_.end()) return it->second;
    Value* out = nullptr;
    const std::string name = g_.unique_name(v->name() + "." + std::string(dtype_name(dtype_)));
    if (v->is_constant()) {
      out = g_.add_constant(name, v->constant().cast(dtype_));
      ++report.converted_constants;
    } else {
      SEQRUN_ASSIGN(out, add_cast(v, dtype_, name, before));
    }
    low_of_[v] = out;
    return out;
  }

  Result<Value*> high(Value* v, DType original, Node* before) {
    auto it = high_of_.find(v);
    if (it != high_of_.end()) return it->second;
    const std::string name = g_.unique_name(v->name() + "." + std::string(dtype_name(original)));
    SEQRUN_ASSIGN(Value * out, add_cast(v, original, name, before));
    high_of_[v] = out;
    return out;
  }

  ConvertDTypeReport report;

 private:
  Result<Value*> add_cast(Value* v, DType to, const std::string& name, Node* before) {
    Node* cast = g_.add_node("Cast", {v}, 1, {{"to", Attribute(onnx_type_of(to))}}, {name}, before);
    SEQRUN_TRY(infer_node_types(*cast));
    ++report.casts;
    return cast->output(0);
  }

  Graph& g_;
  DType dtype_;
  std::unordered_map<Value*, Value*> low_of_;
  std::unordered_map<Value*, Value*> high_of_;
};

}  // namespace

Result<DType> parse_execution_dtype(const std::string& text) {
  if (text == "f32" || text == "float32") return DType::f32;
  if (text == "f16" || text == "float16" || text == "fp16") return DType::f16;
  if (text == "bf16" || text == "bfloat16") return DType::bf16;
  return make_error("unknown execution dtype '{}' (expected f32, f16 or bf16)", text);
}

Result<ConvertDTypeReport> convert_float_dtype(Graph& graph, const ConvertDTypeOptions& options) {
  if (options.dtype != DType::f16 && options.dtype != DType::bf16) {
    return make_error("convert-dtype: the target dtype must be f16 or bf16, is {}",
                      dtype_name(options.dtype));
  }
  const std::vector<Node*> nodes = graph.nodes();
  const std::set<const Value*> activation = activation_values(graph);

  // Which nodes convert, decided on the original graph.
  std::set<const Node*> convert;
  for (const Node* node : nodes) {
    bool on_activations = false;
    for (const Value* out : node->outputs()) on_activations = on_activations || activation.count(out) > 0;
    if (!on_activations || !eligible(*node)) continue;
    if (is_view_op(*node)) {
      const Value* data = node->input(0);
      if (data != nullptr && data->producer() != nullptr && convert.count(data->producer()) > 0)
        convert.insert(node);
      continue;
    }
    ProposedTypes types;
    for (int i = 0; i < node->num_inputs(); ++i) {
      const Value* in = node->input(i);
      const DType dt = in == nullptr ? DType::undefined : in->type().dtype();
      types.inputs.push_back(is_float(dt) && !keeps_f32_input(*node, i) ? options.dtype : dt);
    }
    for (int i = 0; i < node->num_outputs(); ++i) {
      const DType dt = node->output(i)->type().dtype();
      types.outputs.push_back(is_float(dt) && !keeps_f32_output(*node, i) ? options.dtype : dt);
    }
    if (!options.predicate || options.predicate(*node, types)) convert.insert(node);
  }
  if (convert.empty()) return ConvertDTypeReport{};

  std::unordered_map<const Value*, DType> original;
  for (const Value* v : graph.values()) original[v] = v->type().dtype();
  Rewriter rw(graph, options.dtype);
  for (Node* node : nodes) {
    const bool converted = convert.count(node) > 0;
    for (int i = 0; i < node->num_inputs(); ++i) {
      Value* v = node->input(i);
      if (v == nullptr || !is_float(v->type().dtype())) continue;
      const DType was = original.count(v) > 0 ? original[v] : v->type().dtype();
      const DType want = converted && !keeps_f32_input(*node, i) ? options.dtype : was;
      if (v->type().dtype() == want) continue;
      if (!converted && node->op() == "Cast") continue;  // a Cast takes any float input as it is
      Value* replacement = nullptr;
      if (want == options.dtype) {
        SEQRUN_ASSIGN(replacement, rw.low(v, node));
      } else {
        SEQRUN_ASSIGN(replacement, rw.high(v, was, node));
      }
      node->set_input(i, replacement);
    }
    if (converted) {
      SEQRUN_TRY(infer_node_types(*node));
      ++rw.report.converted_nodes;
    }
  }

  // Graph outputs keep their dtype and name: the low value is renamed, its f32 Cast takes the name.
  std::set<Value*> renamed;
  for (int j = 0; j < static_cast<int>(graph.outputs().size()); ++j) {
    Value* v = graph.outputs()[j];
    auto it = original.find(v);
    if (it == original.end() || v->type().dtype() == it->second) continue;
    SEQRUN_ASSIGN(Value * restored, rw.high(v, it->second, nullptr));
    if (renamed.insert(v).second) {
      const std::string name = v->name();
      graph.rename_value(v, graph.unique_name(name + "." + std::string(dtype_name(v->type().dtype()))));
      graph.rename_value(restored, name);
    }
    graph.set_output(j, restored);
  }
  graph.remove_dead_code();  // the f32 constants only converted nodes read
  return rw.report;
}

Result<bool> ConvertDTypePass::run(Graph& graph) {
  SEQRUN_ASSIGN(ConvertDTypeReport report, convert_float_dtype(graph, options_));
  return report.converted_nodes > 0;
}

std::unique_ptr<Pass> create_convert_dtype_pass(const std::string& spec) {
  Result<DType> dtype = parse_execution_dtype(spec);
  if (!dtype.is_ok() || *dtype == DType::f32) return nullptr;
  ConvertDTypeOptions options;
  options.dtype = *dtype;
  return std::make_unique<ConvertDTypePass>(std::move(options));
}

}  // namespace seqrun::passes
