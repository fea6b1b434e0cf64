// CausalConvWithState (ONNX 27; ARCHITECTURE.md's CausalConv1d): Mamba's depthwise causal 1-D conv with
// an explicit (K-1)-token state and an optional SiLU, AVX2 + FMA, OpenMP.
//
// Layout: input, output [B, C, L]; weight [C, 1, K]; bias [C]; past_state, present [B, C, K-1]. Per
// (batch, channel) row the sequence is past_state ++ input (zeros without past_state) and
// output[t] = bias + Σ_k weight[k] · seq[t + k]. Outputs whose taps all read the input (t >= K-1) run 8
// at a time, one FMA per tap on unaligned loads; the first K-1 take a scalar loop that reads the state.
// present = the last K-1 elements of seq, so L = 1 with the state fed back is the one-token step.
// Parallel split: chunks of whole rows (about kChunkElements outputs each, so the decode step with
// L = 1 still forms vectors), statically over the threads; SiLU runs as a second vector pass over the
// chunk's outputs while they are in L1/L2. Memory-bound.
#include <immintrin.h>

#include <algorithm>
#include <string>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kChunkElements = 4096;  // outputs per work item (16 KiB)

class CausalConvKernel : public Kernel {
 public:
  CausalConvKernel(int64_t batch, int64_t channels, int64_t steps, int64_t taps, bool has_bias, bool has_past,
                   bool has_present, bool silu)
      : batch_(batch),
        channels_(channels),
        steps_(steps),
        taps_(taps),
        has_bias_(has_bias),
        has_past_(has_past),
        has_present_(has_present),
        silu_(silu) {}

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* x = inputs[0].as<const float>();
    const float* w = inputs[1].as<const float>();
    const float* bias = has_bias_ ? inputs[2].as<const float>() : nullptr;
    const float* past = has_past_ ? inputs[3].as<const float>() : nullptr;
    float* y = outputs[0].as<float>();
    float* present = has_present_ ? outputs[1].as<float>() : nullptr;
    const int64_t rows = batch_ * channels_;
    const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, steps_));
    const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    const bool parallel = rows * (steps_ + taps_) * taps_ >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t first = chunk * rows_per_chunk, last = std::min(rows, first + rows_per_chunk);
      for (int64_t row = first; row < last; ++row) {
        const int64_t c = row % channels_;
        conv_row(x + row * steps_, w + c * taps_, bias != nullptr ? bias[c] : 0.0f,
                 past != nullptr ? past + row * (taps_ - 1) : nullptr, y + row * steps_,
                 present != nullptr ? present + row * (taps_ - 1) : nullptr);
      }
      if (silu_) silu_in_place(y + first * steps_, (last - first) * steps_);
    }
    return Status::ok();
  }
  std::string label() const override {
    return "avx2:causal_conv";
  }

 private:
  void conv_row(const float* x, const float* w, float bias, const float* past, float* y,
                float* present) const {
    const int64_t P = taps_ - 1, L = steps_;
    // seq[i] = past[i] (0 without a state) for i < P, x[i - P] after.
    auto seq = [&](int64_t i) { return i >= P ? x[i - P] : (past != nullptr ? past[i] : 0.0f); };
    const int64_t edge = std::min(P, L);
    for (int64_t t = 0; t < edge; ++t) {
      float acc = bias;
      for (int64_t k = 0; k < taps_; ++k) acc += w[k] * seq(t + k);
      y[t] = acc;
    }
    int64_t t = edge;
    for (; t + 8 <= L; t += 8) {
      __m256 acc = _mm256_set1_ps(bias);
      for (int64_t k = 0; k < taps_; ++k)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + k - P), _mm256_set1_ps(w[k]), acc);
      _mm256_storeu_ps(y + t, acc);
    }
    for (; t < L; ++t) {
      float acc = bias;
      for (int64_t k = 0; k < taps_; ++k) acc += w[k] * x[t + k - P];
      y[t] = acc;
    }
    if (present != nullptr) {
      for (int64_t i = 0; i < P; ++i) present[i] = seq(L + i);
    }
  }

  static void silu_in_place(float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(y + i);
      _mm256_storeu_ps(y + i, _mm256_mul_ps(v, vec::sigmoid(v)));
    }
    if (i < n) {
      const __m256i mask = vec::tail_mask(n - i);
      const __m256 v = _mm256_maskload_ps(y + i, mask);
      _mm256_maskstore_ps(y + i, mask, _mm256_mul_ps(v, vec::sigmoid(v)));
    }
  }

  int64_t batch_, channels_, steps_, taps_;
  bool has_bias_, has_past_, has_present_, silu_;
};

}  // namespace

std::unique_ptr<Kernel> make_causal_conv_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() < 2 || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  if (!info.input_present(0) || !info.input_present(1)) return nullptr;
  const std::string activation = info.node->get_string("activation", "none");
  const bool silu = activation == "silu" || activation == "swish";
  if (!silu && activation != "none") return nullptr;
  const Shape& x = info.inputs[0].shape;
  const Shape& w = info.inputs[1].shape;
  if (x.size() != 3 || w.size() != 3) return nullptr;
  const int64_t B = x[0], C = x[1], L = x[2], K = w[2];
  if (w[0] != C || w[1] != 1 || K < 1) return nullptr;
  if (info.input_present(2) && info.inputs[2].shape != Shape{C}) return nullptr;
  if (info.input_present(3) && info.inputs[3].shape != Shape{B, C, K - 1}) return nullptr;
  if (info.outputs[0].shape != x) return nullptr;
  if (info.outputs.size() == 2 && info.outputs[1].shape != Shape{B, C, K - 1}) return nullptr;
  return std::make_unique<CausalConvKernel>(B, C, L, K, info.input_present(2), info.input_present(3),
                                            info.outputs.size() == 2, silu);
}

}  // namespace seqrun::backends::cpu
