// fold-batchnorm pass (see fold_batchnorm.h).
#include "passes/fold_batchnorm.h"

#include <cmath>
#include <vector>

namespace seqrun::passes {
namespace {

// The f32 constant behind v, or null.
const Tensor* f32_constant(const Value* v) {
  if (v == nullptr || !v->is_constant() || v->constant().dtype() != DType::f32) return nullptr;
  return &v->constant();
}

// Folds bn into the Conv producing its input; false when the pair does not qualify.
bool fold(Graph& graph, Node* bn) {
  if (bn->num_outputs() != 1 || bn->get_int("training_mode", 0) != 0 || bn->num_captures() > 0) return false;
  Value* conv_out = bn->input(0);
  if (conv_out == nullptr || conv_out->role() != Value::Role::Intermediate) return false;
  Node* conv = conv_out->producer();
  if (conv == nullptr || conv->op() != "Conv" || conv->num_captures() > 0) return false;
  if (conv_out->is_graph_output() || conv_out->uses().size() != 1) return false;
  const Tensor* w = f32_constant(conv->input(1));
  if (w == nullptr || w->rank() < 3) return false;
  const int64_t channels = w->dim(0);
  const Tensor* b = nullptr;
  if (conv->input(2) != nullptr) {
    b = f32_constant(conv->input(2));
    if (b == nullptr || b->shape() != Shape{channels}) return false;
  }
  const Tensor* params[4];  // scale, B, mean, var
  for (int i = 0; i < 4; ++i) {
    params[i] = f32_constant(bn->input(i + 1));
    if (params[i] == nullptr || params[i]->shape() != Shape{channels}) return false;
  }
  const double epsilon = bn->get_float("epsilon", 1e-5f);
  const float* scale = params[0]->data<float>();
  const float* shift = params[1]->data<float>();
  const float* mean = params[2]->data<float>();
  const float* var = params[3]->data<float>();
  Tensor folded_w = Tensor::empty(DType::f32, w->shape());
  Tensor folded_b = Tensor::empty(DType::f32, {channels});
  const int64_t per_channel = channels > 0 ? w->numel() / channels : 0;
  for (int64_t m = 0; m < channels; ++m) {
    const double s = scale[m] / std::sqrt(static_cast<double>(var[m]) + epsilon);
    for (int64_t k = 0; k < per_channel; ++k) {
      folded_w.data<float>()[m * per_channel + k] =
          static_cast<float>(w->data<float>()[m * per_channel + k] * s);
    }
    const double bias = b != nullptr ? b->data<float>()[m] : 0.0;
    folded_b.data<float>()[m] = static_cast<float>((bias - mean[m]) * s + shift[m]);
  }
  Value* new_w = graph.add_constant(graph.unique_name(conv->input(1)->name() + "_bn_folded"), folded_w);
  Value* new_b = graph.add_constant(graph.unique_name(bn->output(0)->name() + "_bias"), folded_b);
  Value* old_out = bn->output(0);
  const std::string name = old_out->name();
  Node* folded = graph.add_node("Conv", {conv->input(0), new_w, new_b}, 1, conv->attrs(),
                                {graph.unique_name(name + "_folded")}, bn);
  folded->set_name(conv->name());
  graph.set_value_type(folded->output(0), old_out->type());
  graph.replace_all_uses(old_out, folded->output(0));
  graph.rename_value(old_out, graph.unique_name(name + "_unfolded"));
  graph.rename_value(folded->output(0), name);
  return true;
}

}  // namespace

Result<bool> FoldBatchNormPass::run(Graph& graph) {
  bool changed = false;
  for (Node* node : graph.nodes()) {
    if (node->op() == "BatchNormalization") changed |= fold(graph, node);
  }
  if (changed) graph.remove_dead_code();
  return changed;
}

}  // namespace seqrun::passes
