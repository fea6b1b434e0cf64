// CUDA tensor-core attention, the default for f16/bf16 with D == Dv in {64, 128} (semantics in
// attention.cu): FlashAttention-2 on mma.sync m16n8k16 with f32 accumulation.
//
// A block owns 128 query rows of one (batch, head): 4 warps of two 16-row m-tiles each for D = 64, 8 warps
// of one m-tile for D = 128 (two m-tiles of D = 128 would not fit in a thread's registers). Each warp keeps
// its Q fragments and its O accumulators in registers for the whole key loop. Keys and values stream
// through shared memory in 64-key tiles, double-buffered: the cp.async copies of tile i+1 are in flight
// while tile i is multiplied. K fragments come from ldmatrix, V fragments from ldmatrix.trans; shared rows
// are padded by 16 bytes, so the 8 row addresses of one ldmatrix fall in 8 different bank groups. Scores
// go to the log2 domain with one multiply (scale · log2 e) and ex2.approx gives the probabilities; the row
// sums stay per thread until the end (one quad reduction); the probabilities go from the S accumulators
// straight into the A fragments of P·V. Tiles past the block's key frontier are never loaded, and a warp
// skips the math of tiles past its own causal frontier. Compute-bound for long sequences.
#include "backends/cuda/attention_common.cuh"
#include "backends/cuda/mma_util.cuh"

namespace seqrun::backends::cuda {

namespace {

using namespace attn;

constexpr int kTileKeys = 64;  // keys per K/V tile

// Warps per block, 16-row m-tiles per warp and keys per softmax step, by head size (what fits in a thread's
// 255 registers without spilling: Q fragments, O accumulators and one step's S accumulators).
template <int D>
struct MmaShape;
template <>
struct MmaShape<64> {
  static constexpr int kWarps = 4;
  static constexpr int kMTiles = 2;
  static constexpr int kRows = 128;     // kWarps * kMTiles * 16
  static constexpr int kStepKeys = 32;  // keys per softmax step (the S accumulators of two m-tiles)
};
template <>
struct MmaShape<128> {
  static constexpr int kWarps = 8;
  static constexpr int kMTiles = 1;
  static constexpr int kRows = 128;
  static constexpr int kStepKeys = 64;
};

template <int D>
constexpr int kBlockRows = MmaShape<D>::kRows;  // query rows per block
template <int D>
constexpr int kRowStride = D + 8;  // shared-memory row stride in elements (16-byte padding)
// K and V tiles of 16-bit elements, two stages.
template <int D>
constexpr size_t kSharedBytes = 4 * static_cast<size_t>(kTileKeys) * kRowStride<D> * 2;

template <typename T, int D>
__global__ void __launch_bounds__(MmaShape<D>::kWarps * 32) attention_mma_kernel(AttentionParams p) {
  constexpr int kWarps = MmaShape<D>::kWarps, kMTiles = MmaShape<D>::kMTiles;
  constexpr int kStepKeys = MmaShape<D>::kStepKeys;
  static_assert(kTileKeys % kStepKeys == 0 && kStepKeys % 16 == 0, "key steps");
  static_assert(kBlockRows<D> == kWarps * kMTiles * 16, "rows per block");
  constexpr int kThreads = kWarps * 32;
  constexpr int kRows = kBlockRows<D>;
  constexpr int kStride = kRowStride<D>;
  constexpr int kTileElems = kTileKeys * kStride;
  constexpr int kRowChunks = D / 8;  // 16-byte chunks per K/V row
  constexpr int kCopies = kTileKeys * kRowChunks / kThreads;
  static_assert(kCopies * kThreads == kTileKeys * kRowChunks, "tile copy split");
  extern __shared__ __align__(16) unsigned char attention_smem[];
  T* const tiles = reinterpret_cast<T*>(attention_smem);  // [stage][K, V][kTileKeys][kStride]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t kvh = h / (p.q_heads / p.kv_heads);
  // The last query blocks first: under a causal mask they have the most keys, so the short blocks fill
  // the tail of the launch.
  const int64_t q0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kRows;
  const BatchLimits lim = batch_limits(p, b);
  const int64_t key_end = block_key_end(p, lim, min(q0 + kRows - 1, p.q_len - 1));
  // This warp's rows: warp_q0 + 16 * mt + {g, g + 8} for its m-tiles mt.
  const int64_t warp_q0 = q0 + static_cast<int64_t>(warp) * kMTiles * 16;
  const bool warp_active = warp_q0 < p.q_len;
  const int64_t warp_key_end =
      warp_active ? block_key_end(p, lim, min(warp_q0 + kMTiles * 16 - 1, p.q_len - 1)) : 0;
  const float scale_log2 = p.scale * kLog2e;

  // Q fragments of the warp's m-tiles, all D/16 k-steps (zeros past the last row).
  const T* q = static_cast<const T*>(p.q);
  uint32_t qf[kMTiles][D / 16][4];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
    const int64_t row0 = warp_q0 + mt * 16 + g, row1 = row0 + 8;
    const T* q_row0 = row0 < p.q_len ? q + q_offset(p, b, h, row0, D) : nullptr;
    const T* q_row1 = row1 < p.q_len ? q + q_offset(p, b, h, row1, D) : nullptr;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const int c0 = ks * 16 + 2 * t, c1 = c0 + 8;
      qf[mt][ks][0] = q_row0 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row0 + c0) : 0u;
      qf[mt][ks][1] = q_row1 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row1 + c0) : 0u;
      qf[mt][ks][2] = q_row0 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row0 + c1) : 0u;
      qf[mt][ks][3] = q_row1 != nullptr ? *reinterpret_cast<const uint32_t*>(q_row1 + c1) : 0u;
    }
  }

  float o[kMTiles][D / 8][4];
  float m[kMTiles][2], l[kMTiles][2];  // per row (g, g + 8): running max (log2 domain), this thread's sum
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) o[mt][dt][0] = o[mt][dt][1] = o[mt][dt][2] = o[mt][dt][3] = 0.0f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }

  // Issues the copies of the K/V tile starting at key j0 into `stage` (zeros for keys >= key_end).
  auto load_tile = [&](int64_t j0, int stage) {
    T* k_dst = tiles + 2 * stage * kTileElems;
    T* v_dst = k_dst + kTileElems;
#pragma unroll
    for (int c = 0; c < kCopies; ++c) {
      const int idx = tid + c * kThreads, jj = idx / kRowChunks, ch = idx % kRowChunks;
      const int64_t j = j0 + jj;
      const bool valid = j < key_end;
      const int64_t src = valid ? j : 0;  // a readable row when zero-filling (key_end > 0 here)
      cp_async_16(k_dst + jj * kStride + ch * 8, kv_row<T>(p, p.past_k, p.k, b, kvh, src, D) + ch * 8, valid);
      cp_async_16(v_dst + jj * kStride + ch * 8, kv_row<T>(p, p.past_v, p.v, b, kvh, src, D) + ch * 8, valid);
    }
    cp_async_commit();
  };

  const int64_t num_tiles = (key_end + kTileKeys - 1) / kTileKeys;
  if (num_tiles > 0) load_tile(0, 0);
  for (int64_t it = 0; it < num_tiles; ++it) {
    const int64_t j0 = it * kTileKeys;
    const int stage = static_cast<int>(it & 1);
    // The other stage was last read in iteration it - 1, which every warp finished (the barrier at its end).
    if (it + 1 < num_tiles) {
      load_tile(j0 + kTileKeys, stage ^ 1);
      cp_async_wait<1>();  // this thread's copies of tile it are done
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // ... and every thread's

    if (warp_active && j0 < warp_key_end) {
      const T* k_s = tiles + 2 * stage * kTileElems;
      const T* v_s = k_s + kTileElems;

      // The tile in steps of kStepKeys keys (j1 within the tile, js in the sequence); a step past the warp's
      // frontier adds nothing.
#pragma unroll
      for (int j1 = 0; j1 < kTileKeys; j1 += kStepKeys) {
        const int64_t js = j0 + j1;
        if (js >= warp_key_end) break;
        // S = Q Kᵀ: kStepKeys / 8 n-tiles of 8 keys per m-tile. One ldmatrix.x4 gives the B fragments of two
        // n-tiles for one k-step: matrix i = tile keys j1 + np*16 + (i / 2)*8 .. +7, channels
        // ks*16 + (i % 2)*8 .. +7.
        float s[kMTiles][kStepKeys / 8][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
          for (int nt = 0; nt < kStepKeys / 8; ++nt)
            s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
        }
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
          for (int np = 0; np < kStepKeys / 16; ++np) {
            uint32_t kb[4];
            ldmatrix_x4(kb, k_s + (j1 + np * 16 + (lane >> 4) * 8 + (lane & 7)) * kStride + ks * 16 +
                                ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < kMTiles; ++mt) {
              mma_16816(s[mt][2 * np], qf[mt][ks], kb[0], kb[1], T());
              mma_16816(s[mt][2 * np + 1], qf[mt][ks], kb[2], kb[3], T());
            }
          }
        }

        // Online softmax; the 4 threads of a quad (same g) hold one row's scores.
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          const int64_t row0 = warp_q0 + mt * 16 + g, row1 = row0 + 8;
          const bool needs_bias = p.mask != nullptr || p.nonpad != nullptr || js + kStepKeys > key_end ||
                                  (p.causal && js + kStepKeys - 1 > warp_q0 + mt * 16 + lim.causal_offset);
          if (needs_bias || p.softcap > 0.0f) {
#pragma unroll
            for (int nt = 0; nt < kStepKeys / 8; ++nt) {
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                float x = softcap_score(s[mt][nt][e] * p.scale, p.softcap);
                if (needs_bias) {
                  const int64_t i = e < 2 ? row0 : row1;
                  const int64_t j = js + nt * 8 + 2 * t + (e & 1);
                  // Rows past the last query (padding of the last block) read no mask: they are never stored.
                  x = j < key_end && i < p.q_len ? x + score_bias(p, lim, b, h, i, j) : -INFINITY;
                }
                s[mt][nt][e] = x * kLog2e;
              }
            }
          } else {
#pragma unroll
            for (int nt = 0; nt < kStepKeys / 8; ++nt) {
#pragma unroll
              for (int e = 0; e < 4; ++e) s[mt][nt][e] *= scale_log2;
            }
          }
          float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < kStepKeys / 8; ++nt) {
            mx0 = fmaxf(mx0, fmaxf(s[mt][nt][0], s[mt][nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[mt][nt][2], s[mt][nt][3]));
          }
          mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
          mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
          mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
          mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
          const float new0 = fmaxf(m[mt][0], mx0), new1 = fmaxf(m[mt][1], mx1);
          const float use0 = new0 == -INFINITY ? 0.0f : new0, use1 = new1 == -INFINITY ? 0.0f : new1;
          const float corr0 = exp2_approx(m[mt][0] - use0), corr1 = exp2_approx(m[mt][1] - use1);
          m[mt][0] = new0;
          m[mt][1] = new1;
          float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kStepKeys / 8; ++nt) {
            s[mt][nt][0] = exp2_approx(s[mt][nt][0] - use0);
            s[mt][nt][1] = exp2_approx(s[mt][nt][1] - use0);
            s[mt][nt][2] = exp2_approx(s[mt][nt][2] - use1);
            s[mt][nt][3] = exp2_approx(s[mt][nt][3] - use1);
            sum0 += s[mt][nt][0] + s[mt][nt][1];
            sum1 += s[mt][nt][2] + s[mt][nt][3];
          }
          l[mt][0] = l[mt][0] * corr0 + sum0;
          l[mt][1] = l[mt][1] * corr1 + sum1;
#pragma unroll
          for (int dt = 0; dt < D / 8; ++dt) {
            o[mt][dt][0] *= corr0;
            o[mt][dt][1] *= corr0;
            o[mt][dt][2] *= corr1;
            o[mt][dt][3] *= corr1;
          }
        }

        // O += P V: the S accumulators of n-tiles 2kk and 2kk+1 are the A fragment of key step kk. One
        // ldmatrix.x4.trans gives the B fragments of two channel tiles: matrix i = tile keys
        // j1 + kk*16 + (i % 2)*8 .. +7, channels (2dp + i / 2)*8 .. +7.
#pragma unroll
        for (int kk = 0; kk < kStepKeys / 16; ++kk) {
          uint32_t a[kMTiles][4];
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            a[mt][0] = pack_floats<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
            a[mt][1] = pack_floats<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
            a[mt][2] = pack_floats<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
            a[mt][3] = pack_floats<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
          }
#pragma unroll
          for (int dp = 0; dp < D / 16; ++dp) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, v_s + (j1 + kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kStride +
                                      (2 * dp + (lane >> 4)) * 8);
#pragma unroll
            for (int mt = 0; mt < kMTiles; ++mt) {
              mma_16816(o[mt][2 * dp], a[mt], vb[0], vb[1], T());
              mma_16816(o[mt][2 * dp + 1], a[mt], vb[2], vb[3], T());
            }
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before the next iteration refills it
  }

  // Y = O / l, with l summed over the quad.
  T* y = static_cast<T*>(p.y);
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
    float l0 = l[mt][0], l1 = l[mt][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    const int64_t row0 = warp_q0 + mt * 16 + g, row1 = row0 + 8;
    T* y_row0 = row0 < p.q_len ? y + q_offset(p, b, h, row0, D) : nullptr;
    T* y_row1 = row1 < p.q_len ? y + q_offset(p, b, h, row1, D) : nullptr;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      const int c = dt * 8 + 2 * t;
      if (y_row0 != nullptr)
        *reinterpret_cast<uint32_t*>(y_row0 + c) = pack_floats<T>(o[mt][dt][0] * inv0, o[mt][dt][1] * inv0);
      if (y_row1 != nullptr)
        *reinterpret_cast<uint32_t*>(y_row1 + c) = pack_floats<T>(o[mt][dt][2] * inv1, o[mt][dt][3] * inv1);
    }
  }
}

template <typename T, int D>
cudaError_t launch_typed(const AttentionParams& p, cudaStream_t stream) {
  constexpr size_t smem = kSharedBytes<D>;
  // Over 48 KiB of dynamic shared memory needs the kernel's limit raised (once per process).
  static const cudaError_t limit = cudaFuncSetAttribute(
      attention_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (limit != cudaSuccess) return limit;
  const dim3 grid(static_cast<unsigned>((p.q_len + kBlockRows<D> - 1) / kBlockRows<D>),
                  static_cast<unsigned>(p.q_heads), static_cast<unsigned>(p.batch));
  attention_mma_kernel<T, D><<<grid, MmaShape<D>::kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_for_head_size(const AttentionParams& p, cudaStream_t stream) {
  if (p.head_size == 64) return launch_typed<T, 64>(p, stream);
  if (p.head_size == 128) return launch_typed<T, 128>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_attention_mma(const AttentionParams& p, cudaStream_t stream) {
  if (p.head_size != p.v_head_size) return cudaErrorInvalidValue;
  if (p.type == ElemType::f16) return launch_for_head_size<__half>(p, stream);
  if (p.type == ElemType::bf16) return launch_for_head_size<__nv_bfloat16>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace seqrun::backends::cuda
