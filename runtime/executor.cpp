// Node-by-node reference execution with f16/bf16/f64 handled through f32 kernels.
#include "runtime/executor.h"

#include <cmath>
#include <map>
#include <unordered_map>

#include "backends/reference/kernel.h"

namespace seqrun::runtime {

Status validate_inputs(const Graph& graph, const std::vector<Tensor>& inputs) {
  const auto& decl = graph.inputs();
  if (inputs.size() != decl.size()) {
    return make_error("graph '{}' expects {} inputs, got {}", graph.name(), decl.size(), inputs.size());
  }
  std::map<std::string, int64_t> symbols;
  for (size_t i = 0; i < decl.size(); ++i) {
    const Value* v = decl[i];
    const Tensor& t = inputs[i];
    const TensorType& type = v->type();
    if (!t.defined()) return make_error("input '{}' is missing", v->name());
    if (type.dtype() != DType::undefined && t.dtype() != type.dtype()) {
      return make_error("input '{}': expected dtype {}, got {}", v->name(), dtype_name(type.dtype()),
                        dtype_name(t.dtype()));
    }
    if (!type.has_rank()) continue;
    if (t.rank() != type.rank()) {
      return make_error("input '{}': expected shape {} (rank {}), got {} (rank {})", v->name(), type.to_string(),
                        type.rank(), shape_to_string(t.shape()), t.rank());
    }
    for (int d = 0; d < type.rank(); ++d) {
      const Dim& dim = type.dim(d);
      if (dim.is_static() && dim.value() != t.dim(d)) {
        return make_error("input '{}': expected shape {}, got {} (dim {} must be {})", v->name(), type.to_string(),
                          shape_to_string(t.shape()), d, dim.value());
      }
      if (dim.is_symbol()) {
        auto [it, inserted] = symbols.emplace(dim.symbol_name(), t.dim(d));
        if (!inserted && it->second != t.dim(d)) {
          return make_error("input '{}': dim {} ('{}') is {}, but another input bound '{}' to {}", v->name(), d,
                            dim.symbol_name(), t.dim(d), dim.symbol_name(), it->second);
        }
      }
    }
  }
  return Status::ok();
}

Result<std::vector<Tensor>> ReferenceExecutor::run(const Graph& graph, const std::vector<Tensor>& inputs) const {
  SEQRUN_TRY(validate_inputs(graph, inputs));
  return execute(graph, inputs, {});
}

Result<std::vector<Tensor>> ReferenceExecutor::run_body(const Graph& body, const std::vector<Tensor>& inputs,
                                                        const std::vector<Tensor>& captures) const {
  if (inputs.size() != body.inputs().size()) {
    return make_error("body '{}' expects {} inputs, got {}", body.name(), body.inputs().size(), inputs.size());
  }
  if (captures.size() != body.captures().size()) {
    return make_error("body '{}' expects {} captures, got {}", body.name(), body.captures().size(),
                      captures.size());
  }
  return execute(body, inputs, captures);
}

namespace {
bool needs_f32_conversion(DType t) { return t == DType::f16 || t == DType::bf16 || t == DType::f64; }

Status check_finite_output(const Node& node, int i, const Tensor& t) {
  if (!is_float(t.dtype())) return Status::ok();
  for (int64_t k = 0; k < t.numel(); ++k) {
    double v = t.get_f64(k);
    if (!std::isfinite(v)) {
      return make_error("{}: output '{}' has a non-finite value ({}) at element {}", node.describe(),
                        node.output(i)->name(), v, k);
    }
  }
  return Status::ok();
}
}  // namespace

Result<std::vector<Tensor>> ReferenceExecutor::execute(const Graph& graph, const std::vector<Tensor>& inputs,
                                                       const std::vector<Tensor>& captures) const {
  const auto& kernels = reference::KernelRegistry::global();
  std::unordered_map<const Value*, Tensor> env;
  std::unordered_map<const Value*, int> remaining_uses;
  for (size_t i = 0; i < inputs.size(); ++i) env[graph.inputs()[i]] = inputs[i];
  for (size_t i = 0; i < captures.size(); ++i) env[graph.captures()[i]] = captures[i];
  for (const Value* v : graph.values()) {
    if (v->is_constant()) env[v] = v->constant();
    remaining_uses[v] = static_cast<int>(v->uses().size());
  }

  auto sub_runner = [this](const Graph& body, const std::vector<Tensor>& ins,
                           const std::vector<Tensor>& caps) { return run_body(body, ins, caps); };

  for (Node* node : graph.nodes()) {
    const reference::KernelEntry* entry = kernels.find(node->op());
    if (entry == nullptr) return make_error("{}: no reference kernel for op '{}'", node->describe(), node->op());

    std::vector<Tensor> converted;  // keeps f32 copies alive for the call
    converted.reserve(node->inputs().size());
    reference::KernelContext ctx{*node, {}, {}, sub_runner};
    for (int i = 0; i < node->num_inputs(); ++i) {
      const Value* in = node->input(i);
      if (in == nullptr) {
        ctx.inputs.push_back(nullptr);
        continue;
      }
      auto it = env.find(in);
      if (it == env.end()) {
        return make_error("{}: input '{}' has no value (not produced before use)", node->describe(), in->name());
      }
      if (entry->compute_in_f32 && needs_f32_conversion(it->second.dtype()) && i < node->num_explicit_inputs()) {
        converted.push_back(it->second.cast(DType::f32));
        ctx.inputs.push_back(&converted.back());
      } else {
        ctx.inputs.push_back(&it->second);
      }
    }
    Status st = entry->fn(ctx);
    if (!st) return st;
    if (static_cast<int>(ctx.outputs.size()) != node->num_outputs()) {
      return make_error("{}: kernel produced {} outputs, node has {}", node->describe(), ctx.outputs.size(),
                        node->num_outputs());
    }
    for (int i = 0; i < node->num_outputs(); ++i) {
      Tensor& out = ctx.outputs[i];
      if (!out.defined()) continue;  // optional output the kernel did not compute
      DType declared = node->output(i)->type().dtype();
      if (entry->compute_in_f32 && out.dtype() == DType::f32 && needs_f32_conversion(declared)) {
        out = out.cast(declared);
      }
      if (options_.check_finite) SEQRUN_TRY(check_finite_output(*node, i, out));
      env[node->output(i)] = std::move(out);
    }
    // Release inputs whose last use this was (graph outputs stay).
    for (const Value* in : node->inputs()) {
      if (in == nullptr) continue;
      if (--remaining_uses[in] == 0 && !in->is_graph_output() && !in->is_constant()) env.erase(in);
    }
  }

  std::vector<Tensor> outputs;
  for (const Value* out : graph.outputs()) {
    auto it = env.find(out);
    if (it == env.end()) return make_error("graph '{}': output '{}' was never computed", graph.name(), out->name());
    outputs.push_back(it->second);
  }
  return outputs;
}

}  // namespace seqrun::runtime
