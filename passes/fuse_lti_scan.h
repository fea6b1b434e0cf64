// fuse-lti-scan: a linear time-invariant diagonal state-space scan (S4D) written as an ONNX Loop becomes one
// LTIScan node (ir/ops/lti_scan.cpp), which runs as a recurrence or as an FFT convolution.
//
// Recognized (lti_match.h explains the proof), for a Loop that runs exactly L steps (a constant trip count,
// an always-true condition) over u [B, H, L] (the step axis anywhere):
// - state: two carried [B, H, N] slots updated as a complex product, re' = a·re - b·im + c·u_t and
//   im' = b·re + a·im + d·u_t (dA = a + ib, dB = c + id), or one slot, h' = a·h + c·u_t; every coefficient
//   a product of loop-invariant values (captures, constants, or computed from them), u_t the step slice
//   u[.., t, ..] unsqueezed to [B, H, 1];
// - readout: s·Σ_N (C_re·re' - C_im·im') (Mul + ReduceSum over the state axis; s a scalar, S4D's 2·Re);
// - output: a scan output, or the torch.jit.script idiom `y[:, :, t] = ...` (ScatterND into a loop-carried
//   buffer whose indices provably write exactly slice t);
// - then: + u·D (per channel) after the Loop, taken in as LTIScan's Dskip when nothing else uses it.
// Initial states may be zero or any [B, H, N] value; final states that are used become LTIScan's h outputs;
// every other Loop output must be unused. Coefficients computed inside the body are hoisted before the Loop.
// Every coefficient needs a loop-invariant factor (a bare h' = h + u is not taken). Shapes must be static,
// as in a model exported without dynamic axes: a constant trip count, ScatterND indices that evaluate to
// numbers (with a symbolic sequence axis the Loop runs generically). Anything else — a decay that depends on
// t, u_t or the state, a second input sequence, a readout of the old state, a random op in a coefficient —
// is left alone. Exact up to float rounding.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class FuseLtiScanPass : public Pass {
 public:
  std::string name() const override { return "fuse-lti-scan"; }
  std::string description() const override {
    return "linear time-invariant diagonal SSM (S4D: complex dA, dB, C readout, D skip) in a Loop -> LTIScan";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
