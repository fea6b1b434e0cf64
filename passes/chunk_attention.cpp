// chunk-attention pass (see chunk_attention.h): AttentionToChunkedPattern checks that an Attention node
// is in ChunkedAttention's domain and large enough, folds a structural mask into attributes, rewrites it.
#include "passes/chunk_attention.h"

#include "ir/infer.h"
#include "passes/attention_mask.h"
#include "passes/pattern.h"

namespace seqrun::passes {

namespace {

struct ChunkPlan {
  Node* attention = nullptr;
  Value* mask = nullptr;
  bool mask_needs_not = false;
  bool is_causal = false;
  int64_t window = -1;
};

// One Attention -> ChunkedAttention rewrite: match() checks the domain (4-D, no cache, no nonpad, only Y
// used) and the size rule and folds a structural mask into attributes; rewrite() replaces the node.
class AttentionToChunkedPattern {
 public:
  AttentionToChunkedPattern(ShapeReasoner& shapes, const ChunkAttentionOptions& options)
      : shapes_(shapes), options_(options) {}

  bool match(Node* att, ChunkPlan* plan) {
    if (att->op() != "Attention" || att->num_captures() > 0) return false;
    for (int i = 4; i < att->num_inputs(); ++i) {
      if (att->input(i) != nullptr)
        return false;  // KV cache or nonpad_kv_seqlen: not ChunkedAttention's domain
    }
    for (int i = 1; i < att->num_outputs(); ++i) {
      if (!att->output(i)->uses().empty() || att->output(i)->is_graph_output()) return false;
    }
    for (int i = 0; i < 3; ++i) {
      if (ShapeReasoner::rank(att->input(i)) != 4) return false;
    }
    auto dq = shapes_.dims(att->input(0));
    auto dk = shapes_.dims(att->input(1));
    if (!dq || !dk) return false;
    const SymDim batch = (*dq)[0], heads = (*dq)[1], q_len = (*dq)[2], keys = (*dk)[2];
    if (!batch.is_static() || !heads.is_static() || !q_len.is_static() || !keys.is_static()) return false;
    const double score_bytes = 4.0 * static_cast<double>(batch.value()) * static_cast<double>(heads.value()) *
                               static_cast<double>(q_len.value()) * static_cast<double>(keys.value());
    if (keys.value() < options_.min_keys && score_bytes <= static_cast<double>(options_.max_score_bytes))
      return false;
    plan->attention = att;
    plan->is_causal = att->get_int("is_causal", 0) != 0;
    plan->mask = att->input(3);
    if (plan->mask != nullptr) fold_mask(att, {batch, heads, q_len, keys}, plan);
    return true;
  }

  void rewrite(Graph& graph, const ChunkPlan& plan) {
    Node* att = plan.attention;
    const std::string base = att->output(0)->name();
    Value* mask = plan.mask;
    if (mask != nullptr && plan.mask_needs_not) {
      Node* n = graph.add_node("Not", {mask}, 1, {}, {graph.unique_name(base + "_keep")}, att);
      (void)infer_node_types(*n);
      mask = n->output(0);
    }
    std::map<std::string, Attribute> attrs;
    attrs["block_q"] = Attribute(options_.block_q);
    attrs["block_k"] = Attribute(options_.block_k);
    if (plan.is_causal) attrs["is_causal"] = Attribute(int64_t{1});
    if (plan.window >= 0) attrs["window"] = Attribute(plan.window);
    if (att->has_attr("scale")) attrs["scale"] = Attribute(att->get_float("scale"));
    if (att->get_float("softcap", 0.0f) != 0.0f)
      attrs["softcap"] = Attribute(att->get_float("softcap", 0.0f));
    std::vector<Value*> inputs = {att->input(0), att->input(1), att->input(2)};
    if (mask != nullptr) inputs.push_back(mask);
    Node* chunked = graph.add_node("ChunkedAttention", inputs, 1, std::move(attrs),
                                   {graph.unique_name(base + "_chunked")}, att);
    (void)infer_node_types(*chunked);
    take_place_of(graph, att->output(0), chunked->output(0));
  }

 private:
  // A mask that is (partly) causal or a sliding window becomes attributes; the rest stays a tensor.
  // When the analysis proves nothing, the mask is passed on unchanged (ChunkedAttention reads it the
  // same way Attention does).
  void fold_mask(Node* att, std::vector<SymDim> frame_dims, ChunkPlan* plan) {
    ScoreFrame frame;
    frame.dims = std::move(frame_dims);
    frame.allow_nonpad = false;
    frame.allow_window = true;
    MaskAnalyzer analyzer(shapes_, frame);
    Value* mask = att->input(3);
    if (mask->type().dtype() == DType::boolean) {
      analyzer.add_fill(mask, /*masked_where_true=*/false);
    } else {
      analyzer.add_bias(mask);
    }
    MaskPlan mp;
    if (!analyzer.finish(&mp) || mp.nonpad != nullptr) return;
    plan->is_causal = plan->is_causal || mp.is_causal;
    plan->window = mp.window;
    plan->mask = mp.tensor;
    plan->mask_needs_not = mp.tensor_needs_not;
  }

  ShapeReasoner& shapes_;
  const ChunkAttentionOptions& options_;
};

}  // namespace

Result<bool> ChunkAttentionPass::run(Graph& graph) {
  ShapeReasoner shapes;
  AttentionToChunkedPattern pattern(shapes, options_);
  bool changed = false;
  for (Node* node : graph.nodes()) {
    ChunkPlan plan;
    if (!pattern.match(node, &plan)) continue;
    pattern.rewrite(graph, plan);
    shapes.clear();
    changed = true;
  }
  if (changed) graph.remove_dead_code();
  return changed;
}

}  // namespace seqrun::passes
