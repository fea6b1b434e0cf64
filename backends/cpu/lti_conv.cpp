// LTIScan's FFT path on the CPU (lti_scan.cpp holds the kernel, the recurrence and the choice): the kernel
// K[h, l] = Re(Σ_n C dB dA^l), its spectrum table, and the per-item convolution y = K ∗ u + Dskip·u over 8
// channels at once (one per AVX2 lane, lti_fft.h). AVX2 + FMA.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/lti_scan.h"

namespace seqrun::backends::cpu {
namespace {

// K[h, l] = Re(Σ_n C dB dA^l) for the 8 channels of group g, l < L, packed into `buf` as a real FFT input
// (lane = channel; zeros past L and for channels past H). In blocks of kLtiPowerBlock steps from l0:
// K[l0 + r] = Re(Σ_n V_n · dA_n^r) with V_n = C dB dA^{l0} kept in double and the powers dA^r in a table, so
// no rounding error accumulates along l; per block a [kLtiPowerBlock × N] complex matrix-vector product
// vectorized over r (2 FMA per mode and 8 steps).
void pack_kernel(const LtiShape& s, const LtiArgs& a, int64_t g, const LaneFft& fft, const KernelScratch& k,
                 float* buf) {
  std::memset(buf, 0, sizeof(float) * fft.half() * kFftSlotFloats);
  const int64_t N = s.modes, L = s.steps;
  for (int lane = 0; lane < kFftLanes; ++lane) {
    const int64_t h = g * kFftLanes + lane;
    if (h >= s.channels) break;
    // step = dA^r for r = 0 .. R, where R = min(L, kLtiPowerBlock): modes inner, so the N product chains
    // overlap.
    const int64_t R = std::min(L, kLtiPowerBlock);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t i = h * N + n;
      const double b_re = a.b_re[i], b_im = a.b_im != nullptr ? a.b_im[i] : 0.0;
      const double c_re = a.c_re[i], c_im = a.c_im != nullptr ? a.c_im[i] : 0.0;
      k.weight_re[n] = c_re * b_re - c_im * b_im;  // W = C · dB
      k.weight_im[n] = c_re * b_im + c_im * b_re;
      k.step_re[n] = 1.0;
      k.step_im[n] = 0.0;
    }
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t n = 0; n < N; ++n) {
        const double d_re = a.a_re[h * N + n], d_im = a.a_im != nullptr ? a.a_im[h * N + n] : 0.0;
        const double p_re = k.step_re[n], p_im = k.step_im[n];
        k.powers_re[n * kLtiPowerBlock + r] = static_cast<float>(p_re);
        k.powers_im[n * kLtiPowerBlock + r] = static_cast<float>(p_im);
        k.step_re[n] = p_re * d_re - p_im * d_im;
        k.step_im[n] = p_re * d_im + p_im * d_re;
      }
    }
    for (int64_t n = 0; n < N; ++n) {  // powers past R are never read: zeros keep the products finite
      std::fill(k.powers_re + n * kLtiPowerBlock + R, k.powers_re + (n + 1) * kLtiPowerBlock, 0.0f);
      std::fill(k.powers_im + n * kLtiPowerBlock + R, k.powers_im + (n + 1) * kLtiPowerBlock, 0.0f);
    }
    for (int64_t l0 = 0; l0 < L; l0 += kLtiPowerBlock) {
      __m256 acc[kLtiPowerBlock / 8];
      for (__m256& v : acc) v = _mm256_setzero_ps();
      for (int64_t n = 0; n < N; ++n) {
        const __m256 vr = _mm256_set1_ps(static_cast<float>(k.weight_re[n]));
        const __m256 vi = _mm256_set1_ps(static_cast<float>(k.weight_im[n]));
        const float* pr = k.powers_re + n * kLtiPowerBlock;
        const float* pi = k.powers_im + n * kLtiPowerBlock;
        for (int q = 0; q < kLtiPowerBlock / 8; ++q) {
          acc[q] = _mm256_fmadd_ps(vr, _mm256_loadu_ps(pr + 8 * q),
                                   _mm256_fnmadd_ps(vi, _mm256_loadu_ps(pi + 8 * q), acc[q]));
        }
        const double next_re = k.weight_re[n] * k.step_re[n] - k.weight_im[n] * k.step_im[n];
        k.weight_im[n] = k.weight_re[n] * k.step_im[n] + k.weight_im[n] * k.step_re[n];
        k.weight_re[n] = next_re;
      }
      alignas(32) float values[kLtiPowerBlock];
      for (int q = 0; q < kLtiPowerBlock / 8; ++q) _mm256_store_ps(values + 8 * q, acc[q]);
      const int64_t count = std::min(kLtiPowerBlock, L - l0);
      for (int64_t r = 0; r < count; ++r) {
        const int64_t l = l0 + r;
        buf[(l / 2) * kFftSlotFloats + (l % 2) * kFftLanes + lane] = values[r];
      }
    }
  }
}

}  // namespace

// The spectrum table of K for every group: [groups][m + 1 slots][16 floats]; `buf` is scratch of m slots.
void build_kernel_table(const LtiShape& s, const LtiArgs& a, const LaneFft& fft, int64_t g, float* buf,
                        const KernelScratch& scratch, float* table) {
  pack_kernel(s, a, g, fft, scratch, buf);
  fft.forward(buf);
  fft.spectrum(buf, 1.0f / (4.0f * static_cast<float>(fft.size())),
               table + g * (fft.half() + 1) * kFftSlotFloats);
}

// y = K ∗ u + Dskip·u for batch b and the channels of group g.
void convolve_group(const LtiShape& s, const LtiArgs& a, const LaneFft& fft, const float* table, int64_t b,
                    int64_t g, float* buf) {
  const int64_t L = s.steps, m = fft.half();
  const int lanes = static_cast<int>(std::min<int64_t>(kFftLanes, s.channels - g * kFftLanes));
  const float* u = a.u + (b * s.channels + g * kFftLanes) * L;  // lane j's row: u + j·L
  float* y = a.y + (b * s.channels + g * kFftLanes) * L;
  std::memset(buf, 0, sizeof(float) * m * kFftSlotFloats);
  for (int j = 0; j < lanes; ++j) {
    const float* row = u + j * L;
    for (int64_t l = 0; l < L; ++l) buf[(l / 2) * kFftSlotFloats + (l % 2) * kFftLanes + j] = row[l];
  }
  fft.forward(buf);
  fft.multiply_spectrum(buf, table + g * (m + 1) * kFftSlotFloats);
  fft.inverse(buf);
  for (int j = 0; j < lanes; ++j) {
    const float* row = u + j * L;
    float* out = y + j * L;
    const float d = a.skip != nullptr ? a.skip[g * kFftLanes + j] : 0.0f;
    for (int64_t l = 0; l < L; ++l)
      out[l] = buf[(l / 2) * kFftSlotFloats + (l % 2) * kFftLanes + j] + d * row[l];
  }
}

}  // namespace seqrun::backends::cpu
