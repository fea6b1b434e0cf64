// CUDA Attention (ONNX 23/24): FlashAttention-2-style tiled kernels with an online softmax, so the
// [Sq, T] score matrix never exists in memory.
//
// Semantics (as the reference kernel): scores = (q·k)·scale, then softcap c·tanh(s/c), then the additive
// bias — the mask (bool: masked where false; float: added; keys past the mask's last dim masked), the
// causal frontier j > i + offset (offset = past length, or nonpad[b] − Sq for an external cache) and
// nonpad padding (j >= nonpad[b]); softmax over the keys; a row whose every key is masked gives zeros.
// Keys are the past cache (when given) followed by the new keys; query head h reads kv head
// h / (Hq / Hkv) (GQA). Layouts: [B, H, S, D] or packed [B, S, H*D]; past/present [B, Hkv, P|T, D].
//
// Three kernels, one semantics (they share kv_row, batch_limits and score_bias: attention_common.cuh):
// - attention_simple_kernel (here): any float type, head sizes up to 256, f32 math on CUDA cores. A block
//   is 4 warps on 16 query rows of one (b, h); K/V tiles of 32 keys are staged in shared memory as f32;
//   each lane scores one key of the tile for the warp's 4 rows, then owns Dv/32 output channels.
// - attention_mma_kernel (attention_mma.cu, the default for f16/bf16 with D == Dv in {64, 128} from 16
//   query rows up): tensor cores, 128 query rows per block, cp.async double-buffered K/V tiles, ldmatrix.
// - attention_mma_v1_kernel (attention_mma_v1.cu, SEQRUN_CUDA_ATTENTION=mma-v1): the first tensor-core
//   kernel, 64 rows per block, plain loads; kept as the known-good fallback.
// All skip key tiles past the block's causal frontier / valid length. Compute-bound for long sequences;
// the per-(b, h) split keeps decode (Sq = 1) latency-bound.
#include "backends/cuda/attention_common.cuh"

namespace seqrun::backends::cuda {

namespace {

using namespace attn;

// ---- CUDA-core kernel --------------------------------------------------------------------------------

constexpr int kSimpleRowsPerWarp = 4;
constexpr int kSimpleWarps = 4;
constexpr int kSimpleRows = kSimpleRowsPerWarp * kSimpleWarps;  // query rows per block
constexpr int kSimpleKeys = 32;                                 // keys per tile (one per lane)

size_t simple_smem_bytes(int64_t d, int64_t dv) {
  return sizeof(float) * static_cast<size_t>(kSimpleKeys * (d + 1) + kSimpleKeys * dv + kSimpleRows * d);
}

// kChannels = output channels per lane (Dv <= 32 * kChannels).
template <typename T, int kChannels>
__global__ void __launch_bounds__(kSimpleWarps * 32) attention_simple_kernel(AttentionParams p) {
  extern __shared__ float smem[];
  const int64_t D = p.head_size, Dv = p.v_head_size;
  float* k_s = smem;                         // [kSimpleKeys][D + 1] (padded: lanes read different rows)
  float* v_s = k_s + kSimpleKeys * (D + 1);  // [kSimpleKeys][Dv]
  float* q_s = v_s + kSimpleKeys * Dv;       // [kSimpleRows][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t kvh = h / (p.q_heads / p.kv_heads);
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kSimpleRows;
  const BatchLimits lim = batch_limits(p, b);
  const int64_t q_last = min(q0 + kSimpleRows - 1, p.q_len - 1);
  const int64_t key_end = block_key_end(p, lim, q_last);
  const T* q = static_cast<const T*>(p.q);

  for (int64_t idx = threadIdx.x; idx < kSimpleRows * D; idx += blockDim.x) {
    const int64_t r = idx / D, c = idx % D, i = q0 + r;
    q_s[idx] = i < p.q_len ? to_float(q[q_offset(p, b, h, i, D) + c]) : 0.0f;
  }

  float m[kSimpleRowsPerWarp], l[kSimpleRowsPerWarp], acc[kSimpleRowsPerWarp][kChannels];
#pragma unroll
  for (int r = 0; r < kSimpleRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int k = 0; k < kChannels; ++k) acc[r][k] = 0.0f;
  }

  for (int64_t j0 = 0; j0 < key_end; j0 += kSimpleKeys) {
    __syncthreads();  // the previous tile is no longer read (and q_s is written, first time)
    for (int64_t idx = threadIdx.x; idx < kSimpleKeys * D; idx += blockDim.x) {
      const int64_t jj = idx / D, c = idx % D, j = j0 + jj;
      k_s[jj * (D + 1) + c] = j < key_end ? to_float(kv_row<T>(p, p.past_k, p.k, b, kvh, j, D)[c]) : 0.0f;
    }
    for (int64_t idx = threadIdx.x; idx < kSimpleKeys * Dv; idx += blockDim.x) {
      const int64_t jj = idx / Dv, c = idx % Dv, j = j0 + jj;
      v_s[idx] = j < key_end ? to_float(kv_row<T>(p, p.past_v, p.v, b, kvh, j, Dv)[c]) : 0.0f;
    }
    __syncthreads();

    // Scores of key j = j0 + lane for the warp's rows.
    float s[kSimpleRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kSimpleRowsPerWarp; ++r) s[r] = 0.0f;
    const float* krow = k_s + lane * (D + 1);
    const float* qrows = q_s + warp * kSimpleRowsPerWarp * D;
    for (int64_t c = 0; c < D; ++c) {
      const float kc = krow[c];
#pragma unroll
      for (int r = 0; r < kSimpleRowsPerWarp; ++r) s[r] += qrows[r * D + c] * kc;
    }
    const int64_t j = j0 + lane;
    float prob[kSimpleRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kSimpleRowsPerWarp; ++r) {
      const int64_t i = q0 + warp * kSimpleRowsPerWarp + r;
      float x = -INFINITY;
      if (j < key_end && i < p.q_len)
        x = softcap_score(s[r] * p.scale, p.softcap) + score_bias(p, lim, b, h, i, j);
      const float m_new = fmaxf(m[r], warp_max(x));
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      prob[r] = expf(x - m_use);
      const float corr = expf(m[r] - m_use);
      l[r] = l[r] * corr + warp_sum(prob[r]);
      m[r] = m_new;
#pragma unroll
      for (int k = 0; k < kChannels; ++k) acc[r][k] *= corr;
    }
    const int keys = key_end - j0 < kSimpleKeys ? static_cast<int>(key_end - j0) : kSimpleKeys;
    for (int jj = 0; jj < keys; ++jj) {
      float pj[kSimpleRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kSimpleRowsPerWarp; ++r) pj[r] = __shfl_sync(0xffffffffu, prob[r], jj);
      const float* vrow = v_s + jj * Dv;
#pragma unroll
      for (int k = 0; k < kChannels; ++k) {
        const int64_t c = lane + 32 * k;
        const float vc = c < Dv ? vrow[c] : 0.0f;
#pragma unroll
        for (int r = 0; r < kSimpleRowsPerWarp; ++r) acc[r][k] += pj[r] * vc;
      }
    }
  }

  T* y = static_cast<T*>(p.y);
#pragma unroll
  for (int r = 0; r < kSimpleRowsPerWarp; ++r) {
    const int64_t i = q0 + warp * kSimpleRowsPerWarp + r;
    if (i >= p.q_len) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    T* yrow = y + q_offset(p, b, h, i, Dv);
#pragma unroll
    for (int k = 0; k < kChannels; ++k) {
      const int64_t c = lane + 32 * k;
      if (c < Dv) yrow[c] = from_float<T>(acc[r][k] * inv);
    }
  }
}

template <typename T>
cudaError_t launch_simple_typed(const AttentionParams& p, cudaStream_t stream) {
  const int64_t dv_chunks = (p.v_head_size + 31) / 32;
  const size_t smem = simple_smem_bytes(p.head_size, p.v_head_size);
  const dim3 grid(static_cast<unsigned>((p.q_len + kSimpleRows - 1) / kSimpleRows),
                  static_cast<unsigned>(p.q_heads), static_cast<unsigned>(p.batch));
  auto launch = [&](auto kernel) -> cudaError_t {
    if (smem > 48 * 1024) {
      const cudaError_t err =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
      if (err != cudaSuccess) return err;
    }
    kernel<<<grid, kSimpleWarps * 32, smem, stream>>>(p);
    return cudaGetLastError();
  };
  if (dv_chunks <= 1) return launch(attention_simple_kernel<T, 1>);
  if (dv_chunks <= 2) return launch(attention_simple_kernel<T, 2>);
  if (dv_chunks <= 4) return launch(attention_simple_kernel<T, 4>);
  if (dv_chunks <= 8) return launch(attention_simple_kernel<T, 8>);
  return cudaErrorInvalidValue;
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

bool mma_pointers_aligned(const AttentionParams& p) {
  return aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.y) &&
         (p.past_k == nullptr || aligned16(p.past_k)) && (p.past_v == nullptr || aligned16(p.past_v));
}

// present[b, kvh, j, c] = row j of (past, new), for keys or values.
template <typename T>
__global__ void present_kernel(AttentionParams p, const void* past, const void* fresh, void* present,
                               int64_t size) {
  const int64_t total = p.past_len + p.kv_len;
  const int64_t n = p.batch * p.kv_heads * total * size;
  T* out = static_cast<T*>(present);
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t c = i % size;
    const int64_t j = (i / size) % total;
    const int64_t kvh = (i / (size * total)) % p.kv_heads;
    const int64_t b = i / (size * total * p.kv_heads);
    out[i] = kv_row<T>(p, past, fresh, b, kvh, j, size)[c];
  }
}

template <typename T>
cudaError_t launch_present(const AttentionParams& p, cudaStream_t stream) {
  const int64_t total = p.past_len + p.kv_len;
  if (p.present_k != nullptr) {
    const int64_t n = p.batch * p.kv_heads * total * p.head_size;
    if (n > 0)
      present_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(p, p.past_k, p.k, p.present_k, p.head_size);
  }
  if (p.present_v != nullptr) {
    const int64_t n = p.batch * p.kv_heads * total * p.v_head_size;
    if (n > 0) {
      present_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(p, p.past_v, p.v, p.present_v, p.v_head_size);
    }
  }
  return cudaGetLastError();
}

}  // namespace

bool attention_tensor_core_eligible(const AttentionParams& p) {
  return (p.type == ElemType::f16 || p.type == ElemType::bf16) && p.head_size == p.v_head_size &&
         (p.head_size == 64 || p.head_size == 128);
}

cudaError_t launch_attention(const AttentionParams& p, cudaStream_t stream) {
  if (p.batch < 0 || p.q_heads < 1 || p.kv_heads < 1 || p.q_heads % p.kv_heads != 0 || p.head_size < 1 ||
      p.v_head_size < 1 || p.head_size > 256 || p.v_head_size > 256 || p.batch > 65535 || p.q_heads > 65535) {
    return cudaErrorInvalidValue;
  }
  if (p.past_len > 0 && (p.past_k == nullptr || p.past_v == nullptr)) return cudaErrorInvalidValue;
  cudaError_t err = cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, err = launch_present<T>(p, stream));
  if (err != cudaSuccess) return err;
  if (p.batch == 0 || p.q_len == 0) return cudaSuccess;
  // A tensor-core kernel where it applies (and the pointers allow 16-byte loads), from 16 query rows up
  // or when asked for; the CUDA-core kernel otherwise.
  const bool mma = attention_tensor_core_eligible(p) && mma_pointers_aligned(p);
  if (mma && p.variant == 3) return launch_attention_mma_v1(p, stream);
  if (mma && (p.variant == 2 || (p.variant == 0 && p.q_len >= 16))) return launch_attention_mma(p, stream);
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, err = launch_simple_typed<T>(p, stream));
  return err;
}

}  // namespace seqrun::backends::cuda
