// Depthwise 1-D Conv (group = channels = output channels, stride 1; any kernel size, dilation and
// pads): the token-mixing conv of Mamba-style blocks exported as a plain ONNX Conv (AVX2 + OpenMP).
//
// One (batch, channel) row per OpenMP iteration. Output positions whose taps all fall inside the
// row run 8 at a time, one FMA per tap on unaligned loads; the few positions near the edges (the
// causal padding) take a scalar loop that skips taps outside the row. Memory-bound. oneDNN runs this
// shape through gemm:jit (no 1-D depthwise kernel in 2.6): [4, 512, 1024] with k = 4 took 3.1 ms there
// (5.7 ms through its 2-D depthwise kernel with H = 1, reorders included) and 0.45 ms here (1 thread).
#include <immintrin.h>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/reference/nn_window.h"

namespace seqrun::backends::cpu {
namespace {

class DepthwiseConv1dKernel : public Kernel {
 public:
  DepthwiseConv1dKernel(int64_t rows, int64_t channels, int64_t in_len, int64_t out_len, int64_t taps,
                        int64_t dilation, int64_t pad, bool has_bias)
      : rows_(rows),
        channels_(channels),
        in_len_(in_len),
        out_len_(out_len),
        taps_(taps),
        dilation_(dilation),
        pad_(pad),
        has_bias_(has_bias) {}

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* x = inputs[0].as<const float>();
    const float* w = inputs[1].as<const float>();
    const float* b = has_bias_ ? inputs[2].as<const float>() : nullptr;
    float* y = outputs[0].as<float>();
    // Interior: t - pad >= 0 and t - pad + (taps - 1) * dilation < in_len.
    const int64_t first = std::min(out_len_, pad_);
    const int64_t last = std::max(first, std::min(out_len_, in_len_ + pad_ - (taps_ - 1) * dilation_));
#pragma omp parallel for schedule(static) if (rows_ * out_len_ * taps_ >= kParallelMinElements)
    for (int64_t row = 0; row < rows_; ++row) {
      const int64_t c = row % channels_;
      const float* src = x + row * in_len_;
      const float* wc = w + c * taps_;
      const float bias = b != nullptr ? b[c] : 0.0f;
      float* dst = y + row * out_len_;
      auto edge = [&](int64_t t) {
        float acc = bias;
        for (int64_t k = 0; k < taps_; ++k) {
          const int64_t i = t - pad_ + k * dilation_;
          if (i >= 0 && i < in_len_) acc += src[i] * wc[k];
        }
        dst[t] = acc;
      };
      for (int64_t t = 0; t < first; ++t) edge(t);
      int64_t t = first;
      for (; t + 8 <= last; t += 8) {
        __m256 acc = _mm256_set1_ps(bias);
        for (int64_t k = 0; k < taps_; ++k) {
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(src + t - pad_ + k * dilation_), _mm256_set1_ps(wc[k]), acc);
        }
        _mm256_storeu_ps(dst + t, acc);
      }
      for (; t < out_len_; ++t) edge(t);
    }
    return Status::ok();
  }
  std::string label() const override {
    return "avx2:depthwise_conv1d";
  }

 private:
  int64_t rows_, channels_, in_len_, out_len_, taps_, dilation_, pad_;
  bool has_bias_;
};

}  // namespace

std::unique_ptr<Kernel> make_depthwise_conv1d_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() < 2 || info.outputs.size() != 1) return nullptr;
  const Shape& x = info.inputs[0].shape;
  const Shape& w = info.inputs[1].shape;
  if (x.size() != 3 || w.size() != 3) return nullptr;
  const int64_t channels = x[1];
  if (info.node->get_int("group", 1) != channels || w[0] != channels || w[1] != 1 || channels <= 0)
    return nullptr;
  if (info.input_present(2) && info.inputs[2].shape != Shape{channels}) return nullptr;
  const std::vector<int64_t> kernel_attr = info.node->get_ints("kernel_shape");
  if (!kernel_attr.empty() && kernel_attr != std::vector<int64_t>{w[2]}) return nullptr;
  reference::KernelContext ctx{*info.node, {}, {}, nullptr};
  auto g = reference::nn_detail::resolve_window(ctx, {x[2]}, {w[2]}, false);
  if (!g || g->strides[0] != 1) return nullptr;
  if (info.outputs[0].shape != Shape{x[0], channels, g->out[0]}) return nullptr;
  return std::make_unique<DepthwiseConv1dKernel>(x[0] * channels, channels, x[2], g->out[0], w[2],
                                                 g->dilations[0], g->pad_begin[0], info.input_present(2));
}

}  // namespace seqrun::backends::cpu
