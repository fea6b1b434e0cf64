// LTIScan (semantics: ir/ops/lti_scan.cpp) on the CPU, two ways, AVX2 + FMA, OpenMP:
//
// Recurrent, O(L·N) per channel: the scan itself. Layout u, y [B, H, L]; coefficients [H, N]; state [B, H,
// N]. One work item = one (batch, channel) row; the row's N complex modes sit in vector lanes (padded to a
// multiple of 8 with zero coefficients, whose state stays 0), at most 32 modes per pass kept in registers.
// Time runs in blocks of kBlockSteps: per step, s = dA·s + dB·u and 8 partial readout sums; after the block a
// transposing reduction turns the partial sums of 8 steps into 8 outputs (+ Dskip·u). Bound: compute, 8
// vector operations per 8 modes and step.
//
// FFT (lti_conv.cpp), O(L log L) per channel: the system is time-invariant, so y = K ∗ u + Dskip·u with
// K[h, l] = Re(Σ_n C dB dA^l). K is computed for l < L (no rounding error accumulates along l),
// transformed once per plan when dA, dB and C are constants (the plan folds the S4D discretization into
// constants), else once per run; then per work item — one batch and 8 channels, one per AVX2 lane
// (lti_fft.h) — u is packed, transformed (n = 2^k >= 2L - 1, so the circular convolution is the causal one),
// multiplied by K's spectrum and transformed back. Needs no state in and gives no state out. Bound: the FFT
// passes over a 16·n/2-float buffer (L1/L2), ~10 vector operations per butterfly. Causal up to rounding: a
// NaN or Inf in u reaches every step of its channel, not only the later ones.
//
// Which path: `algorithm` = recurrent | fft forces one (fft falls back to the recurrence when h0 is given or
// the final state is wanted, which the convolution does not produce); auto asks the cost model measured with
// seqrun-bench-lti (lti_scan.h, tools/bench/ssm/README.md).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/lti_scan.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kBlockSteps = 64;  // steps per block: the partial sums stay in L1
constexpr int64_t kGroupModes = 32;  // modes per pass (4 vectors in registers)
constexpr int64_t kMaxModes = 1024;  // larger N declines (the reference runs it)

enum Input { kU, kDaRe, kDaIm, kDbRe, kDbIm, kCRe, kCIm, kSkip, kH0Re, kH0Im };

// Lane j of the result is the sum of the 8 floats v[8j .. 8j+7].
inline __m256 transpose_sum8(const float* v) {
  const __m256 s01 = _mm256_hadd_ps(_mm256_load_ps(v), _mm256_load_ps(v + 8));
  const __m256 s23 = _mm256_hadd_ps(_mm256_load_ps(v + 16), _mm256_load_ps(v + 24));
  const __m256 s45 = _mm256_hadd_ps(_mm256_load_ps(v + 32), _mm256_load_ps(v + 40));
  const __m256 s67 = _mm256_hadd_ps(_mm256_load_ps(v + 48), _mm256_load_ps(v + 56));
  const __m256 s0123 = _mm256_hadd_ps(s01, s23);
  const __m256 s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                       _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

// ---- the recurrent path ----

// One row's coefficients (padded with zeros), its state and one block's partial sums. coef and state point
// into the thread's part of the workspace (8 arrays of padded_modes floats).
struct RowBuffers {
  alignas(32) float acc[kBlockSteps * 8];
  alignas(32) float u[kBlockSteps];
  float* coef = nullptr;   // 6 arrays: a_re, a_im, b_re, b_im, c_re, c_im
  float* state = nullptr;  // s_re then s_im
};

// kVectors (1..4) vectors of 8 modes from mode `first` on, `steps` steps; acc receives (kAccumulate: adds)
// 8 partial sums per step.
template <int kVectors, bool kAccumulate>
void scan_modes(int64_t steps, int64_t first, int64_t npad, RowBuffers& r) {
  const float* c = r.coef + first;
  __m256 ar[kVectors], ai[kVectors], br[kVectors], bi[kVectors], cr[kVectors], ci[kVectors];
  __m256 sr[kVectors], si[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    ar[v] = _mm256_loadu_ps(c + 0 * npad + 8 * v);
    ai[v] = _mm256_loadu_ps(c + 1 * npad + 8 * v);
    br[v] = _mm256_loadu_ps(c + 2 * npad + 8 * v);
    bi[v] = _mm256_loadu_ps(c + 3 * npad + 8 * v);
    cr[v] = _mm256_loadu_ps(c + 4 * npad + 8 * v);
    ci[v] = _mm256_loadu_ps(c + 5 * npad + 8 * v);
    sr[v] = _mm256_loadu_ps(r.state + first + 8 * v);
    si[v] = _mm256_loadu_ps(r.state + npad + first + 8 * v);
  }
  for (int64_t t = 0; t < steps; ++t) {
    const __m256 x = _mm256_broadcast_ss(r.u + t);
    __m256 sum = kAccumulate ? _mm256_load_ps(r.acc + 8 * t) : _mm256_setzero_ps();
    for (int v = 0; v < kVectors; ++v) {
      const __m256 next_re =
          _mm256_fmadd_ps(ar[v], sr[v], _mm256_fnmadd_ps(ai[v], si[v], _mm256_mul_ps(br[v], x)));
      const __m256 next_im =
          _mm256_fmadd_ps(ar[v], si[v], _mm256_fmadd_ps(ai[v], sr[v], _mm256_mul_ps(bi[v], x)));
      sr[v] = next_re;
      si[v] = next_im;
      sum = _mm256_fnmadd_ps(ci[v], next_im, _mm256_fmadd_ps(cr[v], next_re, sum));
    }
    _mm256_store_ps(r.acc + 8 * t, sum);
  }
  for (int v = 0; v < kVectors; ++v) {
    _mm256_storeu_ps(r.state + first + 8 * v, sr[v]);
    _mm256_storeu_ps(r.state + npad + first + 8 * v, si[v]);
  }
}

template <bool kAccumulate>
void scan_group(int64_t vectors, int64_t steps, int64_t first, int64_t npad, RowBuffers& r) {
  switch (vectors) {
    case 1:
      return scan_modes<1, kAccumulate>(steps, first, npad, r);
    case 2:
      return scan_modes<2, kAccumulate>(steps, first, npad, r);
    case 3:
      return scan_modes<3, kAccumulate>(steps, first, npad, r);
    default:
      return scan_modes<4, kAccumulate>(steps, first, npad, r);
  }
}

// The recurrence over row `row` (= b·H + h).
void scan_row(const LtiShape& s, const LtiArgs& a, int64_t row, RowBuffers& r) {
  const int64_t L = s.steps, N = s.modes, npad = s.padded_modes(), h = row % s.channels;
  const float* sources[6] = {a.a_re, a.a_im, a.b_re, a.b_im, a.c_re, a.c_im};
  std::fill(r.coef, r.coef + 6 * npad, 0.0f);
  std::fill(r.state, r.state + 2 * npad, 0.0f);
  for (int k = 0; k < 6; ++k) {
    if (sources[k] != nullptr) std::memcpy(r.coef + k * npad, sources[k] + h * N, sizeof(float) * N);
  }
  if (a.h0_re != nullptr) std::memcpy(r.state, a.h0_re + row * N, sizeof(float) * N);
  if (a.h0_im != nullptr) std::memcpy(r.state + npad, a.h0_im + row * N, sizeof(float) * N);
  const float* u = a.u + row * L;
  float* y = a.y + row * L;
  const __m256 skip = _mm256_set1_ps(a.skip != nullptr ? a.skip[h] : 0.0f);
  for (int64_t t0 = 0; t0 < L; t0 += kBlockSteps) {
    const int64_t steps = std::min(kBlockSteps, L - t0);
    std::memcpy(r.u, u + t0, sizeof(float) * steps);
    std::fill(r.u + steps, r.u + kBlockSteps, 0.0f);
    for (int64_t first = 0; first < npad; first += kGroupModes) {
      const int64_t vectors = std::min(kGroupModes, npad - first) / 8;
      if (first == 0) {
        scan_group<false>(vectors, steps, first, npad, r);
      } else {
        scan_group<true>(vectors, steps, first, npad, r);
      }
    }
    std::fill(r.acc + 8 * steps, r.acc + 8 * ((steps + 7) / 8 * 8), 0.0f);
    for (int64_t j = 0; j < steps; j += 8) {
      const __m256 out = _mm256_fmadd_ps(skip, _mm256_load_ps(r.u + j), transpose_sum8(r.acc + 8 * j));
      if (steps - j >= 8) {
        _mm256_storeu_ps(y + t0 + j, out);
      } else {
        alignas(32) float tail[8];
        _mm256_store_ps(tail, out);
        std::memcpy(y + t0 + j, tail, sizeof(float) * (steps - j));
      }
    }
  }
  if (a.h_re != nullptr) std::memcpy(a.h_re + row * N, r.state, sizeof(float) * N);
  if (a.h_im != nullptr) std::memcpy(a.h_im + row * N, r.state + npad, sizeof(float) * N);
}

class LtiScanKernel : public Kernel {
 public:
  LtiScanKernel(const LtiShape& s, bool use_fft, int threads)
      : s_(s), fft_on_(use_fft), threads_(std::max(1, threads)) {
    if (fft_on_) {
      fft_ = std::make_unique<LaneFft>(lti_fft_size(s.steps));
      buffer_bytes_ = sizeof(float) * static_cast<size_t>(fft_->half() * kFftSlotFloats);
      table_floats_ = s.groups() * (fft_->half() + 1) * kFftSlotFloats;
    }
  }

  Status prepare(const KernelInfo& info) override {
    if (!fft_on_) return Status::ok();
    for (int i : {kDaRe, kDaIm, kDbRe, kDbIm, kCRe, kCIm}) {
      if (info.input_present(i) && !input_is_constant(info, i)) return Status::ok();  // K every run
    }
    LtiArgs a = args(info.inputs, {});
    table_.assign(static_cast<size_t>(table_floats_), 0.0f);
    std::vector<char> scratch(thread_bytes() + 64);
    char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
    for (int64_t g = 0; g < s_.groups(); ++g) {
      build_kernel_table(s_, a, *fft_, g, reinterpret_cast<float*>(base),
                         KernelScratch::at(base + buffer_bytes_, s_.modes), table_.data());
    }
    return Status::ok();
  }

  size_t workspace_bytes() const override {
    if (!fft_on_) return row_bytes() * static_cast<size_t>(threads_);
    const size_t table = table_.empty() ? sizeof(float) * static_cast<size_t>(table_floats_) : 0;
    return (table + 63) / 64 * 64 + thread_bytes() * static_cast<size_t>(threads_);
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    const LtiArgs a = args(inputs, outputs);
    const int threads = std::max(1, std::min(threads_, omp_get_max_threads()));
    const bool parallel = threads > 1 && s_.batch * s_.channels * s_.steps * s_.modes >= kParallelMinElements;
    if (!fft_on_) {
      const int64_t rows = s_.batch * s_.channels;
#pragma omp parallel num_threads(threads) if (parallel)
      {
        RowBuffers r;
        r.coef = reinterpret_cast<float*>(static_cast<char*>(workspace) + row_bytes() * omp_get_thread_num());
        r.state = r.coef + 6 * s_.padded_modes();
#pragma omp for schedule(static)
        for (int64_t row = 0; row < rows; ++row) scan_row(s_, a, row, r);
      }
      return Status::ok();
    }
    char* base = static_cast<char*>(workspace);
    const float* table = table_.data();
    if (table_.empty()) {
      float* built = reinterpret_cast<float*>(base);
      base += (sizeof(float) * static_cast<size_t>(table_floats_) + 63) / 64 * 64;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
      for (int64_t g = 0; g < s_.groups(); ++g) {
        char* mine = base + thread_bytes() * omp_get_thread_num();
        build_kernel_table(s_, a, *fft_, g, reinterpret_cast<float*>(mine),
                           KernelScratch::at(mine + buffer_bytes_, s_.modes), built);
      }
      table = built;
    }
    const int64_t items = s_.batch * s_.groups();
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t item = 0; item < items; ++item) {
      float* buf = reinterpret_cast<float*>(base + thread_bytes() * omp_get_thread_num());
      convolve_group(s_, a, *fft_, table, item / s_.groups(), item % s_.groups(), buf);
    }
    return Status::ok();
  }

  std::string label() const override {
    return fft_on_ ? "avx2:lti_scan_fft" : "avx2:lti_scan_recurrent";
  }

 private:
  // The FFT path's per-thread scratch: one FFT buffer, then pack_kernel's scratch.
  size_t thread_bytes() const {
    return buffer_bytes_ + KernelScratch::bytes(s_.modes);
  }
  // The recurrent path's per-thread scratch: 8 arrays of padded_modes floats, 64-byte rounded.
  size_t row_bytes() const {
    return (sizeof(float) * 8 * static_cast<size_t>(s_.padded_modes()) + 63) / 64 * 64;
  }

  static LtiArgs args(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out) {
    auto get = [&](int i) -> const float* {
      return i < static_cast<int>(in.size()) && in[i].dtype != DType::undefined ? in[i].as<const float>()
                                                                                : nullptr;
    };
    LtiArgs a;
    a.u = get(kU);
    a.a_re = get(kDaRe);
    a.a_im = get(kDaIm);
    a.b_re = get(kDbRe);
    a.b_im = get(kDbIm);
    a.c_re = get(kCRe);
    a.c_im = get(kCIm);
    a.skip = get(kSkip);
    a.h0_re = get(kH0Re);
    a.h0_im = get(kH0Im);
    a.y = !out.empty() ? out[0].as<float>() : nullptr;
    a.h_re = out.size() > 1 ? out[1].as<float>() : nullptr;
    a.h_im = out.size() > 2 ? out[2].as<float>() : nullptr;
    return a;
  }

  LtiShape s_;
  bool fft_on_;
  int threads_;
  std::unique_ptr<LaneFft> fft_;
  size_t buffer_bytes_ = 0;
  int64_t table_floats_ = 0;
  std::vector<float> table_;  // K's spectrum, built by prepare() when the coefficients are constants
};

}  // namespace

std::unique_ptr<Kernel> make_lti_scan_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() < 6 || info.outputs.empty() || info.outputs.size() > 3)
    return nullptr;
  for (int i : {kU, kDaRe, kDbRe, kCRe}) {
    if (!info.input_present(i)) return nullptr;
  }
  const std::string algorithm = info.node->get_string("algorithm", "auto");
  if (algorithm != "auto" && algorithm != "recurrent" && algorithm != "fft") return nullptr;
  const Shape& u = info.inputs[kU].shape;
  const Shape& a = info.inputs[kDaRe].shape;
  if (u.size() != 3 || a.size() != 2) return nullptr;
  LtiShape s;
  s.batch = u[0], s.channels = u[1], s.steps = u[2], s.modes = a[1];
  if (s.channels <= 0 || s.modes <= 0 || s.modes > kMaxModes || a[0] != s.channels) return nullptr;
  const Shape hn = {s.channels, s.modes}, bhn = {s.batch, s.channels, s.modes};
  for (int i = kDaRe; i <= kCIm; ++i) {
    if (info.input_present(i) && info.inputs[i].shape != hn) return nullptr;
  }
  if (info.input_present(kSkip) && info.inputs[kSkip].shape != Shape{s.channels}) return nullptr;
  for (int i : {kH0Re, kH0Im}) {
    if (info.input_present(i) && info.inputs[i].shape != bhn) return nullptr;
  }
  if (info.outputs[0].shape != u) return nullptr;
  for (size_t o = 1; o < info.outputs.size(); ++o) {
    if (info.outputs[o].shape != bhn) return nullptr;
  }
  // The convolution starts from a zero state and gives no final state.
  const bool fft_possible =
      s.steps > 0 && !info.input_present(kH0Re) && !info.input_present(kH0Im) && info.outputs.size() == 1;
  bool constant_kernel = true;
  for (int i : {kDaRe, kDaIm, kDbRe, kDbIm, kCRe, kCIm}) {
    if (info.input_present(i) && !input_is_constant(info, i)) constant_kernel = false;
  }
  bool use_fft = false;
  if (algorithm == "fft") {
    use_fft = fft_possible;
  } else if (algorithm == "auto") {
    use_fft = fft_possible && lti_fft_is_faster(s.batch, s.channels, s.steps, s.modes, constant_kernel,
                                                std::max(1, info.threads));
  }
  return std::make_unique<LtiScanKernel>(s, use_fft, info.threads);
}

}  // namespace seqrun::backends::cpu
