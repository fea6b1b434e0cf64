// derive-decode: turns a model's full-sequence graph (token ids [batch, seq] -> logits) into its step graph,
// which carries every sequence-mixing op's state explicitly, so a decoder runs a prompt once and then one
// token at a time without recomputing the history.
//
// The derived graph takes the token ids of the NEW tokens ([batch, T], any T >= 1), an i64 scalar
// `position` (how many tokens came before them; added only when something needs it) and one input
// `state.<key>` per carried state, and returns the logits of the last new token ([batch, 1, vocab]) plus
// one `new_state.<key>` per state input (the convention of runtime/state.h). Prefill is the same graph with
// all-zero state, position 0 and T = the prompt length; a step is T = 1.
//
// Rewrites (each op's own step form):
//   Attention / ChunkedAttention (causal, 4-D, no mask)  -> CachedAttention with state.<key>.k/.v, KV caches
//                                                           [batch, Hkv, kv_capacity, D] (grown by the
//                                                           session)
//   SelectiveScan                                        -> h0 in, h out
//   CausalConvWithState / LinearAttention                -> past_state in, present_state out
//   TokenShift / RWKV4WKV / LinearRecurrence / LTIScan   -> state in, new state out
//   MixedChunkAttention                                  -> its chunk and linear state, and the position
//   Range(0, seq, 1)  (positions: learned or RoPE)       -> Range(position, position + seq, 1)
// Any other op that may mix positions along the sequence (Softmax or a reduction over the sequence axis, a
// MatMul of two sequence-long operands, Scan, Loop, convolutions over the sequence, a non-causal or masked
// Attention, ...) makes the pass fail with an error naming the node: a step graph must be exact.
// A graph that already carries state (an input named state.*) is left alone.
#pragma once

#include <string>

#include "passes/pass.h"

namespace seqrun::passes {

class DeriveDecodePass : public Pass {
 public:
  std::string name() const override { return "derive-decode"; }
  std::string description() const override {
    return "derive the one-token step graph (explicit KV cache / recurrent state, position input) from a "
           "full-sequence graph";
  }
  Result<bool> run(Graph& graph) override;
};

// The name of the position input a derived graph takes (i64 scalar).
inline constexpr const char* kPositionInputName = "position";
// The symbolic dim of every KV-cache state input's capacity axis (axis 2).
inline constexpr const char* kKvCapacityDim = "kv_capacity";

}  // namespace seqrun::passes
