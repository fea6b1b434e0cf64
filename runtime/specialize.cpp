// Shape specialization: bind input shapes, re-infer, fold constant subgraphs and Shape/Size, remove dead
// code.
#include "runtime/specialize.h"

#include <algorithm>

#include "backends/reference/kernel.h"
#include "ir/infer.h"
#include "runtime/executor.h"

namespace seqrun::runtime {

namespace {

bool needs_f32_conversion(DType t) {
  return t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

bool has_body(const Node& node) {
  for (const auto& [key, attr] : node.attrs()) {
    if (attr.type() == AttrType::Graph) return true;
  }
  return false;
}

bool is_used(const Value* v) {
  return !v->uses().empty() || v->is_graph_output();
}

// Bytes of a statically typed value, or -1 when its shape is not static.
int64_t static_bytes(const TensorType& type) {
  std::optional<std::vector<int64_t>> shape = type.static_shape();
  if (!shape) return -1;
  return num_elements(*shape) * static_cast<int64_t>(dtype_size(type.dtype()));
}

// Forgets what the graph believed about intermediate shapes (ONNX value_info may carry symbols or stale
// dims); inference recomputes them from the bound inputs. Dtypes stay, so a schema that cannot infer one
// keeps the known dtype.
void forget_intermediate_shapes(Graph& graph) {
  for (Node* node : graph.nodes()) {
    for (Value* out : node->outputs()) {
      graph.set_value_type(out, TensorType::unknown_rank(out->type().dtype()));
    }
  }
}

// Shape or Size of a statically shaped input: the constant it evaluates to, or an undefined tensor.
Tensor fold_shape_op(const Node& node) {
  const Value* in = node.input(0);
  if (in == nullptr) return Tensor();
  std::optional<std::vector<int64_t>> shape = in->type().static_shape();
  if (!shape) return Tensor();
  if (node.op() == "Size") return Tensor::scalar<int64_t>(num_elements(*shape));
  const int64_t rank = static_cast<int64_t>(shape->size());
  auto clamp = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = clamp(node.get_int("start", 0));
  const int64_t end = node.has_attr("end") ? clamp(node.get_int("end")) : rank;
  std::vector<int64_t> dims;
  for (int64_t d = start; d < end; ++d) dims.push_back((*shape)[d]);
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims);
}

// Replaces a node by constants holding its outputs (outputs nobody reads may stay undefined).
void replace_by_constants(Graph& graph, Node* node, const std::vector<Tensor>& values) {
  std::vector<Value*> outputs = node->outputs();
  graph.erase_node(node);
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (values[i].defined()) graph.make_constant(outputs[i], values[i]);
  }
}

// One pass over the graph in order; returns how many nodes it folded.
Result<int> fold_round(Graph& graph, const SpecializeOptions& options, SpecializeReport& report) {
  int folded = 0;
  for (Node* node : graph.nodes()) {
    if (node->num_outputs() == 0) continue;
    if ((node->op() == "Shape" || node->op() == "Size") && node->num_inputs() == 1) {
      Tensor value = fold_shape_op(*node);
      if (value.defined()) {
        replace_by_constants(graph, node, {value});
        ++report.folded_shape_ops;
        ++folded;
        continue;
      }
    }
    if (has_body(*node) || node->num_captures() > 0) continue;
    bool all_constant = true;
    std::vector<const Tensor*> inputs;
    for (const Value* in : node->inputs()) {
      if (in != nullptr && !in->is_constant()) all_constant = false;
      inputs.push_back(in == nullptr ? nullptr : &in->constant());
    }
    if (!all_constant) continue;
    if (reference::KernelRegistry::global().find(node->op()) == nullptr) continue;
    int64_t expected_bytes = 0;
    for (const Value* out : node->outputs()) {
      const int64_t b = static_bytes(out->type());
      if (b >= 0) expected_bytes += b;
    }
    if (static_cast<uint64_t>(expected_bytes) > options.max_folded_bytes) continue;
    Result<std::vector<Tensor>> values = evaluate_node_reference(*node, inputs);
    if (!values) return values.status().with_context("folding constants");
    uint64_t total_bytes = 0;
    bool complete = true;
    for (int i = 0; i < node->num_outputs(); ++i) {
      const Tensor& t = (*values)[i];
      if (t.defined()) {
        total_bytes += t.nbytes();
      } else if (is_used(node->output(i))) {
        complete = false;
      }
    }
    if (!complete || total_bytes > options.max_folded_bytes) continue;
    replace_by_constants(graph, node, *values);
    ++report.folded_nodes;
    ++folded;
  }
  return folded;
}

}  // namespace

std::vector<InputSpec> input_specs_of(const std::vector<Tensor>& inputs) {
  std::vector<InputSpec> specs;
  specs.reserve(inputs.size());
  for (const Tensor& t : inputs) specs.push_back({t.dtype(), t.shape()});
  return specs;
}

std::string shape_signature(const std::vector<InputSpec>& inputs) {
  std::string key;
  for (const InputSpec& s : inputs) {
    if (!key.empty()) key += ';';
    key += dtype_name(s.dtype);
    key += shape_to_string(s.shape);
  }
  return key;
}

Status check_input_specs(const Graph& graph, const std::vector<InputSpec>& inputs) {
  // validate_inputs reads only dtypes and shapes, so dataless views stand in for the tensors.
  std::vector<Tensor> views;
  views.reserve(inputs.size());
  for (const InputSpec& s : inputs) {
    if (s.dtype == DType::undefined) {
      views.emplace_back();
    } else {
      views.push_back(Tensor::view(s.dtype, s.shape, nullptr, nullptr));
    }
  }
  return validate_inputs(graph, views);
}

Result<std::vector<Tensor>> evaluate_node_reference(const Node& node,
                                                    const std::vector<const Tensor*>& inputs) {
  const reference::KernelEntry* entry = reference::KernelRegistry::global().find(node.op());
  if (entry == nullptr) return make_error("{}: no reference kernel for op '{}'", node.describe(), node.op());
  std::vector<Tensor> converted;
  converted.reserve(inputs.size());
  ExecOptions exec_options;
  auto sub_runner = [exec_options](const Graph& body, const std::vector<Tensor>& ins,
                                   const std::vector<Tensor>& caps) {
    return ReferenceExecutor(exec_options).run_body(body, ins, caps);
  };
  reference::KernelContext ctx{node, {}, {}, sub_runner};
  for (int i = 0; i < static_cast<int>(inputs.size()); ++i) {
    const Tensor* t = inputs[i];
    if (t != nullptr && entry->compute_in_f32 && needs_f32_conversion(t->dtype()) &&
        i < node.num_explicit_inputs()) {
      converted.push_back(t->cast(DType::f32));
      ctx.inputs.push_back(&converted.back());
    } else {
      ctx.inputs.push_back(t);
    }
  }
  SEQRUN_TRY(entry->fn(ctx));
  if (static_cast<int>(ctx.outputs.size()) != node.num_outputs()) {
    return make_error("{}: kernel produced {} outputs, node has {}", node.describe(), ctx.outputs.size(),
                      node.num_outputs());
  }
  for (int i = 0; i < node.num_outputs(); ++i) {
    Tensor& out = ctx.outputs[i];
    if (!out.defined()) continue;
    const DType declared = node.output(i)->type().dtype();
    if (entry->compute_in_f32 && out.dtype() == DType::f32 && needs_f32_conversion(declared)) {
      out = out.cast(declared);
    }
  }
  return std::move(ctx.outputs);
}

Result<std::unique_ptr<Graph>> specialize_graph(const Graph& graph, const std::vector<InputSpec>& inputs,
                                                const SpecializeOptions& options, SpecializeReport* report) {
  SEQRUN_TRY(check_input_specs(graph, inputs));
  SpecializeReport local;
  SpecializeReport& rep = report != nullptr ? *report : local;
  rep = SpecializeReport();

  std::unique_ptr<Graph> g = graph.clone();
  for (size_t i = 0; i < inputs.size(); ++i) {
    g->set_value_type(g->inputs()[i], TensorType::from_shape(inputs[i].dtype, inputs[i].shape));
  }
  forget_intermediate_shapes(*g);
  for (;;) {
    ++rep.rounds;
    rep.removed_nodes += g->remove_dead_code();
    Status inferred = infer_graph_types(*g);
    if (!inferred) {
      return inferred.with_context("graph '" + g->name() + "' with inputs " + shape_signature(inputs));
    }
    SEQRUN_ASSIGN(int folded, fold_round(*g, options, rep));
    if (folded == 0) break;
  }
  for (const Node* node : g->nodes()) {
    for (const Value* out : node->outputs()) {
      if (is_used(out) && !out->type().is_static()) rep.dynamic_values.push_back(out->name());
    }
  }
  return g;
}

}  // namespace seqrun::runtime
