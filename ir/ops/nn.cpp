// Op schemas of the nn family: matrix products (MatMul, Gemm, Linear, Einsum), convolutions (Conv,
// ConvTranspose, DeformConv), pooling, normalizations, Resize/Upsample and LinearRecurrence.
//
// Shape inference computes conv/pool output sizes from the attributes (auto_pad included) whenever
// the input dims are static, and always infers dtypes. The reference kernels re-check everything
// against the runtime shapes, so inference only rejects what is certainly wrong.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

using Dims = std::vector<Dim>;
constexpr int64_t kUnknownSize = -1;
// Largest stride / dilation / pad / kernel size accepted (keeps the size arithmetic far from overflow).
constexpr int64_t kMaxWindowAttr = int64_t{1} << 24;
// Largest dim a resize may produce in inference.
constexpr double kMaxResizedDim = 9.0e15;

DType first_known_dtype(const InferContext& ctx) {
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.has_input(i) && ctx.input_dtype(i) != DType::undefined) return ctx.input_dtype(i);
  }
  return DType::undefined;
}

Status require_float(const InferContext& ctx, int i, const char* what) {
  DType t = ctx.input_dtype(i);
  if (t != DType::undefined && !is_float(t)) {
    return make_error("{} must be a float tensor, got {}", what, dtype_name(t));
  }
  return Status::ok();
}

bool static_eq(const Dim& a, int64_t v) {
  return a.is_static() && a.value() == v;
}
bool static_ne(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}

// ---------------------------------------------------------------------------------------------
// MatMul, Gemm, Linear

Status infer_matmul(InferContext& ctx) {
  const TensorType& a = ctx.input_type(0);
  const TensorType& b = ctx.input_type(1);
  DType dt = first_known_dtype(ctx);
  if (!a.has_rank() || !b.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  if (a.rank() == 0 || b.rank() == 0) {
    return make_error("operands must have rank >= 1, got ranks {} and {}", a.rank(), b.rank());
  }
  Dims ad = a.dims(), bd = b.dims();
  const bool a_vector = ad.size() == 1, b_vector = bd.size() == 1;
  if (a_vector) ad.insert(ad.begin(), Dim(1));
  if (b_vector) bd.push_back(Dim(1));
  if (static_ne(ad.back(), bd[bd.size() - 2])) {
    return make_error("inner dims differ: A {} has K = {}, B {} has K = {}", a.to_string(), ad.back().value(),
                      b.to_string(), bd[bd.size() - 2].value());
  }
  SEQRUN_ASSIGN(TensorType batch, infer::broadcast(ctx,
                                                   {TensorType(dt, Dims(ad.begin(), ad.end() - 2)),
                                                    TensorType(dt, Dims(bd.begin(), bd.end() - 2))},
                                                   dt));
  Dims out = batch.dims();
  if (!a_vector) out.push_back(ad[ad.size() - 2]);
  if (!b_vector) out.push_back(bd.back());
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

Status infer_gemm(InferContext& ctx) {
  const TensorType& a = ctx.input_type(0);
  const TensorType& b = ctx.input_type(1);
  DType dt = first_known_dtype(ctx);
  if ((a.has_rank() && a.rank() != 2) || (b.has_rank() && b.rank() != 2)) {
    return make_error("A and B must be 2-D, got {} and {}", a.to_string(), b.to_string());
  }
  const bool trans_a = ctx.node().get_int("transA") != 0, trans_b = ctx.node().get_int("transB") != 0;
  Dim m, k_a, k_b, n;
  if (a.has_rank()) {
    m = a.dim(trans_a ? 1 : 0);
    k_a = a.dim(trans_a ? 0 : 1);
  }
  if (b.has_rank()) {
    k_b = b.dim(trans_b ? 1 : 0);
    n = b.dim(trans_b ? 0 : 1);
  }
  if (static_ne(k_a, k_b)) {
    return make_error("inner dims differ: A {} (transA={}) vs B {} (transB={})", a.to_string(),
                      trans_a ? 1 : 0, b.to_string(), trans_b ? 1 : 0);
  }
  if (ctx.has_input(2)) {
    const TensorType& c = ctx.input_type(2);
    if (c.has_rank()) {
      if (c.rank() > 2) return make_error("C must have rank <= 2, got {}", c.to_string());
      const Dims target = {m, n};
      for (int i = 0; i < c.rank(); ++i) {
        const Dim& cd = c.dim(i);
        const Dim& td = target[2 - c.rank() + i];
        if (cd.is_static() && cd.value() != 1 && static_ne(cd, td)) {
          return make_error("C {} does not broadcast to [M, N] = [{}, {}]", c.to_string(), m.to_string(),
                            n.to_string());
        }
      }
    }
  }
  ctx.outputs[0] = TensorType(dt, {m, n});
  return Status::ok();
}

Status infer_linear(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  DType dt = first_known_dtype(ctx);
  if (w.has_rank() && w.rank() != 2) return make_error("W must be [out, in], got {}", w.to_string());
  if (x.has_rank() && x.rank() == 0) return make_error("x must have rank >= 1");
  Dim out_features = w.has_rank() ? w.dim(0) : Dim();
  if (x.has_rank() && w.has_rank() && static_ne(x.dim(-1), w.dim(1))) {
    return make_error("x {} has {} input features but W {} expects {}", x.to_string(), x.dim(-1).value(),
                      w.to_string(), w.dim(1).value());
  }
  if (ctx.has_input(2)) {
    const TensorType& b = ctx.input_type(2);
    if (b.has_rank() && (b.rank() != 1 || static_ne(b.dim(0), out_features))) {
      return make_error("bias must be [{}], got {}", out_features.to_string(), b.to_string());
    }
  }
  if (!x.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  Dims out(x.dims().begin(), x.dims().end() - 1);
  out.push_back(out_features);
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Einsum: "ij,jk->ik"; '...' stands for broadcast dims. Labels are letters.

struct EinsumTerm {
  std::vector<char> labels;  // in order, without the ellipsis
  int ellipsis_at = -1;      // index into labels where '...' sits, or -1
};

Result<EinsumTerm> parse_einsum_term(const std::string& text) {
  EinsumTerm term;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (term.ellipsis_at >= 0 || text.compare(i, 3, "...") != 0) {
        return make_error("bad ellipsis in einsum term '{}'", text);
      }
      term.ellipsis_at = static_cast<int>(term.labels.size());
      i += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      term.labels.push_back(c);
    } else {
      return make_error("invalid character '{}' in einsum term '{}'", c, text);
    }
  }
  return term;
}

Status infer_einsum(InferContext& ctx) {
  DType dt = first_known_dtype(ctx);
  std::string eq;
  for (char c : ctx.node().get_string("equation")) {
    if (c != ' ') eq += c;
  }
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<EinsumTerm> terms;
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    SEQRUN_ASSIGN(EinsumTerm t, parse_einsum_term(lhs.substr(start, comma - start)));
    terms.push_back(t);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (static_cast<int>(terms.size()) != ctx.num_inputs()) {
    return make_error("equation '{}' has {} operand terms but the node has {} inputs", eq, terms.size(),
                      ctx.num_inputs());
  }
  std::map<char, Dim> label_dim;
  std::map<char, int> label_count;
  Dims ellipsis;  // broadcast dims, right-aligned
  bool any_ellipsis = false;
  bool ranks_known = true;
  for (size_t k = 0; k < terms.size(); ++k) {
    const TensorType& t = ctx.input_type(static_cast<int>(k));
    const EinsumTerm& term = terms[k];
    for (char c : term.labels) ++label_count[c];
    any_ellipsis |= term.ellipsis_at >= 0;
    if (!t.has_rank()) {
      ranks_known = false;
      continue;
    }
    const int n_labels = static_cast<int>(term.labels.size());
    const int ell_rank = t.rank() - n_labels;
    if ((term.ellipsis_at < 0 && ell_rank != 0) || ell_rank < 0) {
      return make_error("operand {} has rank {} but its term names {} dims", k, t.rank(), n_labels);
    }
    for (int j = 0; j < n_labels; ++j) {
      const int axis = (term.ellipsis_at >= 0 && j >= term.ellipsis_at) ? j + ell_rank : j;
      const char c = term.labels[j];
      const Dim& d = t.dim(axis);
      // Like numpy, a labelled dim of size 1 broadcasts against the same label elsewhere.
      auto it = label_dim.find(c);
      if (it == label_dim.end() || static_eq(it->second, 1)) {
        label_dim[c] = d;
      } else if (!static_eq(d, 1)) {
        if (static_ne(it->second, d)) {
          return make_error("label '{}' has sizes {} and {} in '{}'", c, it->second.value(), d.value(), eq);
        }
        it->second = infer::merge_dim(it->second, d);
      }
    }
    if (term.ellipsis_at >= 0) {
      Dims mine(t.dims().begin() + term.ellipsis_at, t.dims().begin() + term.ellipsis_at + ell_rank);
      SEQRUN_ASSIGN(TensorType b,
                    infer::broadcast(ctx, {TensorType(dt, ellipsis), TensorType(dt, mine)}, dt));
      ellipsis = b.dims();
    }
  }
  EinsumTerm out_term;
  if (arrow != std::string::npos) {
    SEQRUN_ASSIGN(out_term, parse_einsum_term(eq.substr(arrow + 2)));
    for (size_t i = 0; i < out_term.labels.size(); ++i) {
      const char c = out_term.labels[i];
      if (label_count.count(c) == 0)
        return make_error("output label '{}' is not in any operand of '{}'", c, eq);
      for (size_t j = 0; j < i; ++j) {
        if (out_term.labels[j] == c) return make_error("output label '{}' repeats in '{}'", c, eq);
      }
    }
  } else {
    if (any_ellipsis) out_term.ellipsis_at = 0;
    for (const auto& [c, count] : label_count) {
      if (count == 1) out_term.labels.push_back(c);
    }
  }
  if (!ranks_known) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  if (!ellipsis.empty() && out_term.ellipsis_at < 0) {
    return make_error("equation '{}': output omits '...' but operands have broadcast dims", eq);
  }
  Dims out;
  for (size_t i = 0; i <= out_term.labels.size(); ++i) {
    if (static_cast<int>(i) == out_term.ellipsis_at) out.insert(out.end(), ellipsis.begin(), ellipsis.end());
    if (i < out_term.labels.size()) out.push_back(label_dim[out_term.labels[i]]);
  }
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Sliding windows (Conv, pools): attribute checks and output sizes.

struct WindowAttrs {
  std::vector<int64_t> kernel;  // kUnknownSize where the weight's dim is not static
  std::vector<int64_t> strides, dilations, pads;
  std::string auto_pad;
  bool ceil_mode = false;
};

Result<std::vector<int64_t>> ints_of_length(const Node& node, const char* name, size_t n, int64_t fill,
                                            int64_t min_value) {
  std::vector<int64_t> v = node.get_ints(name);
  if (v.empty()) v.assign(n, fill);
  if (v.size() != n) return make_error("attribute '{}' needs {} values, has {}", name, n, v.size());
  for (int64_t x : v) {
    if (x < min_value || x > kMaxWindowAttr) {
      return make_error("attribute '{}' has value {} (must be in [{}, {}])", name, x, min_value,
                        kMaxWindowAttr);
    }
  }
  return v;
}

Result<WindowAttrs> read_window(const Node& node, size_t n, std::vector<int64_t> kernel) {
  WindowAttrs w;
  w.kernel = std::move(kernel);
  SEQRUN_ASSIGN(w.strides, ints_of_length(node, "strides", n, 1, 1));
  SEQRUN_ASSIGN(w.dilations, ints_of_length(node, "dilations", n, 1, 1));
  SEQRUN_ASSIGN(w.pads, ints_of_length(node, "pads", 2 * n, 0, 0));
  w.auto_pad = node.get_string("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" &&
      w.auto_pad != "VALID") {
    return make_error("auto_pad '{}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", w.auto_pad);
  }
  w.ceil_mode = node.get_int("ceil_mode") != 0;
  return w;
}

// Output size of spatial axis i for input size `in` (conv and pool share the formula).
Result<Dim> window_out_dim(const WindowAttrs& w, size_t i, const Dim& in) {
  const size_t n = w.kernel.size();
  if (!in.is_static() || w.kernel[i] == kUnknownSize || in.value() > (int64_t{1} << 48)) return Dim();
  const int64_t size = in.value(), s = w.strides[i];
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") return Dim((size + s - 1) / s);
  const int64_t extent = (w.kernel[i] - 1) * w.dilations[i] + 1;
  const int64_t pad_begin = w.auto_pad == "VALID" ? 0 : w.pads[i];
  const int64_t pad_end = w.auto_pad == "VALID" ? 0 : w.pads[i + n];
  const int64_t room = size + pad_begin + pad_end - extent;
  if (room < 0) {
    return make_error("kernel extent {} exceeds padded input size {} on spatial axis {}", extent,
                      size + pad_begin + pad_end, i);
  }
  int64_t out = (w.ceil_mode ? (room + s - 1) / s : room / s) + 1;
  if (w.ceil_mode && (out - 1) * s >= size + pad_begin) --out;  // last window would start in the end padding
  return Dim(out);
}

// X: [N, C, spatial...] of rank >= 3.
Status check_nchw(const TensorType& x, const char* what) {
  if (x.has_rank() && x.rank() < 3) {
    return make_error("{} must be [N, C, spatial...] (rank >= 3), got {}", what, x.to_string());
  }
  return Status::ok();
}

std::vector<int64_t> kernel_from_weight(const Node& node, const TensorType& w, size_t n) {
  std::vector<int64_t> k = node.get_ints("kernel_shape");
  if (!k.empty()) return k;
  k.assign(n, kUnknownSize);
  if (w.has_rank() && w.rank() == static_cast<int>(n) + 2) {
    for (size_t i = 0; i < n; ++i) {
      if (w.dim(static_cast<int>(i) + 2).is_static()) k[i] = w.dim(static_cast<int>(i) + 2).value();
    }
  }
  return k;
}

Status check_kernel_against_weight(const std::vector<int64_t>& kernel, const TensorType& w, size_t n) {
  if (kernel.size() != n) return make_error("kernel_shape needs {} values, has {}", n, kernel.size());
  for (size_t i = 0; i < n; ++i) {
    if (kernel[i] != kUnknownSize && (kernel[i] <= 0 || kernel[i] > kMaxWindowAttr)) {
      return make_error("kernel_shape[{}] = {} is not in [1, {}]", i, kernel[i], kMaxWindowAttr);
    }
    if (!w.has_rank() || kernel[i] == kUnknownSize) continue;
    const Dim& d = w.dim(static_cast<int>(i) + 2);
    if (d.is_static() && d.value() != kernel[i]) {
      return make_error("kernel_shape[{}] = {} but W {} has {}", i, kernel[i], w.to_string(), d.value());
    }
  }
  return Status::ok();
}

Status check_bias(const InferContext& ctx, int i, const Dim& channels) {
  if (!ctx.has_input(i)) return Status::ok();
  const TensorType& b = ctx.input_type(i);
  if (b.has_rank() && (b.rank() != 1 || static_ne(b.dim(0), channels))) {
    return make_error("bias must be [{}], got {}", channels.to_string(), b.to_string());
  }
  return Status::ok();
}

// Rank of the [N, C, spatial...] input, from X or else the weight; -1 when neither knows.
int conv_rank(const TensorType& x, const TensorType& w) {
  if (x.has_rank()) return x.rank();
  if (w.has_rank()) return w.rank();
  return -1;
}

Status infer_conv(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  SEQRUN_TRY(check_nchw(x, "X"));
  SEQRUN_TRY(check_nchw(w, "W"));
  const DType dt = first_known_dtype(ctx);
  const int rank = conv_rank(x, w);
  if (rank < 0) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  if (x.has_rank() && w.has_rank() && x.rank() != w.rank()) {
    return make_error("X {} and W {} must have the same rank", x.to_string(), w.to_string());
  }
  const size_t n = rank - 2;
  const int64_t group = ctx.node().get_int("group", 1);
  if (group <= 0) return make_error("group must be positive, got {}", group);
  const Dim out_channels = w.has_rank() ? w.dim(0) : Dim();
  if (out_channels.is_static() && out_channels.value() % group != 0) {
    return make_error("W {} has {} output channels, not divisible by group {}", w.to_string(),
                      out_channels.value(), group);
  }
  if (x.has_rank() && w.has_rank() && x.dim(1).is_static() && w.dim(1).is_static() &&
      x.dim(1).value() != w.dim(1).value() * group) {
    return make_error("X {} has {} channels but W {} with group {} expects {}", x.to_string(),
                      x.dim(1).value(), w.to_string(), group, w.dim(1).value() * group);
  }
  SEQRUN_TRY(check_bias(ctx, 2, out_channels));
  std::vector<int64_t> kernel = kernel_from_weight(ctx.node(), w, n);
  SEQRUN_TRY(check_kernel_against_weight(kernel, w, n));
  SEQRUN_ASSIGN(WindowAttrs win, read_window(ctx.node(), n, kernel));
  Dims out = {x.has_rank() ? x.dim(0) : Dim(), out_channels};
  for (size_t i = 0; i < n; ++i) {
    SEQRUN_ASSIGN(Dim d, window_out_dim(win, i, x.has_rank() ? x.dim(static_cast<int>(i) + 2) : Dim()));
    out.push_back(d);
  }
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

Status infer_conv_transpose(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  SEQRUN_TRY(check_nchw(x, "X"));
  SEQRUN_TRY(check_nchw(w, "W"));
  const DType dt = first_known_dtype(ctx);
  const int rank = conv_rank(x, w);
  if (rank < 0) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  if (x.has_rank() && w.has_rank() && x.rank() != w.rank()) {
    return make_error("X {} and W {} must have the same rank", x.to_string(), w.to_string());
  }
  const size_t n = rank - 2;
  const int64_t group = ctx.node().get_int("group", 1);
  if (group <= 0) return make_error("group must be positive, got {}", group);
  if (x.has_rank() && w.has_rank() && static_ne(x.dim(1), w.dim(0))) {
    return make_error("X {} has {} channels but W {} is [C, M/group, ...] with C = {}", x.to_string(),
                      x.dim(1).value(), w.to_string(), w.dim(0).value());
  }
  if (w.has_rank() && w.dim(0).is_static() && w.dim(0).value() % group != 0) {
    return make_error("W {} has {} input channels, not divisible by group {}", w.to_string(),
                      w.dim(0).value(), group);
  }
  Dim out_channels = (w.has_rank() && w.dim(1).is_static()) ? Dim(w.dim(1).value() * group) : Dim();
  SEQRUN_TRY(check_bias(ctx, 2, out_channels));
  std::vector<int64_t> kernel = kernel_from_weight(ctx.node(), w, n);
  SEQRUN_TRY(check_kernel_against_weight(kernel, w, n));
  SEQRUN_ASSIGN(WindowAttrs win, read_window(ctx.node(), n, kernel));
  SEQRUN_ASSIGN(std::vector<int64_t> output_padding, ints_of_length(ctx.node(), "output_padding", n, 0, 0));
  std::vector<int64_t> output_shape = ctx.node().get_ints("output_shape");
  if (!output_shape.empty() && output_shape.size() < n) {
    return make_error("output_shape needs {} spatial values, has {}", n, output_shape.size());
  }
  Dims out = {x.has_rank() ? x.dim(0) : Dim(), out_channels};
  for (size_t i = 0; i < n; ++i) {
    if (!output_shape.empty()) {
      out.push_back(Dim(output_shape[output_shape.size() - n + i]));
      continue;
    }
    const Dim in = x.has_rank() ? x.dim(static_cast<int>(i) + 2) : Dim();
    if (!in.is_static() || kernel[i] == kUnknownSize) {
      out.push_back(Dim());
      continue;
    }
    const int64_t s = win.strides[i];
    if (win.auto_pad == "SAME_UPPER" || win.auto_pad == "SAME_LOWER") {
      out.push_back(Dim(in.value() * s));
      continue;
    }
    const bool valid = win.auto_pad == "VALID";
    const int64_t size = s * (in.value() - 1) + output_padding[i] + (kernel[i] - 1) * win.dilations[i] + 1 -
                         (valid ? 0 : win.pads[i] + win.pads[i + n]);
    if (size <= 0) return make_error("pads leave no output on spatial axis {} (size {})", i, size);
    out.push_back(Dim(size));
  }
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

// DeformConv (2-D): X [N, C, H, W], W [oC, C/group, kH, kW], offset [N, og*kH*kW*2, oH, oW],
// B [oC], mask [N, og*kH*kW, oH, oW].
Status infer_deform_conv(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  const DType dt = first_known_dtype(ctx);
  if ((x.has_rank() && x.rank() != 4) || (w.has_rank() && w.rank() != 4)) {
    return make_error("only 2-D DeformConv is supported: X and W must be rank 4, got {} and {}",
                      x.to_string(), w.to_string());
  }
  const int64_t group = ctx.node().get_int("group", 1);
  const int64_t offset_group = ctx.node().get_int("offset_group", 1);
  if (group <= 0 || offset_group <= 0) {
    return make_error("group ({}) and offset_group ({}) must be positive", group, offset_group);
  }
  if (x.has_rank() && w.has_rank() && x.dim(1).is_static() && w.dim(1).is_static() &&
      x.dim(1).value() != w.dim(1).value() * group) {
    return make_error("X {} has {} channels but W {} with group {} expects {}", x.to_string(),
                      x.dim(1).value(), w.to_string(), group, w.dim(1).value() * group);
  }
  const Dim out_channels = w.has_rank() ? w.dim(0) : Dim();
  SEQRUN_TRY(check_bias(ctx, 3, out_channels));
  std::vector<int64_t> kernel = kernel_from_weight(ctx.node(), w, 2);
  SEQRUN_TRY(check_kernel_against_weight(kernel, w, 2));
  SEQRUN_ASSIGN(WindowAttrs win, read_window(ctx.node(), 2, kernel));
  Dims out = {x.has_rank() ? x.dim(0) : Dim(), out_channels};
  for (size_t i = 0; i < 2; ++i) {
    SEQRUN_ASSIGN(Dim d, window_out_dim(win, i, x.has_rank() ? x.dim(static_cast<int>(i) + 2) : Dim()));
    out.push_back(d);
  }
  const TensorType& offset = ctx.input_type(2);
  if (offset.has_rank() && offset.rank() != 4)
    return make_error("offset must be rank 4, got {}", offset.to_string());
  if (offset.has_rank() && kernel[0] != kUnknownSize && kernel[1] != kUnknownSize &&
      !static_eq(offset.dim(1), offset_group * kernel[0] * kernel[1] * 2) && offset.dim(1).is_static()) {
    return make_error("offset {} must have offset_group*kH*kW*2 = {} channels", offset.to_string(),
                      offset_group * kernel[0] * kernel[1] * 2);
  }
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Pools

Status infer_pool(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  SEQRUN_TRY(check_nchw(x, "X"));
  const DType dt = ctx.input_dtype(0);
  std::vector<int64_t> kernel = ctx.node().get_ints("kernel_shape");
  if (kernel.empty()) return make_error("kernel_shape is required");
  for (int64_t k : kernel) {
    if (k <= 0 || k > kMaxWindowAttr)
      return make_error("kernel_shape value {} is not in [1, {}]", k, kMaxWindowAttr);
  }
  if (ctx.node().op() == "LpPool" && ctx.node().get_int("p", 2) <= 0) return make_error("p must be positive");
  if (ctx.node().op() == "MaxPool") {
    const int64_t order = ctx.node().get_int("storage_order");
    if (order != 0 && order != 1) return make_error("storage_order must be 0 or 1, got {}", order);
  }
  if (x.has_rank() && static_cast<int>(kernel.size()) != x.rank() - 2) {
    return make_error("kernel_shape has {} values for {} spatial dims of X {}", kernel.size(), x.rank() - 2,
                      x.to_string());
  }
  SEQRUN_ASSIGN(WindowAttrs win, read_window(ctx.node(), kernel.size(), kernel));
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
  } else {
    Dims out = {x.dim(0), x.dim(1)};
    for (size_t i = 0; i < kernel.size(); ++i) {
      SEQRUN_ASSIGN(Dim d, window_out_dim(win, i, x.dim(static_cast<int>(i) + 2)));
      out.push_back(d);
    }
    ctx.outputs[0] = TensorType(dt, out);
  }
  if (ctx.num_outputs() > 1) {
    ctx.outputs[1] = ctx.outputs[0];
    ctx.outputs[1].set_dtype(DType::i64);
  }
  return Status::ok();
}

Status infer_global_pool(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  SEQRUN_TRY(check_nchw(x, "X"));
  if (!x.has_rank()) return infer::same_as_input(ctx);
  Dims out = {x.dim(0), x.dim(1)};
  for (int i = 2; i < x.rank(); ++i) out.push_back(Dim(1));
  ctx.outputs[0] = TensorType(x.dtype(), out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Normalizations

// A per-channel parameter (scale, bias, mean, var): [C].
Status check_channel_param(const InferContext& ctx, int i, const char* what) {
  if (!ctx.has_input(i)) return Status::ok();
  const TensorType& x = ctx.input_type(0);
  const TensorType& p = ctx.input_type(i);
  if (!p.has_rank()) return Status::ok();
  const Dim channels = x.has_rank() && x.rank() >= 2 ? x.dim(1) : Dim();
  if (p.rank() != 1 || static_ne(p.dim(0), channels)) {
    return make_error("{} must be [C] = [{}], got {}", what, channels.to_string(), p.to_string());
  }
  return Status::ok();
}

Status infer_batch_norm(InferContext& ctx) {
  if (ctx.node().get_int("training_mode") != 0) {
    return make_error("training_mode=1 is not supported (inference only)");
  }
  if (ctx.num_outputs() > 1) return make_error("inference-mode BatchNormalization has one output");
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  const TensorType& x = ctx.input_type(0);
  if (x.has_rank() && x.rank() < 2) return make_error("X must be [N, C, ...], got {}", x.to_string());
  const char* names[] = {"", "scale", "B", "input_mean", "input_var"};
  for (int i = 1; i < 5; ++i) SEQRUN_TRY(check_channel_param(ctx, i, names[i]));
  return infer::same_as_input(ctx);
}

Status infer_instance_norm(InferContext& ctx) {
  SEQRUN_TRY(require_float(ctx, 0, "input"));
  SEQRUN_TRY(check_nchw(ctx.input_type(0), "input"));
  SEQRUN_TRY(check_channel_param(ctx, 1, "scale"));
  SEQRUN_TRY(check_channel_param(ctx, 2, "B"));
  return infer::same_as_input(ctx);
}

Status infer_group_norm(InferContext& ctx) {
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  const TensorType& x = ctx.input_type(0);
  if (x.has_rank() && x.rank() < 2) return make_error("X must be [N, C, ...], got {}", x.to_string());
  const int64_t groups = ctx.node().get_int("num_groups");
  if (groups <= 0) return make_error("num_groups must be positive, got {}", groups);
  if (x.has_rank() && x.dim(1).is_static() && x.dim(1).value() % groups != 0) {
    return make_error("X {} has {} channels, not divisible by num_groups {}", x.to_string(), x.dim(1).value(),
                      groups);
  }
  SEQRUN_TRY(check_channel_param(ctx, 1, "scale"));
  SEQRUN_TRY(check_channel_param(ctx, 2, "bias"));
  return infer::same_as_input(ctx);
}

Result<DType> stash_dtype(const Node& node) {
  const int64_t stash = node.get_int("stash_type", 1);
  switch (stash) {
    case 1:
      return DType::f32;
    case 10:
      return DType::f16;
    case 11:
      return DType::f64;
    case 16:
      return DType::bf16;
    default:
      return make_error("stash_type {} is not a float type", stash);
  }
}

// LayerNormalization and RMSNormalization: normalize over dims [axis, rank).
Status infer_axis_norm(InferContext& ctx) {
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  SEQRUN_ASSIGN(DType stash, stash_dtype(ctx.node()));
  const TensorType& x = ctx.input_type(0);
  ctx.outputs[0] = x;
  if (!x.has_rank()) {
    for (int i = 1; i < ctx.num_outputs(); ++i) ctx.outputs[i] = TensorType::unknown_rank(stash);
    return Status::ok();
  }
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", -1), x.rank()));
  if (x.rank() == 0) return make_error("X must have rank >= 1");
  Dims stats = x.dims();
  for (int i = axis; i < x.rank(); ++i) stats[i] = Dim(1);
  for (int i = 1; i < ctx.num_outputs(); ++i) ctx.outputs[i] = TensorType(stash, stats);
  return Status::ok();
}

Status infer_lrn(InferContext& ctx) {
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  SEQRUN_TRY(check_nchw(ctx.input_type(0), "X"));
  if (ctx.node().get_int("size") <= 0) return make_error("size must be positive");
  return infer::same_as_input(ctx);
}

Status infer_mvn(InferContext& ctx) {
  SEQRUN_TRY(require_float(ctx, 0, "X"));
  const TensorType& x = ctx.input_type(0);
  if (x.has_rank()) {
    for (int64_t a : ctx.node().get_ints("axes", {0, 2, 3})) {
      SEQRUN_TRY(infer::normalize_axis(ctx, a, x.rank()).status());
    }
  }
  return infer::same_as_input(ctx);
}

// ---------------------------------------------------------------------------------------------
// Resize / Upsample

// True when input i is absent or an empty tensor (ONNX models pass "" or an empty initializer).
bool input_absent_or_empty(const InferContext& ctx, int i) {
  if (!ctx.has_input(i)) return true;
  const TensorType& t = ctx.input_type(i);
  return t.has_rank() && t.rank() == 1 && static_eq(t.dim(0), 0);
}

std::optional<std::vector<float>> constant_floats(const InferContext& ctx, int i) {
  const Tensor* t = ctx.input_constant(i);
  if (t == nullptr) return std::nullopt;
  return t->to_f32_vector();
}

Status infer_resize(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const DType dt = ctx.input_dtype(0);
  const Node& node = ctx.node();
  const std::string mode = node.get_string("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && mode != "cubic") {
    return make_error("mode '{}' is not nearest, linear or cubic", mode);
  }
  const bool has_scales = !input_absent_or_empty(ctx, 2);
  const bool has_sizes = !input_absent_or_empty(ctx, 3);
  if (has_scales == has_sizes) return make_error("exactly one of scales and sizes must be given");
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const int rank = x.rank();
  std::vector<int64_t> axes = node.get_ints("axes");
  if (axes.empty()) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return make_error("axis {} out of range for rank {}", a, rank);
    if (a < 0) a += rank;
  }
  Dims out = x.dims();
  for (int64_t a : axes) out[a] = Dim();
  if (has_sizes) {
    auto sizes = infer::constant_ints(ctx, 3);
    if (sizes && sizes->size() != axes.size()) {
      return make_error("sizes has {} values for {} axes", sizes->size(), axes.size());
    }
    const std::string policy = node.get_string("keep_aspect_ratio_policy", "stretch");
    if (sizes && policy == "stretch") {
      for (size_t i = 0; i < axes.size(); ++i) out[axes[i]] = Dim((*sizes)[i]);
    }
  } else if (auto scales = constant_floats(ctx, 2)) {
    if (scales->size() != axes.size()) {
      return make_error("scales has {} values for {} axes", scales->size(), axes.size());
    }
    for (size_t i = 0; i < axes.size(); ++i) {
      const Dim& in = x.dim(static_cast<int>(axes[i]));
      if (!((*scales)[i] > 0)) return make_error("scales[{}] = {} must be positive", i, (*scales)[i]);
      const double size = in.is_static() ? std::floor(static_cast<double>(in.value()) * (*scales)[i]) : -1.0;
      if (size >= 0.0 && size <= kMaxResizedDim) out[axes[i]] = Dim(static_cast<int64_t>(size));
    }
  }
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

Status infer_upsample(InferContext& ctx) {
  const TensorType& x = ctx.input_type(0);
  const std::string mode = ctx.node().get_string("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && mode != "bilinear") {
    return make_error("mode '{}' is not nearest or linear", mode);
  }
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(x.dtype());
    return Status::ok();
  }
  Dims out(x.rank(), Dim());
  if (auto scales = constant_floats(ctx, 1)) {
    if (static_cast<int>(scales->size()) != x.rank()) {
      return make_error("scales has {} values for rank {}", scales->size(), x.rank());
    }
    for (int i = 0; i < x.rank(); ++i) {
      if (!((*scales)[i] > 0)) return make_error("scales[{}] = {} must be positive", i, (*scales)[i]);
      const Dim& in = x.dim(i);
      const double size = in.is_static() ? std::floor(static_cast<double>(in.value()) * (*scales)[i]) : -1.0;
      if (size >= 0.0 && size <= kMaxResizedDim) out[i] = Dim(static_cast<int64_t>(size));
    }
  }
  ctx.outputs[0] = TensorType(x.dtype(), out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// LinearRecurrence

Status infer_linear_recurrence(InferContext& ctx) {
  const TensorType& a = ctx.input_type(0);
  const TensorType& b = ctx.input_type(1);
  SEQRUN_TRY(require_float(ctx, 0, "a"));
  SEQRUN_TRY(require_float(ctx, 1, "b"));
  const DType dt = first_known_dtype(ctx);
  const TensorType& shape_src = b.has_rank() ? b : a;
  if (a.has_rank() && b.has_rank()) {
    if (a.rank() != b.rank())
      return make_error("a {} and b {} must have the same shape", a.to_string(), b.to_string());
    for (int i = 0; i < a.rank(); ++i) {
      if (static_ne(a.dim(i), b.dim(i))) {
        return make_error("a {} and b {} must have the same shape", a.to_string(), b.to_string());
      }
    }
  }
  if (!shape_src.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  if (shape_src.rank() < 2)
    return make_error("a and b must be [batch, seq, ...], got {}", shape_src.to_string());
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", 1), shape_src.rank()));
  Dims all = shape_src.dims();
  if (a.has_rank() && b.has_rank()) {
    for (int i = 0; i < a.rank(); ++i) all[i] = infer::merge_dim(a.dim(i), b.dim(i));
  }
  Dims state = all;
  state.erase(state.begin() + axis);
  if (ctx.has_input(2)) {
    const TensorType& h0 = ctx.input_type(2);
    bool ok = !h0.has_rank() || h0.rank() == static_cast<int>(state.size());
    for (int i = 0; ok && h0.has_rank() && i < h0.rank(); ++i) ok = !static_ne(h0.dim(i), state[i]);
    if (!ok) {
      return make_error("h0 {} must be the state shape {}", h0.to_string(),
                        TensorType(dt, state).to_string());
    }
  }
  ctx.outputs[0] = TensorType(dt, all);
  if (ctx.num_outputs() > 1) ctx.outputs[1] = TensorType(dt, state);
  return Status::ok();
}

// Attribute lists shared by the window ops.
OpDef& window_attrs(OpDef& d) {
  return d.attr("auto_pad", AttrType::String, Attribute("NOTSET"))
      .attr("dilations", AttrType::Ints)
      .attr("kernel_shape", AttrType::Ints)
      .attr("pads", AttrType::Ints)
      .attr("strides", AttrType::Ints);
}

}  // namespace

void register_nn_ops(OpRegistry& r) {
  // --- matrix products ---
  r.add(OpDef("MatMul")
            .inputs(2)
            .doc("numpy matmul: batched, broadcast; 1-D operands are vectors")
            .infer(infer_matmul)
            .build());
  r.add(OpDef("Gemm")
            .inputs(2, 3)
            .doc("Y = alpha * A' B' + beta * C, A' = transA ? A^T : A; C broadcasts to [M, N]")
            .attr("alpha", AttrType::Float, Attribute(1.0f))
            .attr("beta", AttrType::Float, Attribute(1.0f))
            .attr("transA", AttrType::Int, Attribute(0))
            .attr("transB", AttrType::Int, Attribute(0))
            .infer(infer_gemm)
            .build());
  r.add(OpDef("Linear")
            .inputs(2, 3)
            .doc("y = x W^T + b with W [out, in], x [..., in], b [out] optional")
            .infer(infer_linear)
            .build());
  r.add(
      OpDef("Einsum")
          .inputs(1, OpSchema::kVariadic)
          .doc("Einstein summation over any number of operands (implicit/explicit output, diagonals, '...')")
          .required_attr("equation", AttrType::String)
          .infer(infer_einsum)
          .build());

  // --- convolutions ---
  OpDef conv("Conv");
  window_attrs(conv).attr("group", AttrType::Int, Attribute(1));
  r.add(conv.inputs(2, 3)
            .doc("N-D convolution: X [N, C, ...], W [M, C/group, k...], B [M] optional")
            .infer(infer_conv)
            .build());
  OpDef conv_t("ConvTranspose");
  window_attrs(conv_t)
      .attr("group", AttrType::Int, Attribute(1))
      .attr("output_padding", AttrType::Ints)
      .attr("output_shape", AttrType::Ints);
  r.add(conv_t.inputs(2, 3)
            .doc("transposed convolution: X [N, C, ...], W [C, M/group, k...], B [M] optional")
            .infer(infer_conv_transpose)
            .build());
  r.add(OpDef("DeformConv")
            .inputs(3, 5)
            .doc("deformable 2-D convolution (v1; v2 with mask): X, W, offset, B?, mask?; bilinear sampling")
            .attr("dilations", AttrType::Ints)
            .attr("group", AttrType::Int, Attribute(1))
            .attr("kernel_shape", AttrType::Ints)
            .attr("offset_group", AttrType::Int, Attribute(1))
            .attr("pads", AttrType::Ints)
            .attr("strides", AttrType::Ints)
            .infer(infer_deform_conv)
            .build());

  // --- pools ---
  OpDef max_pool("MaxPool");
  window_attrs(max_pool)
      .attr("ceil_mode", AttrType::Int, Attribute(0))
      .attr("storage_order", AttrType::Int, Attribute(0));
  r.add(max_pool.inputs(1)
            .outputs(1, 2)
            .doc("max over sliding windows; optional flat i64 Indices")
            .infer(infer_pool)
            .build());
  OpDef avg_pool("AveragePool");
  window_attrs(avg_pool)
      .attr("ceil_mode", AttrType::Int, Attribute(0))
      .attr("count_include_pad", AttrType::Int, Attribute(0));
  r.add(avg_pool.inputs(1).doc("mean over sliding windows").infer(infer_pool).build());
  OpDef lp_pool("LpPool");
  window_attrs(lp_pool).attr("ceil_mode", AttrType::Int, Attribute(0)).attr("p", AttrType::Int, Attribute(2));
  r.add(lp_pool.inputs(1).doc("(sum |x|^p)^(1/p) over sliding windows").infer(infer_pool).build());
  r.add(OpDef("GlobalAveragePool")
            .inputs(1)
            .doc("mean over all spatial dims")
            .infer(infer_global_pool)
            .build());
  r.add(OpDef("GlobalMaxPool").inputs(1).doc("max over all spatial dims").infer(infer_global_pool).build());

  // --- normalizations ---
  r.add(OpDef("BatchNormalization")
            .inputs(5)
            .outputs(1, 3)
            .doc("inference batch norm: (X - mean) / sqrt(var + epsilon) * scale + B, per channel")
            .attr("epsilon", AttrType::Float, Attribute(1e-5f))
            .attr("momentum", AttrType::Float, Attribute(0.9f))
            .attr("training_mode", AttrType::Int, Attribute(0))
            .infer(infer_batch_norm)
            .build());
  r.add(OpDef("InstanceNormalization")
            .inputs(3)
            .doc("normalize each (n, c) over its spatial dims, then scale[c] and B[c]")
            .attr("epsilon", AttrType::Float, Attribute(1e-5f))
            .infer(infer_instance_norm)
            .build());
  r.add(OpDef("LayerNormalization")
            .inputs(2, 3)
            .outputs(1, 3)
            .doc("normalize over dims [axis, rank), then Scale and B; optional Mean and InvStdDev outputs")
            .attr("axis", AttrType::Int, Attribute(-1))
            .attr("epsilon", AttrType::Float, Attribute(1e-5f))
            .attr("stash_type", AttrType::Int, Attribute(1))
            .infer(infer_axis_norm)
            .build());
  r.add(OpDef("RMSNormalization")
            .inputs(2)
            .doc("X / sqrt(mean(X^2 over dims [axis, rank)) + epsilon) * scale")
            .attr("axis", AttrType::Int, Attribute(-1))
            .attr("epsilon", AttrType::Float, Attribute(1e-5f))
            .attr("stash_type", AttrType::Int, Attribute(1))
            .infer(infer_axis_norm)
            .build());
  r.add(OpDef("GroupNormalization")
            .inputs(3)
            .doc("normalize over channel groups and spatial dims, then per-channel scale and bias")
            .attr("epsilon", AttrType::Float, Attribute(1e-5f))
            .required_attr("num_groups", AttrType::Int)
            .attr("stash_type", AttrType::Int, Attribute(1))
            .infer(infer_group_norm)
            .build());
  r.add(OpDef("LRN")
            .inputs(1)
            .doc("local response normalization across channels")
            .attr("alpha", AttrType::Float, Attribute(1e-4f))
            .attr("beta", AttrType::Float, Attribute(0.75f))
            .attr("bias", AttrType::Float, Attribute(1.0f))
            .required_attr("size", AttrType::Int)
            .infer(infer_lrn)
            .build());
  r.add(OpDef("MeanVarianceNormalization")
            .inputs(1)
            .doc("(X - mean) / (std + 1e-9) over `axes`")
            .attr("axes", AttrType::Ints, Attribute(std::vector<int64_t>{0, 2, 3}))
            .infer(infer_mvn)
            .build());

  // --- resampling ---
  r.add(OpDef("Resize")
            .inputs(1, 4)
            .doc("resize X by scales or to sizes: nearest, (multi)linear or cubic interpolation")
            .attr("antialias", AttrType::Int, Attribute(0))
            .attr("axes", AttrType::Ints)
            .attr("coordinate_transformation_mode", AttrType::String, Attribute("half_pixel"))
            .attr("cubic_coeff_a", AttrType::Float, Attribute(-0.75f))
            .attr("exclude_outside", AttrType::Int, Attribute(0))
            .attr("extrapolation_value", AttrType::Float, Attribute(0.0f))
            .attr("keep_aspect_ratio_policy", AttrType::String, Attribute("stretch"))
            .attr("mode", AttrType::String, Attribute("nearest"))
            .attr("nearest_mode", AttrType::String, Attribute("round_prefer_floor"))
            .infer(infer_resize)
            .build());
  r.add(OpDef("Upsample")
            .inputs(2)
            .doc("opset-9 upsampling by per-dim scales (asymmetric coordinates), nearest or linear")
            .attr("mode", AttrType::String, Attribute("nearest"))
            .infer(infer_upsample)
            .build());

  // --- recurrences ---
  r.add(OpDef("LinearRecurrence")
            .inputs(2, 3)
            .outputs(1, 2)
            .doc("h_t = a_t * h_{t-1} + b_t along `axis` (h_{-1} = h0 or 0); outputs every h and the final "
                 "state")
            .attr("axis", AttrType::Int, Attribute(1))
            .infer(infer_linear_recurrence)
            .build());
}

}  // namespace seqrun::ops
