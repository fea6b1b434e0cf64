// Reference kernels for convolutions: Conv (N-d), ConvTranspose (N-d) and DeformConv (2-D, v1/v2).
//
// Layouts are ONNX's: activations [N, C, spatial...] row-major, Conv weights [M, C/group, k...],
// ConvTranspose weights [C, M/group, k...]. Each kernel is a direct loop over output (or input)
// positions and kernel taps, accumulating in float; compute-bound, single-threaded, no im2col
// except DeformConv, which samples each input channel's bilinear columns once and reuses them for
// every output channel of that channel's group.
#include <cmath>

#include "backends/reference/kernel.h"
#include "backends/reference/nn_window.h"

namespace seqrun::reference {
namespace {

using namespace nn_detail;

Status require_f32(const KernelContext& ctx, int i, const char* what) {
  if (ctx.input(i).dtype() != DType::f32) {
    return ctx.error("{} must be a float tensor, got {}", what, dtype_name(ctx.input(i).dtype()));
  }
  return Status::ok();
}

// The kernel's spatial shape: kernel_shape when given (it must match the weight), else the weight's.
Result<std::vector<int64_t>> kernel_shape_of(const KernelContext& ctx, const Tensor& w) {
  std::vector<int64_t> from_weight(w.shape().begin() + 2, w.shape().end());
  std::vector<int64_t> attr = ctx.node.get_ints("kernel_shape");
  if (!attr.empty() && attr != from_weight) {
    return ctx.error("kernel_shape {} does not match weight {}", shape_to_string(attr),
                     shape_to_string(w.shape()));
  }
  return from_weight;
}

Status check_bias(const KernelContext& ctx, int i, int64_t channels) {
  if (!ctx.has_input(i)) return Status::ok();
  SEQRUN_TRY(require_f32(ctx, i, "B"));
  const Tensor& b = ctx.input(i);
  if (b.rank() != 1 || b.dim(0) != channels) {
    return ctx.error("bias must be [{}], got {}", channels, shape_to_string(b.shape()));
  }
  return Status::ok();
}

// Row-major multi-indices of every position in a box of `sizes`.
std::vector<std::vector<int64_t>> box_positions(const std::vector<int64_t>& sizes) {
  std::vector<std::vector<int64_t>> all;
  if (product(sizes) == 0) return all;
  std::vector<int64_t> idx(sizes.size(), 0);
  do {
    all.push_back(idx);
  } while (next_index(idx, sizes));
  return all;
}

std::vector<int64_t> spatial_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> st(sizes.size(), 1);
  for (size_t i = sizes.size(); i-- > 1;) st[i - 1] = st[i] * sizes[i];
  return st;
}

// Y[n, m, o] = B[m] + sum_{ci, k} X[n, g*C/group + ci, o*s - pad + k*d] * W[m, ci, k]
Status conv_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  SEQRUN_TRY(require_f32(ctx, 1, "W"));
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.rank() < 3) return ctx.error("X must be [N, C, spatial...], got {}", shape_to_string(x.shape()));
  if (w.rank() != x.rank()) {
    return ctx.error("W {} must have the rank of X {}", shape_to_string(w.shape()),
                     shape_to_string(x.shape()));
  }
  const int64_t batch = x.dim(0), channels = x.dim(1), out_channels = w.dim(0), group_channels = w.dim(1);
  const int64_t group = ctx.node.get_int("group", 1);
  if (group <= 0) return ctx.error("group must be positive, got {}", group);
  if (out_channels % group != 0) {
    return ctx.error("W {} has {} output channels, not divisible by group {}", shape_to_string(w.shape()),
                     out_channels, group);
  }
  if (channels != group_channels * group) {
    return ctx.error("X {} has {} channels but W {} with group {} expects {}", shape_to_string(x.shape()),
                     channels, shape_to_string(w.shape()), group, group_channels * group);
  }
  SEQRUN_TRY(check_bias(ctx, 2, out_channels));
  SEQRUN_ASSIGN(std::vector<int64_t> kernel, kernel_shape_of(ctx, w));
  SEQRUN_ASSIGN(
      WindowGeometry geo,
      resolve_window(ctx, std::vector<int64_t>(x.shape().begin() + 2, x.shape().end()), kernel, false));
  Shape out_shape = {batch, out_channels};
  out_shape.insert(out_shape.end(), geo.out.begin(), geo.out.end());
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, out_shape));

  const size_t n = geo.rank();
  const int64_t in_plane = product(geo.in), k_plane = product(kernel), out_plane = product(geo.out);
  const std::vector<int64_t> in_strides = spatial_strides(geo.in);
  const auto taps = box_positions(kernel);
  const int64_t out_per_group = out_channels / group;
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* bd = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  float* yd = y.data<float>();
  std::vector<int64_t> tap_offset(taps.size());
  std::vector<char> tap_valid(taps.size());
  std::vector<int64_t> oi(n, 0);  // multi-index of output position o
  for (int64_t o = 0; o < out_plane; ++o, next_index(oi, geo.out)) {
    // Which taps of this output position land inside the input, and where.
    for (size_t t = 0; t < taps.size(); ++t) {
      int64_t off = 0;
      bool valid = true;
      for (size_t i = 0; i < n && valid; ++i) {
        const int64_t p = oi[i] * geo.strides[i] - geo.pad_begin[i] + taps[t][i] * geo.dilations[i];
        valid = p >= 0 && p < geo.in[i];
        off += p * in_strides[i];
      }
      tap_valid[t] = valid;
      tap_offset[t] = off;
    }
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t m = 0; m < out_channels; ++m) {
        const int64_t first_channel = (m / out_per_group) * group_channels;
        float acc = bd != nullptr ? bd[m] : 0.0f;
        for (int64_t ci = 0; ci < group_channels; ++ci) {
          const float* xp = xd + (b * channels + first_channel + ci) * in_plane;
          const float* wp = wd + (m * group_channels + ci) * k_plane;
          for (int64_t t = 0; t < k_plane; ++t) {
            if (tap_valid[t]) acc += xp[tap_offset[t]] * wp[t];
          }
        }
        yd[(b * out_channels + m) * out_plane + o] = acc;
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// Scatter form: every input element adds X[n, c, p] * W[c, mi, k] to Y[n, g*M/group + mi, p*s - pad + k*d].
Status conv_transpose_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  SEQRUN_TRY(require_f32(ctx, 1, "W"));
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.rank() < 3) return ctx.error("X must be [N, C, spatial...], got {}", shape_to_string(x.shape()));
  if (w.rank() != x.rank()) {
    return ctx.error("W {} must have the rank of X {}", shape_to_string(w.shape()),
                     shape_to_string(x.shape()));
  }
  const size_t n = x.rank() - 2;
  const int64_t batch = x.dim(0), channels = x.dim(1), group_out = w.dim(1);
  const int64_t group = ctx.node.get_int("group", 1);
  if (group <= 0) return ctx.error("group must be positive, got {}", group);
  if (w.dim(0) != channels || channels % group != 0) {
    return ctx.error("W {} must be [C, M/group, k...] with C = {} channels of X, divisible by group {}",
                     shape_to_string(w.shape()), channels, group);
  }
  const int64_t out_channels = group_out * group;
  SEQRUN_TRY(check_bias(ctx, 2, out_channels));
  SEQRUN_ASSIGN(std::vector<int64_t> kernel, kernel_shape_of(ctx, w));
  SEQRUN_ASSIGN(std::vector<int64_t> strides, window_ints(ctx, "strides", n, 1, 1));
  SEQRUN_ASSIGN(std::vector<int64_t> dilations, window_ints(ctx, "dilations", n, 1, 1));
  SEQRUN_ASSIGN(std::vector<int64_t> pads, window_ints(ctx, "pads", 2 * n, 0, 0));
  SEQRUN_ASSIGN(std::vector<int64_t> output_padding, window_ints(ctx, "output_padding", n, 0, 0));
  std::vector<int64_t> output_shape = ctx.node.get_ints("output_shape");
  if (!output_shape.empty()) {
    if (output_shape.size() < n) return ctx.error("output_shape needs {} spatial values", n);
    output_shape.erase(output_shape.begin(), output_shape.end() - n);
    for (int64_t s : output_shape) {
      if (s <= 0) return ctx.error("output_shape values must be positive, got {}", s);
    }
  }
  const std::string auto_pad = ctx.node.get_string("auto_pad", "NOTSET");
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (!same && auto_pad != "NOTSET" && auto_pad != "VALID") {
    return ctx.error("auto_pad '{}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", auto_pad);
  }
  std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end());
  std::vector<int64_t> out(n), pad_begin(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t full = strides[i] * (in[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1;
    if (!output_shape.empty() || same) {
      // Pads follow from the requested size; SAME_UPPER puts the odd element at the end.
      out[i] = !output_shape.empty() ? output_shape[i] : in[i] * strides[i];
      const int64_t total = std::max<int64_t>(0, full - out[i]);
      pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      const bool valid = auto_pad == "VALID";
      pad_begin[i] = valid ? 0 : pads[i];
      out[i] = full - (valid ? 0 : pads[i] + pads[i + n]);
      if (out[i] <= 0) return ctx.error("pads leave no output on spatial axis {} (size {})", i, out[i]);
    }
  }
  Shape out_shape = {batch, out_channels};
  out_shape.insert(out_shape.end(), out.begin(), out.end());
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, out_shape));

  const int64_t in_plane = product(in), out_plane = product(out), k_plane = product(kernel);
  const int64_t in_per_group = channels / group;
  const std::vector<int64_t> out_strides = spatial_strides(out);
  const auto taps = box_positions(kernel);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* yd = y.data<float>();
  if (ctx.has_input(2)) {
    const float* bd = ctx.input(2).data<float>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t m = 0; m < out_channels; ++m) {
        for (int64_t o = 0; o < out_plane; ++o) yd[(b * out_channels + m) * out_plane + o] = bd[m];
      }
    }
  }
  std::vector<int64_t> tap_offset(taps.size());
  std::vector<char> tap_valid(taps.size());
  std::vector<int64_t> pi(n, 0);  // multi-index of input position p
  for (int64_t p = 0; p < in_plane; ++p, next_index(pi, in)) {
    for (size_t t = 0; t < taps.size(); ++t) {
      int64_t off = 0;
      bool valid = true;
      for (size_t i = 0; i < n && valid; ++i) {
        const int64_t o = pi[i] * strides[i] - pad_begin[i] + taps[t][i] * dilations[i];
        valid = o >= 0 && o < out[i];
        off += o * out_strides[i];
      }
      tap_valid[t] = valid;
      tap_offset[t] = off;
    }
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t c = 0; c < channels; ++c) {
        const float xv = xd[(b * channels + c) * in_plane + p];
        const int64_t first_out = (c / in_per_group) * group_out;
        for (int64_t mi = 0; mi < group_out; ++mi) {
          const float* wp = wd + (c * group_out + mi) * k_plane;
          float* yp = yd + (b * out_channels + first_out + mi) * out_plane;
          for (int64_t t = 0; t < k_plane; ++t) {
            if (tap_valid[t]) yp[tap_offset[t]] += xv * wp[t];
          }
        }
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// Bilinear sample of an [h, w] plane at (py, px); corners outside the plane count as zero.
float bilinear_zero_outside(const float* plane, int64_t height, int64_t width, float py, float px) {
  if (!(py > -1.0f && py < static_cast<float>(height) && px > -1.0f && px < static_cast<float>(width)))
    return 0.0f;
  const float fy = std::floor(py), fx = std::floor(px);
  const int64_t y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  const float ly = py - fy, lx = px - fx;
  float v = 0.0f;
  for (int dy = 0; dy < 2; ++dy) {
    const int64_t yy = y0 + dy;
    if (yy < 0 || yy >= height) continue;
    const float wy = dy ? ly : 1.0f - ly;
    for (int dx = 0; dx < 2; ++dx) {
      const int64_t xx = x0 + dx;
      if (xx < 0 || xx >= width) continue;
      v += wy * (dx ? lx : 1.0f - lx) * plane[yy * width + xx];
    }
  }
  return v;
}

// DeformConv: each tap (i, j) of output (oh, ow) samples X at
//   (oh*sh - ph + i*dh + offset_y, ow*sw - pw + j*dw + offset_x)
// with the offsets (and optional mask) of the channel's offset group, then convolves as Conv does.
Status deform_conv_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const char* names[] = {"X", "W", "offset", "B", "mask"};
  for (int i = 0; i < 5; ++i) {
    if (ctx.has_input(i)) SEQRUN_TRY(require_f32(ctx, i, names[i]));
  }
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& offset = ctx.input(2);
  if (x.rank() != 4 || w.rank() != 4) {
    return ctx.error("only 2-D DeformConv is supported: X {} and W {} must be rank 4",
                     shape_to_string(x.shape()), shape_to_string(w.shape()));
  }
  const int64_t batch = x.dim(0), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  const int64_t out_channels = w.dim(0), group_channels = w.dim(1);
  const int64_t group = ctx.node.get_int("group", 1), offset_group = ctx.node.get_int("offset_group", 1);
  if (group <= 0 || offset_group <= 0) {
    return ctx.error("group ({}) and offset_group ({}) must be positive", group, offset_group);
  }
  if (out_channels % group != 0 || channels != group_channels * group) {
    return ctx.error("X {} and W {} are inconsistent with group {} (need C = W[1]*group, W[0] % group == 0)",
                     shape_to_string(x.shape()), shape_to_string(w.shape()), group);
  }
  if (channels % offset_group != 0) {
    return ctx.error("X has {} channels, not divisible by offset_group {}", channels, offset_group);
  }
  SEQRUN_TRY(check_bias(ctx, 3, out_channels));
  SEQRUN_ASSIGN(std::vector<int64_t> kernel, kernel_shape_of(ctx, w));
  SEQRUN_ASSIGN(WindowGeometry geo, resolve_window(ctx, {height, width}, kernel, false));
  const int64_t kh = kernel[0], kw = kernel[1], taps = kh * kw;
  const int64_t oh = geo.out[0], ow = geo.out[1], out_plane = oh * ow;
  const Shape want_offset = {batch, offset_group * taps * 2, oh, ow};
  if (offset.shape() != want_offset) {
    return ctx.error("offset must be {} = [N, offset_group*kH*kW*2, oH, oW], got {}",
                     shape_to_string(want_offset), shape_to_string(offset.shape()));
  }
  const float* md = nullptr;
  if (ctx.has_input(4)) {
    const Shape want_mask = {batch, offset_group * taps, oh, ow};
    if (ctx.input(4).shape() != want_mask) {
      return ctx.error("mask must be {} = [N, offset_group*kH*kW, oH, oW], got {}",
                       shape_to_string(want_mask), shape_to_string(ctx.input(4).shape()));
    }
    md = ctx.input(4).data<float>();
  }
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, {batch, out_channels, oh, ow}));
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* od = offset.data<float>();
  const float* bd = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
  float* yd = y.data<float>();
  const int64_t channels_per_offset_group = channels / offset_group;
  const int64_t out_per_group = out_channels / group;
  // Bias first; then, channel by channel, sample that channel's columns once and add them into
  // every output channel of its group. columns[tap][o] = the (masked) sample tap `tap` of output o reads.
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t m = 0; m < out_channels; ++m) {
      float* yp = yd + (b * out_channels + m) * out_plane;
      for (int64_t o = 0; o < out_plane; ++o) yp[o] = bd != nullptr ? bd[m] : 0.0f;
    }
  }
  std::vector<float> columns(static_cast<size_t>(taps * out_plane));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t og = c / channels_per_offset_group;
      const float* plane = xd + (b * channels + c) * height * width;
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t i = t / kw, j = t % kw;
        const float* dy = od + ((b * offset_group + og) * taps * 2 + 2 * t) * out_plane;
        const float* dx = dy + out_plane;
        const float* mp = md != nullptr ? md + ((b * offset_group + og) * taps + t) * out_plane : nullptr;
        float* col = columns.data() + t * out_plane;
        for (int64_t r = 0; r < oh; ++r) {
          for (int64_t s = 0; s < ow; ++s) {
            const int64_t o = r * ow + s;
            const float py =
                static_cast<float>(r * geo.strides[0] - geo.pad_begin[0] + i * geo.dilations[0]) + dy[o];
            const float px =
                static_cast<float>(s * geo.strides[1] - geo.pad_begin[1] + j * geo.dilations[1]) + dx[o];
            const float v = bilinear_zero_outside(plane, height, width, py, px);
            col[o] = mp != nullptr ? v * mp[o] : v;
          }
        }
      }
      const int64_t g = c / group_channels, ci = c % group_channels;
      for (int64_t m = g * out_per_group; m < (g + 1) * out_per_group; ++m) {
        float* yp = yd + (b * out_channels + m) * out_plane;
        for (int64_t t = 0; t < taps; ++t) {
          const float wv = wd[(m * group_channels + ci) * taps + t];
          const float* col = columns.data() + t * out_plane;
          for (int64_t o = 0; o < out_plane; ++o) yp[o] += wv * col[o];
        }
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

}  // namespace

void register_conv_kernels(KernelRegistry& r) {
  r.add("Conv", conv_kernel, true);
  r.add("ConvTranspose", conv_transpose_kernel, true);
  r.add("DeformConv", deform_conv_kernel, true);
}

}  // namespace seqrun::reference
