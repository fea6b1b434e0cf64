// The first CUDA tensor-core attention kernel (kept selectable with SEQRUN_CUDA_ATTENTION=mma-v1, as the
// known-good fallback of attention_mma.cu): f16/bf16 with D == Dv in {64, 128}, mma.sync m16n8k16 with f32
// accumulation. A block is 4 warps on 64 query rows; each warp owns 16 rows, keeps its Q fragments in
// registers, and runs S = Q·Kᵀ and O += P·V on 64-key tiles staged in shared memory by plain loads (no
// overlap with the math); the softmax probabilities go from the S accumulators straight into the A
// fragments of P·V. Semantics as attention.cu.
#include "backends/cuda/attention_common.cuh"
#include "backends/cuda/mma_util.cuh"

namespace seqrun::backends::cuda {

namespace {

using namespace attn;

constexpr int kMmaRows = 64;  // query rows per block (16 per warp)
constexpr int kMmaKeys = 64;  // keys per tile

template <typename T, int D>
__global__ void __launch_bounds__(128) attention_mma_v1_kernel(AttentionParams p) {
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

template <typename T>
cudaError_t launch_mma_typed(const AttentionParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((p.q_len + kMmaRows - 1) / kMmaRows),
                  static_cast<unsigned>(p.q_heads), static_cast<unsigned>(p.batch));
  if (p.head_size == 64) {
    attention_mma_v1_kernel<T, 64><<<grid, 128, 0, stream>>>(p);
  } else if (p.head_size == 128) {
    attention_mma_v1_kernel<T, 128><<<grid, 128, 0, stream>>>(p);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_attention_mma_v1(const AttentionParams& p, cudaStream_t stream) {
  if (p.type == ElemType::f16) return launch_mma_typed<__half>(p, stream);
  if (p.type == ElemType::bf16) return launch_mma_typed<__nv_bfloat16>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace seqrun::backends::cuda
