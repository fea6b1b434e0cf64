// Op schema: MixedChunkAttention, the attention of a GAU/FLASH layer (Hua et al. 2022) — squared-ReLU
// quadratic attention inside chunks of `chunk_size` tokens plus linear attention across chunks.
//
// MixedChunkAttention(quad_q, quad_k, lin_q, lin_k, value, bias?,
//                     past_lin_state?, past_chunk_quad_k?, past_chunk_lin_k?, past_chunk_v?, position?)
//   -> output, new_lin_state?, new_chunk_quad_k?, new_chunk_lin_k?, new_chunk_v?
//   quad_q, quad_k [B, T, Sq]   lin_q, lin_k [B, T, Sl]   value [B, T, E]   bias [C, C]   output [B, T, E]
// Token t sits in chunk g(t) = t / C at position p(t) = t % C (the last chunk may be partial):
//   output_t = Σ_{j: g(j) = g(t), j <= t if causal} relu(qs·quad_q_t·quad_k_j + bias[p(t), p(j)])² v_j
//            + ls · Σ_{j: g(j) < g(t) if causal, every j otherwise} (lin_q_t·lin_k_j) v_j
// with qs = quad_scale, ls = lin_scale.
// quad_scale and lin_scale default to 1 / chunk_size (the paper's choice); bias (a relative position bias
// over one chunk) defaults to zero.
//
// Step form (causal = 1 only), for decoding a few tokens (or one) at a time. The inputs then hold tokens
// P..P+T-1 of a sequence s, and the state inputs summarize tokens 0..P-1 of s:
//   6  past_lin_state    [B, Sl, E]  Σ lin_k_jᵀ v_j over the tokens j of COMPLETED chunks (no lin_scale)
//   7  past_chunk_quad_k [B, C, Sq]  quad_k rows of the tokens of the unfinished chunk: rows 0..P%C-1 valid
//   8  past_chunk_lin_k  [B, C, Sl]  same rows of lin_k
//   9  past_chunk_v      [B, C, E]   same rows of value
//   10 position          i64 scalar or [1]: P, the number of tokens before this call (P >= 0)
// Inputs 6..10 come all together or not at all. Output row i is row P+i of the full-sequence op on s:
// g and p (and so the bias lookup) use the absolute position P+i. Optional outputs 1..4 (same shapes and
// dtype as inputs 6..9) are the state after the T new tokens: a token that completes a chunk moves the
// chunk into new_lin_state and leaves the chunk buffers empty; buffer rows past (P+T)%C may hold anything.
// The state outputs may be asked for without state inputs (causal only): that is the step form from the
// empty state (P = 0), e.g. a prefill. State tensors have the dtype of value. Without state inputs and
// outputs the op is the full-sequence op above.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

constexpr int kFirstStateInput = 6;
constexpr int kNumStateInputs = 5;
const char* const kStateInputNames[kNumStateInputs] = {"past_lin_state", "past_chunk_quad_k",
                                                       "past_chunk_lin_k", "past_chunk_v", "position"};

// Dim `axis` of `t`, unknown where the rank is.
Dim dim_or_unknown(const TensorType& t, int axis) {
  return t.has_rank() ? t.dim(axis) : Dim::unknown();
}

// A static dim of `t` that differs from a static `expected` is an error naming both.
Status expect_dim(const TensorType& t, const char* name, int axis, const Dim& expected, const char* meaning) {
  if (t.has_rank() && t.dim(axis).is_static() && expected.is_static() &&
      t.dim(axis).value() != expected.value()) {
    return make_error("{} dim {} must be {} = {}, is {}", name, axis, meaning, expected.value(),
                      t.to_string());
  }
  return Status::ok();
}

// Checks the step-form state inputs (all present, causal) and fills the state outputs' types.
Status infer_step_state(InferContext& ctx, int64_t chunk, bool causal, DType dt) {
  int present = 0;
  std::string missing;
  for (int i = 0; i < kNumStateInputs; ++i) {
    if (ctx.has_input(kFirstStateInput + i)) {
      ++present;
    } else {
      missing += std::string(missing.empty() ? "" : ", ") + kStateInputNames[i];
    }
  }
  const bool has_state_outputs = ctx.num_outputs() > 1;
  if (present == 0 && !has_state_outputs) return Status::ok();
  if (present != 0 && present != kNumStateInputs) {
    return make_error(
        "the step form needs all of past_lin_state, past_chunk_quad_k, past_chunk_lin_k, "
        "past_chunk_v and position; missing {}",
        missing);
  }
  if (!causal) {
    return make_error("the step form (state inputs or outputs) needs causal = 1, is causal = 0");
  }

  // The state dims, merged from every tensor that carries them.
  Dim batch = infer::merge_dim(dim_or_unknown(ctx.input_type(0), 0), dim_or_unknown(ctx.input_type(4), 0));
  Dim sq = infer::merge_dim(dim_or_unknown(ctx.input_type(0), 2), dim_or_unknown(ctx.input_type(1), 2));
  Dim sl = infer::merge_dim(dim_or_unknown(ctx.input_type(2), 2), dim_or_unknown(ctx.input_type(3), 2));
  Dim width = dim_or_unknown(ctx.input_type(4), 2);
  const Dim c = Dim(chunk);
  if (present != 0) {
    const TensorType& lin_state = ctx.input_type(6);
    const TensorType& chunk_qk = ctx.input_type(7);
    const TensorType& chunk_lk = ctx.input_type(8);
    const TensorType& chunk_v = ctx.input_type(9);
    const TensorType& position = ctx.input_type(10);
    for (int i = 0; i < 4; ++i) {
      const TensorType& t = ctx.input_type(kFirstStateInput + i);
      if (t.has_rank() && t.rank() != 3) {
        return make_error("{} must be 3-D, is {}", kStateInputNames[i], t.to_string());
      }
      if (t.dtype() != DType::undefined && !is_float(t.dtype())) {
        return make_error("{} must be a float tensor, is {}", kStateInputNames[i], t.to_string());
      }
      if (t.dtype() != DType::undefined && dt != DType::undefined && t.dtype() != dt) {
        return make_error("{} must have the dtype of value ({}), is {}", kStateInputNames[i], dtype_name(dt),
                          t.to_string());
      }
    }
    if (position.dtype() != DType::undefined && position.dtype() != DType::i64) {
      return make_error("position must be an i64 scalar or [1], is {}", position.to_string());
    }
    if (position.has_rank() && (position.rank() > 1 || (position.rank() == 1 && position.dim(0).is_static() &&
                                                        position.dim(0).value() != 1))) {
      return make_error("position must be an i64 scalar or [1], is {}", position.to_string());
    }
    SEQRUN_TRY(expect_dim(lin_state, "past_lin_state", 0, batch, "B"));
    SEQRUN_TRY(expect_dim(lin_state, "past_lin_state", 1, sl, "Sl"));
    SEQRUN_TRY(expect_dim(lin_state, "past_lin_state", 2, width, "E"));
    SEQRUN_TRY(expect_dim(chunk_qk, "past_chunk_quad_k", 0, batch, "B"));
    SEQRUN_TRY(expect_dim(chunk_qk, "past_chunk_quad_k", 1, c, "chunk_size"));
    SEQRUN_TRY(expect_dim(chunk_qk, "past_chunk_quad_k", 2, sq, "Sq"));
    SEQRUN_TRY(expect_dim(chunk_lk, "past_chunk_lin_k", 0, batch, "B"));
    SEQRUN_TRY(expect_dim(chunk_lk, "past_chunk_lin_k", 1, c, "chunk_size"));
    SEQRUN_TRY(expect_dim(chunk_lk, "past_chunk_lin_k", 2, sl, "Sl"));
    SEQRUN_TRY(expect_dim(chunk_v, "past_chunk_v", 0, batch, "B"));
    SEQRUN_TRY(expect_dim(chunk_v, "past_chunk_v", 1, c, "chunk_size"));
    SEQRUN_TRY(expect_dim(chunk_v, "past_chunk_v", 2, width, "E"));
    for (int i = 0; i < 4; ++i) batch = infer::merge_dim(batch, dim_or_unknown(ctx.input_type(6 + i), 0));
    sl = infer::merge_dim(infer::merge_dim(sl, dim_or_unknown(lin_state, 1)), dim_or_unknown(chunk_lk, 2));
    width =
        infer::merge_dim(infer::merge_dim(width, dim_or_unknown(lin_state, 2)), dim_or_unknown(chunk_v, 2));
    sq = infer::merge_dim(sq, dim_or_unknown(chunk_qk, 2));
  }
  const std::vector<Dim> state_dims[4] = {
      {batch, sl, width}, {batch, c, sq}, {batch, c, sl}, {batch, c, width}};
  for (int i = 1; i < ctx.num_outputs() && i < 5; ++i) ctx.outputs[i] = TensorType(dt, state_dims[i - 1]);
  return Status::ok();
}

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
  SEQRUN_TRY(infer_step_state(ctx, chunk, causal == 1, dt));
  if (!q.has_rank() && !v.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
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
                 "chunks (seqrun); causal step form with explicit chunk state for decoding")
            .inputs(5, 11)
            .outputs(1, 5)
            .required_attr("chunk_size", AttrType::Int)
            .attr("causal", AttrType::Int, Attribute(1))
            .attr("quad_scale", AttrType::Float)
            .attr("lin_scale", AttrType::Float)
            .infer(infer_mixed_chunk_attention)
            .build());
}

}  // namespace seqrun::ops
