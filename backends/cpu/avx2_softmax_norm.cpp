// Softmax / LogSoftmax (any axis), LayerNormalization and RMSNormalization (AVX2 + FMA, OpenMP).
//
// Softmax views X as [outer, len, inner] around the axis. Last axis (inner = 1): one row per
// OpenMP iteration, three vector passes (max, exp and sum, scale). Other axes: 8 inner positions
// per vector, the same three passes walking the axis with stride `inner`. A row's maximum is
// subtracted before exp (a non-finite maximum shifts by 0, as the reference does).
// The norms view X as [rows, row] (row = the dims from `axis` on), one row per iteration: two
// passes for the statistics (mean, then mean squared deviation; or the mean square for RMS) and
// one that writes; Scale and B must be [row]-shaped (or scalars). All memory-bound; in place is
// allowed (each element is read before its slot is written).
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

// Loads up to 8 floats, lanes past n set to `fill`.
inline __m256 load_partial(const float* p, int64_t n, __m256 fill) {
  if (n >= 8) return _mm256_loadu_ps(p);
  const __m256i mask = vec::tail_mask(n);
  return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask));
}

inline void store_partial(float* p, int64_t n, __m256 v) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, vec::tail_mask(n), v);
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax / LogSoftmax

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(bool log, int64_t outer, int64_t len, int64_t inner)
      : log_(log), outer_(outer), len_(len), inner_(inner) {}
  bool can_run_in_place(int output, int input) const override { return output == 0 && input == 0; }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* x = inputs[0].as<const float>();
    float* y = outputs[0].as<float>();
    const bool parallel = outer_ * len_ * inner_ >= kParallelMinElements;
    if (inner_ == 1) {
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t r = 0; r < outer_; ++r) last_axis_row(x + r * len_, y + r * len_);
    } else {
      const int64_t groups = (inner_ + 7) / 8;
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t item = 0; item < outer_ * groups; ++item) {
        const int64_t o = item / groups, j = (item % groups) * 8;
        strided_group(x + o * len_ * inner_ + j, y + o * len_ * inner_ + j, std::min<int64_t>(8, inner_ - j));
      }
    }
    return Status::ok();
  }
  std::string label() const override {
    return log_ ? "avx2:log_softmax" : "avx2:softmax";
  }

 private:
  void last_axis_row(const float* x, float* y) const {
    const __m256 minus_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    __m256 m0 = minus_inf, m1 = minus_inf, m2 = minus_inf, m3 = minus_inf;  // independent chains
    int64_t k = 0;
    for (; k + 32 <= len_; k += 32) {
      m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + k));
      m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + k + 8));
      m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + k + 16));
      m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + k + 24));
    }
    for (; k < len_; k += 8) m0 = _mm256_max_ps(m0, load_partial(x + k, len_ - k, minus_inf));
    float max_value = vec::hmax(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
    if (!std::isfinite(max_value)) max_value = 0.0f;
    const __m256 shift = _mm256_set1_ps(max_value);
    __m256 vsum = _mm256_setzero_ps();
    for (k = 0; k < len_; k += 8) {
      const int64_t n = std::min<int64_t>(8, len_ - k);
      const __m256 e = vec::exp(_mm256_sub_ps(load_partial(x + k, n, minus_inf), shift));
      vsum = _mm256_add_ps(vsum, e);
      if (!log_) store_partial(y + k, n, e);
    }
    const float sum = vec::hsum(vsum);
    if (log_) {
      const __m256 offset = _mm256_set1_ps(max_value + std::log(sum));
      for (k = 0; k < len_; k += 8) {
        const int64_t n = std::min<int64_t>(8, len_ - k);
        store_partial(y + k, n, _mm256_sub_ps(load_partial(x + k, n, minus_inf), offset));
      }
    } else {
      const __m256 scale = _mm256_set1_ps(1.0f / sum);
      for (k = 0; k < len_; k += 8) {
        const int64_t n = std::min<int64_t>(8, len_ - k);
        store_partial(y + k, n, _mm256_mul_ps(load_partial(y + k, n, minus_inf), scale));
      }
    }
  }

  // Softmax along a strided axis for `lanes` (<= 8) neighbouring inner positions.
  void strided_group(const float* x, float* y, int64_t lanes) const {
    const __m256 minus_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    __m256 vmax = minus_inf;
    for (int64_t k = 0; k < len_; ++k)
      vmax = _mm256_max_ps(vmax, load_partial(x + k * inner_, lanes, minus_inf));
    // Lanes whose maximum is not finite shift by 0.
    const __m256 finite =
        _mm256_cmp_ps(vec::abs(vmax), _mm256_set1_ps(std::numeric_limits<float>::max()), _CMP_LE_OQ);
    vmax = _mm256_and_ps(vmax, finite);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t k = 0; k < len_; ++k) {
      const __m256 e = vec::exp(_mm256_sub_ps(load_partial(x + k * inner_, lanes, minus_inf), vmax));
      vsum = _mm256_add_ps(vsum, e);
      if (!log_) store_partial(y + k * inner_, lanes, e);
    }
    if (log_) {
      alignas(32) float sums[8];
      _mm256_store_ps(sums, vsum);
      for (float& s : sums) s = std::log(s);
      const __m256 offset = _mm256_add_ps(vmax, _mm256_load_ps(sums));
      for (int64_t k = 0; k < len_; ++k) {
        store_partial(y + k * inner_, lanes,
                      _mm256_sub_ps(load_partial(x + k * inner_, lanes, minus_inf), offset));
      }
    } else {
      const __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), vsum);
      for (int64_t k = 0; k < len_; ++k) {
        store_partial(y + k * inner_, lanes,
                      _mm256_mul_ps(load_partial(y + k * inner_, lanes, minus_inf), scale));
      }
    }
  }

  bool log_;
  int64_t outer_, len_, inner_;
};

// ---------------------------------------------------------------------------------------------
// LayerNormalization / RMSNormalization

class AxisNormKernel : public Kernel {
 public:
  AxisNormKernel(bool rms, int64_t rows, int64_t row, float epsilon, bool scale_scalar, bool bias_scalar,
                 bool has_bias)
      : rms_(rms),
        rows_(rows),
        row_(row),
        epsilon_(epsilon),
        scale_scalar_(scale_scalar),
        bias_scalar_(bias_scalar),
        has_bias_(has_bias) {}
  bool can_run_in_place(int output, int input) const override { return output == 0 && input == 0; }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* x = inputs[0].as<const float>();
    const float* scale = inputs[1].as<const float>();
    const float* bias = has_bias_ ? inputs[2].as<const float>() : nullptr;
    float* y = outputs[0].as<float>();
    float* mean_out = outputs.size() > 1 ? outputs[1].as<float>() : nullptr;
    float* inv_out = outputs.size() > 2 ? outputs[2].as<float>() : nullptr;
#pragma omp parallel for schedule(static) if (rows_ * row_ >= kParallelMinElements)
    for (int64_t r = 0; r < rows_; ++r) {
      float mean = 0.0f, inv_std = 0.0f;
      normalize_row(x + r * row_, scale, bias, y + r * row_, mean, inv_std);
      if (mean_out != nullptr) mean_out[r] = mean;
      if (inv_out != nullptr) inv_out[r] = inv_std;
    }
    return Status::ok();
  }
  std::string label() const override {
    return rms_ ? "avx2:rms_norm" : "avx2:layer_norm";
  }

 private:
  void normalize_row(const float* x, const float* scale, const float* bias, float* y, float& mean_value,
                     float& inv_std_value) const {
    const __m256 zero = _mm256_setzero_ps();
    const float count = static_cast<float>(row_);
    __m256 mean = zero;
    // Four independent accumulators per pass: the adds' latency, not the loads, bounds a pass.
    if (!rms_) {
      __m256 s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      int64_t k = 0;
      for (; k + 32 <= row_; k += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + k));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + k + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + k + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + k + 24));
      }
      for (; k < row_; k += 8) s0 = _mm256_add_ps(s0, load_partial(x + k, row_ - k, zero));
      mean_value = vec::hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) / count;
      mean = _mm256_set1_ps(mean_value);
    } else {
      mean_value = 0.0f;
    }
    // Squared deviations from the mean (LayerNorm) or squares (RMS: mean is 0). Tail lanes are
    // loaded as the mean so they add nothing.
    __m256 q0 = zero, q1 = zero, q2 = zero, q3 = zero;
    int64_t k = 0;
    for (; k + 32 <= row_; k += 32) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + k), mean);
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + k + 8), mean);
      const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + k + 16), mean);
      const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + k + 24), mean);
      q0 = _mm256_fmadd_ps(d0, d0, q0);
      q1 = _mm256_fmadd_ps(d1, d1, q1);
      q2 = _mm256_fmadd_ps(d2, d2, q2);
      q3 = _mm256_fmadd_ps(d3, d3, q3);
    }
    for (; k < row_; k += 8) {
      const __m256 d = _mm256_sub_ps(load_partial(x + k, row_ - k, mean), mean);
      q0 = _mm256_fmadd_ps(d, d, q0);
    }
    q0 = _mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3));
    const float variance = vec::hsum(q0) / count;
    inv_std_value = 1.0f / std::sqrt(variance + epsilon_);
    const __m256 inv = _mm256_set1_ps(inv_std_value);
    // y = (x - mean) * inv * scale + bias, as fma(x * inv - mean * inv, scale, bias).
    const __m256 shift = _mm256_set1_ps(mean_value * inv_std_value);
    k = 0;
    if (!scale_scalar_ && (bias == nullptr || !bias_scalar_)) {
      // The common case: per-element scale and bias (or none); two rows of vectors per step.
      for (; k + 16 <= row_; k += 16) {
        const __m256 t0 = _mm256_fmsub_ps(_mm256_loadu_ps(x + k), inv, shift);
        const __m256 t1 = _mm256_fmsub_ps(_mm256_loadu_ps(x + k + 8), inv, shift);
        const __m256 b0 = bias != nullptr ? _mm256_loadu_ps(bias + k) : zero;
        const __m256 b1 = bias != nullptr ? _mm256_loadu_ps(bias + k + 8) : zero;
        _mm256_storeu_ps(y + k, _mm256_fmadd_ps(t0, _mm256_loadu_ps(scale + k), b0));
        _mm256_storeu_ps(y + k + 8, _mm256_fmadd_ps(t1, _mm256_loadu_ps(scale + k + 8), b1));
      }
    }
    const __m256 scale_splat = _mm256_set1_ps(scale[0]);
    const __m256 bias_splat = _mm256_set1_ps(bias != nullptr ? bias[0] : 0.0f);
    for (; k < row_; k += 8) {
      const int64_t n = std::min<int64_t>(8, row_ - k);
      const __m256 t = _mm256_fmsub_ps(load_partial(x + k, n, zero), inv, shift);
      const __m256 sv = scale_scalar_ ? scale_splat : load_partial(scale + k, n, zero);
      const __m256 bv =
          bias == nullptr ? zero : (bias_scalar_ ? bias_splat : load_partial(bias + k, n, zero));
      store_partial(y + k, n, _mm256_fmadd_ps(t, sv, bv));
    }
  }

  bool rms_;
  int64_t rows_, row_;
  float epsilon_;
  bool scale_scalar_, bias_scalar_, has_bias_;
};

// A parameter of shape `p` is usable when it is a scalar (numel 1, 'scalar' set) or exactly the
// normalized dims [axis, rank) of x, with any leading 1s.
bool row_parameter(const Shape& p, const Shape& x, int axis, bool& scalar) {
  scalar = num_elements(p) == 1;
  if (scalar) return p.size() <= x.size();
  if (p.size() > x.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    const size_t d = x.size() - p.size() + i;
    if (static_cast<int>(d) < axis ? p[i] != 1 : p[i] != x[d]) return false;
  }
  return static_cast<int>(x.size() - p.size()) <= axis || product(x, axis, x.size() - p.size()) == 1;
}

std::unique_ptr<Kernel> make_axis_norm(const KernelInfo& info, bool rms) {
  if (!all_f32(info) || info.inputs.size() < 2 || !info.input_present(1)) return nullptr;
  const Shape& x = info.inputs[0].shape;
  if (x.empty()) return nullptr;
  const int axis = normalize_axis(info.node->get_int("axis", -1), static_cast<int>(x.size()));
  if (axis < 0) return nullptr;
  const int64_t rows = product(x, 0, axis), row = product(x, axis, x.size());
  if (rows == 0 || row == 0) return nullptr;
  bool scale_scalar = false, bias_scalar = false;
  if (!row_parameter(info.inputs[1].shape, x, axis, scale_scalar)) return nullptr;
  const bool has_bias = !rms && info.input_present(2);
  if (has_bias && !row_parameter(info.inputs[2].shape, x, axis, bias_scalar)) return nullptr;
  if (info.outputs.empty() || info.outputs[0].shape != x) return nullptr;
  for (size_t i = 1; i < info.outputs.size(); ++i) {
    if (info.outputs[i].numel() != rows) return nullptr;
  }
  return std::make_unique<AxisNormKernel>(rms, rows, row, info.node->get_float("epsilon", 1e-5f),
                                          scale_scalar, bias_scalar, has_bias);
}

}  // namespace

std::unique_ptr<Kernel> make_softmax_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  const Shape& x = info.inputs[0].shape;
  if (x.empty() || info.outputs[0].shape != x) return nullptr;
  const int axis = normalize_axis(info.node->get_int("axis", -1), static_cast<int>(x.size()));
  if (axis < 0) return nullptr;
  const int64_t outer = product(x, 0, axis), len = x[axis], inner = product(x, axis + 1, x.size());
  if (len == 0) return nullptr;
  return std::make_unique<SoftmaxKernel>(info.node->op() == "LogSoftmax", outer, len, inner);
}

std::unique_ptr<Kernel> make_layer_norm_kernel(const KernelInfo& info) {
  return make_axis_norm(info, false);
}

std::unique_ptr<Kernel> make_rms_norm_kernel(const KernelInfo& info) {
  return make_axis_norm(info, true);
}

}  // namespace seqrun::backends::cpu
