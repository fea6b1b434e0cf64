// Private to backends/cpu: radix-2 FFTs of 8 real signals at once, one per AVX2 lane (LTIScan's FFT path).
//
// LaneFft is a plan for real signals of length n (a power of two, >= 4). The signals are packed the usual
// way for a real FFT, z[k] = x[2k] + i·x[2k+1] for k < m = n/2, and transformed as m-point complex FFTs;
// lanes are independent signals (8 channels of a layer), so every butterfly is plain vector arithmetic with
// no shuffles. A buffer holds m complex bins, bin slot s at floats [16·s, 16·s + 16): the 8 real parts, then
// the 8 imaginary parts (32-byte aligned). `forward` is decimation in frequency (natural order in,
// bit-reversed out) and `inverse` decimation in time (bit-reversed in, natural order out), so a convolution
// never permutes: forward, multiply_spectrum, inverse. The bit-reversed slot of bin k is position(k).
//
// Spectrum tables (what multiply_spectrum multiplies by) have m + 1 slots: X[k] of the real signal at
// position(k) for k < m, and X[m] (the Nyquist bin) at slot m. Scaling: `spectrum` stores scale·2·Y for a
// signal y; forward → multiply_spectrum(T) → inverse leaves the real signal whose DFT is 2n·X·T, so a table
// made with scale = 1 / (4n) makes the three steps the exact circular convolution x ⊛ y.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace seqrun::backends::cpu {

constexpr int kFftLanes = 8;
constexpr int64_t kFftSlotFloats = 2 * kFftLanes;  // one complex bin of 8 lanes

class LaneFft {
 public:
  explicit LaneFft(int64_t n);
  int64_t size() const { return n_; }
  int64_t half() const { return m_; }  // complex bins of a buffer; a spectrum table has half() + 1 slots
  int64_t position(int64_t k) const { return rev_[static_cast<size_t>(k)]; }

  void forward(float* buf) const;
  // Unscaled inverse (conjugate twiddles): inverse(forward(z)) = m·z.
  void inverse(float* buf) const;
  // From forward() of packed real signals: the table of scale·2·X (m + 1 slots, see above).
  void spectrum(const float* buf, float scale, float* table) const;
  // buf holds forward() of packed real signals x; afterwards, what inverse() turns into the real signals
  // whose DFT is 2n·X·T (T the table).
  void multiply_spectrum(float* buf, const float* table) const;

 private:
  int64_t n_, m_;
  std::vector<int64_t> rev_;  // bit reversal of k < m (log2 m bits)
  std::vector<float> stage_re_,
      stage_im_;  // per stage of half-size h: e^{-iπj/h}, j < h, stages h = 1, 2, 4..
  std::vector<float> post_re_, post_im_;  // e^{-2πik/n}, k <= m/2 (the real-signal split)
};

}  // namespace seqrun::backends::cpu
