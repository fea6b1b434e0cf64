// approximate-attention: softmax attention replaced by FAVOR+ positive random features (Choromanski et al.
// 2021, "Rethinking Attention with Performers"). APPROXIMATE: it changes what the model computes, so it is in
// no default pipeline; `seqrun run/inspect --approximate favor[:M]` requests it and reports the measured
// error.
//
// Each Attention node (ONNX 23/24, 4-D [B, H, S, d], no mask/past/softcap, as fuse-attention produces them;
// q_num_heads = kv_num_heads, static d) becomes
//   W      = √scale · Ωᵀ, a constant [d, M]: Ω are M orthogonal Gaussian random features (blocks of d rows
//            orthonormalized, each row rescaled to the norm of a Gaussian vector), from a fixed seed
//   φ(q)   = exp(q·W − max over the M features)                   (per-row factors cancel below)
//   φ(k)   = exp(k·W − scale·|k|²/2 − max over the keys and features of that (batch, head))
//   out    = φ(q)·(φ(k)ᵀ [V, 1]) split into numerator / denominator; causal: the same through LinearAttention
// so exp(scale·q·k) ≈ E[φ(q)·φ(k)] up to factors that cancel in the normalization. The stabilizing maxima
// are exact (they cancel); the approximation is the random-feature estimate, error ~ 1/√M.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/status.h"
#include "passes/pass.h"

namespace seqrun::passes {

struct FavorOptions {
  int64_t features = 256;                 // M
  uint64_t seed = 0x5eedfa7012345678ULL;  // the same seed gives the same W on every platform
};

class ApproximateAttentionPass : public Pass {
 public:
  explicit ApproximateAttentionPass(FavorOptions options = {}) : options_(options) {}
  std::string name() const override { return "approximate-attention"; }
  std::string description() const override {
    return "APPROXIMATE, opt-in: softmax Attention -> FAVOR+ random-feature linear attention";
  }
  Result<bool> run(Graph& graph) override;

 private:
  FavorOptions options_;
};

// "favor" or "favor:M" (M >= 1) -> options; the error says what is wrong with the text.
Result<FavorOptions> parse_favor_spec(const std::string& spec);
// The pass for a pipeline entry "approximate-attention=favor:M" (the text after '='); null when malformed.
std::unique_ptr<Pass> create_approximate_attention_pass(const std::string& spec);

// The M×d feature matrix Ω (row-major) for head size d: deterministic in (seed, M, d).
std::vector<float> favor_features(int64_t features, int64_t head_size, uint64_t seed);

}  // namespace seqrun::passes
