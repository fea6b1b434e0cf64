// CUDA LinearAttention (ONNX 27), chunkwise form, for the update rules linear and gated with one decay per
// head (RetNet-style): the same function as the recurrent kernel (linear_attention.cu), computed in chunks of
// kLinearAttentionChunk tokens. With G_t the inclusive cumulative log-decay inside the chunk (0 for linear)
// and S the state at the chunk's start:
//   o_t   = scale · ( Σ_{s ≤ t} exp(G_t − G_s) (q_t·k_s) v_s  +  exp(G_t) q_tᵀ S )     (intra + inter chunk)
//   S_end = exp(G_last) S + Σ_s exp(G_last − G_s) k_s v_sᵀ
// Exponents are differences inside one chunk, so long sequences never overflow or underflow the state.
//
// Layout: q [B, T, Hq·dk], k [B, T, Hkv·dk], v [B, T, Hkv·dv], decay [B, T, Hkv], state [B, Hkv, dk, dv].
// Parallel split: one block of 256 threads per (batch, kv head, tile of 64 value columns) walks the chunks in
// order; S [dk, 64] stays in shared memory in f32 for the whole sequence, and each chunk's K, V, Q (one query
// head of the group at a time) and the masked score matrix A [64, 64] are staged in shared memory (rows
// padded by one float: the access patterns below are conflict-free). Per chunk and query head the block
// does 64·64·dk (A) + 64·64·(64 + dk) (outputs) + dk·64·64 (state) FMAs: compute-bound on shared memory,
// against the recurrent kernel's one serial token at a time.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

constexpr int kChunk = static_cast<int>(kLinearAttentionChunk);
constexpr int kTile = 64;  // value columns per block
constexpr int kBlock = 256;

// Floats of shared memory for key size dk (see the layout in the kernel).
size_t shared_floats(int64_t dk) {
  const int64_t ks = dk + 1, vs = kTile + 1, as = kChunk + 1;
  return static_cast<size_t>(dk * vs + 2 * kChunk * ks + kChunk * vs + kChunk * as + 3 * kChunk);
}

template <typename T>
__global__ void __launch_bounds__(kBlock) linear_attention_chunked_kernel(LinearAttentionParams p) {
  extern __shared__ float smem[];
  const int dk = static_cast<int>(p.key_size);
  const int64_t dv = p.value_size, T_len = p.seq, hq = p.q_heads, hkv = p.kv_heads;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int cols = static_cast<int>(dv - c0 < kTile ? dv - c0 : kTile);
  const int64_t b = blockIdx.y / hkv, h = blockIdx.y % hkv;
  const int64_t group = hq / hkv;
  const int ks = dk + 1, vs = kTile + 1, as = kChunk + 1;
  float* S = smem;              // [dk][vs]
  float* K = S + dk * vs;       // [kChunk][ks]
  float* Q = K + kChunk * ks;   // [kChunk][ks]
  float* V = Q + kChunk * ks;   // [kChunk][vs]
  float* A = V + kChunk * vs;   // [kChunk][as]
  float* G = A + kChunk * as;   // [kChunk] inclusive cumulative log decay
  float* EG = G + kChunk;       // [kChunk] exp(G_t)
  float* TO_END = EG + kChunk;  // [kChunk] exp(G_last - G_s)
  const int tid = threadIdx.x, nt = blockDim.x;
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  const T* decay = static_cast<const T*>(p.decay);
  T* y = static_cast<T*>(p.y);
  const int64_t state_base = (b * hkv + h) * dk * dv + c0;

  for (int e = tid; e < dk * kTile; e += nt) {
    const int r = e / kTile, c = e % kTile;
    float s = 0.0f;
    if (p.past_state != nullptr && c < cols)
      s = to_float(static_cast<const T*>(p.past_state)[state_base + r * dv + c]);
    S[r * vs + c] = s;
  }
  for (int64_t t0 = 0; t0 < T_len; t0 += kChunk) {
    const int len = static_cast<int>(T_len - t0 < kChunk ? T_len - t0 : kChunk);
    __syncthreads();  // the previous chunk's readers of K, V, G and S are done
    for (int e = tid; e < len * dk; e += nt) {
      const int s = e / dk, r = e % dk;
      K[s * ks + r] = to_float(k[((b * T_len + t0 + s) * hkv + h) * dk + r]);
    }
    for (int e = tid; e < len * kTile; e += nt) {
      const int s = e / kTile, c = e % kTile;
      V[s * vs + c] = c < cols ? to_float(v[((b * T_len + t0 + s) * hkv + h) * dv + c0 + c]) : 0.0f;
    }
    if (tid < 32) {  // warp 0: inclusive prefix sum of the chunk's log decays, two tokens per lane
      const int lane = tid;
      float lo = 0.0f, hi = 0.0f;
      if (p.gated) {
        if (lane < len) lo = to_float(decay[(b * T_len + t0 + lane) * p.decay_width + h]);
        if (lane + 32 < len) hi = to_float(decay[(b * T_len + t0 + lane + 32) * p.decay_width + h]);
      }
      for (int off = 1; off < 32; off <<= 1) {
        const float a = __shfl_up_sync(0xffffffffu, lo, off);
        const float c = __shfl_up_sync(0xffffffffu, hi, off);
        if (lane >= off) {
          lo += a;
          hi += c;
        }
      }
      hi += __shfl_sync(0xffffffffu, lo, 31);
      G[lane] = lo;
      G[lane + 32] = hi;
      EG[lane] = expf(lo);
      EG[lane + 32] = expf(hi);
      __syncwarp();
      const float last = G[len - 1];
      TO_END[lane] = expf(last - lo);
      TO_END[lane + 32] = expf(last - hi);
    }
    for (int64_t g = 0; g < group; ++g) {
      const int64_t qh = h * group + g;
      __syncthreads();  // K, V, G ready; the previous head's readers of Q and A are done
      for (int e = tid; e < len * dk; e += nt) {
        const int t = e / dk, r = e % dk;
        Q[t * ks + r] = to_float(q[((b * T_len + t0 + t) * hq + qh) * dk + r]);
      }
      __syncthreads();
      for (int e = tid; e < len * len; e += nt) {
        const int t = e / len, s = e % len;
        float a = 0.0f;
        if (s <= t) {
          for (int r = 0; r < dk; ++r) a += Q[t * ks + r] * K[s * ks + r];
          a *= expf(G[t] - G[s]);
        }
        A[t * as + s] = a;
      }
      __syncthreads();
      for (int e = tid; e < len * kTile; e += nt) {
        const int t = e / kTile, c = e % kTile;
        if (c >= cols) continue;
        float intra = 0.0f, inter = 0.0f;
        for (int s = 0; s <= t; ++s) intra += A[t * as + s] * V[s * vs + c];
        for (int r = 0; r < dk; ++r) inter += Q[t * ks + r] * S[r * vs + c];
        y[((b * T_len + t0 + t) * hq + qh) * dv + c0 + c] = from_float<T>(p.scale * (intra + EG[t] * inter));
      }
    }
    __syncthreads();  // every head has read S for this chunk
    const float decay_all = EG[len - 1];
    for (int e = tid; e < dk * kTile; e += nt) {
      const int r = e / kTile, c = e % kTile;
      float add = 0.0f;
      for (int s = 0; s < len; ++s) add += K[s * ks + r] * TO_END[s] * V[s * vs + c];
      S[r * vs + c] = decay_all * S[r * vs + c] + add;
    }
  }
  __syncthreads();
  if (p.present != nullptr) {
    T* present = static_cast<T*>(p.present);
    for (int e = tid; e < dk * kTile; e += nt) {
      const int r = e / kTile, c = e % kTile;
      if (c < cols) present[state_base + r * dv + c] = from_float<T>(S[r * vs + c]);
    }
  }
}

template <typename T>
cudaError_t launch_typed(const LinearAttentionParams& p, cudaStream_t stream) {
  const size_t smem = shared_floats(p.key_size) * sizeof(float);
  if (smem > 48 * 1024) {
    const cudaError_t err =
        cudaFuncSetAttribute(linear_attention_chunked_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(static_cast<unsigned>((p.value_size + kTile - 1) / kTile),
                  static_cast<unsigned>(p.batch * p.kv_heads));
  linear_attention_chunked_kernel<T><<<grid, kBlock, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

bool linear_attention_chunked_eligible(const LinearAttentionParams& p) {
  if (p.delta || p.key_size < 1 || p.key_size > kLinearAttentionChunkedMaxKeySize || p.value_size < 1)
    return false;
  if (p.kv_heads < 1 || p.q_heads % p.kv_heads != 0) return false;
  return !p.gated || p.decay_width == p.kv_heads;
}

cudaError_t launch_linear_attention_chunked(const LinearAttentionParams& p, cudaStream_t stream) {
  if (!linear_attention_chunked_eligible(p) || (p.gated && p.decay == nullptr)) return cudaErrorInvalidValue;
  if (p.batch * p.kv_heads > 65535) return cudaErrorInvalidValue;
  if (p.batch == 0) return cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, return launch_typed<T>(p, stream));
  return cudaSuccess;
}

}  // namespace seqrun::backends::cuda
