// fold-batchnorm: Conv with constant weights followed by an inference BatchNormalization with
// constant parameters becomes one Conv whose weights and bias absorb the normalization:
//   s[m] = scale[m] / sqrt(var[m] + epsilon)
//   W'[m, ...] = W[m, ...] * s[m],   B'[m] = (B[m] - mean[m]) * s[m] + bias[m]   (B = 0 when absent)
// computed in double and stored as f32. Only when the Conv's output feeds nothing but the
// BatchNormalization (and is not a graph output), the BatchNormalization has one output and
// training_mode = 0, and all the tensors involved are f32 constants of the right shapes. The new
// Conv takes the BatchNormalization's output name. Exact up to float rounding.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class FoldBatchNormPass : public Pass {
 public:
  std::string name() const override { return "fold-batchnorm"; }
  std::string description() const override {
    return "fold an inference BatchNormalization into the constant weights and bias of the Conv before it";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
