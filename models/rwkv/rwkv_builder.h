// Builds a seqrun graph from an rwkv.cpp model file: RWKV v4, v5.1, v5.2 and v7.
//
// The graph is the sequence form with explicit state, so one graph serves prefill and decoding:
//   inputs:  tokens i64[batch, seq], then per layer i in order
//            state.<i>.att_shift f32[batch, C]   (the previous token's normalized input to time mixing)
//            state.<i>.wkv       f32[batch, 3, C] (v4: numerator, denominator, exponent offset)
//                                f32[batch, H, N, N] (v5/v7: per-head key x value matrix state)
//            state.<i>.ffn_shift f32[batch, C]   (the previous token's normalized input to channel mixing)
//   outputs: logits f32[batch, seq, n_vocab], then the new states in the same order (new_state.<i>.*).
// All-zero states are the initial state. Running the graph on T tokens, or T times on one token while
// feeding the new states back, gives the same logits.
//
// Time mixing: v4 is RWKV4WKV; v5.x is LinearAttention (gated, constant per-head (5.1) or per-channel
// (5.2) decay, bonus u) + GroupNormalization (+ SiLU gate in 5.2); v7 is LinearAttention
// (generalized_delta: a = -κ̂, b = κ̂·a_lr) + GroupNormalization + the r·k·r_k bonus, with v7's value
// residual from layer 0. Token mixing with the previous token is TokenShift. Every tensor the file
// holds must be used and have the expected shape; errors name the file and the tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "models/rwkv/rwkv_file.h"

namespace seqrun::models::rwkv {

enum class RwkvArch { v4, v5_1, v5_2, v7 };
const char* rwkv_arch_name(RwkvArch arch);  // "4", "5.1", "5.2", "7"

struct RwkvModelInfo {
  RwkvArch arch = RwkvArch::v4;
  int64_t n_vocab = 0;
  int64_t n_embed = 0;
  int64_t n_layer = 0;
  int64_t head_count = 0;  // v5/v7; 0 for v4
  int64_t head_size = 0;   // v5/v7; 0 for v4
};

// Which architecture the file holds (from its tensor names) and its sizes; errors name the file.
Result<RwkvModelInfo> detect_rwkv_model(const RwkvFile& file);

struct RwkvGraph {
  std::unique_ptr<Graph> graph;
  RwkvModelInfo info;
};

// Builds, type-infers and verifies the graph.
Result<RwkvGraph> build_rwkv_graph(const RwkvFile& file);

// Zero (initial) states for `batch` sequences, in the graph's state input order.
std::vector<Tensor> rwkv_initial_states(const RwkvModelInfo& info, int64_t batch);

}  // namespace seqrun::models::rwkv
