// CUDA CachedAttention (ir/ops/cached_attention.cpp): append T new key/value rows to a KV cache at position
// P and attend causally over the cache — the decode step of softmax attention.
//
// Three launches on one stream:
// 1. cache update: one thread per element of the rows it writes — only rows P .. P+T-1 when a new cache is
//    the old one's memory (in place), every row otherwise (new rows from K/V, the others from the old cache).
//    It also checks 0 <= P and P + T <= C (reported to the node's error sink; the other kernels then exit).
// 2. partial attention (flash-decoding): block (query row, key split) of 4 warps; each warp takes every
//    fourth key of the split, the lanes hold Dk/32 query and Dv/32 accumulator values, one warp reduction per
//    score and an online softmax (running max m, sum l) in f32; the warps merge in shared memory and the
//    block writes (m, l, acc[Dv]) to the workspace. Splitting the keys keeps every SM busy at T = 1, where
//    there are only B·Hq query rows. Memory-bound: the cache rows are read once per query head (GQA heads of
//    one kv head re-read the same rows, mostly from L2).
// 3. combine: one block per query row merges its splits (rescaled by exp(m_s - m)) and writes Y = acc / l.
// Layout [B, H, rows, D] everywhere; P is read from device memory (the position tensor), so the plan never
// waits for the host, and the split ranges cover the whole capacity C (splits past P + i exit at once).
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kSlices = static_cast<int>(kCachedAttentionMaxHeadSize / 32);

__device__ __forceinline__ bool position_ok(const CachedAttentionParams& p, int64_t pos) {
  return pos >= 0 && pos + p.new_tokens <= p.capacity;
}

template <typename T>
__global__ void cache_update_kernel(CachedAttentionParams p) {
  const int64_t pos = *p.position;
  if (!position_ok(p, pos)) {
    if (global_thread() == 0) report_error(p.sink);
    return;
  }
  const int64_t heads = p.batch * p.kv_heads, t_len = p.new_tokens, cap = p.capacity;
  const bool k_in_place = p.new_k_cache == p.k_cache, v_in_place = p.new_v_cache == p.v_cache;
  const int64_t k_rows = k_in_place ? t_len : cap, v_rows = v_in_place ? t_len : cap;
  const int64_t n_k = heads * k_rows * p.head_size, n_v = heads * v_rows * p.v_head_size;
  for (int64_t i = global_thread(); i < n_k + n_v; i += grid_stride()) {
    const bool is_k = i < n_k;
    const int64_t e = is_k ? i : i - n_k;
    const int64_t d_len = is_k ? p.head_size : p.v_head_size;
    const int64_t rows = is_k ? k_rows : v_rows;
    const int64_t d = e % d_len, r = (e / d_len) % rows, bh = e / (d_len * rows);
    const int64_t row = (is_k ? k_in_place : v_in_place) ? pos + r : r;  // the cache row written
    const T* fresh = static_cast<const T*>(is_k ? p.k : p.v);
    const T* old = static_cast<const T*>(is_k ? p.k_cache : p.v_cache);
    T* out = static_cast<T*>(is_k ? p.new_k_cache : p.new_v_cache);
    const bool is_new = row >= pos && row < pos + t_len;
    out[(bh * cap + row) * d_len + d] =
        is_new ? fresh[(bh * t_len + row - pos) * d_len + d] : old[(bh * cap + row) * d_len + d];
  }
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) cached_attention_partial_kernel(CachedAttentionParams p) {
  __shared__ float warp_m[kWarps], warp_l[kWarps];
  __shared__ float warp_acc[kWarps][kCachedAttentionMaxHeadSize];
  const int64_t pos0 = *p.position;
  if (!position_ok(p, pos0)) return;  // reported by the update kernel
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = blockIdx.x;  // ((b * Hq + hq) * T + i)
  const int64_t split = blockIdx.y;
  const int64_t i = row % p.new_tokens, bh = row / p.new_tokens;
  const int64_t hq = bh % p.q_heads, b = bh / p.q_heads;
  const int64_t hk = hq / (p.q_heads / p.kv_heads);
  const int64_t pos = pos0 + i;
  const int64_t first = p.window >= 0 && pos - p.window > 0 ? pos - p.window : 0;
  const int64_t begin = split * p.keys_per_split > first ? split * p.keys_per_split : first;
  const int64_t end = (split + 1) * p.keys_per_split < pos + 1 ? (split + 1) * p.keys_per_split : pos + 1;
  const int64_t dk = p.head_size, dv = p.v_head_size;

  float qr[kSlices], acc[kSlices];
  const T* q = static_cast<const T*>(p.q) + row * dk;
#pragma unroll
  for (int e = 0; e < kSlices; ++e) {
    const int64_t d = lane + 32 * e;
    qr[e] = d < dk ? to_float(q[d]) * p.scale : 0.0f;
    acc[e] = 0.0f;
  }
  const T* kc = static_cast<const T*>(p.new_k_cache) + (b * p.kv_heads + hk) * p.capacity * dk;
  const T* vc = static_cast<const T*>(p.new_v_cache) + (b * p.kv_heads + hk) * p.capacity * dv;
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = begin + warp; j < end; j += kWarps) {
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < kSlices; ++e) {
      const int64_t d = lane + 32 * e;
      if (d < dk) s += qr[e] * to_float(kc[j * dk + d]);
    }
    s = warp_sum(s);
    if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
    const float m_new = fmaxf(m, s);
    const float correction = m == -INFINITY ? 0.0f : expf(m - m_new);
    const float weight = expf(s - m_new);
    l = l * correction + weight;
#pragma unroll
    for (int e = 0; e < kSlices; ++e) {
      const int64_t d = lane + 32 * e;
      acc[e] = acc[e] * correction + (d < dv ? weight * to_float(vc[j * dv + d]) : 0.0f);
    }
    m = m_new;
  }
  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = l;
  }
#pragma unroll
  for (int e = 0; e < kSlices; ++e) {
    const int64_t d = lane + 32 * e;
    if (d < dv) warp_acc[warp][d] = acc[e];
  }
  __syncthreads();
  float block_m = -INFINITY;
  for (int w = 0; w < kWarps; ++w) block_m = fmaxf(block_m, warp_m[w]);
  float scale_w[kWarps];
  float block_l = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    scale_w[w] = warp_m[w] == -INFINITY ? 0.0f : expf(warp_m[w] - block_m);
    block_l += warp_l[w] * scale_w[w];
  }
  const int64_t rows = static_cast<int64_t>(gridDim.x), splits = static_cast<int64_t>(gridDim.y);
  float* ml = p.workspace + 2 * (row * splits + split);
  float* out = p.workspace + 2 * rows * splits + (row * splits + split) * dv;
  for (int64_t d = threadIdx.x; d < dv; d += blockDim.x) {
    float a = 0.0f;
    for (int w = 0; w < kWarps; ++w) a += warp_acc[w][d] * scale_w[w];
    out[d] = a;
  }
  if (threadIdx.x == 0) {
    ml[0] = block_m;
    ml[1] = block_l;
  }
}

template <typename T>
__global__ void cached_attention_combine_kernel(CachedAttentionParams p, int64_t splits) {
  if (!position_ok(p, *p.position)) return;
  const int64_t row = blockIdx.x, rows = static_cast<int64_t>(gridDim.x), dv = p.v_head_size;
  const float* ml = p.workspace + 2 * row * splits;
  const float* partial = p.workspace + 2 * rows * splits + row * splits * dv;
  float m = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) m = fmaxf(m, ml[2 * s]);
  float l = 0.0f;
  for (int64_t s = 0; s < splits; ++s)
    l += ml[2 * s] == -INFINITY ? 0.0f : ml[2 * s + 1] * expf(ml[2 * s] - m);
  T* y = static_cast<T*>(p.y) + row * dv;
  for (int64_t d = threadIdx.x; d < dv; d += blockDim.x) {
    float a = 0.0f;
    for (int64_t s = 0; s < splits; ++s) {
      if (ml[2 * s] != -INFINITY) a += partial[s * dv + d] * expf(ml[2 * s] - m);
    }
    y[d] = from_float<T>(l > 0.0f ? a / l : 0.0f);
  }
}

template <typename T>
cudaError_t launch_typed(const CachedAttentionParams& p, cudaStream_t stream) {
  const int64_t heads = p.batch * p.kv_heads;
  const bool k_in_place = p.new_k_cache == p.k_cache, v_in_place = p.new_v_cache == p.v_cache;
  const int64_t n = heads * ((k_in_place ? p.new_tokens : p.capacity) * p.head_size +
                             (v_in_place ? p.new_tokens : p.capacity) * p.v_head_size);
  // Always launched (one block at least): it also validates the position.
  cache_update_kernel<T><<<grid_for(n > 0 ? n : 1), kThreads, 0, stream>>>(p);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const int64_t rows = p.batch * p.q_heads * p.new_tokens;
  if (rows == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(p.splits));
  cached_attention_partial_kernel<T><<<grid, kWarps * 32, 0, stream>>>(p);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  cached_attention_combine_kernel<T><<<static_cast<unsigned>(rows), 128, 0, stream>>>(p, p.splits);
  return cudaGetLastError();
}

}  // namespace

size_t cached_attention_workspace_bytes(const CachedAttentionParams& p) {
  const int64_t rows = p.batch * p.q_heads * p.new_tokens;
  const int64_t floats = rows * p.splits * (2 + p.v_head_size);
  const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
  return bytes < 256 ? 256 : bytes;
}

cudaError_t launch_cached_attention(const CachedAttentionParams& p, cudaStream_t stream) {
  if (p.head_size < 1 || p.head_size > kCachedAttentionMaxHeadSize || p.v_head_size < 1 ||
      p.v_head_size > kCachedAttentionMaxHeadSize || p.kv_heads < 1 || p.q_heads % p.kv_heads != 0 ||
      p.splits < 1 || p.splits > 65535 || p.keys_per_split < 1 ||
      static_cast<int64_t>(p.splits) * p.keys_per_split < p.capacity || p.position == nullptr ||
      p.workspace == nullptr || p.window < -1) {
    return cudaErrorInvalidValue;
  }
  if (p.batch * p.q_heads * p.new_tokens > 2147483647) return cudaErrorInvalidValue;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, return launch_typed<T>(p, stream));
  return cudaSuccess;
}

}  // namespace seqrun::backends::cuda
