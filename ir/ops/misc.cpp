// Op schemas of the misc family: the ONNX ops real exported models use that fit no other family —
// quantization (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, ConvInteger,
// QLinearMatMul, QLinearConv), sampling and detection (GridSample, RoiAlign, MaxUnpool,
// NonMaxSuppression), Unique, Det, and signal processing (DFT, STFT, the Hann/Hamming/Blackman
// windows, MelWeightMatrix).
//
// Output dtypes are always inferred (quantized outputs take the zero point's dtype, window and mel
// outputs their output_datatype); shapes wherever the inputs' static dims and constant inputs
// determine them. Data-dependent sizes (NonMaxSuppression, Unique) are unknown dims.
#include <algorithm>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

using Dims = std::vector<Dim>;

bool static_ne(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}

bool is_quantized_int(DType t) {
  return t == DType::u8 || t == DType::i8 || t == DType::u16 || t == DType::i16;
}

Status require_float_input(const InferContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (ctx.has_input(i) && t != DType::undefined && !is_float(t)) {
    return make_error("{} must be a float tensor, got {}", what, dtype_name(t));
  }
  return Status::ok();
}

Status require_dtype_in(const InferContext& ctx, int i, const char* what,
                        std::initializer_list<DType> allowed) {
  const DType t = ctx.input_dtype(i);
  if (!ctx.has_input(i) || t == DType::undefined) return Status::ok();
  for (DType a : allowed) {
    if (t == a) return Status::ok();
  }
  std::string names;
  for (DType a : allowed) names += std::string(names.empty() ? "" : ", ") + std::string(dtype_name(a));
  return make_error("{} must be one of {}, got {}", what, names, dtype_name(t));
}

// The scalar value of a constant integer input, if there is one.
std::optional<int64_t> constant_scalar(const InferContext& ctx, int i) {
  const Tensor* t = ctx.input_constant(i);
  if (t == nullptr || t->numel() != 1 || !(is_integer(t->dtype()))) return std::nullopt;
  return t->get_i64(0);
}

// The dtype an `output_datatype`-style attribute names (ONNX TensorProto numbering).
Result<DType> dtype_attr(const InferContext& ctx, const char* name, int64_t fallback) {
  return dtype_from_onnx_type(ctx.node().get_int(name, fallback));
}

// ---------------------------------------------------------------------------------------------
// Quantization

Status infer_quantize_linear(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "x", {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i32}));
  SEQRUN_TRY(require_float_input(ctx, 1, "y_scale"));
  if (ctx.node().get_int("block_size", 0) < 0) return make_error("block_size must be >= 0");
  DType out = DType::u8;
  const int64_t output_dtype = ctx.node().get_int("output_dtype", 0);
  if (output_dtype != 0) {
    SEQRUN_ASSIGN(out, dtype_from_onnx_type(output_dtype));
  }
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::undefined) {
    if (output_dtype != 0 && ctx.input_dtype(2) != out) {
      return make_error("output_dtype {} differs from y_zero_point's dtype {}", dtype_name(out),
                        dtype_name(ctx.input_dtype(2)));
    }
    out = ctx.input_dtype(2);
  }
  if (!is_quantized_int(out))
    return make_error("quantized dtype must be u8, i8, u16 or i16, got {}", dtype_name(out));
  TensorType t = ctx.input_type(0);
  t.set_dtype(out);
  ctx.outputs[0] = t;
  return Status::ok();
}

Status infer_dequantize_linear(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "x", {DType::u8, DType::i8, DType::u16, DType::i16, DType::i32}));
  SEQRUN_TRY(require_float_input(ctx, 1, "x_scale"));
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::undefined && ctx.input_dtype(0) != DType::undefined &&
      ctx.input_dtype(2) != ctx.input_dtype(0)) {
    return make_error("x_zero_point ({}) must have x's dtype ({})", dtype_name(ctx.input_dtype(2)),
                      dtype_name(ctx.input_dtype(0)));
  }
  if (ctx.node().get_int("block_size", 0) < 0) return make_error("block_size must be >= 0");
  DType out = ctx.input_dtype(1) != DType::undefined ? ctx.input_dtype(1) : DType::f32;
  if (ctx.node().get_int("output_dtype", 0) != 0) {
    SEQRUN_ASSIGN(out, dtype_attr(ctx, "output_dtype", 0));
  }
  if (!is_float(out)) return make_error("output dtype must be a float type, got {}", dtype_name(out));
  TensorType t = ctx.input_type(0);
  t.set_dtype(out);
  ctx.outputs[0] = t;
  return Status::ok();
}

Status infer_dynamic_quantize_linear(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "x"));
  TensorType y = ctx.input_type(0);
  y.set_dtype(DType::u8);
  ctx.outputs[0] = y;
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType(DType::f32, {});
  if (ctx.num_outputs() > 2) ctx.outputs[2] = TensorType(DType::u8, {});
  return Status::ok();
}

// numpy matmul dims of A and B (1-D operands are vectors), or unknown rank.
Result<TensorType> matmul_type(const InferContext& ctx, const TensorType& a, const TensorType& b, DType dt) {
  if (!a.has_rank() || !b.has_rank()) return TensorType::unknown_rank(dt);
  if (a.rank() == 0 || b.rank() == 0) {
    return make_error("operands must have rank >= 1, got ranks {} and {}", a.rank(), b.rank());
  }
  Dims ad = a.dims(), bd = b.dims();
  const bool a_vector = ad.size() == 1, b_vector = bd.size() == 1;
  if (a_vector) ad.insert(ad.begin(), Dim(1));
  if (b_vector) bd.push_back(Dim(1));
  if (static_ne(ad.back(), bd[bd.size() - 2])) {
    return make_error("inner dims differ: A {} vs B {}", a.to_string(), b.to_string());
  }
  SEQRUN_ASSIGN(TensorType batch, infer::broadcast(ctx,
                                                   {TensorType(dt, Dims(ad.begin(), ad.end() - 2)),
                                                    TensorType(dt, Dims(bd.begin(), bd.end() - 2))},
                                                   dt));
  Dims out = batch.dims();
  if (!a_vector) out.push_back(ad[ad.size() - 2]);
  if (!b_vector) out.push_back(bd.back());
  return TensorType(dt, out);
}

Status infer_matmul_integer(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "A", {DType::u8, DType::i8}));
  SEQRUN_TRY(require_dtype_in(ctx, 1, "B", {DType::u8, DType::i8}));
  SEQRUN_ASSIGN(ctx.outputs[0], matmul_type(ctx, ctx.input_type(0), ctx.input_type(1), DType::i32));
  return Status::ok();
}

Status infer_qlinear_matmul(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "a", {DType::u8, DType::i8}));
  SEQRUN_TRY(require_dtype_in(ctx, 3, "b", {DType::u8, DType::i8}));
  for (int i : {1, 4, 6}) SEQRUN_TRY(require_float_input(ctx, i, "scale"));
  DType out = ctx.has_input(7) && ctx.input_dtype(7) != DType::undefined ? ctx.input_dtype(7) : DType::u8;
  SEQRUN_TRY(require_dtype_in(ctx, 7, "y_zero_point", {DType::u8, DType::i8}));
  SEQRUN_ASSIGN(ctx.outputs[0], matmul_type(ctx, ctx.input_type(0), ctx.input_type(3), out));
  return Status::ok();
}

// Conv output dims for X [N, C, spatial...] and W [M, C/group, k...] from the window attributes,
// computed where the sizes are static.
TensorType conv_type(const InferContext& ctx, const TensorType& x, const TensorType& w, DType dt) {
  if (!x.has_rank() || x.rank() < 3) return TensorType::unknown_rank(dt);
  const int spatial = x.rank() - 2;
  const Node& node = ctx.node();
  std::vector<int64_t> kernel = node.get_ints("kernel_shape");
  if (kernel.empty() && w.has_rank() && w.rank() == x.rank()) {
    for (int i = 0; i < spatial; ++i) kernel.push_back(w.dim(i + 2).is_static() ? w.dim(i + 2).value() : -1);
  }
  std::vector<int64_t> strides = node.get_ints("strides"), dilations = node.get_ints("dilations"),
                       pads = node.get_ints("pads");
  const std::string auto_pad = node.get_string("auto_pad", "NOTSET");
  Dims out = {x.dim(0), w.has_rank() && w.rank() >= 1 ? w.dim(0) : Dim()};
  for (int i = 0; i < spatial; ++i) {
    const Dim& in = x.dim(i + 2);
    const int64_t k = static_cast<size_t>(i) < kernel.size() ? kernel[i] : -1;
    const int64_t s = static_cast<size_t>(i) < strides.size() ? strides[i] : 1;
    const int64_t d = static_cast<size_t>(i) < dilations.size() ? dilations[i] : 1;
    int64_t pad = 0;
    if (pads.size() == static_cast<size_t>(2 * spatial)) pad = pads[i] + pads[i + spatial];
    if (!in.is_static() || s <= 0 || (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && k <= 0) ||
        d <= 0) {
      out.push_back(Dim());
      continue;
    }
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out.push_back(Dim((in.value() + s - 1) / s));
    } else {
      const int64_t room = in.value() + (auto_pad == "VALID" ? 0 : pad) - ((k - 1) * d + 1);
      out.push_back(room < 0 ? Dim() : Dim(room / s + 1));
    }
  }
  return TensorType(dt, out);
}

Status infer_conv_integer(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "x", {DType::u8, DType::i8}));
  SEQRUN_TRY(require_dtype_in(ctx, 1, "w", {DType::u8, DType::i8}));
  ctx.outputs[0] = conv_type(ctx, ctx.input_type(0), ctx.input_type(1), DType::i32);
  return Status::ok();
}

Status infer_qlinear_conv(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "x", {DType::u8, DType::i8}));
  SEQRUN_TRY(require_dtype_in(ctx, 3, "w", {DType::u8, DType::i8}));
  SEQRUN_TRY(require_dtype_in(ctx, 7, "y_zero_point", {DType::u8, DType::i8}));
  SEQRUN_TRY(require_dtype_in(ctx, 8, "B", {DType::i32}));
  DType out =
      ctx.has_input(7) && ctx.input_dtype(7) != DType::undefined ? ctx.input_dtype(7) : ctx.input_dtype(0);
  if (out == DType::undefined) out = DType::u8;
  ctx.outputs[0] = conv_type(ctx, ctx.input_type(0), ctx.input_type(3), out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Sampling and detection

Status infer_grid_sample(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "X"));
  SEQRUN_TRY(require_float_input(ctx, 1, "grid"));
  const std::string mode = ctx.node().get_string("mode", "linear");
  if (mode != "linear" && mode != "bilinear" && mode != "nearest" && mode != "cubic" && mode != "bicubic") {
    return make_error("mode '{}' is not linear, nearest or cubic", mode);
  }
  const std::string padding = ctx.node().get_string("padding_mode", "zeros");
  if (padding != "zeros" && padding != "border" && padding != "reflection") {
    return make_error("padding_mode '{}' is not zeros, border or reflection", padding);
  }
  const TensorType& x = ctx.input_type(0);
  const TensorType& grid = ctx.input_type(1);
  const DType dt = ctx.input_dtype(0);
  if (x.has_rank() && x.rank() < 3) return make_error("X must be [N, C, D1, ...], got {}", x.to_string());
  if (grid.has_rank() && grid.rank() < 3)
    return make_error("grid must be [N, D1_out, ..., r], got {}", grid.to_string());
  if (!x.has_rank() || !grid.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  const int spatial = x.rank() - 2;
  if (grid.rank() != x.rank() || (grid.dim(-1).is_static() && grid.dim(-1).value() != spatial)) {
    return make_error("grid {} must be [N, {} output dims..., {}] for X {}", grid.to_string(), spatial,
                      spatial, x.to_string());
  }
  if (static_ne(x.dim(0), grid.dim(0))) {
    return make_error("X {} and grid {} have different batch sizes", x.to_string(), grid.to_string());
  }
  Dims out = {infer::merge_dim(x.dim(0), grid.dim(0)), x.dim(1)};
  for (int i = 0; i < spatial; ++i) out.push_back(grid.dim(i + 1));
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

Status infer_roi_align(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "X"));
  SEQRUN_TRY(require_float_input(ctx, 1, "rois"));
  SEQRUN_TRY(require_dtype_in(ctx, 2, "batch_indices", {DType::i64, DType::i32}));
  const std::string mode = ctx.node().get_string("mode", "avg");
  if (mode != "avg" && mode != "max") return make_error("mode '{}' is not avg or max", mode);
  const std::string ctm = ctx.node().get_string("coordinate_transformation_mode", "half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel") {
    return make_error("coordinate_transformation_mode '{}' is not half_pixel or output_half_pixel", ctm);
  }
  const int64_t oh = ctx.node().get_int("output_height", 1), ow = ctx.node().get_int("output_width", 1);
  if (oh <= 0 || ow <= 0)
    return make_error("output_height and output_width must be positive, got {} and {}", oh, ow);
  if (ctx.node().get_int("sampling_ratio", 0) < 0) return make_error("sampling_ratio must be >= 0");
  const TensorType& x = ctx.input_type(0);
  const TensorType& rois = ctx.input_type(1);
  if (x.has_rank() && x.rank() != 4) return make_error("X must be [N, C, H, W], got {}", x.to_string());
  if (rois.has_rank() && (rois.rank() != 2 || (rois.dim(1).is_static() && rois.dim(1).value() != 4))) {
    return make_error("rois must be [num_rois, 4], got {}", rois.to_string());
  }
  const Dim num_rois = rois.has_rank() ? rois.dim(0) : Dim();
  ctx.outputs[0] =
      TensorType(ctx.input_dtype(0), {num_rois, x.has_rank() ? x.dim(1) : Dim(), Dim(oh), Dim(ow)});
  return Status::ok();
}

Status infer_max_unpool(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 1, "I", {DType::i64}));
  const TensorType& x = ctx.input_type(0);
  const DType dt = ctx.input_dtype(0);
  const std::vector<int64_t> kernel = ctx.node().get_ints("kernel_shape");
  if (x.has_rank() && (x.rank() < 3 || kernel.size() != static_cast<size_t>(x.rank() - 2))) {
    return make_error("kernel_shape has {} values; X {} needs one per spatial dim", kernel.size(),
                      x.to_string());
  }
  if (ctx.has_input(2)) {
    if (auto shape = infer::constant_ints(ctx, 2)) {
      Dims out;
      for (int64_t d : *shape) out.push_back(d >= 0 ? Dim(d) : Dim());
      ctx.outputs[0] = TensorType(dt, out);
    } else {
      infer::unknown_outputs(ctx, dt);
    }
    return Status::ok();
  }
  if (!x.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  const size_t n = kernel.size();
  std::vector<int64_t> strides = ctx.node().get_ints("strides"), pads = ctx.node().get_ints("pads");
  if (strides.empty()) strides.assign(n, 1);
  if (pads.empty()) pads.assign(2 * n, 0);
  if (strides.size() != n || pads.size() != 2 * n) {
    return make_error("strides ({} values) and pads ({} values) must match kernel_shape ({} dims)",
                      strides.size(), pads.size(), n);
  }
  Dims out = {x.dim(0), x.dim(1)};
  for (size_t i = 0; i < n; ++i) {
    const Dim& in = x.dim(static_cast<int>(i) + 2);
    out.push_back(in.is_static() ? Dim((in.value() - 1) * strides[i] - pads[i] - pads[i + n] + kernel[i])
                                 : Dim());
  }
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

Status infer_non_max_suppression(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "boxes"));
  SEQRUN_TRY(require_float_input(ctx, 1, "scores"));
  const int64_t cpb = ctx.node().get_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) return make_error("center_point_box must be 0 or 1, got {}", cpb);
  const TensorType& boxes = ctx.input_type(0);
  const TensorType& scores = ctx.input_type(1);
  if (boxes.has_rank() && (boxes.rank() != 3 || (boxes.dim(2).is_static() && boxes.dim(2).value() != 4))) {
    return make_error("boxes must be [num_batches, num_boxes, 4], got {}", boxes.to_string());
  }
  if (scores.has_rank() && scores.rank() != 3) {
    return make_error("scores must be [num_batches, num_classes, num_boxes], got {}", scores.to_string());
  }
  ctx.outputs[0] = TensorType(DType::i64, {Dim(), Dim(3)});
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Unique, Det

Status infer_unique(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const DType dt = ctx.input_dtype(0);
  const Node& node = ctx.node();
  const int64_t sorted = node.get_int("sorted", 1);
  if (sorted != 0 && sorted != 1) return make_error("sorted must be 0 or 1, got {}", sorted);
  TensorType y = TensorType(dt, {Dim()});
  TensorType inverse = TensorType(DType::i64, {Dim()});
  if (node.has_attr("axis")) {
    if (x.has_rank()) {
      SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, node.get_int("axis"), x.rank()));
      if (x.rank() == 0) return make_error("axis given but X is a scalar");
      Dims dims = x.dims();
      inverse = TensorType(DType::i64, {dims[axis]});
      dims[axis] = Dim();
      y = TensorType(dt, dims);
    } else {
      y = TensorType::unknown_rank(dt);
    }
  } else if (x.is_static()) {
    inverse = TensorType(DType::i64, {Dim(num_elements(*x.static_shape()))});
  }
  const TensorType counts(DType::i64, {Dim()});
  const TensorType outs[4] = {y, counts, inverse, counts};
  for (int i = 0; i < ctx.num_outputs() && i < 4; ++i) ctx.outputs[i] = outs[i];
  return Status::ok();
}

Status infer_det(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "X"));
  const TensorType& x = ctx.input_type(0);
  if (!x.has_rank()) {
    infer::unknown_outputs(ctx, x.dtype());
    return Status::ok();
  }
  if (x.rank() < 2 || static_ne(x.dim(-1), x.dim(-2))) {
    return make_error("X must be [..., M, M], got {}", x.to_string());
  }
  ctx.outputs[0] = TensorType(x.dtype(), Dims(x.dims().begin(), x.dims().end() - 2));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Signal processing

Status infer_dft(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "input"));
  SEQRUN_TRY(require_dtype_in(ctx, 1, "dft_length", {DType::i32, DType::i64}));
  SEQRUN_TRY(require_dtype_in(ctx, 2, "axis", {DType::i64, DType::i32}));
  const TensorType& x = ctx.input_type(0);
  const DType dt = ctx.input_dtype(0);
  const bool onesided = ctx.node().get_int("onesided", 0) != 0;
  if (!x.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  const int r = x.rank();
  if (r < 3) return make_error("input must be [batch, signal dims..., 1 or 2], got {}", x.to_string());
  if (x.dim(-1).is_static() && x.dim(-1).value() != 1 && x.dim(-1).value() != 2) {
    return make_error("input's last dim must be 1 (real) or 2 (complex), got {}", x.to_string());
  }
  Dims out = x.dims();
  out.back() = Dim(2);
  std::optional<int64_t> axis = int64_t{-2};
  if (ctx.has_input(2)) axis = constant_scalar(ctx, 2);
  if (!axis) {
    for (int i = 0; i < r - 1; ++i) out[i] = Dim();
    ctx.outputs[0] = TensorType(dt, out);
    return Status::ok();
  }
  const int64_t a = *axis < 0 ? *axis + r : *axis;
  if (a < 0 || a > r - 2) return make_error("axis {} is not a signal axis of input {}", *axis, x.to_string());
  Dim length = x.dim(static_cast<int>(a));
  if (ctx.has_input(1)) {
    auto n = constant_scalar(ctx, 1);
    length = n ? Dim(*n) : Dim();
    if (n && *n <= 0) return make_error("dft_length must be positive, got {}", *n);
  }
  out[a] = onesided ? (length.is_static() ? Dim(length.value() / 2 + 1) : Dim()) : length;
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

Status infer_stft(InferContext& ctx) {
  SEQRUN_TRY(require_float_input(ctx, 0, "signal"));
  SEQRUN_TRY(require_dtype_in(ctx, 1, "frame_step", {DType::i32, DType::i64}));
  SEQRUN_TRY(require_float_input(ctx, 2, "window"));
  SEQRUN_TRY(require_dtype_in(ctx, 3, "frame_length", {DType::i32, DType::i64}));
  const TensorType& signal = ctx.input_type(0);
  const DType dt = ctx.input_dtype(0);
  if (signal.has_rank() && signal.rank() != 3) {
    return make_error("signal must be [batch, length, 1 or 2], got {}", signal.to_string());
  }
  std::optional<int64_t> frame_length;
  if (ctx.has_input(3)) frame_length = constant_scalar(ctx, 3);
  if (!ctx.has_input(3) && ctx.has_input(2)) {
    const TensorType& w = ctx.input_type(2);
    if (w.has_rank() && w.rank() == 1 && w.dim(0).is_static()) frame_length = w.dim(0).value();
  }
  if (!ctx.has_input(2) && !ctx.has_input(3)) return make_error("needs a window or a frame_length");
  const std::optional<int64_t> step = constant_scalar(ctx, 1);
  const bool onesided = ctx.node().get_int("onesided", 1) != 0;
  Dim batch = signal.has_rank() ? signal.dim(0) : Dim(), frames, bins;
  if (frame_length && *frame_length > 0) bins = Dim(onesided ? *frame_length / 2 + 1 : *frame_length);
  if (signal.has_rank() && signal.dim(1).is_static() && frame_length && step && *step > 0 &&
      signal.dim(1).value() >= *frame_length) {
    frames = Dim((signal.dim(1).value() - *frame_length) / *step + 1);
  }
  ctx.outputs[0] = TensorType(dt, {batch, frames, bins, Dim(2)});
  return Status::ok();
}

Status infer_window(InferContext& ctx) {
  SEQRUN_TRY(require_dtype_in(ctx, 0, "size", {DType::i32, DType::i64}));
  SEQRUN_ASSIGN(DType dt, dtype_attr(ctx, "output_datatype", 1));
  if (dt == DType::boolean) return make_error("output_datatype must be numeric, got bool");
  const std::optional<int64_t> size = constant_scalar(ctx, 0);
  ctx.outputs[0] = TensorType(dt, {size && *size >= 0 ? Dim(*size) : Dim()});
  return Status::ok();
}

Status infer_mel_weight_matrix(InferContext& ctx) {
  for (int i = 0; i < 3; ++i) SEQRUN_TRY(require_dtype_in(ctx, i, "integer input", {DType::i32, DType::i64}));
  SEQRUN_TRY(require_float_input(ctx, 3, "lower_edge_hertz"));
  SEQRUN_TRY(require_float_input(ctx, 4, "upper_edge_hertz"));
  SEQRUN_ASSIGN(DType dt, dtype_attr(ctx, "output_datatype", 1));
  if (dt == DType::boolean) return make_error("output_datatype must be numeric, got bool");
  const std::optional<int64_t> mel_bins = constant_scalar(ctx, 0), dft_length = constant_scalar(ctx, 1);
  ctx.outputs[0] = TensorType(dt, {dft_length && *dft_length > 0 ? Dim(*dft_length / 2 + 1) : Dim(),
                                   mel_bins && *mel_bins > 0 ? Dim(*mel_bins) : Dim()});
  return Status::ok();
}

// Attribute lists shared by the integer convolutions.
OpDef& conv_attrs(OpDef& d) {
  return d.attr("auto_pad", AttrType::String, Attribute("NOTSET"))
      .attr("dilations", AttrType::Ints)
      .attr("group", AttrType::Int, Attribute(1))
      .attr("kernel_shape", AttrType::Ints)
      .attr("pads", AttrType::Ints)
      .attr("strides", AttrType::Ints);
}

}  // namespace

void register_misc_ops(OpRegistry& r) {
  // --- quantization ---
  r.add(OpDef("QuantizeLinear")
            .inputs(2, 3)
            .doc("y = saturate(round_half_even(x / y_scale) + y_zero_point); per-tensor, per-axis or blocked")
            .attr("axis", AttrType::Int, Attribute(1))
            .attr("block_size", AttrType::Int, Attribute(0))
            .attr("output_dtype", AttrType::Int, Attribute(0))
            .attr("precision", AttrType::Int, Attribute(0))
            .attr("saturate", AttrType::Int, Attribute(1))
            .infer(infer_quantize_linear)
            .build());
  r.add(OpDef("DequantizeLinear")
            .inputs(2, 3)
            .doc("y = (x - x_zero_point) * x_scale; per-tensor, per-axis or blocked")
            .attr("axis", AttrType::Int, Attribute(1))
            .attr("block_size", AttrType::Int, Attribute(0))
            .attr("output_dtype", AttrType::Int, Attribute(0))
            .infer(infer_dequantize_linear)
            .build());
  r.add(OpDef("DynamicQuantizeLinear")
            .inputs(1)
            .outputs(1, 3)
            .doc("u8 quantization of x over [min(x, 0), max(x, 0)]: outputs y, y_scale, y_zero_point")
            .infer(infer_dynamic_quantize_linear)
            .build());
  r.add(OpDef("MatMulInteger")
            .inputs(2, 4)
            .doc("i32 matmul of (A - a_zero_point) and (B - b_zero_point); zero points per tensor, row or "
                 "column")
            .infer(infer_matmul_integer)
            .build());
  r.add(
      OpDef("QLinearMatMul")
          .inputs(7, 8)
          .doc("quantized matmul: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point")
          .infer(infer_qlinear_matmul)
          .build());
  OpDef conv_integer("ConvInteger");
  conv_attrs(conv_integer);
  r.add(conv_integer.inputs(2, 4)
            .doc("i32 convolution of (x - x_zero_point) and (w - w_zero_point)")
            .infer(infer_conv_integer)
            .build());
  OpDef qlinear_conv("QLinearConv");
  conv_attrs(qlinear_conv);
  r.add(qlinear_conv.inputs(7, 9)
            .doc("quantized convolution: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, "
                 "y_zero_point, B? (i32)")
            .infer(infer_qlinear_conv)
            .build());

  // --- sampling and detection ---
  r.add(
      OpDef("GridSample")
          .inputs(2)
          .doc("sample X [N, C, D...] at grid [N, D_out..., r] (normalized coords): linear, nearest or cubic")
          .attr("align_corners", AttrType::Int, Attribute(0))
          .attr("mode", AttrType::String, Attribute("linear"))
          .attr("padding_mode", AttrType::String, Attribute("zeros"))
          .infer(infer_grid_sample)
          .build());
  r.add(
      OpDef("RoiAlign")
          .inputs(3)
          .doc(
              "average or max of bilinear samples over each roi's output bins: X, rois [R, 4], batch_indices")
          .attr("coordinate_transformation_mode", AttrType::String, Attribute("half_pixel"))
          .attr("mode", AttrType::String, Attribute("avg"))
          .attr("output_height", AttrType::Int, Attribute(1))
          .attr("output_width", AttrType::Int, Attribute(1))
          .attr("sampling_ratio", AttrType::Int, Attribute(0))
          .attr("spatial_scale", AttrType::Float, Attribute(1.0f))
          .infer(infer_roi_align)
          .build());
  r.add(OpDef("MaxUnpool")
            .inputs(2, 3)
            .doc("scatter X into zeros at MaxPool's flat indices I; output shape from attributes or "
                 "output_shape")
            .required_attr("kernel_shape", AttrType::Ints)
            .attr("pads", AttrType::Ints)
            .attr("strides", AttrType::Ints)
            .infer(infer_max_unpool)
            .build());
  r.add(OpDef("NonMaxSuppression")
            .inputs(2, 5)
            .doc("greedy per-class box selection by score and IoU: [num_selected, 3] (batch, class, box) "
                 "indices")
            .attr("center_point_box", AttrType::Int, Attribute(0))
            .infer(infer_non_max_suppression)
            .build());

  // --- Unique, Det ---
  r.add(OpDef("Unique")
            .inputs(1)
            .outputs(1, 4)
            .doc("unique elements or slices along axis: Y, indices, inverse_indices, counts")
            .attr("axis", AttrType::Int)
            .attr("sorted", AttrType::Int, Attribute(1))
            .infer(infer_unique)
            .build());
  r.add(OpDef("Det")
            .inputs(1)
            .doc("determinant of each [M, M] matrix of X [..., M, M]")
            .infer(infer_det)
            .build());

  // --- signal processing ---
  r.add(OpDef("DFT")
            .inputs(1, 3)
            .doc("discrete Fourier transform along axis (input 2, default -2): real [..., 1] or complex "
                 "[..., 2] in, "
                 "complex out")
            .attr("inverse", AttrType::Int, Attribute(0))
            .attr("onesided", AttrType::Int, Attribute(0))
            .infer(infer_dft)
            .build());
  r.add(OpDef("STFT")
            .inputs(2, 4)
            .doc("short-time Fourier transform: signal, frame_step, window?, frame_length? -> [batch, "
                 "frames, bins, 2]")
            .attr("onesided", AttrType::Int, Attribute(1))
            .infer(infer_stft)
            .build());
  for (const char* name : {"HannWindow", "HammingWindow", "BlackmanWindow"}) {
    r.add(OpDef(name)
              .inputs(1)
              .doc("the window of the given size (periodic or symmetric)")
              .attr("output_datatype", AttrType::Int, Attribute(1))
              .attr("periodic", AttrType::Int, Attribute(1))
              .infer(infer_window)
              .build());
  }
  r.add(OpDef("MelWeightMatrix")
            .inputs(5)
            .doc("triangular mel filter bank [dft_length / 2 + 1, num_mel_bins]")
            .attr("output_datatype", AttrType::Int, Attribute(1))
            .infer(infer_mel_weight_matrix)
            .build());
}

}  // namespace seqrun::ops
