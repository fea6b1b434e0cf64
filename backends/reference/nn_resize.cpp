// Reference kernels for Resize (opset 13+ form: X, roi?, scales?, sizes?) and Upsample (opset 9).
//
// Each resized axis maps every output coordinate to an input coordinate (coordinate_transformation_mode)
// and from there to a few (input index, weight) taps: one for nearest, two for linear, four for cubic.
// An output element is the tensor product of its axes' taps, evaluated axis by axis from the
// outermost, exactly like ONNX's reference: an outer axis that extrapolates (tf_crop_and_resize)
// yields extrapolation_value, an inner one contributes it with the outer weights. Nearest copies
// elements of any numeric type; linear and cubic compute in double on f32 data.
#include <cmath>
#include <type_traits>

#include "backends/reference/kernel.h"
#include "backends/reference/nn_window.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

using namespace nn_detail;

struct Tap {
  int64_t index;
  double weight;
};

// Taps of one output coordinate on one axis.
struct AxisPoint {
  bool extrapolate = false;
  std::vector<Tap> taps;
};

struct ResizeParams {
  std::string mode;          // nearest | linear | cubic
  std::string coord_mode;    // coordinate_transformation_mode
  std::string nearest_mode;  // round_prefer_floor | round_prefer_ceil | floor | ceil | simple (Upsample)
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0.0;
};

// Input coordinate of output coordinate x on an axis of `in` elements resized by `scale` to `out`.
Result<double> original_coordinate(const KernelContext& ctx, const ResizeParams& p, double x, int64_t in,
                                   int64_t out, double scale, double roi_start, double roi_end) {
  const std::string& m = p.coord_mode;
  const double out_width = scale * static_cast<double>(in);  // ONNX uses the unrounded length
  if (m == "half_pixel") return (x + 0.5) / scale - 0.5;
  if (m == "half_pixel_symmetric") {
    const double adjustment = static_cast<double>(out) / out_width;
    const double center = static_cast<double>(in) / 2.0;
    return center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5;
  }
  if (m == "pytorch_half_pixel") return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
  if (m == "align_corners")
    return out_width == 1.0 ? 0.0 : x * static_cast<double>(in - 1) / (out_width - 1.0);
  if (m == "asymmetric") return x / scale;
  if (m == "tf_half_pixel_for_nn") return (x + 0.5) / scale;
  if (m == "tf_crop_and_resize") {
    const double span = static_cast<double>(in - 1);
    if (out_width == 1.0) return (roi_end - roi_start) * span / 2.0 + roi_start * span;
    return x * (roi_end - roi_start) * span / (out_width - 1.0) + roi_start * span;
  }
  return ctx.error("coordinate_transformation_mode '{}' is not supported", m);
}

int64_t clamp_index(int64_t i, int64_t in) {
  return std::min(std::max<int64_t>(i, 0), in - 1);
}

std::vector<double> cubic_coefficients(double r, double a) {
  const double s = 1.0 - r;
  return {((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a, ((a + 2) * r - (a + 3)) * r * r + 1,
          ((a + 2) * s - (a + 3)) * s * s + 1, ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a};
}

Result<std::vector<AxisPoint>> axis_points(const KernelContext& ctx, const ResizeParams& p, int64_t in,
                                           int64_t out, double scale, double roi_start, double roi_end) {
  std::vector<AxisPoint> points(static_cast<size_t>(out));
  for (int64_t xo = 0; xo < out; ++xo) {
    SEQRUN_ASSIGN(double x,
                  original_coordinate(ctx, p, static_cast<double>(xo), in, out, scale, roi_start, roi_end));
    AxisPoint& pt = points[xo];
    if (p.coord_mode == "tf_crop_and_resize" && (x < 0.0 || x > static_cast<double>(in - 1))) {
      pt.extrapolate = true;
      continue;
    }
    if (!(std::fabs(x) < 1e15)) return ctx.error("source coordinate {} is out of range (scale {})", x, scale);
    const double fx = std::floor(x);
    const int64_t x0 = static_cast<int64_t>(fx);
    const double r = x - fx;
    if (p.mode == "nearest") {
      bool up;
      if (r == 0.0) {
        up = false;
      } else if (p.nearest_mode == "round_prefer_floor") {
        up = r > 0.5;
      } else if (p.nearest_mode == "round_prefer_ceil") {
        up = r >= 0.5;
      } else if (p.nearest_mode == "floor") {
        up = false;
      } else if (p.nearest_mode == "ceil") {
        up = true;
      } else if (p.nearest_mode == "simple") {  // Upsample: ceil when downsampling, else floor
        up = scale < 1.0;
      } else {
        return ctx.error("nearest_mode '{}' is not supported", p.nearest_mode);
      }
      pt.taps.push_back({clamp_index(x0 + (up ? 1 : 0), in), 1.0});
    } else if (p.mode == "linear") {
      pt.taps.push_back({clamp_index(x0, in), 1.0 - r});
      if (r != 0.0) pt.taps.push_back({clamp_index(x0 + 1, in), r});
    } else if (p.mode == "cubic") {
      std::vector<double> c = cubic_coefficients(r, p.cubic_a);
      double total = 0.0;
      for (int k = 0; k < 4; ++k) {
        const int64_t idx = x0 - 1 + k;
        if (p.exclude_outside && (idx < 0 || idx >= in)) c[k] = 0.0;
        total += c[k];
      }
      for (int k = 0; k < 4; ++k) {
        const double w = p.exclude_outside ? (total != 0.0 ? c[k] / total : 0.0) : c[k];
        if (w != 0.0) pt.taps.push_back({clamp_index(x0 - 1 + k, in), w});
      }
    } else {
      return ctx.error("mode '{}' is not nearest, linear or cubic", p.mode);
    }
  }
  return points;
}

// Resizes x to out_shape given per-axis scales and roi (roi used by tf_crop_and_resize only).
Status run_resize(KernelContext& ctx, const ResizeParams& p, const Tensor& x, const Shape& out_shape,
                  const std::vector<double>& scales, const std::vector<double>& roi_start,
                  const std::vector<double>& roi_end) {
  const int rank = x.rank();
  if (p.mode != "nearest" && x.dtype() != DType::f32) {
    return ctx.error("mode '{}' needs a float X, got {}", p.mode, dtype_name(x.dtype()));
  }
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, x.dtype(), out_shape));
  std::vector<std::vector<AxisPoint>> axes(rank);
  for (int d = 0; d < rank; ++d) {
    if (x.dim(d) == 0 && out_shape[d] > 0)
      return ctx.error("cannot resize the empty axis {} to {}", d, out_shape[d]);
    if (out_shape[d] > 0 && !(scales[d] > 0.0))
      return ctx.error("scale {} on axis {} must be positive", scales[d], d);
    SEQRUN_ASSIGN(axes[d], axis_points(ctx, p, x.dim(d), out_shape[d], scales[d], roi_start[d], roi_end[d]));
  }
  const std::vector<int64_t> strides = row_major_strides(x.shape());
  const int64_t total = y.numel();
  std::vector<int64_t> oi(rank, 0);
  Status st = SEQRUN_DISPATCH_NUMERIC(x.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    // Value at axis d and deeper, starting from flat input offset `base`.
    auto eval = [&](auto& self, int d, int64_t base) -> double {
      if (d == rank) return static_cast<double>(xd[base]);
      const AxisPoint& pt = axes[d][oi[d]];
      if (pt.extrapolate) return p.extrapolation_value;
      double v = 0.0;
      for (const Tap& t : pt.taps) v += t.weight * self(self, d + 1, base + t.index * strides[d]);
      return v;
    };
    for (int64_t i = 0; i < total; ++i, next_index(oi, out_shape)) {
      if constexpr (std::is_floating_point_v<T>) {
        yd[i] = static_cast<T>(eval(eval, 0, 0));
      } else {
        // Nearest only: one tap per axis, copied exactly.
        int64_t off = 0;
        bool extrapolate = false;
        for (int d = 0; d < rank && !extrapolate; ++d) {
          const AxisPoint& pt = axes[d][oi[d]];
          extrapolate = pt.extrapolate;
          if (!extrapolate) off += pt.taps[0].index * strides[d];
        }
        yd[i] = extrapolate ? saturate_cast<T>(p.extrapolation_value) : xd[off];
      }
    }
    return Status::ok();
  });
  if (!st) return st.with_context(ctx.node.describe());
  ctx.outputs = {y};
  return Status::ok();
}

// floor(in * scale) as an output size; error when it does not fit.
Result<int64_t> scaled_size(const KernelContext& ctx, int64_t in, double scale) {
  const double v = std::floor(static_cast<double>(in) * scale);
  if (!(v >= 0.0) || v > 9.0e15) return ctx.error("resized size {} * {} is out of range", in, scale);
  return static_cast<int64_t>(v);
}

// An optional input given as "" or as an empty tensor counts as absent.
bool present(const KernelContext& ctx, int i) {
  return ctx.has_input(i) && ctx.input(i).numel() > 0;
}

Status resize_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node;
  if (node.get_int("antialias") != 0) return ctx.error("antialias=1 is not supported");
  ResizeParams p;
  p.mode = node.get_string("mode", "nearest");
  p.coord_mode = node.get_string("coordinate_transformation_mode", "half_pixel");
  p.nearest_mode = node.get_string("nearest_mode", "round_prefer_floor");
  if (p.nearest_mode == "simple") return ctx.error("nearest_mode 'simple' is not a Resize mode");
  p.cubic_a = node.get_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = node.get_int("exclude_outside") != 0;
  p.extrapolation_value = node.get_float("extrapolation_value", 0.0f);
  const int rank = x.rank();
  std::vector<int64_t> axes = node.get_ints("axes");
  if (axes.empty()) {
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  }
  std::vector<char> seen(rank, 0);
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return ctx.error("axis {} out of range for X of rank {}", a, rank);
    if (a < 0) a += rank;
    if (seen[a]++) return ctx.error("axis {} repeats in axes", a);
  }
  const size_t k = axes.size();
  const bool has_scales = present(ctx, 2), has_sizes = present(ctx, 3);
  if (has_scales == has_sizes) return ctx.error("exactly one of scales and sizes must be given");

  Shape out_shape = x.shape();
  std::vector<double> scales(rank, 1.0), roi_start(rank, 0.0), roi_end(rank, 1.0);
  if (has_sizes) {
    const Tensor& sizes_t = ctx.input(3);
    if (is_float(sizes_t.dtype()) || sizes_t.rank() != 1 || static_cast<size_t>(sizes_t.numel()) != k) {
      return ctx.error("sizes must be an integer vector of {} values, got {} {}", k,
                       dtype_name(sizes_t.dtype()), shape_to_string(sizes_t.shape()));
    }
    std::vector<int64_t> sizes = sizes_t.to_i64_vector();
    for (int64_t s : sizes) {
      if (s < 0) return ctx.error("sizes has a negative value {}", s);
    }
    const std::string policy = node.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch") {
      for (size_t i = 0; i < k; ++i) {
        out_shape[axes[i]] = sizes[i];
        scales[axes[i]] = static_cast<double>(sizes[i]) / static_cast<double>(x.dim(axes[i]));
      }
    } else if (policy == "not_larger" || policy == "not_smaller") {
      double s = policy == "not_larger" ? INFINITY : 0.0;
      for (size_t i = 0; i < k; ++i) {
        const double r = static_cast<double>(sizes[i]) / static_cast<double>(x.dim(axes[i]));
        s = policy == "not_larger" ? std::min(s, r) : std::max(s, r);
      }
      for (size_t i = 0; i < k; ++i) {
        scales[axes[i]] = s;
        SEQRUN_ASSIGN(out_shape[axes[i]],
                      scaled_size(ctx, 1, std::floor(s * static_cast<double>(x.dim(axes[i])) + 0.5)));
      }
    } else {
      return ctx.error("keep_aspect_ratio_policy '{}' is not stretch, not_larger or not_smaller", policy);
    }
  } else {
    const Tensor& scales_t = ctx.input(2);
    if (!is_float(scales_t.dtype()) || scales_t.rank() != 1 || static_cast<size_t>(scales_t.numel()) != k) {
      return ctx.error("scales must be a float vector of {} values, got {} {}", k,
                       dtype_name(scales_t.dtype()), shape_to_string(scales_t.shape()));
    }
    for (size_t i = 0; i < k; ++i) {
      const double s = scales_t.get_f64(static_cast<int64_t>(i));
      if (!(s > 0.0) || !std::isfinite(s)) return ctx.error("scales[{}] = {} must be positive", i, s);
      scales[axes[i]] = s;
      SEQRUN_ASSIGN(out_shape[axes[i]], scaled_size(ctx, x.dim(axes[i]), s));
    }
  }
  if (present(ctx, 1) && p.coord_mode == "tf_crop_and_resize") {
    const Tensor& roi = ctx.input(1);
    if (roi.numel() != static_cast<int64_t>(2 * k)) {
      return ctx.error("roi needs 2 * {} values (starts, then ends), has {}", k, roi.numel());
    }
    for (size_t i = 0; i < k; ++i) {
      roi_start[axes[i]] = roi.get_f64(static_cast<int64_t>(i));
      roi_end[axes[i]] = roi.get_f64(static_cast<int64_t>(i + k));
    }
  }
  return run_resize(ctx, p, x, out_shape, scales, roi_start, roi_end);
}

// Upsample (opset 9): asymmetric coordinates; nearest picks floor (ceil when downsampling).
Status upsample_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  if (!ctx.has_input(1)) return ctx.error("scales is required");
  const Tensor& scales_t = ctx.input(1);
  if (!is_float(scales_t.dtype()) || scales_t.numel() != x.rank()) {
    return ctx.error("scales must be a float vector of {} values, got {} {}", x.rank(),
                     dtype_name(scales_t.dtype()), shape_to_string(scales_t.shape()));
  }
  ResizeParams p;
  const std::string mode = ctx.node.get_string("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && mode != "bilinear") {
    return ctx.error("mode '{}' is not nearest or linear", mode);
  }
  p.mode = mode == "nearest" ? "nearest" : "linear";
  p.coord_mode = "asymmetric";
  p.nearest_mode = "simple";
  Shape out_shape = x.shape();
  std::vector<double> scales(x.rank()), roi_start(x.rank(), 0.0), roi_end(x.rank(), 1.0);
  for (int d = 0; d < x.rank(); ++d) {
    scales[d] = scales_t.get_f64(d);
    if (!(scales[d] > 0.0) || !std::isfinite(scales[d])) {
      return ctx.error("scales[{}] = {} must be positive", d, scales[d]);
    }
    SEQRUN_ASSIGN(out_shape[d], scaled_size(ctx, x.dim(d), scales[d]));
  }
  return run_resize(ctx, p, x, out_shape, scales, roi_start, roi_end);
}

}  // namespace

void register_resize_kernels(KernelRegistry& r) {
  r.add("Resize", resize_kernel, true);
  r.add("Upsample", upsample_kernel, true);
}

}  // namespace seqrun::reference
