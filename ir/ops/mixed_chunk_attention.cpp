// Op schema: MixedChunkAttention, the attention of a GAU/FLASH layer (Hua et al. 2022) — squared-ReLU
// quadratic attention inside chunks of `chunk_size` tokens plus linear attention across chunks.
//
// MixedChunkAttention(quad_q, quad_k, lin_q, lin_k, value, bias?) -> output
//   quad_q, quad_k [B, T, Sq]   lin_q, lin_k [B, T, Sl]   value [B, T, E]   bias [C, C]   output [B, T, E]
// Token t sits in chunk g(t) = t / C at position p(t) = t % C (the last chunk may be partial):
//   output_t = Σ_{j: g(j) = g(t), j <= t if causal} relu(qs·quad_q_t·quad_k_j + bias[p(t), p(j)])² v_j
//            + ls · Σ_{j: g(j) < g(t) if causal, every j otherwise} (lin_q_t·lin_k_j) v_j
// with qs = quad_scale, ls = lin_scale.
// quad_scale and lin_scale default to 1 / chunk_size (the paper's choice); bias (a relative position bias
// over one chunk) defaults to zero.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

Status infer_mixed_chunk_attention(InferContext& ctx) {
  const int64_t chunk = ctx.node().get_int("chunk_size", 0);
  if (chunk <= 0) return make_error("chunk_size must be positive, is {}", chunk);
  const int64_t causal = ctx.node().get_int("causal", 1);
  if (causal != 0 && causal != 1) return make_error("causal must be 0 or 1, is {}", causal);
  const TensorType& q = ctx.input_type(0);
  const TensorType& v = ctx.input_type(4);
  const DType dt = v.dtype() != DType::undefined ? v.dtype() : q.dtype();
  if (dt != DType::undefined && !is_float(dt))
    return make_error("value must be a float tensor, is {}", v.to_string());
  const char* names[5] = {"quad_q", "quad_k", "lin_q", "lin_k", "value"};
  for (int i = 0; i < 5; ++i) {
    const TensorType& t = ctx.input_type(i);
    if (t.has_rank() && t.rank() != 3)
      return make_error("{} must be 3-D [B, T, D], is {}", names[i], t.to_string());
  }
  if (ctx.has_input(5)) {
    const TensorType& bias = ctx.input_type(5);
    if (bias.has_rank() && bias.rank() != 2)
      return make_error("bias must be 2-D [C, C], is {}", bias.to_string());
    for (int axis = 0; bias.has_rank() && axis < 2; ++axis) {
      if (bias.dim(axis).is_static() && bias.dim(axis).value() != chunk) {
        return make_error("bias must be [chunk_size = {}, chunk_size], is {}", chunk, bias.to_string());
      }
    }
  }
  if (!q.has_rank() && !v.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  const Dim batch = q.has_rank() ? q.dim(0) : v.dim(0);
  const Dim seq = q.has_rank() ? q.dim(1) : v.dim(1);
  const Dim width = v.has_rank() ? v.dim(2) : Dim::unknown();
  ctx.outputs[0] = TensorType(dt, {v.has_rank() ? infer::merge_dim(batch, v.dim(0)) : batch,
                                   v.has_rank() ? infer::merge_dim(seq, v.dim(1)) : seq, width});
  return Status::ok();
}

}  // namespace

void register_mixed_chunk_attention_ops(OpRegistry& r) {
  r.add(OpDef("MixedChunkAttention")
            .doc("GAU/FLASH attention: relu² quadratic attention inside chunks + linear attention across "
                 "chunks (seqrun)")
            .inputs(5, 6)
            .outputs(1, 1)
            .required_attr("chunk_size", AttrType::Int)
            .attr("causal", AttrType::Int, Attribute(1))
            .attr("quad_scale", AttrType::Float)
            .attr("lin_scale", AttrType::Float)
            .infer(infer_mixed_chunk_attention)
            .build());
}

}  // namespace seqrun::ops
