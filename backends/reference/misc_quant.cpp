// Reference kernels for the ONNX quantization ops: QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv.
//
// These kernels see the real dtypes (u8/i8/u16/i16 quantized values, i32 accumulators, float
// scales of any float dtype). Rounding is round-half-to-even (std::nearbyint in the default mode)
// and results saturate to the quantized type, as ONNX specifies. Integer products accumulate in
// int64 and are stored as int32 (ONNX's output type). Requantization follows ONNX Runtime's order:
// multiplier = a_scale * b_scale / y_scale in float, then round(acc * multiplier) + zero_point.
// Plain loops; compute-bound, single-threaded.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/misc.h"
#include "backends/reference/nn_window.h"
#include "backends/reference/util.h"
#include "ir/ops/ops.h"

namespace seqrun::reference {
namespace {

using nn_detail::alloc_output;
using nn_detail::next_index;
using nn_detail::product;
using nn_detail::require_inputs;

// Saturation bounds of a quantized dtype.
Result<std::pair<double, double>> quantized_range(const KernelContext& ctx, DType t) {
  switch (t) {
    case DType::u8:
      return std::make_pair(0.0, 255.0);
    case DType::i8:
      return std::make_pair(-128.0, 127.0);
    case DType::u16:
      return std::make_pair(0.0, 65535.0);
    case DType::i16:
      return std::make_pair(-32768.0, 32767.0);
    default:
      return ctx.error("unsupported quantized dtype {} (u8, i8, u16 or i16)", dtype_name(t));
  }
}

// Stores `v` (already rounded and saturated) as element i of a quantized tensor.
void store_quantized(Tensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DType::u8:
      t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
      break;
    case DType::i8:
      t.data<int8_t>()[i] = static_cast<int8_t>(v);
      break;
    case DType::u16:
      t.data<uint16_t>()[i] = static_cast<uint16_t>(v);
      break;
    case DType::i16:
      t.data<int16_t>()[i] = static_cast<int16_t>(v);
      break;
    default:
      break;
  }
}

// round_half_even(q) + zero_point, saturated to [lo, hi]; NaN maps to the zero point.
double saturate_round(float q, double zero_point, std::pair<double, double> range) {
  if (std::isnan(q)) return zero_point;
  const double v = static_cast<double>(std::nearbyint(q)) + zero_point;
  return std::min(range.second, std::max(range.first, v));
}

bool is_float_tensor(const Tensor& t) {
  return is_float(t.dtype());
}

// How a scale / zero-point tensor maps onto x's elements: one value (per tensor), a 1-D
// [x.shape[axis]] (per axis) or x's shape with dim `axis` = ceil(x.shape[axis] / block_size) (blocked).
struct QuantParamLayout {
  enum Kind { kTensor, kAxis, kBlocked } kind = kTensor;
  int64_t axis_size = 1, inner = 1, block = 1, blocks = 1;

  int64_t index(int64_t flat) const {
    if (kind == kTensor) return 0;
    const int64_t a = (flat / inner) % axis_size;
    if (kind == kAxis) return a;
    const int64_t outer = flat / (inner * axis_size), in = flat % inner;
    return (outer * blocks + a / block) * inner + in;
  }
};

Result<QuantParamLayout> param_layout(const KernelContext& ctx, const Tensor& x, const Tensor& scale,
                                      const Tensor* zero_point, const char* scale_name) {
  if (zero_point != nullptr && zero_point->shape() != scale.shape()) {
    return ctx.error("zero point {} must have the shape of {} {}", shape_to_string(zero_point->shape()),
                     scale_name, shape_to_string(scale.shape()));
  }
  QuantParamLayout p;
  const int64_t block_size = ctx.node.get_int("block_size", 0);
  if (block_size < 0) return ctx.error("block_size must be >= 0, got {}", block_size);
  if (block_size == 0 && scale.rank() <= 1 && scale.numel() == 1) return p;
  if (x.rank() == 0)
    return ctx.error("{} {} must hold one value for a scalar x", scale_name, shape_to_string(scale.shape()));
  int64_t axis = ctx.node.get_int("axis", 1);
  if (axis < -x.rank() || axis >= x.rank())
    return ctx.error("axis {} out of range for x of rank {}", axis, x.rank());
  if (axis < 0) axis += x.rank();
  p.axis_size = x.dim(static_cast<int>(axis));
  for (int i = static_cast<int>(axis) + 1; i < x.rank(); ++i) p.inner *= x.dim(i);
  if (block_size == 0) {
    if (scale.rank() != 1 || scale.dim(0) != p.axis_size) {
      return ctx.error("{} {} must be a scalar or [{}] (x {} along axis {})", scale_name,
                       shape_to_string(scale.shape()), p.axis_size, shape_to_string(x.shape()), axis);
    }
    p.kind = QuantParamLayout::kAxis;
    return p;
  }
  p.kind = QuantParamLayout::kBlocked;
  p.block = block_size;
  p.blocks = (p.axis_size + block_size - 1) / block_size;
  Shape expected = x.shape();
  expected[axis] = p.blocks;
  if (scale.shape() != expected) {
    return ctx.error("{} {} must be {} for x {} with block_size {} along axis {}", scale_name,
                     shape_to_string(scale.shape()), shape_to_string(expected), shape_to_string(x.shape()),
                     block_size, axis);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear

Status quantize_linear_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (!is_float_tensor(x) && x.dtype() != DType::i32) {
    return ctx.error("x must be a float or int32 tensor, got {}", dtype_name(x.dtype()));
  }
  if (!is_float_tensor(scale))
    return ctx.error("y_scale must be a float tensor, got {}", dtype_name(scale.dtype()));
  DType out_dtype = DType::u8;
  if (const int64_t od = ctx.node.get_int("output_dtype", 0); od != 0) {
    auto d = ops::dtype_from_onnx_type(od);
    if (!d) return ctx.error("output_dtype: {}", d.status().message());
    out_dtype = *d;
  }
  if (zp != nullptr) out_dtype = zp->dtype();
  SEQRUN_ASSIGN(auto range, quantized_range(ctx, out_dtype));
  SEQRUN_ASSIGN(QuantParamLayout layout, param_layout(ctx, x, scale, zp, "y_scale"));
  const std::vector<float> xs = x.to_f32_vector(), scales = scale.to_f32_vector();
  const std::vector<int64_t> zps =
      zp != nullptr ? zp->to_i64_vector() : std::vector<int64_t>(scales.size(), 0);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, out_dtype, x.shape()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t p = layout.index(i);
    store_quantized(y, i, saturate_round(xs[i] / scales[p], static_cast<double>(zps[p]), range));
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status dequantize_linear_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (!is_integer(x.dtype())) return ctx.error("x must be an integer tensor, got {}", dtype_name(x.dtype()));
  if (!is_float_tensor(scale))
    return ctx.error("x_scale must be a float tensor, got {}", dtype_name(scale.dtype()));
  if (zp != nullptr && zp->dtype() != x.dtype()) {
    return ctx.error("x_zero_point ({}) must have x's dtype ({})", dtype_name(zp->dtype()),
                     dtype_name(x.dtype()));
  }
  DType out_dtype = scale.dtype();
  if (const int64_t od = ctx.node.get_int("output_dtype", 0); od != 0) {
    auto d = ops::dtype_from_onnx_type(od);
    if (!d || !is_float(*d)) return ctx.error("output_dtype {} is not a float type", od);
    out_dtype = *d;
  }
  SEQRUN_ASSIGN(QuantParamLayout layout, param_layout(ctx, x, scale, zp, "x_scale"));
  const std::vector<int64_t> xs = x.to_i64_vector();
  const std::vector<float> scales = scale.to_f32_vector();
  const std::vector<int64_t> zps =
      zp != nullptr ? zp->to_i64_vector() : std::vector<int64_t>(scales.size(), 0);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, x.shape()));
  float* yd = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t p = layout.index(i);
    yd[i] = static_cast<float>(xs[i] - zps[p]) * scales[p];
  }
  ctx.outputs = {out_dtype == DType::f32 ? y : y.cast(out_dtype)};
  return Status::ok();
}

// u8 quantization over [min(x, 0), max(x, 0)]: scale = range / 255, zero point = round(-min / scale).
Status dynamic_quantize_linear_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::f32) return ctx.error("x must be a float tensor, got {}", dtype_name(x.dtype()));
  const float* xd = x.data<float>();
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::isnan(xd[i])) continue;
    lo = std::min(lo, xd[i]);
    hi = std::max(hi, xd[i]);
  }
  // A zero range (x all zero) gets scale 1 and zero point 0, as in ONNX Runtime.
  const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  const std::pair<double, double> range{0.0, 255.0};
  const float zp_float = std::min(255.0f, std::max(0.0f, 0.0f - lo / scale));
  const double zero_point = std::nearbyint(zp_float);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::u8, x.shape()));
  for (int64_t i = 0; i < x.numel(); ++i)
    store_quantized(y, i, saturate_round(xd[i] / scale, zero_point, range));
  ctx.outputs = {y, Tensor::scalar<float>(scale), Tensor::scalar<uint8_t>(static_cast<uint8_t>(zero_point))};
  ctx.outputs.resize(static_cast<size_t>(ctx.node.num_outputs()));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Integer matrix products

// acc[batch..., m, n] = sum_k (A[..., m, k] - a_zp[m]) * (B[..., k, n] - b_zp[n]) with numpy batch
// broadcasting and 1-D operands as vectors. Zero points hold 1 (per tensor) or M / N values.
struct IntegerMatmul {
  Shape out_shape;
  int64_t m = 0, n = 0;
  std::vector<int64_t> acc;  // out_shape's elements, row-major
};

Status require_8bit(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.dtype() != DType::u8 && t.dtype() != DType::i8) {
    return ctx.error("{} must be u8 or i8, got {}", what, dtype_name(t.dtype()));
  }
  return Status::ok();
}

// Zero point values (1 or `count` of them) of an optional zero-point input that must match `like`'s dtype.
Result<std::vector<int64_t>> zero_points(const KernelContext& ctx, int i, const Tensor& like, int64_t count,
                                         const char* what) {
  if (!ctx.has_input(i)) return std::vector<int64_t>{0};
  const Tensor& zp = ctx.input(i);
  if (zp.dtype() != like.dtype()) {
    return ctx.error("{} ({}) must have the dtype of its operand ({})", what, dtype_name(zp.dtype()),
                     dtype_name(like.dtype()));
  }
  if (zp.numel() != 1 && (zp.rank() != 1 || zp.numel() != count)) {
    return ctx.error("{} {} must be a scalar or hold {} values", what, shape_to_string(zp.shape()), count);
  }
  return zp.to_i64_vector();
}

Result<IntegerMatmul> integer_matmul(const KernelContext& ctx, const Tensor& a, const Tensor& b,
                                     int a_zp_input, int b_zp_input) {
  if (a.rank() == 0 || b.rank() == 0) {
    return ctx.error("operands must have rank >= 1, got {} and {}", shape_to_string(a.shape()),
                     shape_to_string(b.shape()));
  }
  Shape as = a.shape(), bs = b.shape();
  const bool a_vector = as.size() == 1, b_vector = bs.size() == 1;
  if (a_vector) as.insert(as.begin(), 1);
  if (b_vector) bs.push_back(1);
  IntegerMatmul r;
  r.m = as[as.size() - 2];
  r.n = bs.back();
  const int64_t k = as.back();
  if (bs[bs.size() - 2] != k) {
    return ctx.error("inner dims differ: A {} has K = {}, B {} has K = {}", shape_to_string(a.shape()), k,
                     shape_to_string(b.shape()), bs[bs.size() - 2]);
  }
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  auto batch = broadcast_shapes({a_batch, b_batch});
  if (!batch) return ctx.error("batch dims do not broadcast: {}", batch.status().message());
  SEQRUN_ASSIGN(std::vector<int64_t> a_zp, zero_points(ctx, a_zp_input, a, r.m, "a_zero_point"));
  SEQRUN_ASSIGN(std::vector<int64_t> b_zp, zero_points(ctx, b_zp_input, b, r.n, "b_zero_point"));
  r.out_shape = *batch;
  if (!a_vector) r.out_shape.push_back(r.m);
  if (!b_vector) r.out_shape.push_back(r.n);
  if (!checked_num_elements(r.out_shape, 8, uint64_t{1} << 34)) {
    return ctx.error("output {} is too large", shape_to_string(r.out_shape));
  }
  const std::vector<int64_t> av = a.to_i64_vector(), bv = b.to_i64_vector();
  r.acc.assign(static_cast<size_t>(num_elements(r.out_shape)), 0);
  int64_t batch_index = 0;
  for_each_broadcast(*batch, {a_batch, b_batch}, [&](int64_t, const int64_t* off) {
    const int64_t* ap = av.data() + off[0] * r.m * k;
    const int64_t* bp = bv.data() + off[1] * k * r.n;
    int64_t* cp = r.acc.data() + batch_index * r.m * r.n;
    for (int64_t i = 0; i < r.m; ++i) {
      const int64_t azp = a_zp.size() == 1 ? a_zp[0] : a_zp[i];
      for (int64_t j = 0; j < r.n; ++j) {
        const int64_t bzp = b_zp.size() == 1 ? b_zp[0] : b_zp[j];
        int64_t s = 0;
        for (int64_t q = 0; q < k; ++q) s += (ap[i * k + q] - azp) * (bp[q * r.n + j] - bzp);
        cp[i * r.n + j] = s;
      }
    }
    ++batch_index;
  });
  return r;
}

Tensor to_i32(const Shape& shape, const std::vector<int64_t>& acc) {
  Tensor y = Tensor::empty(DType::i32, shape);
  for (size_t i = 0; i < acc.size(); ++i) y.data<int32_t>()[i] = static_cast<int32_t>(acc[i]);
  return y;
}

Status matmul_integer_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_8bit(ctx, ctx.input(0), "A"));
  SEQRUN_TRY(require_8bit(ctx, ctx.input(1), "B"));
  SEQRUN_ASSIGN(IntegerMatmul r, integer_matmul(ctx, ctx.input(0), ctx.input(1), 2, 3));
  ctx.outputs = {to_i32(r.out_shape, r.acc)};
  return Status::ok();
}

// A float scale input holding 1 or `count` values.
Result<std::vector<float>> scales(const KernelContext& ctx, int i, int64_t count, const char* what) {
  if (!ctx.has_input(i)) return ctx.error("required input {} ({}) is missing", i, what);
  const Tensor& s = ctx.input(i);
  if (!is_float_tensor(s)) return ctx.error("{} must be a float tensor, got {}", what, dtype_name(s.dtype()));
  if (s.numel() != 1 && (s.rank() != 1 || s.numel() != count)) {
    return ctx.error("{} {} must be a scalar or hold {} values", what, shape_to_string(s.shape()), count);
  }
  return s.to_f32_vector();
}

// The output zero point (one value) and its dtype; absent means u8 zero.
Result<std::pair<DType, double>> output_zero_point(const KernelContext& ctx, int i) {
  if (!ctx.has_input(i)) return std::make_pair(DType::u8, 0.0);
  const Tensor& zp = ctx.input(i);
  if (zp.numel() != 1)
    return ctx.error("y_zero_point must hold one value, got {}", shape_to_string(zp.shape()));
  return std::make_pair(zp.dtype(), static_cast<double>(zp.get_i64(0)));
}

Status qlinear_matmul_kernel(KernelContext& ctx) {
  for (int i : {0, 1, 3, 4, 6}) {
    if (!ctx.has_input(i)) return ctx.error("required input {} is missing", i);
  }
  SEQRUN_TRY(require_8bit(ctx, ctx.input(0), "a"));
  SEQRUN_TRY(require_8bit(ctx, ctx.input(3), "b"));
  SEQRUN_ASSIGN(IntegerMatmul r, integer_matmul(ctx, ctx.input(0), ctx.input(3), 2, 5));
  SEQRUN_ASSIGN(std::vector<float> a_scale, scales(ctx, 1, r.m, "a_scale"));
  SEQRUN_ASSIGN(std::vector<float> b_scale, scales(ctx, 4, r.n, "b_scale"));
  SEQRUN_ASSIGN(std::vector<float> y_scale, scales(ctx, 6, 1, "y_scale"));
  SEQRUN_ASSIGN(auto out_zp, output_zero_point(ctx, 7));
  SEQRUN_ASSIGN(auto range, quantized_range(ctx, out_zp.first));
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, out_zp.first, r.out_shape));
  for (size_t e = 0; e < r.acc.size(); ++e) {
    const int64_t i = static_cast<int64_t>(e) / r.n % r.m, j = static_cast<int64_t>(e) % r.n;
    const float multiplier =
        a_scale[a_scale.size() == 1 ? 0 : i] * b_scale[b_scale.size() == 1 ? 0 : j] / y_scale[0];
    store_quantized(y, static_cast<int64_t>(e),
                    saturate_round(static_cast<float>(r.acc[e]) * multiplier, out_zp.second, range));
  }
  ctx.outputs = {y};
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Integer convolutions

// acc[n, m, out...] = sum over the group's channels and the window of (x - x_zp) * (w - w_zp[m]);
// taps in the padding contribute nothing (they hold the zero point).
struct IntegerConv {
  Shape out_shape;
  int64_t out_channels = 0;
  std::vector<int64_t> acc;
};

Result<IntegerConv> integer_conv(const KernelContext& ctx, const Tensor& x, const Tensor& w, int x_zp_input,
                                 int w_zp_input) {
  SEQRUN_TRY(require_8bit(ctx, x, "x"));
  SEQRUN_TRY(require_8bit(ctx, w, "w"));
  if (x.rank() < 3) return ctx.error("x must be [N, C, spatial...], got {}", shape_to_string(x.shape()));
  if (w.rank() != x.rank()) {
    return ctx.error("w {} must have x's rank ({})", shape_to_string(w.shape()), x.rank());
  }
  const int64_t group = ctx.node.get_int("group", 1);
  const int64_t batch = x.dim(0), channels = x.dim(1), m_total = w.dim(0);
  if (group <= 0 || channels % group != 0 || m_total % group != 0 || w.dim(1) != channels / group) {
    return ctx.error("x {} and w {} do not fit group = {} (w must be [M, C / group, k...])",
                     shape_to_string(x.shape()), shape_to_string(w.shape()), group);
  }
  const std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
  const std::vector<int64_t> kernel_attr = ctx.node.get_ints("kernel_shape");
  if (!kernel_attr.empty() && kernel_attr != kernel) {
    return ctx.error("kernel_shape {} differs from w's spatial dims {}", shape_to_string(kernel_attr),
                     shape_to_string(kernel));
  }
  SEQRUN_ASSIGN(nn_detail::WindowGeometry geo,
                nn_detail::resolve_window(ctx, std::vector<int64_t>(x.shape().begin() + 2, x.shape().end()),
                                          kernel, false));
  if (ctx.has_input(x_zp_input) && ctx.input(x_zp_input).numel() != 1) {
    return ctx.error("x_zero_point must hold one value, got {}",
                     shape_to_string(ctx.input(x_zp_input).shape()));
  }
  SEQRUN_ASSIGN(std::vector<int64_t> x_zp, zero_points(ctx, x_zp_input, x, 1, "x_zero_point"));
  SEQRUN_ASSIGN(std::vector<int64_t> w_zp, zero_points(ctx, w_zp_input, w, m_total, "w_zero_point"));
  IntegerConv r;
  r.out_channels = m_total;
  r.out_shape = {batch, m_total};
  r.out_shape.insert(r.out_shape.end(), geo.out.begin(), geo.out.end());
  if (!checked_num_elements(r.out_shape, 8, static_cast<uint64_t>(nn_detail::kMaxOutputElements))) {
    return ctx.error("output {} is too large", shape_to_string(r.out_shape));
  }
  const std::vector<int64_t> xv = x.to_i64_vector(), wv = w.to_i64_vector();
  const int64_t in_plane = product(geo.in), out_plane = product(geo.out), taps = product(geo.kernel);
  const int64_t group_in = channels / group, group_out = m_total / group;
  const size_t n = geo.rank();
  // Offsets of every (output position, tap) pair into one input plane, -1 outside the input.
  std::vector<int64_t> tap_offset(static_cast<size_t>(out_plane * taps), -1);
  std::vector<int64_t> oi(n, 0);
  for (int64_t o = 0; o < out_plane; ++o, next_index(oi, geo.out)) {
    std::vector<int64_t> ki(n, 0);
    for (int64_t t = 0; t < taps; ++t, next_index(ki, geo.kernel)) {
      int64_t offset = 0;
      bool inside = true;
      for (size_t i = 0; i < n; ++i) {
        const int64_t p = oi[i] * geo.strides[i] - geo.pad_begin[i] + ki[i] * geo.dilations[i];
        inside = inside && p >= 0 && p < geo.in[i];
        offset = offset * geo.in[i] + p;
      }
      if (inside) tap_offset[o * taps + t] = offset;
    }
  }
  r.acc.assign(static_cast<size_t>(num_elements(r.out_shape)), 0);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t m = 0; m < m_total; ++m) {
      const int64_t g = m / group_out;
      const int64_t wzp = w_zp.size() == 1 ? w_zp[0] : w_zp[m];
      int64_t* out = r.acc.data() + (b * m_total + m) * out_plane;
      for (int64_t c = 0; c < group_in; ++c) {
        const int64_t* xp = xv.data() + (b * channels + g * group_in + c) * in_plane;
        const int64_t* wp = wv.data() + (m * group_in + c) * taps;
        for (int64_t o = 0; o < out_plane; ++o) {
          int64_t s = 0;
          for (int64_t t = 0; t < taps; ++t) {
            const int64_t off = tap_offset[o * taps + t];
            if (off >= 0) s += (xp[off] - x_zp[0]) * (wp[t] - wzp);
          }
          out[o] += s;
        }
      }
    }
  }
  return r;
}

Status conv_integer_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_ASSIGN(IntegerConv r, integer_conv(ctx, ctx.input(0), ctx.input(1), 2, 3));
  ctx.outputs = {to_i32(r.out_shape, r.acc)};
  return Status::ok();
}

Status qlinear_conv_kernel(KernelContext& ctx) {
  for (int i : {0, 1, 3, 4, 6}) {
    if (!ctx.has_input(i)) return ctx.error("required input {} is missing", i);
  }
  SEQRUN_ASSIGN(IntegerConv r, integer_conv(ctx, ctx.input(0), ctx.input(3), 2, 5));
  const int64_t m_total = r.out_channels;
  SEQRUN_ASSIGN(std::vector<float> x_scale, scales(ctx, 1, 1, "x_scale"));
  SEQRUN_ASSIGN(std::vector<float> w_scale, scales(ctx, 4, m_total, "w_scale"));
  SEQRUN_ASSIGN(std::vector<float> y_scale, scales(ctx, 6, 1, "y_scale"));
  SEQRUN_ASSIGN(auto out_zp, output_zero_point(ctx, 7));
  SEQRUN_ASSIGN(auto range, quantized_range(ctx, out_zp.first));
  std::vector<int64_t> bias(static_cast<size_t>(m_total), 0);
  if (ctx.has_input(8)) {
    const Tensor& b = ctx.input(8);
    if (b.dtype() != DType::i32 || b.shape() != Shape{m_total}) {
      return ctx.error("B must be i32[{}], got {}{}", m_total, dtype_name(b.dtype()),
                       shape_to_string(b.shape()));
    }
    bias = b.to_i64_vector();
  }
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, out_zp.first, r.out_shape));
  const int64_t plane = product(std::vector<int64_t>(r.out_shape.begin() + 2, r.out_shape.end()));
  for (size_t e = 0; e < r.acc.size(); ++e) {
    const int64_t m = static_cast<int64_t>(e) / plane % m_total;
    const float multiplier = x_scale[0] * w_scale[w_scale.size() == 1 ? 0 : m] / y_scale[0];
    store_quantized(
        y, static_cast<int64_t>(e),
        saturate_round(static_cast<float>(r.acc[e] + bias[m]) * multiplier, out_zp.second, range));
  }
  ctx.outputs = {y};
  return Status::ok();
}

}  // namespace

void register_misc_quant_kernels(KernelRegistry& r) {
  r.add("QuantizeLinear", quantize_linear_kernel);
  r.add("DequantizeLinear", dequantize_linear_kernel);
  r.add("DynamicQuantizeLinear", dynamic_quantize_linear_kernel, true);
  r.add("MatMulInteger", matmul_integer_kernel);
  r.add("QLinearMatMul", qlinear_matmul_kernel);
  r.add("ConvInteger", conv_integer_kernel);
  r.add("QLinearConv", qlinear_conv_kernel);
}

}  // namespace seqrun::reference
