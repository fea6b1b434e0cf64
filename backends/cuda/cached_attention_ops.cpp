// CUDA kernel for CachedAttention (the decode step of softmax attention; device code in cached_attention.cu):
// shape and attribute checks as in the op's schema, the key split for flash-decoding, and the in-place
// permission that lets the plan give a new cache the old cache's memory.
//
// The factory declines anything unusual (Dk or Dv over kCachedAttentionMaxHeadSize, mixed float types, a
// position that is not one i64, shapes that disagree), so the CPU computes it or reports the error.
#include <algorithm>
#include <cmath>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

class CachedAttentionKernel final : public CudaKernel {
 public:
  CachedAttentionKernel(CudaContext* ctx, const Node* node, CachedAttentionParams params)
      : CudaKernel(ctx, node, "cuda:cached-attention"), params_(params) {}
  size_t workspace_bytes() const override { return cached_attention_workspace_bytes(params_); }
  // A new cache may be the old cache's memory: the update kernel then writes only the T new rows.
  bool can_run_in_place(int output, int input) const override {
    return (output == 1 && input == 3) || (output == 2 && input == 4);
  }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void* workspace) override {
    CachedAttentionParams p = params_;
    p.q = in[0].data;
    p.k = in[1].data;
    p.v = in[2].data;
    p.k_cache = in[3].data;
    p.v_cache = in[4].data;
    p.position = static_cast<const int64_t*>(in[5].data);
    p.y = out[0].data;
    p.new_k_cache = out[1].data;
    p.new_v_cache = out[2].data;
    p.workspace = static_cast<float*>(workspace);
    return launched(launch_cached_attention(p, ctx_->stream()));
  }

 private:
  CachedAttentionParams params_;
};

// Key splits: enough (query row, split) blocks for about two per multiprocessor, each split at least 64 cache
// rows; the splits cover the whole capacity.
void choose_splits(int multiprocessors, CachedAttentionParams* p) {
  const int64_t rows = std::max<int64_t>(p->batch * p->q_heads * p->new_tokens, 1);
  const int64_t target_blocks = 2 * std::max(multiprocessors, 1);
  const int64_t most = std::max<int64_t>((p->capacity + 63) / 64, 1);
  const int64_t splits =
      std::clamp<int64_t>((target_blocks + rows - 1) / rows, 1, std::min<int64_t>(most, 1024));
  p->keys_per_split = std::max<int64_t>((p->capacity + splits - 1) / splits, 1);
  p->splits =
      static_cast<int32_t>(std::max<int64_t>((p->capacity + p->keys_per_split - 1) / p->keys_per_split, 1));
}

std::unique_ptr<Kernel> make_cached_attention(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() != 6 || info.outputs.size() != 3) return nullptr;
  for (int i = 0; i < 6; ++i) {
    if (!info.input_present(i)) return nullptr;
  }
  const TensorArg& q = info.inputs[0];
  const TensorArg& k = info.inputs[1];
  const TensorArg& v = info.inputs[2];
  const TensorArg& kc = info.inputs[3];
  const TensorArg& vc = info.inputs[4];
  const TensorArg& pos = info.inputs[5];
  const DType dt = q.dtype;
  if (!is_cuda_float(dt)) return nullptr;
  for (int i = 1; i < 5; ++i) {
    if (info.inputs[i].dtype != dt) return nullptr;
  }
  for (const TensorArg& o : info.outputs) {
    if (o.dtype != dt) return nullptr;
  }
  if (pos.dtype != DType::i64 || pos.rank() > 1 || pos.numel() != 1) return nullptr;
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4 || kc.rank() != 4 || vc.rank() != 4) return nullptr;
  CachedAttentionParams p;
  p.type = *elem_type(dt);
  p.batch = q.shape[0];
  p.q_heads = q.shape[1];
  p.new_tokens = q.shape[2];
  p.head_size = q.shape[3];
  p.kv_heads = k.shape[1];
  p.v_head_size = v.shape[3];
  p.capacity = kc.shape[2];
  if (p.kv_heads < 1 || p.q_heads % p.kv_heads != 0) return nullptr;
  if (p.head_size < 1 || p.head_size > kCachedAttentionMaxHeadSize || p.v_head_size < 1 ||
      p.v_head_size > kCachedAttentionMaxHeadSize) {
    return nullptr;
  }
  if (k.shape != Shape{p.batch, p.kv_heads, p.new_tokens, p.head_size} ||
      v.shape != Shape{p.batch, p.kv_heads, p.new_tokens, p.v_head_size} ||
      kc.shape != Shape{p.batch, p.kv_heads, p.capacity, p.head_size} ||
      vc.shape != Shape{p.batch, p.kv_heads, p.capacity, p.v_head_size}) {
    return nullptr;
  }
  if (info.outputs[0].shape != Shape{p.batch, p.q_heads, p.new_tokens, p.v_head_size} ||
      info.outputs[1].shape != kc.shape || info.outputs[2].shape != vc.shape) {
    return nullptr;
  }
  if (p.batch * p.q_heads * p.new_tokens > 2147483647) return nullptr;
  p.scale = node.has_attr("scale") ? node.get_float("scale")
                                   : static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_size)));
  p.softcap = node.get_float("softcap", 0.0f);
  p.window = node.get_int("window", -1);
  if (p.softcap < 0.0f || p.window < -1) return nullptr;
  choose_splits(ctx->props().multiProcessorCount, &p);
  p.sink = ctx->error_sink(node);
  return std::make_unique<CachedAttentionKernel>(ctx, info.node, p);
}

}  // namespace

void register_cached_attention_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  registry.add("CachedAttention", [ctx](const KernelInfo& info) { return make_cached_attention(info, ctx); });
}

}  // namespace seqrun::backends::cuda
