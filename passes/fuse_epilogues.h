// fuse-epilogues: a matrix product followed by a bias add and/or an activation becomes one
// FusedLinear node, so the CPU backend runs it as one oneDNN matmul with bias and eltwise post-op.
//
// Base:       MatMul(x, W) with a 2-D W; Linear(x, W, b?); Gemm(A, B, C?) with transA = 0, alpha = 1
//             and C absent, or a [N] / [1, N] constant with beta = 1.
// Bias:       Add(base, c) or Add(c, base), c a constant [N] or [1, ..., 1, N] of the same dtype
//             (broadcast along the last axis only), when the base has no bias of its own.
// Activation: Relu, Sigmoid, Tanh, Silu, Swish (alpha = 1), Gelu (none | tanh), and the patterns
//             torch.onnx exports: y * Sigmoid(y); the erf GELU y * 0.5 * (1 + Erf(y / sqrt 2)) (or
//             y * (1/sqrt 2)); the tanh GELU 0.5 * y * (1 + Tanh(sqrt(2/pi) * (y + 0.044715 * y^3)))
//             with y^3 as Pow(y, 3) or a product of three y; the products in any order.
// A rewrite needs at least one epilogue (bias or activation), and happens only when every value
// inside the pattern (the base's output, the bias sum, the activation's intermediates) has no user
// outside it and is not a graph output; otherwise the graph is left alone from that point on.
// The fused node takes the name of the pattern's last output. Exact up to float rounding.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class FuseEpiloguesPass : public Pass {
 public:
  std::string name() const override { return "fuse-epilogues"; }
  std::string description() const override {
    return "MatMul/Gemm/Linear + bias Add + activation (incl. exported GELU/SiLU patterns) -> FusedLinear";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
