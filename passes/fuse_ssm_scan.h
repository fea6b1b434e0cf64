// fuse-ssm-scan: a selective scan (Mamba) written in primitive ops becomes one SelectiveScan node, which
// never materializes the B×L×D×N tensors (ir/ops/ssm.cpp).
//
// Recognized, in any layout of the batch/channel/state/sequence axes (ssm_match.h explains how):
//   decay   exp(Δ ⊗ A)                        Δ [B, D, L]-like, A [D, N]-like (or exp(-Δ ⊗ A'), A = -A')
//   input   Δ · u · B                          u like Δ, B [B, N, L]-like; the same Δ as the decay
//   scan    LinearRecurrence(decay, input, h0?) along L, or the body of an ONNX Loop/Scan computing
//           h_t = decay_t ⊙ h_{t-1} + input_t from step slices of loop-invariant tensors
//           (Gather at the iteration number, or Scan's scan inputs)
//   readout Σ_N h_t · C_t (Mul + ReduceSum) or h_t @ C_t[..., N, 1] (MatMul)
//   output  LinearRecurrence: the readout itself. Loop: a scan output, or the torch.jit.script idiom
//           `y[:, :, t] = ...` — ScatterND into a loop-carried buffer whose indices (evaluated as affine
//           functions of t, ssm_index_eval.h) write exactly slice t of the buffer. Scan: a scan output.
//   then    + D·u (the D skip), · SiLU(z) (Silu, Swish or z·Sigmoid(z)), inside the loop body or after it
//   and     Δ = softplus(Δ' + bias) folds into delta_softplus / delta_bias.
// A Loop must run exactly L steps (a constant or Shape-derived trip count equal to the sequence length,
// an always-true condition); every other output of the Loop/Scan must be unused.
//
// The rewrite happens only when every intermediate of the scan (the decay, the input, the states, the
// readout product) dies with it; D skip, gate and softplus are included only when they too are
// single-use, otherwise the fused node stops before them and they stay as they were. Inputs are
// transposed into SelectiveScan's layout, outputs back into the graph's. What matches nothing is left
// alone (and a Loop/Scan keeps running generically). Exact up to float rounding.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class FuseSsmScanPass : public Pass {
 public:
  std::string name() const override { return "fuse-ssm-scan"; }
  std::string description() const override {
    return "selective scan (exp(Δ⊗A) decay, Δ·u·B input, C readout, D skip, SiLU gate) around a "
           "LinearRecurrence or in a Loop/Scan body -> SelectiveScan";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
