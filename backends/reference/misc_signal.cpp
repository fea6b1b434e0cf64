// Reference kernels for the signal-processing ops: DFT, STFT, HannWindow, HammingWindow,
// BlackmanWindow and MelWeightMatrix.
//
// DFT/STFT: a direct O(n^2) transform per line with a cos/sin table of the n roots of unity, summed
// in double (the reference, not the fast path). Real input is [..., 1], complex [..., 2]; output is
// always complex [..., 2]; the inverse divides by n; onesided keeps bins [0, n / 2]. Windows and the
// mel matrix are computed in double and stored in their output_datatype.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/misc.h"
#include "backends/reference/nn_window.h"
#include "ir/ops/ops.h"

namespace seqrun::reference {
namespace {

using misc_detail::scalar_int;
using misc_detail::scalar_number;
using nn_detail::alloc_output;

constexpr double kPi = 3.14159265358979323846;
// Longest transform accepted (keeps the O(n^2) reference and its index math bounded).
constexpr int64_t kMaxDftLength = int64_t{1} << 24;

// The DFT of one complex sequence: out[f] = sum_k in[k] * exp(-+2 pi i f k / n) for f < out_len
// (divided by n for the inverse). `re` / `im` hold the n (already zero-padded) input samples.
class DirectDft {
 public:
  DirectDft(int64_t n, bool inverse) : n_(n), inverse_(inverse), cos_(n), sin_(n) {
    for (int64_t j = 0; j < n; ++j) {
      cos_[j] = std::cos(2 * kPi * static_cast<double>(j) / static_cast<double>(n));
      sin_[j] = std::sin(2 * kPi * static_cast<double>(j) / static_cast<double>(n));
    }
  }

  // Writes out_len interleaved (re, im) pairs to `out`, `stride` floats apart.
  void run(const std::vector<double>& re, const std::vector<double>& im, int64_t out_len, float* out,
           int64_t stride) const {
    const double sign = inverse_ ? 1.0 : -1.0;
    const double scale = inverse_ ? 1.0 / static_cast<double>(n_) : 1.0;
    for (int64_t f = 0; f < out_len; ++f) {
      double sr = 0.0, si = 0.0;
      int64_t j = 0;  // (f * k) mod n
      for (int64_t k = 0; k < n_; ++k) {
        const double c = cos_[j], s = sign * sin_[j];
        sr += re[k] * c - im[k] * s;
        si += re[k] * s + im[k] * c;
        j += f;
        if (j >= n_) j %= n_;
      }
      out[f * stride] = static_cast<float>(sr * scale);
      out[f * stride + 1] = static_cast<float>(si * scale);
    }
  }

 private:
  int64_t n_;
  bool inverse_;
  std::vector<double> cos_, sin_;
};

Status dft_kernel(KernelContext& ctx) {
  SEQRUN_TRY(nn_detail::require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::f32)
    return ctx.error("input must be a float tensor, got {}", dtype_name(x.dtype()));
  const int r = x.rank();
  if (r < 3 || (x.dim(-1) != 1 && x.dim(-1) != 2)) {
    return ctx.error("input must be [batch, signal dims..., 1 or 2], got {}", shape_to_string(x.shape()));
  }
  int64_t axis = -2;
  if (ctx.has_input(2)) {
    SEQRUN_ASSIGN(axis, scalar_int(ctx, 2, "axis"));
  }
  if (axis < -r || axis == -1 || axis > r - 2) {
    return ctx.error("axis {} is outside [-{}, -2] and [0, {}] for input {}", axis, r, r - 2,
                     shape_to_string(x.shape()));
  }
  if (axis < 0) axis += r;
  const int64_t n_in = x.dim(static_cast<int>(axis));
  int64_t n = n_in;
  if (ctx.has_input(1)) {
    SEQRUN_ASSIGN(n, scalar_int(ctx, 1, "dft_length"));
  }
  if (n < 1 || n > kMaxDftLength) return ctx.error("dft_length {} is outside [1, {}]", n, kMaxDftLength);
  const bool inverse = ctx.node.get_int("inverse", 0) != 0;
  const bool onesided = ctx.node.get_int("onesided", 0) != 0;
  const int64_t out_len = onesided ? n / 2 + 1 : n;
  Shape out_shape = x.shape();
  out_shape[axis] = out_len;
  out_shape.back() = 2;
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, out_shape));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int i = static_cast<int>(axis) + 1; i < r - 1; ++i) inner *= x.dim(i);
  const int64_t comp = x.dim(-1), used = std::min(n, n_in);
  const DirectDft dft(n, inverse);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  std::vector<double> re(n), im(n);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      std::fill(re.begin(), re.end(), 0.0);
      std::fill(im.begin(), im.end(), 0.0);
      for (int64_t k = 0; k < used; ++k) {
        const float* v = xd + ((o * n_in + k) * inner + in) * comp;
        re[k] = v[0];
        if (comp == 2) im[k] = v[1];
      }
      dft.run(re, im, out_len, yd + (o * out_len * inner + in) * 2, inner * 2);
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status stft_kernel(KernelContext& ctx) {
  SEQRUN_TRY(nn_detail::require_inputs(ctx, 2));
  const Tensor& signal = ctx.input(0);
  if (signal.dtype() != DType::f32) {
    return ctx.error("signal must be a float tensor, got {}", dtype_name(signal.dtype()));
  }
  if (signal.rank() != 3 || (signal.dim(2) != 1 && signal.dim(2) != 2)) {
    return ctx.error("signal must be [batch, length, 1 or 2], got {}", shape_to_string(signal.shape()));
  }
  SEQRUN_ASSIGN(int64_t step, scalar_int(ctx, 1, "frame_step"));
  if (step < 1) return ctx.error("frame_step must be positive, got {}", step);
  const Tensor* window = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (window != nullptr && (window->dtype() != DType::f32 || window->rank() != 1)) {
    return ctx.error("window must be a 1-D float tensor, got {}{}", dtype_name(window->dtype()),
                     shape_to_string(window->shape()));
  }
  int64_t frame_length = window != nullptr ? window->dim(0) : -1;
  if (ctx.has_input(3)) {
    SEQRUN_ASSIGN(int64_t given, scalar_int(ctx, 3, "frame_length"));
    if (window != nullptr && given != frame_length) {
      return ctx.error("frame_length {} differs from the window's length {}", given, frame_length);
    }
    frame_length = given;
  }
  if (window == nullptr && !ctx.has_input(3)) return ctx.error("needs a window or a frame_length");
  const int64_t batch = signal.dim(0), length = signal.dim(1), comp = signal.dim(2);
  if (frame_length < 1 || frame_length > std::min(length, kMaxDftLength)) {
    return ctx.error("frame_length {} must be in [1, signal length {}]", frame_length, length);
  }
  const bool onesided = ctx.node.get_int("onesided", 1) != 0;
  const int64_t frames = (length - frame_length) / step + 1;
  const int64_t bins = onesided ? frame_length / 2 + 1 : frame_length;
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, {batch, frames, bins, 2}));
  const DirectDft dft(frame_length, false);
  const float* sd = signal.data<float>();
  const float* wd = window != nullptr ? window->data<float>() : nullptr;
  float* yd = y.data<float>();
  std::vector<double> re(frame_length), im(frame_length);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t k = 0; k < frame_length; ++k) {
        const float* v = sd + (b * length + f * step + k) * comp;
        const double w = wd != nullptr ? wd[k] : 1.0;
        re[k] = w * v[0];
        im[k] = comp == 2 ? w * v[1] : 0.0;
      }
      dft.run(re, im, bins, yd + (b * frames + f) * bins * 2, 2);
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// The dtype an output_datatype attribute names.
Result<DType> output_datatype(const KernelContext& ctx) {
  auto dt = ops::dtype_from_onnx_type(ctx.node.get_int("output_datatype", 1));
  if (!dt) return ctx.error("output_datatype: {}", dt.status().message());
  if (*dt == DType::boolean) return ctx.error("output_datatype must be numeric, got bool");
  return *dt;
}

// Stores double values as `dtype`.
Tensor store_as(DType dtype, const Shape& shape, const std::vector<double>& values) {
  Tensor t = Tensor::from_vector<double>(shape, values);
  return dtype == DType::f64 ? t : t.cast(dtype);
}

enum class WindowKind { kHann, kHamming, kBlackman };

Status window_kernel(KernelContext& ctx, WindowKind kind) {
  SEQRUN_ASSIGN(int64_t size, scalar_int(ctx, 0, "size"));
  if (size < 0 || size > nn_detail::kMaxOutputElements) {
    return ctx.error("size {} is outside [0, {}]", size, nn_detail::kMaxOutputElements);
  }
  SEQRUN_ASSIGN(DType dtype, output_datatype(ctx));
  const bool periodic = ctx.node.get_int("periodic", 1) != 0;
  const int64_t denominator = periodic ? size : size - 1;
  std::vector<double> values(static_cast<size_t>(size), 1.0);
  for (int64_t k = 0; k < size && denominator > 0; ++k) {
    const double a = 2 * kPi * static_cast<double>(k) / static_cast<double>(denominator);
    switch (kind) {
      case WindowKind::kHann:
        values[k] = 0.5 - 0.5 * std::cos(a);
        break;
      case WindowKind::kHamming:
        values[k] = 25.0 / 46.0 - 21.0 / 46.0 * std::cos(a);
        break;
      case WindowKind::kBlackman:
        values[k] = 0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2 * a);
        break;
    }
  }
  ctx.outputs = {store_as(dtype, {size}, values)};
  return Status::ok();
}

// Triangular filters between num_mel_bins + 2 points equally spaced on the mel scale
// (mel = 2595 log10(1 + hz / 700)) from lower_edge_hertz to upper_edge_hertz, each point mapped
// to spectrogram bin floor((dft_length + 1) * hz / sample_rate); rises from the left point to the
// centre (1 there), falls to 0 at the right point. A filter whose left and centre share a bin is
// 1 at the centre.
Status mel_weight_matrix_kernel(KernelContext& ctx) {
  SEQRUN_ASSIGN(int64_t mel_bins, scalar_int(ctx, 0, "num_mel_bins"));
  SEQRUN_ASSIGN(int64_t dft_length, scalar_int(ctx, 1, "dft_length"));
  SEQRUN_ASSIGN(int64_t sample_rate, scalar_int(ctx, 2, "sample_rate"));
  SEQRUN_ASSIGN(double lower_hz, scalar_number(ctx, 3, "lower_edge_hertz"));
  SEQRUN_ASSIGN(double upper_hz, scalar_number(ctx, 4, "upper_edge_hertz"));
  SEQRUN_ASSIGN(DType dtype, output_datatype(ctx));
  if (mel_bins < 1 || dft_length < 1 || sample_rate < 1) {
    return ctx.error("num_mel_bins ({}), dft_length ({}) and sample_rate ({}) must be positive", mel_bins,
                     dft_length, sample_rate);
  }
  if (!std::isfinite(lower_hz) || !std::isfinite(upper_hz))
    return ctx.error("edge frequencies must be finite");
  const int64_t spectrum_bins = dft_length / 2 + 1;
  if (!checked_num_elements({spectrum_bins, mel_bins}, 8,
                            static_cast<uint64_t>(nn_detail::kMaxOutputElements))) {
    return ctx.error("output [{}, {}] is too large", spectrum_bins, mel_bins);
  }
  const double low_mel = 2595.0 * std::log10(1.0 + lower_hz / 700.0);
  const double high_mel = 2595.0 * std::log10(1.0 + upper_hz / 700.0);
  const double mel_step = (high_mel - low_mel) / static_cast<double>(mel_bins + 2);
  std::vector<int64_t> points(static_cast<size_t>(mel_bins + 2));
  for (int64_t i = 0; i < mel_bins + 2; ++i) {
    const double hz = 700.0 * (std::pow(10.0, (static_cast<double>(i) * mel_step + low_mel) / 2595.0) - 1.0);
    double bin = std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(sample_rate));
    if (!std::isfinite(bin)) bin = hz > 0 ? 1e12 : -1e12;
    // Points outside the spectrum only bound loops, which are clipped to it below.
    points[i] = static_cast<int64_t>(std::max(-1e12, std::min(bin, 1e12)));
  }
  std::vector<double> w(static_cast<size_t>(spectrum_bins * mel_bins), 0.0);
  auto set = [&](int64_t row, int64_t col, double v) {
    if (row >= 0 && row < spectrum_bins) w[row * mel_bins + col] = v;
  };
  for (int64_t i = 0; i < mel_bins; ++i) {
    const int64_t left = points[i], centre = points[i + 1], right = points[i + 2];
    if (centre == left) {
      set(centre, i, 1.0);
    } else {
      for (int64_t j = std::max<int64_t>(left, 0); j <= std::min(centre, spectrum_bins - 1); ++j) {
        set(j, i, static_cast<double>(j - left) / static_cast<double>(centre - left));
      }
    }
    if (right > centre) {
      for (int64_t j = std::max<int64_t>(centre, 0); j < std::min(right, spectrum_bins); ++j) {
        set(j, i, static_cast<double>(right - j) / static_cast<double>(right - centre));
      }
    }
  }
  ctx.outputs = {store_as(dtype, {spectrum_bins, mel_bins}, w)};
  return Status::ok();
}

}  // namespace

void register_misc_signal_kernels(KernelRegistry& r) {
  r.add("DFT", dft_kernel, true);
  r.add("STFT", stft_kernel, true);
  r.add("HannWindow", [](KernelContext& ctx) { return window_kernel(ctx, WindowKind::kHann); });
  r.add("HammingWindow", [](KernelContext& ctx) { return window_kernel(ctx, WindowKind::kHamming); });
  r.add("BlackmanWindow", [](KernelContext& ctx) { return window_kernel(ctx, WindowKind::kBlackman); });
  r.add("MelWeightMatrix", mel_weight_matrix_kernel);
}

}  // namespace seqrun::reference
