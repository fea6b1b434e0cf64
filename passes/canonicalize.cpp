// canonicalize pass (see canonicalize.h).
#include "passes/canonicalize.h"

namespace seqrun::passes {

namespace {
// Shape(x) with a static x (and default start/end) becomes an i64 constant.
bool fold_shape(Graph& graph, Node* node) {
  const Value* in = node->input(0);
  if (in == nullptr) return false;
  auto shape = in->type().static_shape();
  if (!shape) return false;
  int64_t rank = static_cast<int64_t>(shape->size());
  int64_t start = node->get_int("start", 0);
  int64_t end = node->has_attr("end") ? node->get_int("end", rank) : rank;
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  std::vector<int64_t> dims(shape->begin() + start, shape->begin() + end);
  Tensor t = Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims);
  Value* c = graph.add_constant(graph.unique_name(node->output(0)->name() + "_folded"), t);
  graph.replace_all_uses(node->output(0), c);
  return true;
}

bool fold_size(Graph& graph, Node* node) {
  const Value* in = node->input(0);
  if (in == nullptr) return false;
  auto shape = in->type().static_shape();
  if (!shape) return false;
  Value* c = graph.add_constant(graph.unique_name(node->output(0)->name() + "_folded"),
                                Tensor::scalar<int64_t>(num_elements(*shape)));
  graph.replace_all_uses(node->output(0), c);
  return true;
}

bool forward_identity(Graph& graph, Node* node) {
  Value* in = node->input(0);
  Value* out = node->output(0);
  if (in == nullptr) return false;
  // A graph output that is also a graph input would lose its distinct name: keep such Identity.
  if (out->is_graph_output() && (in->role() != Value::Role::Intermediate || in->is_graph_output())) return false;
  if (out->is_graph_output()) {
    // Keep the output's name visible: rename the producer's value instead of the output.
    graph.replace_all_uses(out, in);
    std::string name = out->name();
    graph.rename_value(out, name + "_dead");
    graph.rename_value(in, name);
    return true;
  }
  graph.replace_all_uses(out, in);
  return true;
}
}  // namespace

Result<bool> CanonicalizePass::run(Graph& graph) {
  bool changed = false;
  for (Node* node : graph.nodes()) {
    if (node->num_captures() > 0) continue;
    if (node->op() == "Shape") {
      changed |= fold_shape(graph, node);
    } else if (node->op() == "Size") {
      changed |= fold_size(graph, node);
    } else if (node->op() == "Identity") {
      changed |= forward_identity(graph, node);
    }
  }
  changed |= graph.remove_dead_code() > 0;
  return changed;
}

}  // namespace seqrun::passes
