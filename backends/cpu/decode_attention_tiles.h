// Private to backends/cpu: the vector pieces of CachedAttention's decode walk (cached_attention.cpp) over
// one tile of keys — multi-row dot products, the online-softmax step of a row, the p·V accumulation, and
// the prefetch of a later tile — each in an AVX-512F form (own target attribute, run only after the CPU
// check) and an AVX2 form. Layout: a tile's key c is the row k_tile + c·n (n = head size); scores and
// probabilities of row r sit at scores + r·ld; columns outside a row's visible range hold -inf (scores).
// Only for files compiled with -mavx2 -mfma.
#pragma once

// GCC 12's AVX-512 headers initialize their "undefined" operand from itself, which -O3 reports as
// (maybe-)uninitialized inside the intrinsics (the reductions below); the warning is about the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/avx512_math.h"
#include "backends/cpu/block_gemm.h"

namespace seqrun::backends::cpu::decode_tiles {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

__attribute__((target("avx512f"))) inline __mmask16 first_lanes16(int64_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
}

// out[0..N) = the dot products of rows q[0..N) (N <= 4) with k over n elements: the rows share every load
// of k, and one reduction tree turns the accumulators into N sums (missing rows add zeros).
template <int N>
__attribute__((target("avx512f"), always_inline)) inline void dot_rows512(const float* const* q,
                                                                          const float* k, int64_t n,
                                                                          float* out) {
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t d = 0; d < n; d += 16) {
    const __mmask16 m = first_lanes16(n - d);
    const __m512 kd = _mm512_maskz_loadu_ps(m, k + d);
#pragma GCC unroll 4
    for (int r = 0; r < N; ++r) a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q[r] + d), kd, a[r]);
  }
  // Pairs, then quads within each 128-bit group (lane k: a partial sum of row k), then the four groups.
  const __m512 a01 = _mm512_add_ps(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
  const __m512 a23 = _mm512_add_ps(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
  __m512 t = _mm512_add_ps(_mm512_shuffle_ps(a01, a23, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(a01, a23, _MM_SHUFFLE(3, 2, 3, 2)));
  t = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, _MM_SHUFFLE(1, 0, 3, 2)));
  t = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, _MM_SHUFFLE(2, 3, 0, 1)));
  alignas(16) float sums[4];
  _mm_store_ps(sums, _mm512_castps512_ps128(t));
  for (int r = 0; r < N; ++r) out[r] = sums[r];
}

template <int N>
__attribute__((always_inline)) inline void dot_rows256(const float* const* q, const float* k, int64_t n,
                                                       float* out) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t d = 0; d < n; d += 8) {
    const __m256i m = vec::tail_mask(std::min<int64_t>(8, n - d));
    const __m256 kd = _mm256_maskload_ps(k + d, m);
#pragma GCC unroll 4
    for (int r = 0; r < N; ++r) a[r] = _mm256_fmadd_ps(_mm256_maskload_ps(q[r] + d, m), kd, a[r]);
  }
  // hadd(hadd(a0, a1), hadd(a2, a3)) holds each row's two half sums, one per 128-bit lane.
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  alignas(16) float sums[4];
  _mm_store_ps(sums, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  for (int r = 0; r < N; ++r) out[r] = sums[r];
}

// The K and V rows of a tile further down the walk: the score loop asks for one key's and one value's
// cache lines per key it scores, so the requests are spread over the tile's compute. (Measured on a Zen
// core, 1 thread, P = 4096: spread 85% / 78% of a plain read for 12/12 and 32/8 heads, one burst of the
// whole tile at the tile's start 57% / 35%, no prefetch 55% / 19%: the 4 KiB pages stop the hardware
// prefetchers and a burst overflows the core's queue of outstanding misses.)
struct TilePrefetch {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t k_row = 0, v_row = 0, rows = 0;  // floats per K row, per V row; rows to fetch (0: none)

  // always_inline: a function doing nothing but prefetches counts as side-effect free for GCC's IPA, which
  // then deletes the calls (and with them every prefetch).
  __attribute__((always_inline)) void row(int64_t c) const {
    if (c >= rows) return;
    for (int64_t i = 0; i < k_row; i += 16)
      _mm_prefetch(reinterpret_cast<const char*>(k + c * k_row + i), _MM_HINT_T0);
    for (int64_t i = 0; i < v_row; i += 16)
      _mm_prefetch(reinterpret_cast<const char*>(v + c * v_row + i), _MM_HINT_T0);
  }
  // The rows the score loop over [c_lo, c_hi) did not ask for.
  __attribute__((always_inline)) void rest(int64_t c_lo, int64_t c_hi) const {
    for (int64_t c = 0; c < c_lo; ++c) row(c);
    for (int64_t c = c_hi; c < rows; ++c) row(c);
  }
};

// Scores of rows q[0..nr) (nr <= 4) against keys c_lo .. c_hi - 1 of a tile (key c at k_tile + c * n):
// scores[r * ld + c] = scale * q_r · k_c. `dot_rows(std::integral_constant<int, N>, k, dots)` is the ISA's
// N-row dot product; score_tile512/256 flatten this walk, so the dot products inline into the loop.
template <typename DotRows>
inline void score_tile(int64_t nr, const float* k_tile, int64_t n, int64_t c_lo, int64_t c_hi, float scale,
                       float* scores, int64_t ld, const TilePrefetch& ahead, DotRows dot_rows) {
  float dots[4];
  for (int64_t c = c_lo; c < c_hi; ++c) {
    ahead.row(c);
    switch (nr) {
      case 1:
        dot_rows(std::integral_constant<int, 1>{}, k_tile + c * n, dots);
        break;
      case 2:
        dot_rows(std::integral_constant<int, 2>{}, k_tile + c * n, dots);
        break;
      case 3:
        dot_rows(std::integral_constant<int, 3>{}, k_tile + c * n, dots);
        break;
      default:
        dot_rows(std::integral_constant<int, 4>{}, k_tile + c * n, dots);
        break;
    }
    for (int64_t r = 0; r < nr; ++r) scores[r * ld + c] = dots[r] * scale;
  }
  ahead.rest(c_lo, c_hi);
}

// flatten: the AVX-512 dot products (always_inline, own target) may only inline into a function of that
// target, so the whole walk is inlined here rather than score_tile inlining them itself.
__attribute__((target("avx512f"), flatten)) inline void score_tile512(int64_t nr, const float* const* q,
                                                                      const float* k_tile, int64_t n,
                                                                      int64_t c_lo, int64_t c_hi, float scale,
                                                                      float* scores, int64_t ld,
                                                                      const TilePrefetch& ahead) {
  score_tile(
      nr, k_tile, n, c_lo, c_hi, scale, scores, ld, ahead,
      [ q, n ](auto rows, const float* k, float* out)
          __attribute__((target("avx512f"))) { dot_rows512<decltype(rows)::value>(q, k, n, out); });
}

inline void score_tile256(int64_t nr, const float* const* q, const float* k_tile, int64_t n, int64_t c_lo,
                          int64_t c_hi, float scale, float* scores, int64_t ld, const TilePrefetch& ahead) {
  score_tile(
      nr, k_tile, n, c_lo, c_hi, scale, scores, ld, ahead,
      [ q, n ](auto rows, const float* k, float* out)
          __attribute__((always_inline)) { dot_rows256<decltype(rows)::value>(q, k, n, out); });
}

// acc[0..n) += Σ_c p[c] · v[c·n ..] over c in [c_begin, c_end), 64 accumulators at a time in registers.
__attribute__((target("avx512f"))) inline void accumulate512(float* acc, const float* p, const float* v,
                                                             int64_t n, int64_t c_begin, int64_t c_end) {
  for (int64_t d = 0; d < n; d += 64) {
    const __mmask16 m0 = first_lanes16(std::max<int64_t>(0, n - d));
    const __mmask16 m1 = first_lanes16(std::max<int64_t>(0, n - d - 16));
    const __mmask16 m2 = first_lanes16(std::max<int64_t>(0, n - d - 32));
    const __mmask16 m3 = first_lanes16(std::max<int64_t>(0, n - d - 48));
    __m512 a0 = _mm512_maskz_loadu_ps(m0, acc + d), a1 = _mm512_maskz_loadu_ps(m1, acc + d + 16);
    __m512 a2 = _mm512_maskz_loadu_ps(m2, acc + d + 32), a3 = _mm512_maskz_loadu_ps(m3, acc + d + 48);
    for (int64_t c = c_begin; c < c_end; ++c) {
      const __m512 pc = _mm512_set1_ps(p[c]);
      const float* vc = v + c * n + d;
      a0 = _mm512_fmadd_ps(pc, _mm512_maskz_loadu_ps(m0, vc), a0);
      a1 = _mm512_fmadd_ps(pc, _mm512_maskz_loadu_ps(m1, vc + 16), a1);
      a2 = _mm512_fmadd_ps(pc, _mm512_maskz_loadu_ps(m2, vc + 32), a2);
      a3 = _mm512_fmadd_ps(pc, _mm512_maskz_loadu_ps(m3, vc + 48), a3);
    }
    _mm512_mask_storeu_ps(acc + d, m0, a0);
    _mm512_mask_storeu_ps(acc + d + 16, m1, a1);
    _mm512_mask_storeu_ps(acc + d + 32, m2, a2);
    _mm512_mask_storeu_ps(acc + d + 48, m3, a3);
  }
}

// accumulate512 for N rows (N <= 4) that see the same columns: acc row r (stride acc_ld) += Σ_c p[r·p_ld +
// c]·v_c. Each value row is loaded once for all N rows (4·N accumulators and 4 value vectors in registers).
template <int N>
__attribute__((target("avx512f"), always_inline)) inline void accumulate_rows512(float* acc, int64_t acc_ld,
                                                                                 const float* p, int64_t p_ld,
                                                                                 const float* v, int64_t n,
                                                                                 int64_t c_begin,
                                                                                 int64_t c_end) {
  for (int64_t d = 0; d < n; d += 64) {
    __mmask16 m[4];
    __m512 a[N][4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) m[k] = first_lanes16(std::max<int64_t>(0, n - d - 16 * k));
#pragma GCC unroll 4
    for (int r = 0; r < N; ++r) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) a[r][k] = _mm512_maskz_loadu_ps(m[k], acc + r * acc_ld + d + 16 * k);
    }
    for (int64_t c = c_begin; c < c_end; ++c) {
      __m512 vc[4];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) vc[k] = _mm512_maskz_loadu_ps(m[k], v + c * n + d + 16 * k);
#pragma GCC unroll 4
      for (int r = 0; r < N; ++r) {
        const __m512 pc = _mm512_set1_ps(p[r * p_ld + c]);
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) a[r][k] = _mm512_fmadd_ps(pc, vc[k], a[r][k]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < N; ++r) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) _mm512_mask_storeu_ps(acc + r * acc_ld + d + 16 * k, m[k], a[r][k]);
    }
  }
}

__attribute__((target("avx512f"))) inline void accumulate_group512(int64_t nr, float* acc, int64_t acc_ld,
                                                                   const float* p, int64_t p_ld,
                                                                   const float* v, int64_t n, int64_t c_begin,
                                                                   int64_t c_end) {
  switch (nr) {
    case 1:
      accumulate_rows512<1>(acc, acc_ld, p, p_ld, v, n, c_begin, c_end);
      break;
    case 2:
      accumulate_rows512<2>(acc, acc_ld, p, p_ld, v, n, c_begin, c_end);
      break;
    case 3:
      accumulate_rows512<3>(acc, acc_ld, p, p_ld, v, n, c_begin, c_end);
      break;
    default:
      accumulate_rows512<4>(acc, acc_ld, p, p_ld, v, n, c_begin, c_end);
      break;
  }
}

inline void accumulate256(float* acc, const float* p, const float* v, int64_t n, int64_t c_begin,
                          int64_t c_end) {
  for (int64_t d = 0; d < n; d += 32) {
    if (d + 32 <= n) {
      __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
      __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
      for (int64_t c = c_begin; c < c_end; ++c) {
        const __m256 pc = _mm256_set1_ps(p[c]);
        const float* vc = v + c * n + d;
        a0 = _mm256_fmadd_ps(pc, _mm256_loadu_ps(vc), a0);
        a1 = _mm256_fmadd_ps(pc, _mm256_loadu_ps(vc + 8), a1);
        a2 = _mm256_fmadd_ps(pc, _mm256_loadu_ps(vc + 16), a2);
        a3 = _mm256_fmadd_ps(pc, _mm256_loadu_ps(vc + 24), a3);
      }
      _mm256_storeu_ps(acc + d, a0);
      _mm256_storeu_ps(acc + d + 8, a1);
      _mm256_storeu_ps(acc + d + 16, a2);
      _mm256_storeu_ps(acc + d + 24, a3);
      continue;
    }
    for (int64_t e = d; e < n; e += 8) {  // the tail, 8 lanes at a time
      const int64_t width = std::min<int64_t>(8, n - e);
      const __m256i m = vec::tail_mask(width);
      __m256 a = _mm256_maskload_ps(acc + e, m);
      for (int64_t c = c_begin; c < c_end; ++c) {
        a = _mm256_fmadd_ps(_mm256_set1_ps(p[c]), _mm256_maskload_ps(v + c * n + e, m), a);
      }
      block_gemm::store_first(acc + e, a, width);
    }
  }
}

// s[c] = softcap · tanh(s[c] / softcap) over the 8-groups that hold [c_begin, c_end), 8 lanes at a time;
// -inf (masked columns) stays -inf, where tanh would turn it into -softcap.
__attribute__((always_inline)) inline void apply_softcap(float* s, int64_t c_begin, int64_t c_end,
                                                         float softcap) {
  const __m256 cap = _mm256_set1_ps(softcap), inv_cap = _mm256_set1_ps(1.0f / softcap);
  for (int64_t c = c_begin / 8 * 8; c < c_end; c += 8) {
    const __m256 x = _mm256_loadu_ps(s + c);
    const __m256 capped = _mm256_mul_ps(cap, vec::tanh(_mm256_mul_ps(x, inv_cap)));
    _mm256_storeu_ps(s + c,
                     _mm256_blendv_ps(capped, x, _mm256_cmp_ps(x, _mm256_set1_ps(kNegInf), _CMP_EQ_OQ)));
  }
}

// softmax_tile with 16 lanes (AVX-512F exp, vec512::exp); the same steps, and columns up to 16-padding.
__attribute__((target("avx512f"))) inline float softmax_tile512(float* s, int64_t cols, int64_t c_begin,
                                                                int64_t c_end, float softcap, float* m,
                                                                float* l) {
  const int64_t padded = (cols + 15) / 16 * 16;
  for (int64_t c = cols; c < padded; ++c) s[c] = kNegInf;
  if (softcap > 0.0f) apply_softcap(s, c_begin, c_end, softcap);  // rare: the AVX2 tanh in both forms
  const int64_t first = c_begin / 16 * 16;
  __m512 vmax = _mm512_set1_ps(kNegInf);
  for (int64_t c = first; c < c_end; c += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + c));
  const float tile_max = _mm512_reduce_max_ps(vmax);
  const float new_max = std::max(*m, tile_max);
  const float shift = new_max == kNegInf ? 0.0f : new_max;
  const float correction = *m == kNegInf ? 0.0f : std::exp(*m - shift);
  const __m512 vshift = _mm512_set1_ps(shift);
  __m512 vsum = _mm512_setzero_ps();
  // Only the 16-groups that hold visible columns: the accumulation never reads the others.
  for (int64_t c = first; c < c_end; c += 16) {
    const __m512 e = vec512::exp(_mm512_sub_ps(_mm512_loadu_ps(s + c), vshift));
    _mm512_storeu_ps(s + c, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  *l = *l * correction + _mm512_reduce_add_ps(vsum);
  *m = new_max;
  return correction;
}

// One online-softmax step of a row over a tile: scores s[0..cols) (-inf outside [c_begin, c_end))
// become p = exp(s - m') in place; m, l updated; returns the correction exp(m - m') for the accumulator.
inline float softmax_tile(float* s, int64_t cols, int64_t c_begin, int64_t c_end, float softcap, float* m,
                          float* l) {
  const int64_t padded = (cols + 7) / 8 * 8;
  for (int64_t c = cols; c < padded; ++c) s[c] = kNegInf;
  if (softcap > 0.0f) apply_softcap(s, c_begin, c_end, softcap);
  __m256 vmax = _mm256_set1_ps(kNegInf);
  for (int64_t c = c_begin / 8 * 8; c < c_end; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + c));
  const float tile_max = vec::hmax(vmax);
  const float new_max = std::max(*m, tile_max);
  const float shift = new_max == kNegInf ? 0.0f : new_max;
  const float correction = *m == kNegInf ? 0.0f : std::exp(*m - shift);
  const __m256 vshift = _mm256_set1_ps(shift);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t c = 0; c < padded; c += 8) {
    const __m256 e = vec::exp(_mm256_sub_ps(_mm256_loadu_ps(s + c), vshift));
    _mm256_storeu_ps(s + c, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  *l = *l * correction + vec::hsum(vsum);
  *m = new_max;
  return correction;
}

}  // namespace seqrun::backends::cpu::decode_tiles
