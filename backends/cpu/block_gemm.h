// Small f32 matrix products for the blocked attention kernels: C (+)= A · B on blocks that live in L1/L2
// (ChunkedAttention's score and value products, LinearAttention's chunk products).
//
// A is read through arbitrary element strides (element (i, k) at a[i * a_row + k * a_col]), so a
// transposed operand (Kᵀ, Vᵀ, a chunk's key matrix read as kᵀ) needs no packing; B and C are row-major
// with their own row strides. Two register tiles, picked once per process by the CPU:
//   AVX-512F: 12 rows of C x 32 columns (24 zmm accumulators; 2 loads of B and 12 broadcasts of A per 24
//   FMAs) AVX2+FMA:  6 rows of C x 16 columns (12 ymm accumulators; 2 loads of B and 6 broadcasts of A per 12
//   FMAs)
// Both are FMA-bound once the operands are in cache (a 64^3 product: ~260 and ~130 GFLOP/s on one Zen 5
// core). Column tails (N not a multiple of the tile width) use masked loads and partial stores: no operand
// needs padding and nothing past a row's N columns is read or written. Summation order (and so rounding)
// differs between the two tiles only in which products share an FMA chain: both accumulate over k in order.
//
// Only for files compiled with -mavx2 -mfma (backends/cpu/*, except the registration file); the AVX-512
// functions carry their own target attribute and only run after the CPU check.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backends/cpu/avx2_math.h"

namespace seqrun::backends::cpu::block_gemm {

// A read through strides: element (i, k) is data[i * row_stride + k * col_stride].
struct StridedMatrix {
  const float* data;
  int64_t row_stride;
  int64_t col_stride;
};

// Stores the first n (0..8) lanes of v at p. Not vmaskmovps: its store form is microcoded and slow on
// AMD Zen; a full store or a spill plus scalar copy is not.
inline void store_first(float* p, __m256 v, int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  for (int64_t i = 0; i < n; ++i) p[i] = lanes[i];
}

// One register tile: R rows of C by 16 columns (or fewer, when kMasked, as `mask_lo`/`mask_hi` select).
// The unroll pragmas matter: without them GCC 12 keeps the accumulator arrays on the stack.
template <int R, bool kMasked>
inline void tile(int64_t k_len, const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb,
                 float* c, int64_t ldc, bool accumulate, __m256i mask_lo, __m256i mask_hi, int64_t width) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    lo[r] = _mm256_setzero_ps();
    hi[r] = _mm256_setzero_ps();
  }
  if (accumulate) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      lo[r] = kMasked ? _mm256_maskload_ps(c + r * ldc, mask_lo) : _mm256_loadu_ps(c + r * ldc);
      hi[r] = kMasked ? _mm256_maskload_ps(c + r * ldc + 8, mask_hi) : _mm256_loadu_ps(c + r * ldc + 8);
    }
  }
  for (int64_t k = 0; k < k_len; ++k) {
    const float* bk = b + k * ldb;
    const __m256 b_lo = kMasked ? _mm256_maskload_ps(bk, mask_lo) : _mm256_loadu_ps(bk);
    const __m256 b_hi = kMasked ? _mm256_maskload_ps(bk + 8, mask_hi) : _mm256_loadu_ps(bk + 8);
    const float* ak = a + k * a_col;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(ak + r * a_row);
      lo[r] = _mm256_fmadd_ps(av, b_lo, lo[r]);
      hi[r] = _mm256_fmadd_ps(av, b_hi, hi[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (kMasked) {
      store_first(c + r * ldc, lo[r], std::min<int64_t>(8, width));
      store_first(c + r * ldc + 8, hi[r], width - 8);
    } else {
      _mm256_storeu_ps(c + r * ldc, lo[r]);
      _mm256_storeu_ps(c + r * ldc + 8, hi[r]);
    }
  }
}

template <bool kMasked>
inline void row_tiles(int64_t m, int64_t k_len, const StridedMatrix& a, const float* b, int64_t ldb, float* c,
                      int64_t ldc, bool accumulate, __m256i mask_lo, __m256i mask_hi, int64_t width) {
  for (int64_t i = 0; i < m; i += 6) {
    const float* ai = a.data + i * a.row_stride;
    float* ci = c + i * ldc;
    const int64_t rows = std::min<int64_t>(6, m - i);
    const int64_t ar = a.row_stride, ac = a.col_stride;
    switch (rows) {
      case 6:
        tile<6, kMasked>(k_len, ai, ar, ac, b, ldb, ci, ldc, accumulate, mask_lo, mask_hi, width);
        break;
      case 5:
        tile<5, kMasked>(k_len, ai, ar, ac, b, ldb, ci, ldc, accumulate, mask_lo, mask_hi, width);
        break;
      case 4:
        tile<4, kMasked>(k_len, ai, ar, ac, b, ldb, ci, ldc, accumulate, mask_lo, mask_hi, width);
        break;
      case 3:
        tile<3, kMasked>(k_len, ai, ar, ac, b, ldb, ci, ldc, accumulate, mask_lo, mask_hi, width);
        break;
      case 2:
        tile<2, kMasked>(k_len, ai, ar, ac, b, ldb, ci, ldc, accumulate, mask_lo, mask_hi, width);
        break;
      default:
        tile<1, kMasked>(k_len, ai, ar, ac, b, ldb, ci, ldc, accumulate, mask_lo, mask_hi, width);
        break;
    }
  }
}

// AVX2 product: column panels of 16 outside, row tiles inside (one panel of B, k x 16, stays in L1).
inline void gemm_avx2(int64_t m, int64_t n, int64_t k_len, const StridedMatrix& a, const float* b,
                      int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t width = std::min<int64_t>(16, n - j);
    if (width == 16) {
      const __m256i all = _mm256_set1_epi32(-1);
      row_tiles<false>(m, k_len, a, b + j, ldb, c + j, ldc, accumulate, all, all, 16);
    } else {
      const __m256i lo = vec::tail_mask(std::min<int64_t>(8, width));
      const __m256i hi = vec::tail_mask(std::max<int64_t>(0, width - 8));
      row_tiles<true>(m, k_len, a, b + j, ldb, c + j, ldc, accumulate, lo, hi, width);
    }
  }
}

// One AVX-512 register tile: R rows of C by 32 columns (fewer when masked: `mask_lo`/`mask_hi`).
template <int R>
__attribute__((target("avx512f"))) inline void tile512(int64_t k_len, const float* a, int64_t a_row,
                                                       int64_t a_col, const float* b, int64_t ldb, float* c,
                                                       int64_t ldc, bool accumulate, __mmask16 mask_lo,
                                                       __mmask16 mask_hi) {
  __m512 lo[R], hi[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    lo[r] = _mm512_setzero_ps();
    hi[r] = _mm512_setzero_ps();
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      lo[r] = _mm512_maskz_loadu_ps(mask_lo, c + r * ldc);
      hi[r] = _mm512_maskz_loadu_ps(mask_hi, c + r * ldc + 16);
    }
  }
  for (int64_t k = 0; k < k_len; ++k) {
    const __m512 b_lo = _mm512_maskz_loadu_ps(mask_lo, b + k * ldb);
    const __m512 b_hi = _mm512_maskz_loadu_ps(mask_hi, b + k * ldb + 16);
    const float* ak = a + k * a_col;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(ak[r * a_row]);
      lo[r] = _mm512_fmadd_ps(av, b_lo, lo[r]);
      hi[r] = _mm512_fmadd_ps(av, b_hi, hi[r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, mask_lo, lo[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, mask_hi, hi[r]);
  }
}

// AVX-512 product: column panels of 32 outside, 12-row tiles inside (tails: 8, 4, then 3, 2 or 1 rows).
__attribute__((target("avx512f"))) inline void gemm_avx512(int64_t m, int64_t n, int64_t k_len,
                                                           const StridedMatrix& a, const float* b,
                                                           int64_t ldb, float* c, int64_t ldc,
                                                           bool accumulate) {
  const int64_t ar = a.row_stride, ac = a.col_stride;
  for (int64_t j = 0; j < n; j += 32) {
    const int64_t width = std::min<int64_t>(32, n - j);
    const __mmask16 lo = static_cast<__mmask16>(width >= 16 ? 0xffff : (1u << width) - 1);
    const __mmask16 hi = static_cast<__mmask16>(width >= 32   ? 0xffff
                                                : width <= 16 ? 0
                                                              : (1u << (width - 16)) - 1);
    const float* ai = a.data;
    float* ci = c + j;
    int64_t rest = m;
    for (; rest >= 12; rest -= 12, ai += 12 * ar, ci += 12 * ldc) {
      tile512<12>(k_len, ai, ar, ac, b + j, ldb, ci, ldc, accumulate, lo, hi);
    }
    if (rest >= 8) {
      tile512<8>(k_len, ai, ar, ac, b + j, ldb, ci, ldc, accumulate, lo, hi);
      rest -= 8, ai += 8 * ar, ci += 8 * ldc;
    }
    if (rest >= 4) {
      tile512<4>(k_len, ai, ar, ac, b + j, ldb, ci, ldc, accumulate, lo, hi);
      rest -= 4, ai += 4 * ar, ci += 4 * ldc;
    }
    switch (rest) {
      case 3:
        tile512<3>(k_len, ai, ar, ac, b + j, ldb, ci, ldc, accumulate, lo, hi);
        break;
      case 2:
        tile512<2>(k_len, ai, ar, ac, b + j, ldb, ci, ldc, accumulate, lo, hi);
        break;
      case 1:
        tile512<1>(k_len, ai, ar, ac, b + j, ldb, ci, ldc, accumulate, lo, hi);
        break;
      default:
        break;
    }
  }
}

// Whether gemm() (and the attention kernels' other vector code) take the AVX-512 path: the CPU's answer,
// unless a test turned it off (set_attention_avx512 in cpu_factories.h).
inline bool& avx512_enabled() {
  static bool enabled = __builtin_cpu_supports("avx512f");
  return enabled;
}

// C[m x n] = A[m x k] · B[k x n] (accumulate = false) or C += A · B. k_len == 0 leaves C (or zeroes it).
inline void gemm(int64_t m, int64_t n, int64_t k_len, const StridedMatrix& a, const float* b, int64_t ldb,
                 float* c, int64_t ldc, bool accumulate) {
  if (avx512_enabled()) {
    gemm_avx512(m, n, k_len, a, b, ldb, c, ldc, accumulate);
  } else {
    gemm_avx2(m, n, k_len, a, b, ldb, c, ldc, accumulate);
  }
}

// dst[c * ld_dst + r] = src[r * ld_src + c] * factor for r < rows, c < cols: 8x8 tiles transposed in
// registers (contiguous 32-byte loads and stores), scalar edges. Packs a block's transposed operand.
inline void transpose(int64_t rows, int64_t cols, const float* src, int64_t ld_src, float* dst,
                      int64_t ld_dst, float factor = 1.0f) {
  const __m256 f = _mm256_set1_ps(factor);
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      const float* s = src + r * ld_src + c;
      __m256 x[8];
      for (int i = 0; i < 8; ++i) x[i] = _mm256_mul_ps(_mm256_loadu_ps(s + i * ld_src), f);
      const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
      const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
      const __m256 t4 = _mm256_unpacklo_ps(x[4], x[5]), t5 = _mm256_unpackhi_ps(x[4], x[5]);
      const __m256 t6 = _mm256_unpacklo_ps(x[6], x[7]), t7 = _mm256_unpackhi_ps(x[6], x[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
      float* d = dst + c * ld_dst + r;
      _mm256_storeu_ps(d + 0 * ld_dst, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + 1 * ld_dst, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * ld_dst, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * ld_dst, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * ld_dst, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * ld_dst, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * ld_dst, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * ld_dst, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; c < cols; ++c) {
      for (int64_t i = r; i < r + 8; ++i) dst[c * ld_dst + i] = src[i * ld_src + c] * factor;
    }
  }
  for (; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[c * ld_dst + r] = src[r * ld_src + c] * factor;
  }
}

}  // namespace seqrun::backends::cpu::block_gemm
