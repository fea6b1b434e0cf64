// Op schema: SelectiveScan, Mamba's selective state-space scan as one op (what fuse-ssm-scan produces).
//
//   inputs  u [B, D, L], delta [B, D, L], A [D, N], Bmat [B, N, L] or grouped [B, G, N, L],
//           Cmat (same layout as Bmat), Dskip? [D], z? [B, D, L], delta_bias? [D], h0? [B, D, N]
//   attr    delta_softplus (default 1)
//   outputs y [B, D, L], h? [B, D, N] (the state after the last step)
//
// Per batch b, channel d, step t (channel d reads group g = d / (D / G) of a grouped Bmat/Cmat):
//   dt      = delta[b, d, t] + delta_bias[d];  dt = softplus(dt) when delta_softplus
//   h[n]    = exp(dt · A[d, n]) · h[n] + dt · Bmat[b, n, t] · u[b, d, t]      (h starts at h0 or 0)
//   y       = Σ_n Cmat[b, n, t] · h[n] + Dskip[d] · u[b, d, t];  y *= z · sigmoid(z) when z is given
// The state is [D, N] per batch; nothing of size B×L×D×N exists. The one-token step is the same op
// with L = 1, h0 in and h out.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

constexpr const char* kInputNames[9] = {"u", "delta", "A", "Bmat", "Cmat", "Dskip", "z", "delta_bias", "h0"};

// Merges `d` into `into`; a conflict between two static sizes is an error naming both tensors.
Status unify(Dim& into, const Dim& d, const char* what, const TensorType& t) {
  if (into.is_static() && d.is_static() && into.value() != d.value()) {
    return make_error("{} {} has a dimension of size {} where the other inputs have {}", what, t.to_string(),
                      d.value(), into.value());
  }
  into = infer::merge_dim(into, d);
  return Status::ok();
}

// Checks input i (when present with a known rank) has `rank` dims and unifies them with `dims`.
Status check_input(const InferContext& ctx, int i, int rank, const std::vector<Dim*>& dims) {
  if (!ctx.has_input(i)) return Status::ok();
  const TensorType& t = ctx.input_type(i);
  if (t.dtype() != DType::undefined && !is_float(t.dtype())) {
    return make_error("{} must be a float tensor, is {}", kInputNames[i], dtype_name(t.dtype()));
  }
  if (!t.has_rank()) return Status::ok();
  if (t.rank() != rank) {
    return make_error("{} must have rank {}, is {}", kInputNames[i], rank, t.to_string());
  }
  for (int k = 0; k < rank; ++k) {
    if (dims[k] != nullptr) SEQRUN_TRY(unify(*dims[k], t.dim(k), kInputNames[i], t));
  }
  return Status::ok();
}

Status infer_selective_scan(InferContext& ctx) {
  const int64_t softplus = ctx.node().get_int("delta_softplus", 1);
  if (softplus != 0 && softplus != 1) return make_error("delta_softplus must be 0 or 1, is {}", softplus);
  Dim b = Dim::unknown(), d = Dim::unknown(), l = Dim::unknown(), n = Dim::unknown(), g = Dim::unknown();
  SEQRUN_TRY(check_input(ctx, 0, 3, {&b, &d, &l}));
  SEQRUN_TRY(check_input(ctx, 1, 3, {&b, &d, &l}));
  SEQRUN_TRY(check_input(ctx, 2, 2, {&d, &n}));
  for (int i = 3; i <= 4; ++i) {
    const TensorType& t = ctx.input_type(i);
    const int rank = t.has_rank() ? t.rank() : 3;
    if (rank == 4) {
      SEQRUN_TRY(check_input(ctx, i, 4, {&b, &g, &n, &l}));
    } else {
      SEQRUN_TRY(check_input(ctx, i, 3, {&b, &n, &l}));
    }
  }
  SEQRUN_TRY(check_input(ctx, 5, 1, {&d}));
  SEQRUN_TRY(check_input(ctx, 6, 3, {&b, &d, &l}));
  SEQRUN_TRY(check_input(ctx, 7, 1, {&d}));
  SEQRUN_TRY(check_input(ctx, 8, 3, {&b, &d, &n}));
  if (g.is_static() && d.is_static() && (g.value() <= 0 || d.value() % g.value() != 0)) {
    return make_error("{} groups do not divide D = {}", g.value(), d.value());
  }
  DType dt = ctx.input_dtype(0);
  if (dt == DType::undefined) dt = ctx.input_dtype(1);
  ctx.outputs[0] = TensorType(dt, {b, d, l});
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType(dt, {b, d, n});
  return Status::ok();
}

}  // namespace

void register_ssm_ops(OpRegistry& r) {
  r.add(
      OpDef("SelectiveScan")
          .doc("Mamba selective scan: softplus(delta + bias) discretization, scan over L, C readout, D skip, "
               "SiLU(z) gate; outputs y [B, D, L] and the final state [B, D, N]")
          .inputs(5, 9)
          .outputs(1, 2)
          .attr("delta_softplus", AttrType::Int, Attribute(1))
          .infer(infer_selective_scan)
          .build());
}

}  // namespace seqrun::ops
