// chunk-attention: Attention becomes ChunkedAttention (query/key blocks, online softmax) where the n x n
// scores would be large. Exact: ChunkedAttention computes Attention's function
// (ir/ops/chunked_attention.cpp).
//
// An Attention node is rewritten when it has 4-D Q/K/V, no KV cache (past_key/past_value), no
// nonpad_kv_seqlen, no used present/qk outputs, static sizes, and either
//   - at least `min_keys` keys (default 1024: where blocking starts to pay off on CPU: the scores row
//     stops fitting the L2 cache and causal block skipping halves the work), or
//   - a score tensor B·Hq·Sq·T·4 bytes over `max_score_bytes` (default 64 MiB), whatever the length.
// Symbolic sizes (seq) stay Attention for now: the decision needs the bound shape (a specialization-time
// rerun of this pass can make it). The attn_mask is re-analyzed (attention_mask.h): a causal or sliding
// window mask becomes the is_causal / window attributes, so the kernel skips the masked blocks.
// A constant [S, S] (or [1, S, S], [1, 1, S, S]) bool or 0/-inf float mask on self-attention (Sq = T = S),
// or Not of a constant bool one, that — with is_causal folded in — equals EXACTLY a block-sparse "fixed"
// layout (ir/ops/chunked_attention.cpp: local blocks plus one summary block per stride, blocks of
// b = 16, 32, 64, 128 or 256 dividing S, at least one empty block) becomes ChunkedAttention with
// sparse_block / sparse_local / sparse_stride and no mask, whatever the size: its kernel touches only the
// non-empty blocks. Any other mask goes the usual way.
#pragma once

#include <cstdint>

#include "passes/pass.h"

namespace seqrun::passes {

struct ChunkAttentionOptions {
  int64_t min_keys = 1024;
  int64_t max_score_bytes = int64_t{64} << 20;
  int64_t block_q = 64;
  int64_t block_k = 64;
};

class ChunkAttentionPass : public Pass {
 public:
  explicit ChunkAttentionPass(ChunkAttentionOptions options = {}) : options_(options) {}
  std::string name() const override { return "chunk-attention"; }
  std::string description() const override {
    return "compute long or memory-heavy Attention in blocks with an online softmax (ChunkedAttention)";
  }
  Result<bool> run(Graph& graph) override;

 private:
  ChunkAttentionOptions options_;
};

}  // namespace seqrun::passes
