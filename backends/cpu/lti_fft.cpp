// LaneFft (lti_fft.h): radix-2 complex FFTs over 8 lanes, and the split that turns an m-point complex FFT of
// a packed real signal into its n-point real spectrum (and back), fused with the spectrum product.
//
// The split, for a real signal x of length n packed as z[k] = x[2k] + i·x[2k+1] (Z = the m-point DFT of z,
// W = e^{-2πi/n}): with E = DFT(even samples), O = DFT(odd samples),
//   E[k] = (Z[k] + conj Z[m-k]) / 2,   O[k] = (Z[k] - conj Z[m-k]) / (2i),   X[k] = E[k] + W^k·O[k],
//   and X[m-k] = conj(E[k] - W^k·O[k]) (E, O are spectra of real signals; W^{m-k} = -conj W^k).
// The way back: E[k] = (X[k] + conj X[m-k]) / 2, O[k] = (X[k] - conj X[m-k])·conj(W^k) / 2, Z[k] = E + i·O,
// Z[m-k] = conj E[k] + i·conj O[k]. Both halves of the pair (k, m-k) come from the same two slots, so the
// split runs in place. The code drops the factors 1/2 (the table's scale absorbs them, lti_fft.h).
// Bound: memory at the cache level that holds the buffer (16·m floats per 8 signals: 128 KiB for
// n = 4096), about 10 vector operations per butterfly.
#include "backends/cpu/lti_fft.h"

#include <immintrin.h>

#include <cmath>

namespace seqrun::backends::cpu {
namespace {

// 8 complex numbers: lane-wise real and imaginary parts.
struct Cx {
  __m256 re, im;
};

inline Cx load(const float* slot) {
  return {_mm256_load_ps(slot), _mm256_load_ps(slot + kFftLanes)};
}
inline Cx loadu(const float* slot) {
  return {_mm256_loadu_ps(slot), _mm256_loadu_ps(slot + kFftLanes)};
}
inline void store(float* slot, Cx v) {
  _mm256_store_ps(slot, v.re);
  _mm256_store_ps(slot + kFftLanes, v.im);
}
inline void storeu(float* slot, Cx v) {
  _mm256_storeu_ps(slot, v.re);
  _mm256_storeu_ps(slot + kFftLanes, v.im);
}
inline Cx add(Cx a, Cx b) {
  return {_mm256_add_ps(a.re, b.re), _mm256_add_ps(a.im, b.im)};
}
inline Cx sub(Cx a, Cx b) {
  return {_mm256_sub_ps(a.re, b.re), _mm256_sub_ps(a.im, b.im)};
}
inline Cx mul(Cx a, Cx b) {
  return {_mm256_fmsub_ps(a.re, b.re, _mm256_mul_ps(a.im, b.im)),
          _mm256_fmadd_ps(a.re, b.im, _mm256_mul_ps(a.im, b.re))};
}
// a · (wr + i·wi), the twiddle the same in every lane.
inline Cx mul_scalar(Cx a, __m256 wr, __m256 wi) {
  return {_mm256_fmsub_ps(a.re, wr, _mm256_mul_ps(a.im, wi)),
          _mm256_fmadd_ps(a.re, wi, _mm256_mul_ps(a.im, wr))};
}
// a · conj(wr + i·wi).
inline Cx mul_scalar_conj(Cx a, __m256 wr, __m256 wi) {
  return {_mm256_fmadd_ps(a.re, wr, _mm256_mul_ps(a.im, wi)),
          _mm256_fmsub_ps(a.im, wr, _mm256_mul_ps(a.re, wi))};
}
inline Cx conj(Cx a) {
  return {a.re, _mm256_xor_ps(a.im, _mm256_set1_ps(-0.0f))};
}
// -i · a
inline Cx times_minus_i(Cx a) {
  return {a.im, _mm256_xor_ps(a.re, _mm256_set1_ps(-0.0f))};
}
// i · a
inline Cx times_i(Cx a) {
  return {_mm256_xor_ps(a.im, _mm256_set1_ps(-0.0f)), a.re};
}

// One radix-2 stage of half-size h over m slots: butterfly(lo, hi, w_re, w_im) on every pair of slots h
// apart within each block of 2h, with twiddle j of the stage (wr[j], wi[j]) broadcast.
template <typename Butterfly>
inline void stage_butterflies(float* buf, int64_t m, int64_t h, const float* wr, const float* wi,
                              Butterfly butterfly) {
  for (int64_t start = 0; start < m; start += 2 * h) {
    float* lo = buf + start * kFftSlotFloats;
    float* hi = lo + h * kFftSlotFloats;
    for (int64_t j = 0; j < h; ++j) {
      butterfly(lo + j * kFftSlotFloats, hi + j * kFftSlotFloats, _mm256_set1_ps(wr[j]),
                _mm256_set1_ps(wi[j]));
    }
  }
}

}  // namespace

LaneFft::LaneFft(int64_t n) : n_(n), m_(n / 2) {
  int bits = 0;
  while ((int64_t{1} << bits) < m_) ++bits;
  rev_.resize(static_cast<size_t>(m_));
  for (int64_t k = 0; k < m_; ++k) {
    int64_t r = 0;
    for (int b = 0; b < bits; ++b) r |= ((k >> b) & 1) << (bits - 1 - b);
    rev_[static_cast<size_t>(k)] = r;
  }
  const double pi = 3.14159265358979323846;
  for (int64_t h = 1; h < m_; h *= 2) {  // the stage of half-size h starts at offset h - 1
    for (int64_t j = 0; j < h; ++j) {
      stage_re_.push_back(static_cast<float>(std::cos(pi * static_cast<double>(j) / static_cast<double>(h))));
      stage_im_.push_back(
          static_cast<float>(-std::sin(pi * static_cast<double>(j) / static_cast<double>(h))));
    }
  }
  for (int64_t k = 0; k <= m_ / 2; ++k) {
    const double angle = 2.0 * pi * static_cast<double>(k) / static_cast<double>(n_);
    post_re_.push_back(static_cast<float>(std::cos(angle)));
    post_im_.push_back(static_cast<float>(-std::sin(angle)));
  }
}

void LaneFft::forward(float* buf) const {
  for (int64_t h = m_ / 2; h >= 1; h /= 2) {
    stage_butterflies(buf, m_, h, stage_re_.data() + (h - 1), stage_im_.data() + (h - 1),
                      [](float* lo, float* hi, __m256 w_re, __m256 w_im) {
                        const Cx a = load(lo), b = load(hi);
                        store(lo, add(a, b));
                        store(hi, mul_scalar(sub(a, b), w_re, w_im));
                      });
  }
}

void LaneFft::inverse(float* buf) const {
  for (int64_t h = 1; h < m_; h *= 2) {
    stage_butterflies(buf, m_, h, stage_re_.data() + (h - 1), stage_im_.data() + (h - 1),
                      [](float* lo, float* hi, __m256 w_re, __m256 w_im) {
                        const Cx a = load(lo);
                        const Cx b = mul_scalar_conj(load(hi), w_re, w_im);
                        store(lo, add(a, b));
                        store(hi, sub(a, b));
                      });
  }
}

void LaneFft::spectrum(const float* buf, float scale, float* table) const {
  const __m256 s = _mm256_set1_ps(scale);
  for (int64_t k = 0; k <= m_ / 2; ++k) {
    const int64_t j = m_ - k;
    const int64_t pk = position(k), pj = k == 0 ? m_ : position(j);
    const Cx za = load(buf + pk * kFftSlotFloats);
    const Cx zb = k == 0 ? za : load(buf + position(j) * kFftSlotFloats);
    const Cx e = add(za, conj(zb));
    const Cx o = times_minus_i(sub(za, conj(zb)));
    const Cx wo = mul_scalar(o, _mm256_set1_ps(post_re_[k]), _mm256_set1_ps(post_im_[k]));
    const Cx xk = add(e, wo), xj = conj(sub(e, wo));
    storeu(table + pk * kFftSlotFloats, {_mm256_mul_ps(xk.re, s), _mm256_mul_ps(xk.im, s)});
    if (pj != pk) storeu(table + pj * kFftSlotFloats, {_mm256_mul_ps(xj.re, s), _mm256_mul_ps(xj.im, s)});
  }
}

void LaneFft::multiply_spectrum(float* buf, const float* table) const {
  for (int64_t k = 0; k <= m_ / 2; ++k) {
    const int64_t j = m_ - k;
    const int64_t pk = position(k), pj = k == 0 ? m_ : position(j);  // pj: the table's slot of X[j]
    const Cx za = load(buf + pk * kFftSlotFloats);
    const Cx zb = k == 0 ? za : load(buf + pj * kFftSlotFloats);
    const __m256 wr = _mm256_set1_ps(post_re_[k]), wi = _mm256_set1_ps(post_im_[k]);
    const Cx e = add(za, conj(zb));
    const Cx wo = mul_scalar(times_minus_i(sub(za, conj(zb))), wr, wi);
    const Cx pk_prod = mul(add(e, wo), loadu(table + pk * kFftSlotFloats));
    const Cx pj_prod = mul(conj(sub(e, wo)), loadu(table + pj * kFftSlotFloats));
    const Cx e2 = add(pk_prod, conj(pj_prod));
    const Cx o2 = mul_scalar_conj(sub(pk_prod, conj(pj_prod)), wr, wi);
    store(buf + pk * kFftSlotFloats, add(e2, times_i(o2)));
    if (k != 0 && pj != pk) store(buf + pj * kFftSlotFloats, add(conj(e2), times_i(conj(o2))));
  }
}

}  // namespace seqrun::backends::cpu
