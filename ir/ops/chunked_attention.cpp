// Op schema: ChunkedAttention, exact softmax attention computed in query/key blocks with an online
// softmax (what chunk-attention turns Attention into when the n x n scores would be too big).
//
// ChunkedAttention(Q, K, V, attn_mask?) -> Y
//   Q [B, Hq, Sq, D]   K [B, Hkv, T, D]   V [B, Hkv, T, Dv]   Y [B, Hq, Sq, Dv]   (Hq a multiple of Hkv;
//   query head h reads kv head h / (Hq / Hkv), as in Attention)
// Y is what Attention (ONNX 24) computes for the same 4-D inputs without a KV cache:
//   scores = Q·Kᵀ·scale (scale defaults to 1/sqrt(D)), softcap c·tanh(s/c) when softcap > 0, plus the
//   bias: attn_mask (bool: false -> -inf; float: added; right-aligned to [B, Hq, Sq, T], a last dim
//   shorter than T padded with -inf), -inf where is_causal and j > i, -inf where window >= 0 and
//   j < i - window (each query sees its `window` previous keys); softmax over keys; a row whose bias is
//   -inf everywhere gives 0.
// Block-sparse layout (sparse_block b > 0, only with is_causal = 1): the Sparse Transformer's "fixed" pattern
// at block granularity masks, on top of the causal bias, every key j with
//   i/b - j/b >= sparse_local  and  (j/b) % sparse_stride != sparse_stride - 1       (integer division)
// i.e. query i sees the keys of its own and the sparse_local - 1 previous b-blocks, plus one summary block at
// the end of every sparse_stride blocks (sparse_local >= 1, sparse_stride >= 1; sparse_stride = 1 or a
// large sparse_local is plain causal attention).
// block_q and block_k size the blocks; blocks the causal/window/sparse bias masks entirely are skipped, so
// a causal window costs O(Sq · window) instead of O(Sq · T) and a sparse layout the non-empty b x b blocks
// only (kernels may tile by b instead of block_q/block_k when sparse_block is set).
#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

Status infer_chunked_attention(InferContext& ctx) {
  const Node& node = ctx.node();
  const int64_t block_q = node.get_int("block_q", 64), block_k = node.get_int("block_k", 64);
  if (block_q <= 0 || block_k <= 0) {
    return make_error("block_q and block_k must be positive, are {} and {}", block_q, block_k);
  }
  const int64_t window = node.get_int("window", -1);
  if (window < -1) return make_error("window must be -1 (none) or >= 0, is {}", window);
  const int64_t causal = node.get_int("is_causal", 0);
  if (causal != 0 && causal != 1) return make_error("is_causal must be 0 or 1, is {}", causal);
  const int64_t sparse_block = node.get_int("sparse_block", 0);
  const int64_t sparse_local = node.get_int("sparse_local", 1);
  const int64_t sparse_stride = node.get_int("sparse_stride", 1);
  if (sparse_block < 0) return make_error("sparse_block must be 0 (dense) or positive, is {}", sparse_block);
  if (sparse_block > 0) {
    if (causal != 1) return make_error("sparse_block {} needs is_causal = 1", sparse_block);
    if (sparse_local < 1 || sparse_stride < 1) {
      return make_error("sparse_local and sparse_stride must be >= 1, are {} and {}", sparse_local,
                        sparse_stride);
    }
  }
  const TensorType& q = ctx.input_type(0);
  const TensorType& v = ctx.input_type(2);
  infer::unknown_outputs(ctx, q.dtype());
  const char* names[3] = {"Q", "K", "V"};
  for (int i = 0; i < 3; ++i) {
    const TensorType& t = ctx.input_type(i);
    if (t.has_rank() && t.rank() != 4)
      return make_error("{} must be 4-D [B, H, S, D], is {}", names[i], t.to_string());
    if (t.dtype() != DType::undefined && !is_float(t.dtype()))
      return make_error("{} must be a float tensor, is {}", names[i], t.to_string());
  }
  if (ctx.has_input(3)) {
    const TensorType& m = ctx.input_type(3);
    if (m.dtype() != DType::undefined && m.dtype() != DType::boolean && !is_float(m.dtype()))
      return make_error("attn_mask must be bool or float, is {}", m.to_string());
    if (m.has_rank() && (m.rank() < 1 || m.rank() > 4))
      return make_error("attn_mask must have rank 1..4, is {}", m.to_string());
  }
  if (!q.has_rank()) return Status::ok();
  const Dim dv = v.has_rank() ? v.dim(3) : Dim::unknown();
  ctx.outputs[0] = TensorType(q.dtype(), {q.dim(0), q.dim(1), q.dim(2), dv});
  return Status::ok();
}

}  // namespace

void register_chunked_attention_ops(OpRegistry& r) {
  r.add(OpDef("ChunkedAttention")
            .doc("Attention on 4-D inputs in query/key blocks with an online softmax (causal, window, "
                 "block-sparse, GQA)")
            .inputs(3, 4)
            .outputs(1, 1)
            .attr("block_q", AttrType::Int, Attribute(int64_t{64}))
            .attr("block_k", AttrType::Int, Attribute(int64_t{64}))
            .attr("is_causal", AttrType::Int, Attribute(int64_t{0}))
            .attr("window", AttrType::Int, Attribute(int64_t{-1}))
            .attr("scale", AttrType::Float)
            .attr("softcap", AttrType::Float, Attribute(0.0f))
            .attr("sparse_block", AttrType::Int, Attribute(int64_t{0}))
            .attr("sparse_local", AttrType::Int, Attribute(int64_t{1}))
            .attr("sparse_stride", AttrType::Int, Attribute(int64_t{1}))
            .infer(infer_chunked_attention)
            .build());
}

}  // namespace seqrun::ops
