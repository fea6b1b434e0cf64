// Sliding-window geometry shared by the reference conv and pool kernels: attribute checks against
// the runtime input shape, auto_pad resolution and output sizes, plus an N-d index walker.
//
// Contract: resolve_window either returns a geometry whose every output position's window lies
// within [-pad_begin, in + pad_end) of the input (so callers only need a bounds check against the
// input itself), or an error that names the node.
#pragma once

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/reference/kernel.h"

namespace seqrun::reference::nn_detail {

struct WindowGeometry {
  std::vector<int64_t> in;   // spatial input sizes
  std::vector<int64_t> out;  // spatial output sizes
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pad_begin, pad_end;  // after auto_pad
  size_t rank() const { return in.size(); }
};

// Bounds that keep the window arithmetic (stride * size, (kernel - 1) * dilation, ...) far from
// int64 overflow whatever a model file says.
constexpr int64_t kMaxWindowAttr = int64_t{1} << 24;      // strides, dilations, kernel_shape, pads, ...
constexpr int64_t kMaxKernelTaps = int64_t{1} << 24;      // product of the kernel's dims
constexpr int64_t kMaxOutputElements = int64_t{1} << 31;  // largest tensor an nn kernel allocates

// Reads an ints attribute of exactly `n` values (or `fill` repeated when absent) within
// [min_value, kMaxWindowAttr].
inline Result<std::vector<int64_t>> window_ints(const KernelContext& ctx, const char* name, size_t n,
                                                int64_t fill, int64_t min_value) {
  std::vector<int64_t> v = ctx.node.get_ints(name);
  if (v.empty()) v.assign(n, fill);
  if (v.size() != n) return ctx.error("attribute '{}' needs {} values, has {}", name, n, v.size());
  for (int64_t x : v) {
    if (x < min_value || x > kMaxWindowAttr) {
      return ctx.error("attribute '{}' has value {} (must be in [{}, {}])", name, x, min_value,
                       kMaxWindowAttr);
    }
  }
  return v;
}

// Geometry of a conv/pool window over spatial sizes `in` with kernel `kernel` (from kernel_shape or
// the weight). `ceil_mode` is the pools' attribute; convolutions pass false.
inline Result<WindowGeometry> resolve_window(const KernelContext& ctx, std::vector<int64_t> in,
                                             std::vector<int64_t> kernel, bool ceil_mode) {
  const size_t n = in.size();
  WindowGeometry g;
  g.in = std::move(in);
  if (kernel.size() != n) return ctx.error("kernel_shape needs {} values, has {}", n, kernel.size());
  int64_t taps = 1;
  for (int64_t k : kernel) {
    if (k <= 0 || k > kMaxWindowAttr)
      return ctx.error("kernel_shape value {} is not in [1, {}]", k, kMaxWindowAttr);
    taps *= k;
    if (taps > kMaxKernelTaps) {
      return ctx.error("kernel {} has more than {} taps", shape_to_string(kernel), kMaxKernelTaps);
    }
  }
  g.kernel = std::move(kernel);
  SEQRUN_ASSIGN(g.strides, window_ints(ctx, "strides", n, 1, 1));
  SEQRUN_ASSIGN(g.dilations, window_ints(ctx, "dilations", n, 1, 1));
  SEQRUN_ASSIGN(std::vector<int64_t> pads, window_ints(ctx, "pads", 2 * n, 0, 0));
  const std::string auto_pad = ctx.node.get_string("auto_pad", "NOTSET");
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (!same && auto_pad != "NOTSET" && auto_pad != "VALID") {
    return ctx.error("auto_pad '{}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", auto_pad);
  }
  g.out.resize(n);
  g.pad_begin.resize(n);
  g.pad_end.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t size = g.in[i], s = g.strides[i];
    const int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (same) {
      // Output ceil(in / stride); the total padding is split with the odd element at the end
      // (SAME_UPPER) or at the beginning (SAME_LOWER).
      g.out[i] = (size + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * s + extent - size);
      g.pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[i] = total - g.pad_begin[i];
      continue;
    }
    g.pad_begin[i] = auto_pad == "VALID" ? 0 : pads[i];
    g.pad_end[i] = auto_pad == "VALID" ? 0 : pads[i + n];
    const int64_t room = size + g.pad_begin[i] + g.pad_end[i] - extent;
    if (room < 0) {
      return ctx.error(
          "kernel extent {} (kernel {}, dilation {}) exceeds padded input size {} on spatial axis {}", extent,
          g.kernel[i], g.dilations[i], size + g.pad_begin[i] + g.pad_end[i], i);
    }
    g.out[i] = (ceil_mode ? (room + s - 1) / s : room / s) + 1;
    // ceil_mode never starts a window inside the end padding.
    if (ceil_mode && (g.out[i] - 1) * s >= size + g.pad_begin[i]) --g.out[i];
  }
  return g;
}

// Advances the row-major multi-index `idx` within `limits`; false once it wraps past the last one.
inline bool next_index(std::vector<int64_t>& idx, const std::vector<int64_t>& limits) {
  for (size_t d = idx.size(); d-- > 0;) {
    if (++idx[d] < limits[d]) return true;
    idx[d] = 0;
  }
  return false;
}

inline int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// The first `count` inputs must be present (an ONNX "" input arrives as null).
inline Status require_inputs(const KernelContext& ctx, int count) {
  for (int i = 0; i < count; ++i) {
    if (!ctx.has_input(i)) return ctx.error("required input {} is missing", i);
  }
  return Status::ok();
}

// double -> T; for integer T rounds toward zero and saturates (NaN -> 0) instead of being undefined.
template <typename T>
T saturate_cast(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (!(v == v)) return T{0};
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  }
}

// Output tensor allocation with an overflow-checked element count.
inline Result<Tensor> alloc_output(const KernelContext& ctx, DType dtype, const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) return ctx.error("output shape {} has a negative dim", shape_to_string(shape));
  }
  if (!checked_num_elements(shape, 0, static_cast<uint64_t>(kMaxOutputElements))) {
    return ctx.error("output shape {} has more than 2^31 elements", shape_to_string(shape));
  }
  return Tensor::empty(dtype, shape);
}

}  // namespace seqrun::reference::nn_detail
