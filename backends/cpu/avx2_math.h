// AVX2+FMA vector math on 8 floats: exp, tanh, erf/erfc, sigmoid and the activations built on them
// (GELU in its erf and tanh forms, SiLU/Swish), masked tail loads, horizontal sum/max.
//
// Only for files compiled with -mavx2 -mfma (backends/cpu/*, except the registration file).
// Accuracy (max relative error against double-precision libm over dense sweeps of the float range):
// exp < 1e-7 (denormal results and overflow to inf included); tanh, sigmoid, erf < 2e-7; erfc < 4e-7;
// GELU (erf form) < 5e-7 everywhere; GELU (tanh form) < 1e-6 for x > -5 (further left the result is
// below 1e-12 and the rounding of x^3 dominates). NaN in, NaN out. Polynomial coefficients are
// least-squares fits for relative error on Chebyshev nodes (numpy), see each function.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace seqrun::backends::cpu::vec {

// Mask selecting the first `n` (0..8) lanes, for maskload/maskstore of a row's tail.
inline __m256i tail_mask(int64_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 abs(__m256 x) {
  return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

// Evaluates c[0] + c[1] t + ... + c[N-1] t^(N-1) by Horner's rule.
template <int N>
inline __m256 poly(__m256 t, const float (&c)[N]) {
  __m256 p = _mm256_set1_ps(c[N - 1]);
  for (int i = N - 2; i >= 0; --i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
  return p;
}

// e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2 (Cody-Waite split of ln 2); e^r by its
// degree-7 Taylor polynomial (truncation < 6e-9). 2^n is applied as two factors 2^(n/2) 2^(n - n/2),
// so denormal results and overflow to inf need no special case. x is clamped to [-104, 89], beyond
// which the float result is 0 or inf anyway; min/max order lets NaN through.
inline __m256 exp(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 high part: exact products
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);      // ln2 low part
  static constexpr float kTaylor[] = {1.0f,         1.0f,          0.5f,          1.0f / 6.0f,
                                      1.0f / 24.0f, 1.0f / 120.0f, 1.0f / 720.0f, 1.0f / 5040.0f};
  const __m256 p = poly(r, kTaylor);
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// 1 / (1 + e^-x): relative error stays small for every x (no cancellation on either side).
inline __m256 sigmoid(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)));
  return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

// |x| < 0.55: x P(x^2) (degree 5 in x^2, fitted); otherwise sign(x) (1 - 2 / (e^{2|x|} + 1)), whose
// cancellation is harmless there (tanh(0.55) = 0.5).
inline __m256 tanh(__m256 x) {
  static constexpr float kSmall[] = {1.0f,
                                     -0.33333316445350647f,
                                     0.13332557678222656f,
                                     -0.05385058745741844f,
                                     0.021066833287477493f,
                                     -0.006269155535846949f};
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = abs(x);
  const __m256 small = _mm256_mul_ps(x, poly(_mm256_mul_ps(x, x), kSmall));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp(_mm256_add_ps(ax, ax));
  __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  large = _mm256_or_ps(large, sign);
  return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.55f), _CMP_LT_OQ));
}

// erf(x) / x = Q(x^2) for |x| < 0.75 (degree 5 in x^2, fitted).
inline __m256 erf_small(__m256 x) {
  static constexpr float kSmall[] = {1.128379225730896f,    -0.376126229763031f,   0.11283425241708755f,
                                     -0.02683674730360508f, 0.005118277855217457f, -0.0006775668007321656f};
  return _mm256_mul_ps(x, poly(_mm256_mul_ps(x, x), kSmall));
}

// erfc(z) for z >= 0.75 given z^2 = sq_hi + sq_lo exactly: e^{-z^2} R(t), t = 1 / (1 + 0.7 z), R of
// degree 8 fitted to erfc(z) e^{z^2} on [0.75, 10.1]. Splitting z^2 keeps e^{-z^2} (and so erfc)
// relative-accurate in the far tail. Beyond 10.1 erfc underflows to 0; z is clamped there.
inline __m256 erfc_large(__m256 z, __m256 sq_hi, __m256 sq_lo) {
  static constexpr float kR[] = {2.1204741642577574e-06f, 0.394877552986145f,  0.3954262137413025f,
                                 0.29727670550346375f,    0.0896599069237709f, 0.011184894479811192f,
                                 -0.6637271046638489f,    0.7126460075378418f, -0.23896728456020355f};
  const __m256 limit = _mm256_set1_ps(10.5f);
  z = _mm256_min_ps(limit, z);
  sq_hi = _mm256_min_ps(_mm256_set1_ps(10.5f * 10.5f), sq_hi);  // inf - inf would make NaN below
  sq_lo = _mm256_and_ps(sq_lo, _mm256_cmp_ps(sq_hi, _mm256_set1_ps(10.5f * 10.5f), _CMP_LT_OQ));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.7f), z, one));
  const __m256 e = _mm256_mul_ps(exp(_mm256_xor_ps(sq_hi, _mm256_set1_ps(-0.0f))), _mm256_sub_ps(one, sq_lo));
  return _mm256_mul_ps(poly(t, kR), e);
}

inline __m256 erfc_large(__m256 z) {
  const __m256 hi = _mm256_mul_ps(z, z);
  return erfc_large(z, hi, _mm256_fmsub_ps(z, z, hi));
}

inline __m256 erf(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = abs(x);
  const __m256 large = _mm256_or_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), erfc_large(ax)), sign);
  return _mm256_blendv_ps(large, erf_small(x), _mm256_cmp_ps(ax, _mm256_set1_ps(0.75f), _CMP_LT_OQ));
}

// erfc(y) for any y, relative-accurate on both tails: 1 - erf(y) near 0, the fit for y >= 0.75,
// 2 - erfc(-y) for y <= -0.75.
inline __m256 erfc(__m256 y) {
  const __m256 ay = abs(y);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 tail = erfc_large(ay);
  const __m256 large = _mm256_blendv_ps(tail, _mm256_sub_ps(_mm256_set1_ps(2.0f), tail), y);  // sign bit
  const __m256 small = _mm256_sub_ps(one, erf_small(y));
  return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ay, _mm256_set1_ps(0.75f), _CMP_LT_OQ));
}

// x Phi(x) = x/2 erfc(-x / sqrt 2), the erfc evaluated as in erfc() but with (x / sqrt 2)^2 = x^2 / 2
// taken exactly from x, so the left tail keeps its relative accuracy.
inline __m256 gelu_erf(__m256 x) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 y = _mm256_mul_ps(x, _mm256_set1_ps(-0.70710678118654752f));
  const __m256 ay = abs(y);
  const __m256 xx = _mm256_mul_ps(x, x);
  const __m256 tail = erfc_large(ay, _mm256_mul_ps(xx, half), _mm256_mul_ps(_mm256_fmsub_ps(x, x, xx), half));
  const __m256 large = _mm256_blendv_ps(tail, _mm256_sub_ps(_mm256_set1_ps(2.0f), tail), y);
  const __m256 small = _mm256_sub_ps(_mm256_set1_ps(1.0f), erf_small(y));
  const __m256 c = _mm256_blendv_ps(large, small, _mm256_cmp_ps(ay, _mm256_set1_ps(0.75f), _CMP_LT_OQ));
  return _mm256_mul_ps(_mm256_mul_ps(x, half), c);
}

// x/2 (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
inline __m256 gelu_tanh(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x);
  return _mm256_mul_ps(x, sigmoid(_mm256_mul_ps(u, _mm256_set1_ps(2.0f * 0.79788456080286535588f))));
}

inline __m256 swish(__m256 x, __m256 alpha) {
  return _mm256_mul_ps(x, sigmoid(_mm256_mul_ps(alpha, x)));
}

}  // namespace seqrun::backends::cpu::vec
