// Op schema: CachedAttention, causal softmax attention over a KV cache — the step form of Attention /
// ChunkedAttention that derive-decode produces (seqrun op; ONNX's Attention grows its cache by concatenation
// instead, which costs a copy of the whole cache per token).
//
// CachedAttention(Q, K, V, k_cache, v_cache, position) -> (Y, new_k_cache, new_v_cache)
//   Q [B, Hq, T, Dk]   K [B, Hkv, T, Dk]   V [B, Hkv, T, Dv]   (T new tokens; Hq a multiple of Hkv,
//   query head h reads kv head h / (Hq / Hkv))
//   k_cache [B, Hkv, C, Dk]   v_cache [B, Hkv, C, Dv]   (C: the cache's capacity in tokens)
//   position: i64 scalar or [1], P = the number of tokens already in the cache; 0 <= P and P + T <= C,
//   else a run-time error naming the node.
// new_k_cache equals k_cache with rows P .. P+T-1 replaced by K (likewise V); rows at and beyond P + T are
// carried over unchanged. The new caches may share memory with the old ones (the kernel then writes only the
// T new rows): that is how a decoder appends to its cache in place.
// Y[b, h, i] is softmax attention of query i, at absolute position P + i, over the keys 0 .. P + i of the new
// cache: scores q·k·scale (scale defaults to 1/sqrt(Dk)), softcap c·tanh(s/c) when softcap > 0, keys before
// P + i - window masked when window >= 0 (each query sees its `window` previous keys, as in
// ChunkedAttention).
#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

Status infer_cached_attention(InferContext& ctx) {
  const Node& node = ctx.node();
  const int64_t window = node.get_int("window", -1);
  if (window < -1) return make_error("window must be -1 (none) or >= 0, is {}", window);
  if (node.get_float("softcap", 0.0f) < 0.0f) return make_error("softcap must be >= 0");
  const char* names[5] = {"Q", "K", "V", "k_cache", "v_cache"};
  for (int i = 0; i < 5; ++i) {
    const TensorType& t = ctx.input_type(i);
    if (t.has_rank() && t.rank() != 4)
      return make_error("{} must be 4-D [B, H, S, D], is {}", names[i], t.to_string());
    if (t.dtype() != DType::undefined && !is_float(t.dtype()))
      return make_error("{} must be a float tensor, is {}", names[i], t.to_string());
  }
  const TensorType& pos = ctx.input_type(5);
  if (pos.dtype() != DType::undefined && pos.dtype() != DType::i64)
    return make_error("position must be i64, is {}", pos.to_string());
  if (pos.has_rank() &&
      (pos.rank() > 1 || (pos.rank() == 1 && pos.dim(0).is_static() && pos.dim(0).value() != 1)))
    return make_error("position must be a scalar or [1], is {}", pos.to_string());
  // Static sizes that disagree are errors here already (the kernels check the bound shapes again).
  const TensorType& qt = ctx.input_type(0);
  const TensorType& kt = ctx.input_type(1);
  if (qt.has_rank() && kt.has_rank() && qt.dim(1).is_static() && kt.dim(1).is_static() &&
      (kt.dim(1).value() == 0 || qt.dim(1).value() % kt.dim(1).value() != 0)) {
    return make_error("q heads {} must be a positive multiple of kv heads {}", qt.dim(1).value(),
                      kt.dim(1).value());
  }
  const TensorType& q = ctx.input_type(0);
  const TensorType& v = ctx.input_type(2);
  infer::unknown_outputs(ctx, q.dtype());
  if (q.has_rank()) {
    const Dim dv = v.has_rank() ? v.dim(3) : Dim::unknown();
    ctx.outputs[0] = TensorType(q.dtype(), {q.dim(0), q.dim(1), q.dim(2), dv});
  }
  if (ctx.num_outputs() > 1) ctx.outputs[1] = ctx.input_type(3);
  if (ctx.num_outputs() > 2) ctx.outputs[2] = ctx.input_type(4);
  return Status::ok();
}

}  // namespace

void register_cached_attention_ops(OpRegistry& r) {
  r.add(
      OpDef("CachedAttention")
          .doc("Causal attention of T new tokens over a KV cache they are appended to (the decode step form)")
          .inputs(6, 6)
          .outputs(3, 3)
          .attr("scale", AttrType::Float)
          .attr("softcap", AttrType::Float, Attribute(0.0f))
          .attr("window", AttrType::Int, Attribute(int64_t{-1}))
          .infer(infer_cached_attention)
          .build());
}

}  // namespace seqrun::ops
