// Reference kernels for the sampling and detection ops: GridSample (N-d; linear, nearest, cubic;
// zeros, border, reflection padding), RoiAlign (avg / max, half_pixel / output_half_pixel),
// MaxUnpool and NonMaxSuppression.
//
// GridSample follows the ONNX reference: the grid's normalized coordinates are denormalized per
// align_corners, then (border / reflection) brought back inside [x_min, x_max], then interpolated
// from taps that are each read with the padding rule. RoiAlign is the Caffe2/ONNX Runtime
// algorithm, including its max mode (the maximum of the weighted corner values). All float math
// in double; plain loops, single-threaded.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/misc.h"
#include "backends/reference/nn_window.h"

namespace seqrun::reference {
namespace {

using nn_detail::alloc_output;
using nn_detail::next_index;
using nn_detail::product;
using nn_detail::require_inputs;

Status require_f32(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.dtype() != DType::f32)
    return ctx.error("{} must be a float tensor, got {}", what, dtype_name(t.dtype()));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// GridSample

enum class Padding { kZeros, kBorder, kReflection };

// Reflects x into [lo, hi] by folding at the borders as often as needed.
double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const auto n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const auto n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

// Keys' cubic convolution weights of the 4 taps floor(x) - 1 .. floor(x) + 2, t = x - floor(x).
void cubic_weights(double t, double w[4]) {
  const double a = -0.75;
  const double t0 = t + 1, t2 = 1 - t, t3 = 2 - t;
  w[0] = ((a * t0 - 5 * a) * t0 + 8 * a) * t0 - 4 * a;
  w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  w[2] = ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1;
  w[3] = ((a * t3 - 5 * a) * t3 + 8 * a) * t3 - 4 * a;
}

struct GridSampler {
  std::vector<int64_t> size;   // spatial sizes of X
  std::vector<double> lo, hi;  // per-dim borders: [-0.5, size - 0.5] or [0, size - 1] (align_corners)
  Padding padding = Padding::kZeros;

  // The index tap `i` reads along dim d, or -1 for a zero (zeros padding outside the input).
  int64_t tap_index(size_t d, int64_t i) const {
    if (i >= 0 && i < size[d]) return i;
    if (padding == Padding::kZeros) return -1;
    if (padding == Padding::kBorder) return std::min(std::max<int64_t>(i, 0), size[d] - 1);
    const auto r = static_cast<int64_t>(reflect(static_cast<double>(i), lo[d], hi[d]));
    return std::min(std::max<int64_t>(r, 0), size[d] - 1);
  }
};

struct Tap {
  int64_t offset;  // into one [spatial...] plane
  double weight;
};

Status grid_sample_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  SEQRUN_TRY(require_f32(ctx, x, "X"));
  SEQRUN_TRY(require_f32(ctx, grid, "grid"));
  const std::string mode_name = ctx.node.get_string("mode", "linear");
  const bool linear = mode_name == "linear" || mode_name == "bilinear";
  const bool cubic = mode_name == "cubic" || mode_name == "bicubic";
  if (!linear && !cubic && mode_name != "nearest") {
    return ctx.error("mode '{}' is not linear, nearest or cubic", mode_name);
  }
  const std::string padding_name = ctx.node.get_string("padding_mode", "zeros");
  GridSampler s;
  if (padding_name == "zeros") {
    s.padding = Padding::kZeros;
  } else if (padding_name == "border") {
    s.padding = Padding::kBorder;
  } else if (padding_name == "reflection") {
    s.padding = Padding::kReflection;
  } else {
    return ctx.error("padding_mode '{}' is not zeros, border or reflection", padding_name);
  }
  const bool align_corners = ctx.node.get_int("align_corners", 0) != 0;
  if (x.rank() < 3) return ctx.error("X must be [N, C, D1, ...], got {}", shape_to_string(x.shape()));
  const size_t r = static_cast<size_t>(x.rank() - 2);
  if (grid.rank() != x.rank() || grid.dim(0) != x.dim(0) || grid.dim(-1) != static_cast<int64_t>(r)) {
    return ctx.error("grid {} must be [{}, output dims ({} of them)..., {}] for X {}",
                     shape_to_string(grid.shape()), x.dim(0), r, r, shape_to_string(x.shape()));
  }
  if (cubic && r > 3) return ctx.error("cubic mode supports up to 3 spatial dims, X has {}", r);
  s.size.assign(x.shape().begin() + 2, x.shape().end());
  for (size_t d = 0; d < r; ++d) {
    s.lo.push_back(align_corners ? 0.0 : -0.5);
    s.hi.push_back(align_corners ? static_cast<double>(s.size[d] - 1) : static_cast<double>(s.size[d]) - 0.5);
  }
  const std::vector<int64_t> out_spatial(grid.shape().begin() + 1, grid.shape().end() - 1);
  Shape out_shape = {x.dim(0), x.dim(1)};
  out_shape.insert(out_shape.end(), out_spatial.begin(), out_spatial.end());
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, out_shape));
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t in_plane = product(s.size), out_plane = product(out_spatial);
  const float* xd = x.data<float>();
  const float* gd = grid.data<float>();
  float* yd = y.data<float>();
  const int per_dim = linear ? 2 : cubic ? 4 : 1;
  std::vector<int64_t> idx(r * per_dim);
  std::vector<double> wts(r * per_dim);
  std::vector<Tap> taps;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t o = 0; o < out_plane; ++o) {
      const float* g = gd + (n * out_plane + o) * static_cast<int64_t>(r);
      // Per spatial dim d: the tap indices and weights (grid's last dim lists x (the last dim) first).
      for (size_t d = 0; d < r; ++d) {
        const double gn = g[r - 1 - d];
        const double size = static_cast<double>(s.size[d]);
        double c = align_corners ? (gn + 1) / 2 * (size - 1) : ((gn + 1) * size - 1) / 2;
        if (!linear && !cubic) c = std::nearbyint(c);
        if (c < s.lo[d] || c > s.hi[d]) {
          if (s.padding == Padding::kBorder) c = std::min(std::max(c, 0.0), size - 1);
          if (s.padding == Padding::kReflection) c = reflect(c, s.lo[d], s.hi[d]);
        }
        if (!std::isfinite(c)) c = -2.0;  // NaN / inf grid values read zeros (or the clamped border)
        c = std::max(-1e9, std::min(1e9, c));
        if (linear) {
          const double f = std::floor(c);
          idx[d * 2] = s.tap_index(d, static_cast<int64_t>(f));
          idx[d * 2 + 1] = s.tap_index(d, static_cast<int64_t>(f) + 1);
          wts[d * 2] = 1 - (c - f);
          wts[d * 2 + 1] = c - f;
        } else if (cubic) {
          const double f = std::floor(c);
          cubic_weights(c - f, &wts[d * 4]);
          for (int k = 0; k < 4; ++k) idx[d * 4 + k] = s.tap_index(d, static_cast<int64_t>(f) - 1 + k);
        } else {
          idx[d] = s.tap_index(d, static_cast<int64_t>(c));
          wts[d] = 1.0;
        }
      }
      // Every combination of per-dim taps (per_dim^r of them); zero-padded taps drop out.
      taps.clear();
      std::vector<int64_t> pick(r, 0);
      const std::vector<int64_t> limits(r, per_dim);
      do {
        int64_t offset = 0;
        double weight = 1.0;
        bool inside = true;
        for (size_t d = 0; d < r; ++d) {
          const int64_t i = idx[d * per_dim + pick[d]];
          inside = inside && i >= 0;
          offset = offset * s.size[d] + i;
          weight *= wts[d * per_dim + pick[d]];
        }
        if (inside) taps.push_back({offset, weight});
      } while (next_index(pick, limits));
      for (int64_t c = 0; c < channels; ++c) {
        const float* plane = xd + (n * channels + c) * in_plane;
        double v = 0.0;
        for (const Tap& t : taps) v += t.weight * plane[t.offset];
        yd[(n * channels + c) * out_plane + o] = static_cast<float>(v);
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// RoiAlign

struct BilinearSample {
  int64_t pos[4] = {0, 0, 0, 0};  // offsets into one [H, W] plane
  double w[4] = {0, 0, 0, 0};
};

// The four corners and weights of a bilinear read at (y, x); all-zero weights outside [-1, H] x [-1, W].
BilinearSample bilinear_sample(double y, double x, int64_t height, int64_t width) {
  BilinearSample s;
  if (y < -1.0 || y > static_cast<double>(height) || x < -1.0 || x > static_cast<double>(width)) return s;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  auto y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x);
  int64_t y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<double>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<double>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const double ly = y - static_cast<double>(y_low), lx = x - static_cast<double>(x_low);
  const double hy = 1 - ly, hx = 1 - lx;
  s.pos[0] = y_low * width + x_low;
  s.pos[1] = y_low * width + x_high;
  s.pos[2] = y_high * width + x_low;
  s.pos[3] = y_high * width + x_high;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  return s;
}

Status roi_align_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& batch_indices = ctx.input(2);
  SEQRUN_TRY(require_f32(ctx, x, "X"));
  SEQRUN_TRY(require_f32(ctx, rois, "rois"));
  if (x.rank() != 4) return ctx.error("X must be [N, C, H, W], got {}", shape_to_string(x.shape()));
  if (rois.rank() != 2 || rois.dim(1) != 4) {
    return ctx.error("rois must be [num_rois, 4], got {}", shape_to_string(rois.shape()));
  }
  const int64_t num_rois = rois.dim(0);
  if (!is_integer(batch_indices.dtype()) || batch_indices.shape() != Shape{num_rois}) {
    return ctx.error("batch_indices must be an integer [{}], got {}{}", num_rois,
                     dtype_name(batch_indices.dtype()), shape_to_string(batch_indices.shape()));
  }
  const std::string mode = ctx.node.get_string("mode", "avg");
  if (mode != "avg" && mode != "max") return ctx.error("mode '{}' is not avg or max", mode);
  const std::string ctm = ctx.node.get_string("coordinate_transformation_mode", "half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel") {
    return ctx.error("coordinate_transformation_mode '{}' is not half_pixel or output_half_pixel", ctm);
  }
  const bool half_pixel = ctm == "half_pixel";
  const int64_t out_h = ctx.node.get_int("output_height", 1), out_w = ctx.node.get_int("output_width", 1);
  const int64_t sampling_ratio = ctx.node.get_int("sampling_ratio", 0);
  const double spatial_scale = ctx.node.get_float("spatial_scale", 1.0f);
  if (out_h <= 0 || out_w <= 0 || out_h > nn_detail::kMaxWindowAttr || out_w > nn_detail::kMaxWindowAttr) {
    return ctx.error("output_height and output_width must be in [1, {}], got {} and {}",
                     nn_detail::kMaxWindowAttr, out_h, out_w);
  }
  if (sampling_ratio < 0 || sampling_ratio > nn_detail::kMaxWindowAttr) {
    return ctx.error("sampling_ratio must be in [0, {}], got {}", nn_detail::kMaxWindowAttr, sampling_ratio);
  }
  const int64_t batch = x.dim(0), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, {num_rois, channels, out_h, out_w}));
  if (height == 0 || width == 0) {  // nothing to sample: every bin reads zero
    ctx.outputs = {y};
    return Status::ok();
  }
  const float* xd = x.data<float>();
  const float* rd = rois.data<float>();
  float* yd = y.data<float>();
  const double offset = half_pixel ? 0.5 : 0.0;
  for (int64_t n = 0; n < num_rois; ++n) {
    const int64_t b = batch_indices.get_i64(n);
    if (b < 0 || b >= batch) return ctx.error("batch_indices[{}] = {} is outside [0, {})", n, b, batch);
    const double start_w = rd[n * 4 + 0] * spatial_scale - offset,
                 start_h = rd[n * 4 + 1] * spatial_scale - offset;
    const double end_w = rd[n * 4 + 2] * spatial_scale - offset,
                 end_h = rd[n * 4 + 3] * spatial_scale - offset;
    double roi_w = end_w - start_w, roi_h = end_h - start_h;
    if (!half_pixel) {  // output_half_pixel forces rois to be at least 1x1
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    if (!std::isfinite(roi_w) || !std::isfinite(roi_h)) return ctx.error("rois[{}] is not finite", n);
    const double bin_h = roi_h / static_cast<double>(out_h), bin_w = roi_w / static_cast<double>(out_w);
    // Adaptive sampling: ceil(roi size / bins) samples per bin (none for an empty or inverted roi).
    const double adaptive_h = std::max(0.0, std::ceil(roi_h / static_cast<double>(out_h)));
    const double adaptive_w = std::max(0.0, std::ceil(roi_w / static_cast<double>(out_w)));
    const double max_grid = static_cast<double>(nn_detail::kMaxWindowAttr);
    if (sampling_ratio == 0 && (adaptive_h > max_grid || adaptive_w > max_grid)) {
      return ctx.error("rois[{}] needs a sampling grid of {}x{} per bin", n, adaptive_h, adaptive_w);
    }
    const int64_t grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(adaptive_h);
    const int64_t grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(adaptive_w);
    const double count = static_cast<double>(std::max<int64_t>(grid_h * grid_w, 1));
    std::vector<BilinearSample> samples;
    for (int64_t ph = 0; ph < out_h; ++ph) {
      for (int64_t pw = 0; pw < out_w; ++pw) {
        samples.clear();
        for (int64_t iy = 0; iy < grid_h; ++iy) {
          const double yy = start_h + ph * bin_h + (iy + 0.5) * bin_h / static_cast<double>(grid_h);
          for (int64_t ix = 0; ix < grid_w; ++ix) {
            const double xx = start_w + pw * bin_w + (ix + 0.5) * bin_w / static_cast<double>(grid_w);
            samples.push_back(bilinear_sample(yy, xx, height, width));
          }
        }
        for (int64_t c = 0; c < channels; ++c) {
          const float* plane = xd + (b * channels + c) * height * width;
          double v = 0.0;
          bool first = true;
          for (const BilinearSample& s : samples) {
            if (mode == "avg") {
              for (int k = 0; k < 4; ++k) v += s.w[k] * plane[s.pos[k]];
            } else {
              double m = s.w[0] * plane[s.pos[0]];
              for (int k = 1; k < 4; ++k) m = std::max(m, s.w[k] * plane[s.pos[k]]);
              v = first ? m : std::max(v, m);
              first = false;
            }
          }
          if (mode == "avg") v /= count;
          yd[((n * channels + c) * out_h + ph) * out_w + pw] = static_cast<float>(v);
        }
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// MaxUnpool

// Y = zeros(output shape); Y.flat[I[i]] = X[i]. The indices are MaxPool's: flat over the whole
// output tensor, so `output_shape` (the pooled input's shape) decides where they land.
Status max_unpool_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (x.rank() < 3) return ctx.error("X must be [N, C, spatial...], got {}", shape_to_string(x.shape()));
  if (indices.dtype() != DType::i64 || indices.shape() != x.shape()) {
    return ctx.error("I must be i64 with X's shape {}, got {}{}", shape_to_string(x.shape()),
                     dtype_name(indices.dtype()), shape_to_string(indices.shape()));
  }
  const size_t n = static_cast<size_t>(x.rank() - 2);
  const std::vector<int64_t> kernel = ctx.node.get_ints("kernel_shape");
  if (kernel.size() != n) return ctx.error("kernel_shape needs {} values, has {}", n, kernel.size());
  for (int64_t k : kernel) {
    if (k <= 0 || k > nn_detail::kMaxWindowAttr) return ctx.error("kernel_shape value {} is out of range", k);
  }
  SEQRUN_ASSIGN(std::vector<int64_t> strides, nn_detail::window_ints(ctx, "strides", n, 1, 1));
  SEQRUN_ASSIGN(std::vector<int64_t> pads, nn_detail::window_ints(ctx, "pads", 2 * n, 0, 0));
  Shape out_shape = {x.dim(0), x.dim(1)};
  if (ctx.has_input(2)) {
    const Tensor& shape = ctx.input(2);
    if (!is_integer(shape.dtype()) || shape.rank() != 1 || shape.numel() != x.rank()) {
      return ctx.error("output_shape must be an integer [{}], got {}{}", x.rank(), dtype_name(shape.dtype()),
                       shape_to_string(shape.shape()));
    }
    out_shape = shape.to_i64_vector();
    if (out_shape[0] != x.dim(0) || out_shape[1] != x.dim(1)) {
      return ctx.error("output_shape {} must keep X's N and C ({}, {})", shape_to_string(out_shape), x.dim(0),
                       x.dim(1));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      out_shape.push_back((x.dim(static_cast<int>(i) + 2) - 1) * strides[i] - pads[i] - pads[i + n] +
                          kernel[i]);
    }
  }
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, x.dtype(), out_shape));
  const int64_t total = y.numel();
  const size_t elem = dtype_size(x.dtype());
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(y.raw());
  const int64_t* id = indices.data<int64_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (id[i] < 0 || id[i] >= total) {
      return ctx.error("I[{}] = {} is outside the output's {} elements ({})", i, id[i], total,
                       shape_to_string(out_shape));
    }
    std::copy(src + i * elem, src + (i + 1) * elem, dst + id[i] * elem);
  }
  ctx.outputs = {y};
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// NonMaxSuppression

struct Box {
  double y1, x1, y2, x2;  // y1 <= y2, x1 <= x2
  double area() const { return (y2 - y1) * (x2 - x1); }
};

Box read_box(const float* b, bool center_point) {
  if (center_point) {  // [x_center, y_center, width, height]
    const double xc = b[0], yc = b[1], w = b[2], h = b[3];
    return {yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2};
  }
  // [y1, x1, y2, x2] with either diagonal
  return {std::min<double>(b[0], b[2]), std::min<double>(b[1], b[3]), std::max<double>(b[0], b[2]),
          std::max<double>(b[1], b[3])};
}

// True when a and b overlap by more than `threshold` (intersection over union).
bool suppresses(const Box& a, const Box& b, double threshold) {
  const double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  const double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (ih <= 0 || iw <= 0) return false;
  const double inter = ih * iw;
  const double uni = a.area() + b.area() - inter;
  if (a.area() <= 0 || b.area() <= 0 || uni <= 0) return false;
  return inter / uni > threshold;
}

Status non_max_suppression_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  SEQRUN_TRY(require_f32(ctx, boxes, "boxes"));
  SEQRUN_TRY(require_f32(ctx, scores, "scores"));
  if (boxes.rank() != 3 || boxes.dim(2) != 4) {
    return ctx.error("boxes must be [num_batches, num_boxes, 4], got {}", shape_to_string(boxes.shape()));
  }
  const int64_t batches = boxes.dim(0), num_boxes = boxes.dim(1);
  if (scores.rank() != 3 || scores.dim(0) != batches || scores.dim(2) != num_boxes) {
    return ctx.error("scores must be [{}, num_classes, {}], got {}", batches, num_boxes,
                     shape_to_string(scores.shape()));
  }
  const int64_t classes = scores.dim(1);
  const int64_t center_point_box = ctx.node.get_int("center_point_box", 0);
  if (center_point_box != 0 && center_point_box != 1) {
    return ctx.error("center_point_box must be 0 or 1, got {}", center_point_box);
  }
  int64_t max_per_class = 0;
  if (ctx.has_input(2)) {
    SEQRUN_ASSIGN(max_per_class, misc_detail::scalar_int(ctx, 2, "max_output_boxes_per_class"));
  }
  double iou_threshold = 0.0;
  if (ctx.has_input(3)) {
    SEQRUN_ASSIGN(iou_threshold, misc_detail::scalar_number(ctx, 3, "iou_threshold"));
  }
  const bool has_score_threshold = ctx.has_input(4);
  double score_threshold = 0.0;
  if (has_score_threshold) {
    SEQRUN_ASSIGN(score_threshold, misc_detail::scalar_number(ctx, 4, "score_threshold"));
  }
  max_per_class = std::max<int64_t>(max_per_class, 0);
  std::vector<int64_t> selected;  // triples
  const float* bd = boxes.data<float>();
  const float* sd = scores.data<float>();
  std::vector<int64_t> order;
  std::vector<Box> kept;
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<Box> all(static_cast<size_t>(num_boxes));
    for (int64_t i = 0; i < num_boxes; ++i)
      all[i] = read_box(bd + (b * num_boxes + i) * 4, center_point_box == 1);
    for (int64_t c = 0; c < classes && max_per_class > 0; ++c) {
      const float* s = sd + (b * classes + c) * num_boxes;
      order.clear();
      for (int64_t i = 0; i < num_boxes; ++i) {
        if (std::isnan(s[i])) continue;
        if (!has_score_threshold || s[i] > score_threshold) order.push_back(i);
      }
      // Highest score first; equal scores keep box order.
      std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
      kept.clear();
      int64_t count = 0;
      for (int64_t i : order) {
        if (count >= max_per_class) break;
        bool keep = true;
        for (const Box& k : kept) {
          if (suppresses(all[i], k, iou_threshold)) {
            keep = false;
            break;
          }
        }
        if (!keep) continue;
        kept.push_back(all[i]);
        selected.insert(selected.end(), {b, c, i});
        ++count;
      }
    }
  }
  Tensor out = Tensor::from_vector<int64_t>({static_cast<int64_t>(selected.size() / 3), 3}, selected);
  ctx.outputs = {out};
  return Status::ok();
}

}  // namespace

void register_misc_spatial_kernels(KernelRegistry& r) {
  r.add("GridSample", grid_sample_kernel, true);
  r.add("RoiAlign", roi_align_kernel, true);
  r.add("MaxUnpool", max_unpool_kernel, true);
  r.add("NonMaxSuppression", non_max_suppression_kernel, true);
}

}  // namespace seqrun::reference
