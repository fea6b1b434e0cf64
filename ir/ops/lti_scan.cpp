// Op schema: LTIScan, a linear time-invariant diagonal state-space scan with a complex state (S4D, S4D-Lin,
// DSS; what fuse-lti-scan produces).
//
//   inputs  u [B, H, L], dA_re [H, N], dA_im? [H, N], dB_re [H, N], dB_im? [H, N], C_re [H, N], C_im? [H, N],
//           Dskip? [H], h0_re? [B, H, N], h0_im? [B, H, N]
//   attr    algorithm: "auto" (default: the backend picks), "recurrent" or "fft" (a hint for tests and
//           benchmarks; every algorithm computes the same function)
//   outputs y [B, H, L], h_re? [B, H, N], h_im? [B, H, N] (the state after the last step)
//
// With complex numbers dA = dA_re + i·dA_im, dB = dB_re + i·dB_im, C = C_re + i·C_im, state s (absent
// imaginary parts are zero; s starts at h0_re + i·h0_im, or 0), per batch b, channel h, step t:
//   s[n] = dA[h, n] · s[n] + dB[h, n] · u[b, h, t]                (n < N, complex products)
//   y[b, h, t] = Re(Σ_n C[h, n] · s[n]) + Dskip[h] · u[b, h, t]
//             = Σ_n (C_re·s_re - C_im·s_im) + Dskip·u
// N counts complex modes (an S4D layer of state size N' has N = N'/2 modes and writes y = 2·Re(...): the
// factor 2 belongs in C). Nothing depends on t but u: the system is time-invariant, so
// y = K ∗ u + Dskip·u + (the decaying response to h0) with the kernel K[h, l] = Re(Σ_n C dB dA^l), which is
// what lets a backend compute long sequences as an FFT convolution. The one-token step is the same op with
// L = 1, h0 in and h out.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

constexpr int kNumInputs = 10;
constexpr const char* kInputNames[kNumInputs] = {"u",    "dA_re", "dA_im", "dB_re", "dB_im",
                                                 "C_re", "C_im",  "Dskip", "h0_re", "h0_im"};

// Merges `d` into `into`; a conflict between two static sizes is an error naming the tensor.
Status unify(Dim& into, const Dim& d, int input, const TensorType& t) {
  if (into.is_static() && d.is_static() && into.value() != d.value()) {
    return make_error("{} {} has a dimension of size {} where the other inputs have {}", kInputNames[input],
                      t.to_string(), d.value(), into.value());
  }
  into = infer::merge_dim(into, d);
  return Status::ok();
}

// Input i (when present with a known rank) must be a float tensor of `dims.size()` dims, unified with dims.
Status check_input(const InferContext& ctx, int i, const std::vector<Dim*>& dims) {
  if (!ctx.has_input(i)) return Status::ok();
  const TensorType& t = ctx.input_type(i);
  if (t.dtype() != DType::undefined && !is_float(t.dtype())) {
    return make_error("{} must be a float tensor, is {}", kInputNames[i], dtype_name(t.dtype()));
  }
  if (!t.has_rank()) return Status::ok();
  if (t.rank() != static_cast<int>(dims.size())) {
    return make_error("{} must have rank {}, is {}", kInputNames[i], dims.size(), t.to_string());
  }
  for (size_t k = 0; k < dims.size(); ++k) SEQRUN_TRY(unify(*dims[k], t.dim(static_cast<int>(k)), i, t));
  return Status::ok();
}

Status infer_lti_scan(InferContext& ctx) {
  const std::string algorithm = ctx.node().get_string("algorithm", "auto");
  if (algorithm != "auto" && algorithm != "recurrent" && algorithm != "fft") {
    return make_error("algorithm must be auto, recurrent or fft, is '{}'", algorithm);
  }
  for (int i : {0, 1, 3, 5}) {
    if (!ctx.has_input(i)) return make_error("input {} ({}) is required", i, kInputNames[i]);
  }
  Dim b = Dim::unknown(), h = Dim::unknown(), l = Dim::unknown(), n = Dim::unknown();
  SEQRUN_TRY(check_input(ctx, 0, {&b, &h, &l}));
  for (int i = 1; i <= 6; ++i) SEQRUN_TRY(check_input(ctx, i, {&h, &n}));
  SEQRUN_TRY(check_input(ctx, 7, {&h}));
  SEQRUN_TRY(check_input(ctx, 8, {&b, &h, &n}));
  SEQRUN_TRY(check_input(ctx, 9, {&b, &h, &n}));
  const DType dt = ctx.input_dtype(0);
  ctx.outputs[0] = TensorType(dt, {b, h, l});
  for (int o = 1; o < ctx.num_outputs(); ++o) ctx.outputs[o] = TensorType(dt, {b, h, n});
  return Status::ok();
}

}  // namespace

void register_lti_ops(OpRegistry& r) {
  r.add(OpDef("LTIScan")
            .doc("linear time-invariant diagonal SSM scan with a complex state (S4D): s = dA·s + dB·u, "
                 "y = Re(Σ C·s) + D·u; outputs y [B, H, L] and the final state (real, imaginary) [B, H, N]")
            .inputs(6, kNumInputs)
            .outputs(1, 3)
            .attr("algorithm", AttrType::String, Attribute("auto"))
            .infer(infer_lti_scan)
            .build());
}

}  // namespace seqrun::ops
