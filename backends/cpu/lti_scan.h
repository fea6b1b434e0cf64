// Private to backends/cpu (and its tests and benchmark): how LTIScan's CPU kernel (lti_scan.cpp) chooses
// between the recurrence and the FFT convolution when `algorithm` is auto, and what lti_scan.cpp shares with
// the FFT path (lti_conv.cpp).
//
// A cost model whose constants were measured with seqrun-bench-lti (one thread, this repo's build machine;
// the tables and the command are in tools/bench/ssm/README.md), in ns per (channel, step):
//   recurrence R(N): flat in L, grows with the number of 8-mode vectors (latency-bound below 16 modes,
//                    FMA-bound above: 8 vector operations per 8 modes and step);
//   convolution F(n): for the FFT size n = 2^k >= 2L - 1, about 0.22·log2(n) - 0.15 (forward, product and
//                    inverse over 8 channels per vector);
//   K at run time:   per channel and run, whatever the batch, when dA, dB, C are not constants at plan time:
//                    0.5·N·min(L, 64) + 300 (the power table, fixed costs) + (0.5·F(n) + 0.044·N)·L (the
//                    [64 x N] products per block of steps and one forward FFT).
// The FFT runs when it is expected to finish first, counting how the work splits over the threads
// (lti_fft_is_faster). For the exported S4D layer (N = 32 complex modes, constant coefficients) that is every
// L from 1 to 2^19: the FFT costs 1.7 to 3.2 ns per step up to L = 16384 against the recurrence's 4.3. With
// few modes the recurrence is cheap and wins long sequences: past L = 512 for N <= 8, past 2048 for N = 16.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backends/cpu/lti_fft.h"

namespace seqrun::backends::cpu {

// Measured recurrent cost per (channel, step) at 1, 2, 4 and 8 vectors of 8 modes; linear between, and
// proportional beyond 8 vectors.
inline double lti_recurrent_ns(int64_t modes) {
  const double vectors = static_cast<double>((std::max<int64_t>(modes, 1) + 7) / 8);
  constexpr double kAt[4][2] = {{1, 2.2}, {2, 2.6}, {4, 4.4}, {8, 8.3}};
  if (vectors >= kAt[3][0]) return kAt[3][1] * vectors / kAt[3][0];
  for (int i = 0; i < 3; ++i) {
    if (vectors <= kAt[i + 1][0]) {
      const double f = (vectors - kAt[i][0]) / (kAt[i + 1][0] - kAt[i][0]);
      return kAt[i][1] + f * (kAt[i + 1][1] - kAt[i][1]);
    }
  }
  return kAt[3][1];
}

// The FFT size for a causal convolution of L steps: the smallest power of two >= max(4, 2L - 1).
inline int64_t lti_fft_size(int64_t steps) {
  int64_t n = 4;
  while (n < 2 * steps - 1) n *= 2;
  return n;
}

inline double lti_fft_ns(int64_t fft_size) {
  int log2n = 0;
  while ((int64_t{1} << log2n) < fft_size) ++log2n;
  return 0.22 * log2n - 0.15;
}

// Building K and its spectrum for one channel, in ns: the powers dA^r for r < min(L, 64), a fixed part, and
// per step the [64 x N] products and half a convolution's FFT work.
inline double lti_kernel_ns(int64_t steps, int64_t modes) {
  const double N = static_cast<double>(modes), L = static_cast<double>(steps);
  return 0.5 * N * static_cast<double>(std::min<int64_t>(steps, 64)) + 300.0 +
         (0.5 * lti_fft_ns(lti_fft_size(steps)) + 0.044 * N) * L;
}

// True when the convolution is expected to be faster (the state-free case: no h0, no final state) on
// `threads` threads: the recurrence splits into B·H rows, the convolution into B·ceil(H/8) items of 8
// channels (and K into ceil(H/8) items), so with more threads than items the convolution loses parallelism.
inline bool lti_fft_is_faster(int64_t batch, int64_t channels, int64_t steps, int64_t modes,
                              bool kernel_at_prepare, int threads) {
  const int64_t t = std::max(threads, 1), groups = (channels + 7) / 8;
  auto rounds = [t](int64_t items) { return static_cast<double>((items + t - 1) / t); };
  const double L = static_cast<double>(steps);
  const double recurrent = rounds(batch * channels) * L * lti_recurrent_ns(modes);
  double conv = rounds(batch * groups) * 8.0 * L * lti_fft_ns(lti_fft_size(steps));
  if (!kernel_at_prepare) conv += rounds(groups) * 8.0 * lti_kernel_ns(steps, modes);
  return conv < recurrent;
}

// ---- what lti_scan.cpp (the kernel, the recurrence) and lti_conv.cpp (the FFT path) share ----

constexpr int64_t kLtiPowerBlock = 64;  // steps per block of K (build_kernel_table)

struct LtiShape {
  int64_t batch = 0, channels = 0, steps = 0, modes = 0;
  int64_t padded_modes() const { return (modes + 7) / 8 * 8; }
  int64_t groups() const { return (channels + kFftLanes - 1) / kFftLanes; }  // 8-channel groups (FFT)
};

// One run's tensors; absent optional inputs and outputs are null.
struct LtiArgs {
  const float *u, *a_re, *a_im, *b_re, *b_im, *c_re, *c_im, *skip, *h0_re, *h0_im;
  float *y, *h_re, *h_im;
};

// Scratch of pack_kernel for N modes: the powers dA^r (r < kLtiPowerBlock) as floats, block weights in
// double.
struct KernelScratch {
  float *powers_re, *powers_im;                       // [N][kLtiPowerBlock]
  double *weight_re, *weight_im, *step_re, *step_im;  // [N]: W·dA^{l0}, and dA^kLtiPowerBlock (when L > it)
  static size_t bytes(int64_t N) {
    return (sizeof(float) * 2 * N * kLtiPowerBlock + sizeof(double) * 4 * N + 63) / 64 * 64;
  }
  static KernelScratch at(void* p, int64_t N) {
    KernelScratch k;
    k.powers_re = static_cast<float*>(p);
    k.powers_im = k.powers_re + N * kLtiPowerBlock;
    k.weight_re = reinterpret_cast<double*>(k.powers_im + N * kLtiPowerBlock);
    k.weight_im = k.weight_re + N;
    k.step_re = k.weight_im + N;
    k.step_im = k.step_re + N;
    return k;
  }
};

// K's spectrum for the 8 channels of group g into table + g·(m + 1)·16 floats (lti_fft.h's table layout,
// scaled for the convolution); `buf` is one FFT buffer of scratch.
void build_kernel_table(const LtiShape& s, const LtiArgs& a, const LaneFft& fft, int64_t g, float* buf,
                        const KernelScratch& scratch, float* table);

// y = K ∗ u + Dskip·u for batch b and the channels of group g; `buf` is one FFT buffer of scratch.
void convolve_group(const LtiShape& s, const LtiArgs& a, const LaneFft& fft, const float* table, int64_t b,
                    int64_t g, float* buf);

}  // namespace seqrun::backends::cpu
