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
// Two kernels, one semantics (they share kv_row, batch_limits and score_bias):
// - attention_simple_kernel: any float type, head sizes up to 256, f32 math on CUDA cores. A block is
//   4 warps on 16 query rows of one (b, h); K/V tiles of 32 keys are staged in shared memory as f32;
//   each lane scores one key of the tile for the warp's 4 rows, then owns Dv/32 output channels.
// - attention_mma_kernel: f16/bf16 with D == Dv in {64, 128}, tensor cores (mma.sync m16n8k16, f32
//   accumulation). A block is 4 warps on 64 query rows; each warp owns 16 rows, keeps its Q fragments in
//   registers, and runs S = Q·Kᵀ and O += P·V on 64-key tiles staged in shared memory; the softmax
//   probabilities go from the S accumulators straight into the A fragments of P·V (FlashAttention-2).
// Both skip key tiles past the block's causal frontier / valid length. Compute-bound for long
// sequences; the per-(b, h) split keeps decode (Sq = 1) latency-bound.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

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

// ---- tensor-core kernel ------------------------------------------------------------------------------

constexpr int kMmaRows = 64;  // query rows per block (16 per warp)
constexpr int kMmaKeys = 64;  // keys per tile

template <typename T>
__device__ __forceinline__ uint16_t bits_of(T x);
template <>
__device__ __forceinline__ uint16_t bits_of<__half>(__half x) {
  return __half_as_ushort(x);
}
template <>
__device__ __forceinline__ uint16_t bits_of<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat16_as_ushort(x);
}

// Two elements in one 32-bit register, the first in the low half (the mma fragment convention).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(T lo, T hi) {
  return static_cast<uint32_t>(bits_of<T>(lo)) | (static_cast<uint32_t>(bits_of<T>(hi)) << 16);
}
template <typename T>
__device__ __forceinline__ uint32_t pack_floats(float lo, float hi) {
  return pack_pair<T>(from_float<T>(lo), from_float<T>(hi));
}

// d += a · b for one m16n8k16 tile: a = 4 registers (16x16, row-major fragment), b = 2 registers
// (16x8, column-major fragment), d = 4 f32 accumulators.
__device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1, __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1,
                                          __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Fragment coordinates (PTX ISA, mma.m16n8k16): lane = 4 * g + t.
//   A (16x16): reg0 = (row g, cols 2t, 2t+1), reg1 = (row g+8, same cols), reg2 = (row g, cols 2t+8, 2t+9),
//              reg3 = (row g+8, cols 2t+8, 2t+9)
//   B (16x8):  reg0 = (rows k = 2t, 2t+1; col n = g), reg1 = (rows 2t+8, 2t+9; col g)
//   C (16x8):  c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g+8, cols 2t, 2t+1)
template <typename T, int D>
__global__ void __launch_bounds__(128) attention_mma_kernel(AttentionParams p) {
  constexpr int kStride = D + 8;  // shared row stride in elements: 16-byte rows, conflict-free fragments
  __shared__ __align__(16) T k_s[kMmaKeys * kStride];
  __shared__ __align__(16) T v_s[kMmaKeys * kStride];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t kvh = h / (p.q_heads / p.kv_heads);
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kMmaRows;
  const int64_t row0 = q0 + warp * 16 + g, row1 = row0 + 8;  // this thread's two query rows
  const BatchLimits lim = batch_limits(p, b);
  const int64_t key_end = block_key_end(p, lim, min(q0 + kMmaRows - 1, p.q_len - 1));

  // Q fragments for the warp's 16 rows, all D/16 k-steps (zeros past the last row).
  const T* q = static_cast<const T*>(p.q);
  const T* q_row0 = row0 < p.q_len ? q + q_offset(p, b, h, row0, D) : nullptr;
  const T* q_row1 = row1 < p.q_len ? q + q_offset(p, b, h, row1, D) : nullptr;
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    const int c0 = ks * 16 + 2 * t, c1 = c0 + 8;
    qf[ks][0] = q_row0 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row0 + c0) : 0u;
    qf[ks][1] = q_row1 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row1 + c0) : 0u;
    qf[ks][2] = q_row0 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row0 + c1) : 0u;
    qf[ks][3] = q_row1 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row1 + c1) : 0u;
  }

  float o[D / 8][4];
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // rows row0 / row1, log2 domain

  for (int64_t j0 = 0; j0 < key_end; j0 += kMmaKeys) {
    __syncthreads();                // every warp is done with the previous tile
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    for (int idx = tid; idx < kMmaKeys * kChunks; idx += blockDim.x) {
      const int jj = idx / kChunks, ch = idx % kChunks;
      const int64_t j = j0 + jj;
      uint4 kv = make_uint4(0u, 0u, 0u, 0u), vv = make_uint4(0u, 0u, 0u, 0u);
      if (j < key_end) {
        kv = *reinterpret_cast<const uint4*>(kv_row<T>(p, p.past_k, p.k, b, kvh, j, D) + ch * 8);
        vv = *reinterpret_cast<const uint4*>(kv_row<T>(p, p.past_v, p.v, b, kvh, j, D) + ch * 8);
      }
      *reinterpret_cast<uint4*>(k_s + jj * kStride + ch * 8) = kv;
      *reinterpret_cast<uint4*>(v_s + jj * kStride + ch * 8) = vv;
    }
    __syncthreads();

    // S = Q Kᵀ: 16 rows x 64 keys per warp, 8 n-tiles of 8 keys.
    float s[kMmaKeys / 8][4];
#pragma unroll
    for (int nt = 0; nt < kMmaKeys / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const T* kr = k_s + (nt * 8 + g) * kStride + ks * 16 + 2 * t;
        mma_16816(s[nt], qf[ks], *reinterpret_cast<const uint32_t*>(kr),
                  *reinterpret_cast<const uint32_t*>(kr + 8), T());
      }
    }
    // Scale, softcap, bias; then into the log2 domain.
    const bool needs_bias = p.mask != nullptr || p.nonpad != nullptr || j0 + kMmaKeys > key_end ||
                            (p.causal && j0 + kMmaKeys - 1 > q0 + lim.causal_offset);
#pragma unroll
    for (int nt = 0; nt < kMmaKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = softcap_score(s[nt][e] * p.scale, p.softcap);
        if (needs_bias) {
          const int64_t i = e < 2 ? row0 : row1;
          const int64_t j = j0 + nt * 8 + 2 * t + (e & 1);
          // Rows past the last query (padding of the last block) read no mask: they are never stored.
          x = j < key_end && i < p.q_len ? x + score_bias(p, lim, b, h, i, j) : -INFINITY;
        }
        s[nt][e] = x * kLog2e;
      }
    }
    // Online softmax: the 4 threads of a quad (same g) hold one row's 64 scores.
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kMmaKeys / 8; ++nt) {
      mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
      mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float new0 = fmaxf(m0, mx0), new1 = fmaxf(m1, mx1);
    const float use0 = new0 == -INFINITY ? 0.0f : new0, use1 = new1 == -INFINITY ? 0.0f : new1;
    const float corr0 = exp2f(m0 - use0), corr1 = exp2f(m1 - use1);
    m0 = new0;
    m1 = new1;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < kMmaKeys / 8; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - use0);
      s[nt][1] = exp2f(s[nt][1] - use0);
      s[nt][2] = exp2f(s[nt][2] - use1);
      s[nt][3] = exp2f(s[nt][3] - use1);
      sum0 += s[nt][0] + s[nt][1];
      sum1 += s[nt][2] + s[nt][3];
    }
    sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
    sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
    sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
    sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
    l0 = l0 * corr0 + sum0;
    l1 = l1 * corr1 + sum1;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= corr0;
      o[dt][1] *= corr0;
      o[dt][2] *= corr1;
      o[dt][3] *= corr1;
    }
    // O += P V: the S accumulators of n-tiles 2kk and 2kk+1 are the A fragment of key step kk.
#pragma unroll
    for (int kk = 0; kk < kMmaKeys / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack_floats<T>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack_floats<T>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack_floats<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack_floats<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        // B[k][n] = V[key kk*16 + k][channel dt*8 + n]
        const T* vc = v_s + (kk * 16 + 2 * t) * kStride + dt * 8 + g;
        const uint32_t b0 = pack_pair<T>(vc[0], vc[kStride]);
        const uint32_t b1 = pack_pair<T>(vc[8 * kStride], vc[9 * kStride]);
        mma_16816(o[dt], a, b0, b1, T());
      }
    }
  }

  T* y = static_cast<T*>(p.y);
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  T* y_row0 = row0 < p.q_len ? y + q_offset(p, b, h, row0, D) : nullptr;
  T* y_row1 = row1 < p.q_len ? y + q_offset(p, b, h, row1, D) : nullptr;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    const int c = dt * 8 + 2 * t;
    if (y_row0 != nullptr)
      *reinterpret_cast<uint32_t*>(y_row0 + c) = pack_floats<T>(o[dt][0] * inv0, o[dt][1] * inv0);
    if (y_row1 != nullptr)
      *reinterpret_cast<uint32_t*>(y_row1 + c) = pack_floats<T>(o[dt][2] * inv1, o[dt][3] * inv1);
  }
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

bool mma_pointers_aligned(const AttentionParams& p) {
  return aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.y) &&
         (p.past_k == nullptr || aligned16(p.past_k)) && (p.past_v == nullptr || aligned16(p.past_v));
}

template <typename T>
cudaError_t launch_mma_typed(const AttentionParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((p.q_len + kMmaRows - 1) / kMmaRows),
                  static_cast<unsigned>(p.q_heads), static_cast<unsigned>(p.batch));
  if (p.head_size == 64) {
    attention_mma_kernel<T, 64><<<grid, 128, 0, stream>>>(p);
  } else if (p.head_size == 128) {
    attention_mma_kernel<T, 128><<<grid, 128, 0, stream>>>(p);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
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
  // The tensor-core kernel where it applies (and the pointers allow 16-byte loads), from 16 query rows up
  // or when asked for; the CUDA-core kernel otherwise.
  const bool mma = attention_tensor_core_eligible(p) && mma_pointers_aligned(p);
  const bool use_mma = mma && (p.variant == 2 || (p.variant == 0 && p.q_len >= 16));
  if (use_mma) {
    if (p.type == ElemType::f16) return launch_mma_typed<__half>(p, stream);
    return launch_mma_typed<__nv_bfloat16>(p, stream);
  }
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, err = launch_simple_typed<T>(p, stream));
  return err;
}

}  // namespace seqrun::backends::cuda
