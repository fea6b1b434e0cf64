// Device helpers shared by the CUDA attention kernels (attention.cu: the CUDA-core kernel and the
// launcher; attention_mma.cu and attention_mma_v1.cu: the tensor-core kernels): where a query, key or value
// row lives, the per-batch key limits, and the additive bias of one (query, key) score. The semantics they
// implement are described in attention.cu.
#pragma once

#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace attn {

constexpr float kLog2e = 1.4426950408889634f;

// Key/value row j of the concatenated (past, new) sequence for (b, kv head), `size` elements per row.
template <typename T>
__device__ __forceinline__ const T* kv_row(const AttentionParams& p, const void* past, const void* fresh,
                                           int64_t b, int64_t kvh, int64_t j, int64_t size) {
  if (j < p.past_len) return static_cast<const T*>(past) + ((b * p.kv_heads + kvh) * p.past_len + j) * size;
  const int64_t s = j - p.past_len;
  if (p.packed) return static_cast<const T*>(fresh) + (b * p.kv_len + s) * p.kv_heads * size + kvh * size;
  return static_cast<const T*>(fresh) + ((b * p.kv_heads + kvh) * p.kv_len + s) * size;
}

// Offset of query / output row i of (b, h) with `size` elements per head.
__device__ __forceinline__ int64_t q_offset(const AttentionParams& p, int64_t b, int64_t h, int64_t i,
                                            int64_t size) {
  if (p.packed) return (b * p.q_len + i) * p.q_heads * size + h * size;
  return ((b * p.q_heads + h) * p.q_len + i) * size;
}

struct BatchLimits {
  int64_t key_end;        // keys at or past this are masked for every row
  int64_t causal_offset;  // row i sees keys j <= i + causal_offset
  int64_t nonpad;         // keys at or past this are padding
};

__device__ __forceinline__ BatchLimits batch_limits(const AttentionParams& p, int64_t b) {
  const int64_t total = p.past_len + p.kv_len;
  BatchLimits lim{total, p.past_len, total};
  if (p.nonpad != nullptr) {
    int64_t n = p.nonpad_i64 ? static_cast<const int64_t*>(p.nonpad)[b]
                             : static_cast<int64_t>(static_cast<const int32_t*>(p.nonpad)[b]);
    const int64_t bound = total + p.q_len + 1;  // beyond this every comparison is the same
    n = n < -bound ? -bound : (n > bound ? bound : n);
    lim.nonpad = n;
    if (p.causal) lim.causal_offset = n - p.q_len;
    lim.key_end = n < lim.key_end ? (n > 0 ? n : 0) : lim.key_end;
  }
  if (p.mask != nullptr && p.mask_len < lim.key_end) lim.key_end = p.mask_len;
  return lim;
}

// The end of the keys a block of query rows [.., q_last] can see.
__device__ __forceinline__ int64_t block_key_end(const AttentionParams& p, const BatchLimits& lim,
                                                 int64_t q_last) {
  int64_t end = lim.key_end;
  if (p.causal) {
    const int64_t frontier = q_last + lim.causal_offset + 1;
    if (frontier < end) end = frontier > 0 ? frontier : 0;
  }
  return end;
}

// Additive bias of score (i, j): 0, a float mask value, or -inf.
__device__ __forceinline__ float score_bias(const AttentionParams& p, const BatchLimits& lim, int64_t b,
                                            int64_t h, int64_t i, int64_t j) {
  float bias = 0.0f;
  if (p.mask != nullptr) {
    if (j >= p.mask_len) return -INFINITY;
    const int64_t off = b * p.mask_stride[0] + h * p.mask_stride[1] + i * p.mask_stride[2] + j;
    if (p.mask_type == ElemType::u8) {
      if (static_cast<const uint8_t*>(p.mask)[off] == 0) return -INFINITY;
    } else {
      bias = load_as_float(p.mask, p.mask_type, off);
    }
  }
  if (p.causal && j > i + lim.causal_offset) return -INFINITY;
  if (j >= lim.nonpad) return -INFINITY;
  return bias;
}

__device__ __forceinline__ float softcap_score(float s, float softcap) {
  return softcap > 0.0f ? softcap * tanhf(s / softcap) : s;
}

}  // namespace attn

// The tensor-core kernels' launchers: f16/bf16, D == Dv in {64, 128}, 16-byte-aligned pointers (the
// caller checks attention_tensor_core_eligible and the alignment). They compute Y only (present_k/v are
// written by launch_attention).
cudaError_t launch_attention_mma(const AttentionParams& p, cudaStream_t stream);     // attention_mma.cu
cudaError_t launch_attention_mma_v1(const AttentionParams& p, cudaStream_t stream);  // attention_mma_v1.cu

}  // namespace seqrun::backends::cuda
