// Private to backends/cpu: chunked_attention.cpp's blocked online-softmax attention, offered to other
// attention kernels that run it over a KV cache (cached_attention.cpp's prefill regime).
//
// The caller owns the cache layout: K [B, Hkv, C, Dk], V [B, Hkv, C, Dv] with capacity C rows per head,
// of which the first kv_len are valid at a given run. Queries Q [B, Hq, T, Dk] sit at absolute positions
// position .. position + T - 1 and see, causally, keys 0 .. their own position (and, with a window, only
// the `window` keys before it). Only f32; compiled with -mavx2 -mfma like the rest of backends/cpu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace seqrun::backends::cpu {

struct CacheAttentionShape {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, capacity = 0, qk_size = 0, v_size = 0;
};

struct CacheAttentionOptions {
  float scale = 1.0f;
  float softcap = 0.0f;  // 0: none
  int64_t window = -1;   // -1: none
  int64_t block_q = 64, block_k = 64;
};

class BlockedCacheAttention {
 public:
  virtual ~BlockedCacheAttention() = default;
  // Scratch run() needs (all threads), 64-byte aligned by the caller.
  virtual size_t workspace_bytes() const = 0;
  // Y [B, Hq, T, Dv] for queries at positions position .. position + T - 1 over keys
  // 0 .. position + T - 1 of the caches; requires 0 <= position and position + T <= capacity.
  virtual void run(const float* q, const float* k_cache, const float* v_cache, float* y, int64_t position,
                   void* workspace) const = 0;
};

// The blocked kernel for that shape (every size positive, Hq a multiple of Hkv), with `threads` OpenMP
// threads at most.
std::unique_ptr<BlockedCacheAttention> make_blocked_cache_attention(const CacheAttentionShape& shape,
                                                                    const CacheAttentionOptions& options,
                                                                    int threads);

}  // namespace seqrun::backends::cpu
