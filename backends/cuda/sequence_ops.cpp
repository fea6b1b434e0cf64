// CUDA kernels for the sequence-mixing ops: Attention (ONNX 23/24), LinearAttention (ONNX 27; recurrent, and
// chunkwise for long sequences), CausalConvWithState (ONNX 27) and RotaryEmbedding (ONNX 23). Device code in
// attention.cu, linear_attention.cu, linear_attention_chunked.cu, causal_conv.cu and rope.cu.
//
// The factories check shapes and attributes the way the reference kernels do and decline anything
// unusual (the qk_matmul_output output, bad shapes, unknown attribute values): the CPU fallback then
// computes it or reports the error with the reference's message.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

// ---- Attention ---------------------------------------------------------------------------------------

class AttentionKernel final : public CudaKernel {
 public:
  AttentionKernel(CudaContext* ctx, const Node* node, AttentionParams params, std::string label)
      : CudaKernel(ctx, node, std::move(label)), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    AttentionParams p = params_;
    auto data = [&](int i) -> const void* { return i < static_cast<int>(in.size()) ? in[i].data : nullptr; };
    p.q = data(0);
    p.k = data(1);
    p.v = data(2);
    p.mask = params_.mask != nullptr ? data(3) : nullptr;
    p.past_k = data(4);
    p.past_v = data(5);
    p.nonpad = params_.nonpad != nullptr ? data(6) : nullptr;
    p.y = out[0].data;
    p.present_k = out.size() > 1 ? out[1].data : nullptr;
    p.present_v = out.size() > 2 ? out[2].data : nullptr;
    return launched(launch_attention(p, ctx_->stream()));
  }

 private:
  AttentionParams params_;
};

// SEQRUN_CUDA_ATTENTION = simple | mma | mma-v1 | auto (default): which attention kernel to use.
int attention_variant_from_env() {
  const char* v = std::getenv("SEQRUN_CUDA_ATTENTION");
  if (v == nullptr) return 0;
  if (std::strcmp(v, "simple") == 0) return 1;
  if (std::strcmp(v, "mma") == 0) return 2;
  if (std::strcmp(v, "mma-v1") == 0) return 3;
  return 0;
}

// The mask viewed as a [B, Hq, Sq, Tm] bias, as the reference builds it; false when it does not fit.
bool fill_mask(const TensorArg& m, bool batch_major_3d, AttentionParams* p) {
  const std::optional<ElemType> type = elem_type(m.dtype);
  if (!type || (m.dtype != DType::boolean && !is_cuda_float(m.dtype))) return false;
  if (m.rank() < 1 || m.rank() > 4) return false;
  int64_t dims[4] = {1, 1, 1, 1};
  if (batch_major_3d && m.rank() == 3) {
    dims[0] = m.shape[0];
    dims[2] = m.shape[1];
    dims[3] = m.shape[2];
  } else {
    for (int i = 0; i < m.rank(); ++i) dims[4 - m.rank() + i] = m.shape[i];
  }
  const int64_t want[3] = {p->batch, p->q_heads, p->q_len};
  int64_t strides[4];
  strides[3] = 1;
  for (int i = 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  for (int i = 0; i < 3; ++i) {
    if (dims[i] != 1 && dims[i] != want[i]) return false;
    p->mask_stride[i] = dims[i] == 1 ? 0 : strides[i];
  }
  if (dims[3] > p->past_len + p->kv_len) return false;
  p->mask_type = *type;
  p->mask_len = dims[3];
  return true;
}

std::unique_ptr<Kernel> make_attention(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() < 3 || info.outputs.empty() || info.outputs.size() > 3) return nullptr;
  const TensorArg& q = info.inputs[0];
  const TensorArg& k = info.inputs[1];
  const TensorArg& v = info.inputs[2];
  const DType dt = q.dtype;
  if (!is_cuda_float(dt) || k.dtype != dt || v.dtype != dt) return nullptr;
  for (const TensorArg& o : info.outputs) {
    if (o.dtype != dt) return nullptr;
  }
  if ((q.rank() != 3 && q.rank() != 4) || k.rank() != q.rank() || v.rank() != q.rank()) return nullptr;
  AttentionParams p;
  p.type = *elem_type(dt);
  p.packed = q.rank() == 3;
  p.batch = q.shape[0];
  if (p.packed) {
    p.q_heads = node.get_int("q_num_heads", 0);
    p.kv_heads = node.get_int("kv_num_heads", 0);
    if (p.q_heads <= 0 || p.kv_heads <= 0 || q.shape[2] % p.q_heads != 0 || v.shape[2] % p.kv_heads != 0) {
      return nullptr;
    }
    p.q_len = q.shape[1];
    p.head_size = q.shape[2] / p.q_heads;
    p.kv_len = k.shape[1];
    p.v_head_size = v.shape[2] / p.kv_heads;
    if (k.shape[2] != p.kv_heads * p.head_size || v.shape[1] != p.kv_len) return nullptr;
  } else {
    p.q_heads = q.shape[1];
    p.q_len = q.shape[2];
    p.head_size = q.shape[3];
    p.kv_heads = k.shape[1];
    p.kv_len = k.shape[2];
    p.v_head_size = v.shape[3];
    if (k.shape[3] != p.head_size || v.shape[1] != p.kv_heads || v.shape[2] != p.kv_len) return nullptr;
  }
  if (k.shape[0] != p.batch || v.shape[0] != p.batch) return nullptr;
  if (p.kv_heads <= 0 || p.q_heads % p.kv_heads != 0) return nullptr;
  if (p.head_size < 1 || p.head_size > 256 || p.v_head_size < 1 || p.v_head_size > 256) return nullptr;
  if (p.batch > 65535 || p.q_heads > 65535) return nullptr;
  const bool has_past_k = info.input_present(4), has_past_v = info.input_present(5);
  if (has_past_k != has_past_v) return nullptr;
  if (has_past_k) {
    const TensorArg& pk = info.inputs[4];
    const TensorArg& pv = info.inputs[5];
    if (pk.dtype != dt || pv.dtype != dt || pk.rank() != 4) return nullptr;
    p.past_len = pk.shape[2];
    if (pk.shape != Shape{p.batch, p.kv_heads, p.past_len, p.head_size} ||
        pv.shape != Shape{p.batch, p.kv_heads, p.past_len, p.v_head_size}) {
      return nullptr;
    }
  }
  const int64_t total = p.past_len + p.kv_len;
  p.causal = node.get_int("is_causal", 0) != 0;
  p.softcap = node.get_float("softcap", 0.0f);
  if (p.softcap < 0.0f) return nullptr;
  p.scale = node.has_attr("scale") ? node.get_float("scale")
                                   : static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_size)));
  if (info.input_present(6)) {
    const TensorArg& np = info.inputs[6];
    if ((np.dtype != DType::i64 && np.dtype != DType::i32) || np.rank() != 1 || np.shape[0] != p.batch)
      return nullptr;
    if (has_past_k) return nullptr;  // an error in the reference
    p.nonpad_i64 = np.dtype == DType::i64;
    p.nonpad = reinterpret_cast<const void*>(uintptr_t{1});  // present; the pointer is set at run time
  }
  if (info.input_present(3)) {
    if (!fill_mask(info.inputs[3], p.causal && info.input_present(6), &p)) return nullptr;
    p.mask = reinterpret_cast<const void*>(uintptr_t{1});  // present; the pointer is set at run time
  }
  // Output shapes: Y like Q with Dv; present [B, Hkv, T, D|Dv].
  const Shape y_shape = p.packed ? Shape{p.batch, p.q_len, p.q_heads * p.v_head_size}
                                 : Shape{p.batch, p.q_heads, p.q_len, p.v_head_size};
  if (info.outputs[0].shape != y_shape) return nullptr;
  if (info.outputs.size() > 1 && info.outputs[1].shape != Shape{p.batch, p.kv_heads, total, p.head_size}) {
    return nullptr;
  }
  if (info.outputs.size() > 2 && info.outputs[2].shape != Shape{p.batch, p.kv_heads, total, p.v_head_size}) {
    return nullptr;
  }
  p.variant = attention_variant_from_env();
  const bool eligible = attention_tensor_core_eligible(p);
  if (p.variant >= 2 && !eligible) p.variant = 0;  // "mma" / "mma-v1" where they apply
  std::string label = "cuda:attention";
  if (eligible && p.variant == 3) {
    label = "cuda:attention-mma-v1";
  } else if (eligible && (p.variant == 2 || (p.variant == 0 && p.q_len >= 16))) {
    label = "cuda:attention-mma";
  }
  return std::make_unique<AttentionKernel>(ctx, info.node, p, std::move(label));
}

// ---- LinearAttention ---------------------------------------------------------------------------------

class LinearAttentionKernel final : public CudaKernel {
 public:
  LinearAttentionKernel(CudaContext* ctx, const Node* node, LinearAttentionParams params, bool chunked)
      : CudaKernel(ctx, node, chunked ? "cuda:linear-attention-chunked" : "cuda:linear-attention-recurrent"),
        params_(params),
        chunked_(chunked) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    LinearAttentionParams p = params_;
    auto data = [&](int i) -> const void* { return i < static_cast<int>(in.size()) ? in[i].data : nullptr; };
    p.q = data(0);
    p.k = data(1);
    p.v = data(2);
    p.past_state = data(3);
    p.decay = p.gated ? data(4) : nullptr;
    p.beta = p.delta ? data(5) : nullptr;
    p.y = out[0].data;
    p.present = out.size() > 1 ? out[1].data : nullptr;
    return launched(chunked_ ? launch_linear_attention_chunked(p, ctx_->stream())
                             : launch_linear_attention(p, ctx_->stream()));
  }

 private:
  LinearAttentionParams params_;
  bool chunked_;
};

// From this many tokens on, the chunkwise kernel (where it applies) beats the token-serial recurrent one.
constexpr int64_t kChunkedMinTokens = 2 * kLinearAttentionChunk;

// SEQRUN_CUDA_LINEAR_ATTENTION = recurrent | chunked | auto (default): which LinearAttention kernel to use
// ("chunked" only where it applies: rules linear and gated with one decay per head).
bool use_chunked_linear_attention(const LinearAttentionParams& p) {
  if (!linear_attention_chunked_eligible(p)) return false;
  const char* v = std::getenv("SEQRUN_CUDA_LINEAR_ATTENTION");
  if (v != nullptr && std::strcmp(v, "recurrent") == 0) return false;
  if (v != nullptr && std::strcmp(v, "chunked") == 0) return true;
  return p.seq >= kChunkedMinTokens;
}

std::unique_ptr<Kernel> make_linear_attention(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() < 3 || info.outputs.empty() || info.outputs.size() > 2) return nullptr;
  const DType dt = info.inputs[0].dtype;
  if (!is_cuda_float(dt)) return nullptr;
  for (size_t i = 0; i < info.inputs.size() && i < 6; ++i) {
    if (info.input_present(static_cast<int>(i)) && info.inputs[i].dtype != dt) return nullptr;
  }
  // seqrun's extensions after the six ONNX inputs (RWKV bonus u, generalized-delta a/b) have no CUDA
  // kernel yet: decline so the CPU runs them rather than silently dropping an input.
  for (size_t i = 6; i < info.inputs.size(); ++i) {
    if (info.input_present(static_cast<int>(i))) return nullptr;
  }
  if (node.get_string("update_rule", "gated_delta") == "generalized_delta") return nullptr;
  for (const TensorArg& o : info.outputs) {
    if (o.dtype != dt) return nullptr;
  }
  const std::string rule = node.get_string("update_rule", "gated_delta");
  LinearAttentionParams p;
  p.type = *elem_type(dt);
  p.gated = rule == "gated" || rule == "gated_delta";
  p.delta = rule == "delta" || rule == "gated_delta";
  if (!p.gated && !p.delta && rule != "linear") return nullptr;
  p.q_heads = node.get_int("q_num_heads", 0);
  p.kv_heads = node.get_int("kv_num_heads", 0);
  if (p.q_heads <= 0 || p.kv_heads <= 0 || p.q_heads % p.kv_heads != 0) return nullptr;
  const TensorArg& q = info.inputs[0];
  const TensorArg& k = info.inputs[1];
  const TensorArg& v = info.inputs[2];
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) return nullptr;
  p.batch = q.shape[0];
  p.seq = q.shape[1];
  if (q.shape[2] % p.q_heads != 0 || v.shape[2] % p.kv_heads != 0) return nullptr;
  p.key_size = q.shape[2] / p.q_heads;
  p.value_size = v.shape[2] / p.kv_heads;
  if (p.key_size < 1 || p.key_size > kLinearAttentionMaxKeySize || p.value_size < 1) return nullptr;
  if (k.shape != Shape{p.batch, p.seq, p.kv_heads * p.key_size} || v.shape[0] != p.batch ||
      v.shape[1] != p.seq) {
    return nullptr;
  }
  if (p.batch * p.kv_heads > 65535) return nullptr;
  if (p.gated) {
    if (!info.input_present(4)) return nullptr;
    const TensorArg& g = info.inputs[4];
    if (g.rank() != 3 || g.shape[0] != p.batch || g.shape[1] != p.seq ||
        (g.shape[2] != p.kv_heads * p.key_size && g.shape[2] != p.kv_heads)) {
      return nullptr;
    }
    p.decay_width = g.shape[2];
  }
  if (p.delta) {
    if (!info.input_present(5)) return nullptr;
    const TensorArg& beta = info.inputs[5];
    if (beta.rank() != 3 || beta.shape[0] != p.batch || beta.shape[1] != p.seq ||
        (beta.shape[2] != p.kv_heads && beta.shape[2] != 1)) {
      return nullptr;
    }
    p.beta_width = beta.shape[2];
  }
  const Shape state_shape{p.batch, p.kv_heads, p.key_size, p.value_size};
  if (info.input_present(3) && info.inputs[3].shape != state_shape) return nullptr;
  if (info.outputs[0].shape != Shape{p.batch, p.seq, p.q_heads * p.value_size}) return nullptr;
  if (info.outputs.size() > 1 && info.outputs[1].shape != state_shape) return nullptr;
  p.scale = node.has_attr("scale") ? node.get_float("scale")
                                   : static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.key_size)));
  return std::make_unique<LinearAttentionKernel>(ctx, info.node, p, use_chunked_linear_attention(p));
}

// ---- CausalConvWithState -----------------------------------------------------------------------------

class CausalConvKernel final : public CudaKernel {
 public:
  CausalConvKernel(CudaContext* ctx, const Node* node, CausalConvParams params)
      : CudaKernel(ctx, node, "cuda:causal-conv"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    CausalConvParams p = params_;
    auto data = [&](int i) -> const void* { return i < static_cast<int>(in.size()) ? in[i].data : nullptr; };
    p.x = data(0);
    p.weight = data(1);
    p.bias = data(2);
    p.past = data(3);
    p.y = out[0].data;
    p.present = out.size() > 1 ? out[1].data : nullptr;
    return launched(launch_causal_conv(p, ctx_->stream()));
  }

 private:
  CausalConvParams params_;
};

std::unique_ptr<Kernel> make_causal_conv(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() < 2 || info.outputs.empty() || info.outputs.size() > 2) return nullptr;
  const DType dt = info.inputs[0].dtype;
  if (!is_cuda_float(dt)) return nullptr;
  for (size_t i = 0; i < info.inputs.size() && i < 4; ++i) {
    if (info.input_present(static_cast<int>(i)) && info.inputs[i].dtype != dt) return nullptr;
  }
  for (const TensorArg& o : info.outputs) {
    if (o.dtype != dt) return nullptr;
  }
  const std::string activation = info.node->get_string("activation", "none");
  const bool silu = activation == "silu" || activation == "swish";
  if (!silu && activation != "none") return nullptr;
  const TensorArg& x = info.inputs[0];
  const TensorArg& w = info.inputs[1];
  if (x.rank() != 3 || w.rank() != 3) return nullptr;
  CausalConvParams p;
  p.type = *elem_type(dt);
  p.batch = x.shape[0];
  p.channels = x.shape[1];
  p.length = x.shape[2];
  p.kernel_size = w.shape[2];
  p.silu = silu;
  if (w.shape[0] != p.channels || w.shape[1] != 1 || p.kernel_size < 1) return nullptr;
  if (info.input_present(2) && info.inputs[2].shape != Shape{p.channels}) return nullptr;
  const Shape state_shape{p.batch, p.channels, p.kernel_size - 1};
  if (info.input_present(3) && info.inputs[3].shape != state_shape) return nullptr;
  if (info.outputs[0].shape != x.shape) return nullptr;
  if (info.outputs.size() > 1 && info.outputs[1].shape != state_shape) return nullptr;
  return std::make_unique<CausalConvKernel>(ctx, info.node, p);
}

// ---- RotaryEmbedding ---------------------------------------------------------------------------------

class RopeKernel final : public CudaKernel {
 public:
  RopeKernel(CudaContext* ctx, const Node* node, RopeParams params)
      : CudaKernel(ctx, node, "cuda:rotary-embedding"), params_(params) {}
  bool can_run_in_place(int, int input) const override { return input == 0; }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    RopeParams p = params_;
    p.x = in[0].data;
    p.cos_cache = in[1].data;
    p.sin_cache = in[2].data;
    p.positions = in.size() > 3 ? in[3].data : nullptr;
    p.y = out[0].data;
    return launched(launch_rope(p, ctx_->stream()));
  }

 private:
  RopeParams params_;
};

std::unique_ptr<Kernel> make_rope(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() < 3 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  const TensorArg& cos_cache = info.inputs[1];
  const TensorArg& sin_cache = info.inputs[2];
  const DType dt = x.dtype;
  if (!is_cuda_float(dt) || cos_cache.dtype != dt || sin_cache.dtype != dt || info.outputs[0].dtype != dt) {
    return nullptr;
  }
  if (info.outputs[0].shape != x.shape || cos_cache.shape != sin_cache.shape) return nullptr;
  RopeParams p;
  p.type = *elem_type(dt);
  p.interleaved = node.get_int("interleaved", 0) != 0;
  if (x.rank() == 4) {
    p.batch = x.shape[0];
    p.heads = x.shape[1];
    p.seq = x.shape[2];
    p.head_size = x.shape[3];
  } else if (x.rank() == 3) {
    p.heads = node.get_int("num_heads", 0);
    if (p.heads <= 0 || x.shape[2] % p.heads != 0) return nullptr;
    p.packed = true;
    p.batch = x.shape[0];
    p.seq = x.shape[1];
    p.head_size = x.shape[2] / p.heads;
  } else {
    return nullptr;
  }
  const int64_t rd_attr = node.get_int("rotary_embedding_dim", 0);
  p.rotary_dim = rd_attr > 0 ? rd_attr : p.head_size;
  if (p.rotary_dim > p.head_size || p.rotary_dim % 2 != 0) return nullptr;
  const int64_t half = p.rotary_dim / 2;
  if (info.input_present(3)) {
    const TensorArg& pos = info.inputs[3];
    if ((pos.dtype != DType::i64 && pos.dtype != DType::i32) || pos.shape != Shape{p.batch, p.seq})
      return nullptr;
    if (cos_cache.rank() != 2 || cos_cache.shape[1] < half) return nullptr;
    p.positions_i64 = pos.dtype == DType::i64;
    p.cache_rows = cos_cache.shape[0];
  } else {
    if (cos_cache.rank() != 3 || cos_cache.shape[0] != p.batch || cos_cache.shape[1] != p.seq ||
        cos_cache.shape[2] < half) {
      return nullptr;
    }
    p.cache_rows = p.batch * p.seq;
  }
  p.cache_width = cos_cache.shape.back();
  p.sink = ctx->error_sink(node);
  return std::make_unique<RopeKernel>(ctx, info.node, p);
}

}  // namespace

void register_sequence_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  registry.add("Attention", [ctx](const KernelInfo& info) { return make_attention(info, ctx); });
  registry.add("LinearAttention", [ctx](const KernelInfo& info) { return make_linear_attention(info, ctx); });
  registry.add("CausalConvWithState", [ctx](const KernelInfo& info) { return make_causal_conv(info, ctx); });
  registry.add("RotaryEmbedding", [ctx](const KernelInfo& info) { return make_rope(info, ctx); });
}

}  // namespace seqrun::backends::cuda
