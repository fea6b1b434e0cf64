// fuse-scan-body: recurrences and causal convolutions spelled out in primitive ops become seqrun's fused
// ops. A Scan whose body is the `linear` or `gated` linear-attention recurrence becomes LinearAttention
// (scan_body_linear_attention.cpp). The causal depthwise convolution:
//
//   Conv{group = C}(Concat{axis = 2}(pad, x), w[C, 1, K], bias?)   pad: zeros or past_state [B, C, K-1]
//   Conv{group = C, pads = [K-1, 0]}(x, w, bias?)                  (left padding on the Conv itself)
//   Slice[0, L) on axis 2 of Conv{group = C, pads = [K-1, r]}(x, w, bias?)   (Mamba's conv1d(x)[..., :L])
//   optionally followed by SiLU: Mul(y, Sigmoid(y)) (through float Casts / CastLike back to x's dtype)
//   and a Slice of the last K-1 columns of the padded sequence (the carried state)
//
// becomes CausalConvWithState(x, w, bias?, past_state?) {activation = "none" | "silu"} (seqrun's causal
// conv1d IS the ONNX op), with the state as its second output when the graph computes it. Only when
// x is 3-D with a static channel count C, the weight is [C, 1, K] with K static, strides and dilations
// are 1, and no right padding reaches the kept outputs: anything else changes the meaning and is left alone.
// Exact up to float rounding (the fused op accumulates in double and applies SiLU before rounding to x's
// dtype). Scan/Loop nodes the pass does not recognise are left untouched and run generically.
#pragma once

#include "passes/pass.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

class FuseScanBodyPass : public Pass {
 public:
  std::string name() const override { return "fuse-scan-body"; }
  std::string description() const override {
    return "fuse a linear-attention Scan into LinearAttention and a padded depthwise causal Conv (+SiLU, "
           "+state slice) into CausalConvWithState";
  }
  Result<bool> run(Graph& graph) override;
};

// Rewrites one Scan whose body is a linear-attention recurrence; false leaves the graph alone.
Result<bool> fuse_linear_attention_scan(Graph& graph, Node* scan, ShapeReasoner& shapes);

}  // namespace seqrun::passes
