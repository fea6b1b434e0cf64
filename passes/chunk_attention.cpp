// chunk-attention pass (see chunk_attention.h): AttentionToChunkedPattern checks that an Attention node
// is in ChunkedAttention's domain and large enough, folds a structural mask into attributes (or recognizes a
// constant mask as a block-sparse layout), rewrites it.
#include "passes/chunk_attention.h"

#include "ir/infer.h"
#include "passes/attention_mask.h"
#include "passes/pattern.h"

namespace seqrun::passes {

namespace {

struct SparseLayout {
  int64_t block = 0, local = 1, stride = 1;  // block 0: none
};

struct ChunkPlan {
  Node* attention = nullptr;
  Value* mask = nullptr;
  bool mask_needs_not = false;
  bool is_causal = false;
  int64_t window = -1;
  SparseLayout sparse;  // block > 0: the mask was this layout (and is dropped)
};

// The mask's constant visibility as a [S, S] table (true = the key is visible), when the attn_mask is a
// constant (or Not of a constant) of shape [S, S], [1, S, S] or [1, 1, S, S], bool (true = attend) or f32
// with only 0 (attend) and -inf / <= -65504 (masked, attention_mask.h's rule) in it; is_causal is folded in.
bool constant_visibility(const Value* mask, int64_t S, bool is_causal, std::vector<char>* visible) {
  bool invert = false;
  if (mask->producer() != nullptr && mask->producer()->op() == "Not" && mask->producer()->num_inputs() == 1 &&
      mask->producer()->input(0) != nullptr) {
    mask = mask->producer()->input(0);
    invert = true;
  }
  if (!mask->is_constant()) return false;
  const Tensor& t = mask->constant();
  if (t.rank() < 2 || t.rank() > 4 || t.dim(-1) != S || t.dim(-2) != S || t.numel() != S * S) return false;
  if (t.dtype() != DType::boolean && t.dtype() != DType::f32) return false;
  if (invert && t.dtype() != DType::boolean) return false;
  visible->assign(static_cast<size_t>(S * S), 0);
  for (int64_t i = 0; i < S; ++i) {
    for (int64_t j = 0; j < S; ++j) {
      const int64_t e = i * S + j;
      bool keep;
      if (t.dtype() == DType::boolean) {
        keep = t.data<bool>()[e] != invert;
      } else {
        const float x = t.data<float>()[e];
        if (x == 0.0f) {
          keep = true;
        } else if (x <= -65504.0f) {
          keep = false;
        } else {
          return false;  // a real additive bias (or NaN): not a layout
        }
      }
      (*visible)[e] = keep && (!is_causal || j <= i);
    }
  }
  return true;
}

// The block-sparse layout the visibility table is exactly equal to, trying b = 16 .. 256 dividing S.
// For each b, l is the first block row that no longer sees block 0 (block 0 is never a summary block
// unless stride 1), s - 1 the first block the last block row sees beyond its local ones (none: s = S/b,
// no summary block is ever reachable); then every element is checked. A layout without an empty block
// (plain causal) does not count.
SparseLayout match_sparse_layout(const std::vector<char>& visible, int64_t S) {
  for (int64_t b : {16, 32, 64, 128, 256}) {
    if (S % b != 0 || S / b < 2) continue;
    const int64_t nb = S / b;
    auto at = [&](int64_t qb, int64_t kb) { return visible[static_cast<size_t>(qb * b * S + kb * b)] != 0; };
    int64_t l = nb;
    for (int64_t qb = 1; qb < nb; ++qb) {
      if (!at(qb, 0)) {
        l = qb;
        break;
      }
    }
    if (l >= nb) continue;  // block 0 visible everywhere: plain causal at best
    int64_t s = nb;
    for (int64_t kb = 0; kb <= nb - 1 - l; ++kb) {
      if (at(nb - 1, kb)) {
        s = kb + 1;
        break;
      }
    }
    if (s == 1) continue;
    bool equal = true;
    for (int64_t i = 0; i < S && equal; ++i) {
      for (int64_t j = 0; j < S; ++j) {
        const bool want = j <= i && (i / b - j / b < l || (j / b) % s == s - 1);
        if (want != (visible[static_cast<size_t>(i * S + j)] != 0)) {
          equal = false;
          break;
        }
      }
    }
    if (equal) return SparseLayout{b, l, s};
  }
  return SparseLayout{};
}

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
    // A constant mask that is exactly a block-sparse layout: chunked whatever the size, since the kernel
    // then skips the empty blocks and reads no mask.
    std::vector<char> visible;
    if (att->input(3) != nullptr && q_len.value() == keys.value() &&
        constant_visibility(att->input(3), q_len.value(), att->get_int("is_causal", 0) != 0, &visible)) {
      const SparseLayout layout = match_sparse_layout(visible, q_len.value());
      if (layout.block > 0) {
        plan->attention = att;
        plan->is_causal = true;
        plan->sparse = layout;
        return true;
      }
    }
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
    attrs["block_q"] = Attribute(plan.sparse.block > 0 ? plan.sparse.block : options_.block_q);
    attrs["block_k"] = Attribute(plan.sparse.block > 0 ? plan.sparse.block : options_.block_k);
    if (plan.is_causal) attrs["is_causal"] = Attribute(int64_t{1});
    if (plan.sparse.block > 0) {
      attrs["sparse_block"] = Attribute(plan.sparse.block);
      attrs["sparse_local"] = Attribute(plan.sparse.local);
      attrs["sparse_stride"] = Attribute(plan.sparse.stride);
    }
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
