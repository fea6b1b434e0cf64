// Op schemas: attention family — Attention, FlexAttention, LinearAttention, CausalConvWithState,
// RotaryEmbedding, SwiGLU (ONNX semantics of the newest opset; see ir/ops/ops.h).
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

// a / b when both are static and b divides a; unknown otherwise.
Dim div_dim(const Dim& a, int64_t b) {
  if (a.is_static() && b > 0 && a.value() % b == 0) return Dim(a.value() / b);
  return Dim::unknown();
}
Dim mul_dim(const Dim& a, int64_t b) {
  if (a.is_static() && b >= 0) return Dim(a.value() * b);
  return Dim::unknown();
}
Dim add_dims(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) return Dim(a.value() + b.value());
  return Dim::unknown();
}
Dim dim_or_unknown(const TensorType& t, int i) {
  if (!t.has_rank() || i >= t.rank()) return Dim::unknown();
  return t.dim(i);
}

// Attention (opset 23/24): 3-D inputs [B, S, H*D] with q_num_heads/kv_num_heads, or 4-D [B, H, S, D].
Status infer_attention(InferContext& ctx) {
  const TensorType& q = ctx.input_type(0);
  const TensorType& k = ctx.input_type(1);
  const TensorType& v = ctx.input_type(2);
  const Node& node = ctx.node();
  DType qdt = q.dtype();
  infer::unknown_outputs(ctx, qdt);
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType::unknown_rank(k.dtype());
  if (ctx.num_outputs() > 2) ctx.outputs[2] = TensorType::unknown_rank(v.dtype());
  if (!q.has_rank()) return Status::ok();
  if (q.rank() != 3 && q.rank() != 4) return make_error("Q must be 3-D or 4-D, is {}", q.to_string());
  if (k.has_rank() && k.rank() != q.rank()) {
    return make_error("K rank {} differs from Q rank {}", k.rank(), q.rank());
  }
  if (v.has_rank() && v.rank() != q.rank()) {
    return make_error("V rank {} differs from Q rank {}", v.rank(), q.rank());
  }
  const int64_t q_heads_attr = node.get_int("q_num_heads", 0);
  const int64_t kv_heads_attr = node.get_int("kv_num_heads", 0);
  Dim batch = q.dim(0), q_seq, q_heads, kv_heads, qk_head, v_head, kv_seq;
  if (q.rank() == 3) {
    if (q_heads_attr <= 0 || kv_heads_attr <= 0) {
      return make_error("3-D inputs need positive q_num_heads and kv_num_heads attributes");
    }
    q_seq = q.dim(1);
    q_heads = Dim(q_heads_attr);
    kv_heads = Dim(kv_heads_attr);
    qk_head = div_dim(q.dim(2), q_heads_attr);
    v_head = div_dim(dim_or_unknown(v, 2), kv_heads_attr);
    kv_seq = dim_or_unknown(k, 1);
  } else {
    q_heads = q.dim(1);
    q_seq = q.dim(2);
    qk_head = q.dim(3);
    kv_heads = dim_or_unknown(k, 1);
    kv_seq = dim_or_unknown(k, 2);
    v_head = dim_or_unknown(v, 3);
  }
  Dim past = Dim(0);
  if (ctx.has_input(4)) past = dim_or_unknown(ctx.input_type(4), 2);
  Dim total = add_dims(past, kv_seq);
  if (q.rank() == 3) {
    ctx.outputs[0] = TensorType(qdt, {batch, q_seq, mul_dim(v_head, q_heads_attr)});
  } else {
    ctx.outputs[0] = TensorType(qdt, {batch, q_heads, q_seq, v_head});
  }
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType(k.dtype(), {batch, kv_heads, total, qk_head});
  if (ctx.num_outputs() > 2) ctx.outputs[2] = TensorType(v.dtype(), {batch, kv_heads, total, v_head});
  if (ctx.num_outputs() > 3) ctx.outputs[3] = TensorType(qdt, {batch, q_heads, q_seq, total});
  return Status::ok();
}

// FlexAttention (ai.onnx.preview): 4-D Q [B, Hq, L, E], K [B, Hkv, S, E], V [B, Hkv, S, Ev].
Status infer_flex_attention(InferContext& ctx) {
  const TensorType& q = ctx.input_type(0);
  const TensorType& v = ctx.input_type(2);
  infer::unknown_outputs(ctx, q.dtype());
  if (!q.has_rank()) return Status::ok();
  if (q.rank() != 4) return make_error("Q must be 4-D, is {}", q.to_string());
  ctx.outputs[0] = TensorType(q.dtype(), {q.dim(0), q.dim(1), q.dim(2), dim_or_unknown(v, 3)});
  return Status::ok();
}

// LinearAttention (opset 27): packed [B, T, H*D] inputs, state [B, Hkv, dk, dv].
Status infer_linear_attention(InferContext& ctx) {
  const TensorType& q = ctx.input_type(0);
  const TensorType& v = ctx.input_type(2);
  const int64_t hq = ctx.node().get_int("q_num_heads", 0);
  const int64_t hkv = ctx.node().get_int("kv_num_heads", 0);
  if (hq <= 0 || hkv <= 0) return make_error("q_num_heads and kv_num_heads must be positive");
  if (hq % hkv != 0) return make_error("q_num_heads {} is not a multiple of kv_num_heads {}", hq, hkv);
  infer::unknown_outputs(ctx, q.dtype());
  if (!q.has_rank()) return Status::ok();
  if (q.rank() != 3) return make_error("query must be 3-D [B, T, H*D], is {}", q.to_string());
  Dim dv = div_dim(dim_or_unknown(v, 2), hkv);
  ctx.outputs[0] = TensorType(q.dtype(), {q.dim(0), q.dim(1), mul_dim(dv, hq)});
  if (ctx.num_outputs() > 1) {
    ctx.outputs[1] = TensorType(q.dtype(), {q.dim(0), Dim(hkv), div_dim(q.dim(2), hq), dv});
  }
  return Status::ok();
}

// CausalConvWithState (opset 27): input [B, C, L], weight [C, 1, K] -> output [B, C, L], state [B, C, K-1].
Status infer_causal_conv(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  infer::unknown_outputs(ctx, x.dtype());
  if (!x.has_rank()) return Status::ok();
  if (x.rank() != 3) return make_error("input must be 3-D [B, C, L], is {}", x.to_string());
  ctx.outputs[0] = x;
  if (ctx.num_outputs() > 1) {
    Dim k = dim_or_unknown(w, 2);
    Dim km1 = k.is_static() && k.value() >= 1 ? Dim(k.value() - 1) : Dim::unknown();
    ctx.outputs[1] = TensorType(x.dtype(), {x.dim(0), x.dim(1), km1});
  }
  return Status::ok();
}

Status infer_same_as_first(InferContext& ctx) {
  return infer::same_as_input(ctx, 0);
}

}  // namespace

void register_attention_ops(OpRegistry& r) {
  r.add(OpDef("Attention")
            .doc("Scaled dot-product attention (ONNX 23/24): GQA, causal, mask, KV cache, softcap")
            .inputs(3, 7)
            .outputs(1, 4)
            .attr("is_causal", AttrType::Int, Attribute(0))
            .attr("kv_num_heads", AttrType::Int)
            .attr("q_num_heads", AttrType::Int)
            .attr("qk_matmul_output_mode", AttrType::Int, Attribute(0))
            .attr("scale", AttrType::Float)
            .attr("softcap", AttrType::Float, Attribute(0.0f))
            .attr("softmax_precision", AttrType::Int)
            .infer(infer_attention)
            .build());
  r.add(OpDef("FlexAttention")
            .doc("Attention with score_mod / prob_mod subgraphs (ai.onnx.preview FlexAttention)")
            .inputs(3, 3)
            .outputs(1, 1)
            .attr("scale", AttrType::Float)
            .attr("softmax_precision", AttrType::Int)
            .attr("score_mod", AttrType::Graph)
            .attr("prob_mod", AttrType::Graph)
            .infer(infer_flex_attention)
            .build());
  // Inputs 0-5 are ONNX's (query, key, value, past_state, decay, beta). seqrun appends, for RWKV:
  // 6 bonus u [Hkv*dk] (RWKV-4/5/6: read the state before the update, plus ((q⊙u)·k) v for the current
  // token; linear/gated only), 7 delta_a and 8 delta_b [B, T, Hkv*dk] (update_rule generalized_delta,
  // RWKV-7: S_t = diag(exp(g_t)) S_{t-1} + b_t (a_tᵀ S_{t-1}) + k_t v_tᵀ). decay may also be [1|B, 1|T, ...].
  r.add(OpDef("LinearAttention")
            .doc("Recurrent linear attention (ONNX 27): linear | gated | delta | gated_delta, with state; "
                 "seqrun: RWKV bonus u, generalized_delta")
            .inputs(3, 9)
            .outputs(1, 2)
            .required_attr("q_num_heads", AttrType::Int)
            .required_attr("kv_num_heads", AttrType::Int)
            .attr("update_rule", AttrType::String, Attribute("gated_delta"))
            .attr("scale", AttrType::Float)
            .infer(infer_linear_attention)
            .build());
  r.add(OpDef("CausalConvWithState")
            .doc("Causal depthwise 1-D convolution with carried state (ONNX 27), optional SiLU")
            .inputs(2, 4)
            .outputs(1, 2)
            .attr("activation", AttrType::String, Attribute("none"))
            .infer(infer_causal_conv)
            .build());
  r.add(OpDef("RotaryEmbedding")
            .doc("Rotary position embedding (ONNX 23): half-split or interleaved, partial rotary dim")
            .inputs(3, 4)
            .outputs(1, 1)
            .attr("interleaved", AttrType::Int, Attribute(0))
            .attr("num_heads", AttrType::Int, Attribute(0))
            .attr("rotary_embedding_dim", AttrType::Int, Attribute(0))
            .infer(infer_same_as_first)
            .build());
  r.add(OpDef("SwiGLU")
            .doc("Y = A * sigmoid(alpha * A) * B (ONNX 28)")
            .inputs(2, 2)
            .outputs(1, 1)
            .attr("alpha", AttrType::Float, Attribute(1.0f))
            .infer(infer_same_as_first)
            .build());
}

}  // namespace seqrun::ops
