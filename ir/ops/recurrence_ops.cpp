// Op schemas: seqrun's token-mixing recurrences with explicit state — TokenShift (RWKV's mix with the
// previous token) and RWKV4WKV (RWKV-4's normalized WKV with the max trick).
//
// Both are seqrun ops (ONNX has neither). Each takes its state as an optional last input and returns
// the new state as an optional second output, so one graph runs a whole sequence (T tokens) or one
// token at a time (T = 1, feeding the state back). A zero state is the same as an absent one.
// RWKV-5/6/7's matrix-state attention is LinearAttention (ir/ops/attention.cpp) with its RWKV inputs.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

bool static_ne(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}

Status require_float_input(const InferContext& ctx, int i, const char* what) {
  if (!ctx.has_input(i)) return Status::ok();
  const DType dt = ctx.input_dtype(i);
  if (dt != DType::undefined && !is_float(dt)) {
    return make_error("{} must be a float tensor, is {}", what, dtype_name(dt));
  }
  return Status::ok();
}

// `t` must be rank `expected.size()` with dims matching `expected` where both are static.
Status check_dims(const InferContext& ctx, int i, const char* what, const std::vector<Dim>& expected) {
  if (!ctx.has_input(i)) return Status::ok();
  const TensorType& t = ctx.input_type(i);
  if (!t.has_rank()) return Status::ok();
  bool ok = t.rank() == static_cast<int>(expected.size());
  for (int d = 0; ok && d < t.rank(); ++d) ok = !static_ne(t.dim(d), expected[d]);
  if (!ok) {
    std::string want = "[";
    for (size_t d = 0; d < expected.size(); ++d) want += (d ? ", " : "") + expected[d].to_string();
    return make_error("{} must be {}, is {}", what, want + "]", t.to_string());
  }
  return Status::ok();
}

// TokenShift(x [B, T, C], state? [B, C]) -> shifted [B, T, C], new_state [B, C].
Status infer_token_shift(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "x"));
  SEQRUN_TRY(require_float_input(ctx, 1, "state"));
  const TensorType& x = ctx.input_type(0);
  infer::unknown_outputs(ctx, x.dtype());
  if (!x.has_rank()) return Status::ok();
  if (x.rank() != 3) return make_error("x must be 3-D [B, T, C], is {}", x.to_string());
  SEQRUN_TRY(check_dims(ctx, 1, "state", {x.dim(0), x.dim(2)}));
  if (ctx.has_input(1) && ctx.input_dtype(1) != x.dtype()) {
    return make_error("state dtype {} differs from x dtype {}", dtype_name(ctx.input_dtype(1)),
                      dtype_name(x.dtype()));
  }
  ctx.outputs[0] = x;
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType(x.dtype(), {x.dim(0), x.dim(2)});
  return Status::ok();
}

// RWKV4WKV(k [B, T, C], v [B, T, C], time_decay [C], time_first [C], state? [B, 3, C])
//   -> wkv [B, T, C], new_state [B, 3, C].
Status infer_rwkv4_wkv(InferContext& ctx) {
  const char* names[5] = {"k", "v", "time_decay", "time_first", "state"};
  for (int i = 0; i < 5; ++i) SEQRUN_TRY(require_float_input(ctx, i, names[i]));
  const TensorType& k = ctx.input_type(0);
  infer::unknown_outputs(ctx, k.dtype());
  if (!k.has_rank()) return Status::ok();
  if (k.rank() != 3) return make_error("k must be 3-D [B, T, C], is {}", k.to_string());
  SEQRUN_TRY(check_dims(ctx, 1, "v", {k.dim(0), k.dim(1), k.dim(2)}));
  SEQRUN_TRY(check_dims(ctx, 2, "time_decay", {k.dim(2)}));
  SEQRUN_TRY(check_dims(ctx, 3, "time_first", {k.dim(2)}));
  SEQRUN_TRY(check_dims(ctx, 4, "state", {k.dim(0), Dim(3), k.dim(2)}));
  ctx.outputs[0] = k;
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType(k.dtype(), {k.dim(0), Dim(3), k.dim(2)});
  return Status::ok();
}

}  // namespace

void register_recurrence_ops(OpRegistry& r) {
  r.add(OpDef("TokenShift")
            .doc("RWKV token shift: y_t = x_{t-1} (state, or zeros, before the first token); "
                 "second output the last token as the new state")
            .inputs(1, 2)
            .outputs(1, 2)
            .infer(infer_token_shift)
            .build());
  r.add(OpDef("RWKV4WKV")
            .doc("RWKV-4 WKV: per-channel decayed weighted average of v by e^k with bonus e^u on the current "
                 "token, max-trick stabilized; state [B, 3, C] = numerator, denominator, exponent offset")
            .inputs(4, 5)
            .outputs(1, 2)
            .infer(infer_rwkv4_wkv)
            .build());
}

}  // namespace seqrun::ops
