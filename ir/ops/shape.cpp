// Op schemas of the shape family: tensor manipulation (Reshape, Slice, Gather, Pad, ...) and shape
// arithmetic.
//
// Every op here moves or selects elements without doing arithmetic on them, so each works on any dtype.
// Shape inference computes exact output shapes whenever the shape-giving inputs are constants: later
// passes fold Shape -> Gather -> Concat -> Reshape chains, and they need those shapes. Otherwise it gives
// the right rank (or unknown rank) and always the dtype. Definite contradictions between constants and
// static dims (a Reshape whose element count does not match, an axis out of range) are errors here;
// everything else is checked again by the kernels at run time.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

using infer::constant_ints;

std::vector<Dim> unknown_dims(int64_t n) {
  return std::vector<Dim>(static_cast<size_t>(std::max<int64_t>(n, 0)));
}

Status require_integer_input(const InferContext& ctx, int i, const char* what) {
  if (!ctx.has_input(i)) return Status::ok();
  DType t = ctx.input_dtype(i);
  if (t != DType::undefined && !is_integer(t)) {
    return make_error("input '{}' must be an integer tensor, is {}", what, dtype_name(t));
  }
  return Status::ok();
}

// The element count of input i when its type is a static 1-D (or scalar) shape.
std::optional<int64_t> static_length(const InferContext& ctx, int i) {
  if (!ctx.has_input(i)) return std::nullopt;
  const TensorType& t = ctx.input_type(i);
  if (!t.has_rank()) return std::nullopt;
  if (t.rank() == 0) return 1;
  if (t.rank() == 1 && t.dim(0).is_static()) return t.dim(0).value();
  return std::nullopt;
}

// The single value of a constant scalar (or one-element) input of any numeric dtype.
std::optional<int64_t> constant_scalar(const InferContext& ctx, int i) {
  const Tensor* t = ctx.input_constant(i);
  if (t == nullptr || t->numel() != 1) return std::nullopt;
  return t->get_i64(0);
}

// a * b, or nullopt on int64 overflow.
std::optional<int64_t> mul_dims(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The product of dims [begin, end) as one Dim: static when all are static, the lone symbol when the
// others are static 1s, unknown otherwise.
Dim product_dim(const std::vector<Dim>& dims, int begin, int end) {
  int64_t prod = 1;
  std::optional<Dim> non_static;
  int non_static_count = 0;
  for (int i = begin; i < end; ++i) {
    if (dims[i].is_static()) {
      auto p = mul_dims(prod, dims[i].value());
      if (!p) return Dim::unknown();
      prod = *p;
    } else {
      non_static = dims[i];
      ++non_static_count;
    }
  }
  if (non_static_count == 0) return Dim(prod);
  if (prod == 0) return Dim(0);
  if (non_static_count == 1 && prod == 1) return *non_static;
  return Dim::unknown();
}

// Axis list normalization with duplicate detection; `rank` is the rank the axes index into.
Result<std::vector<int>> normalize_axes(const InferContext& ctx, const std::vector<int64_t>& axes, int rank) {
  std::vector<int> out;
  std::vector<bool> seen(static_cast<size_t>(std::max(rank, 0)), false);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return make_error("axis {} out of range for rank {}", a, rank);
    SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, a, rank));
    if (seen[axis]) return make_error("axis {} appears twice", a);
    seen[axis] = true;
    out.push_back(axis);
  }
  return out;
}

// ONNX Slice's clamping of one axis: the first index read and the number of elements taken.
struct SliceRange {
  int64_t start = 0;
  int64_t length = 0;
};
SliceRange slice_range(int64_t start, int64_t end, int64_t step, int64_t dim) {
  SliceRange r;
  if (dim == 0) return r;
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    if (end > start) r.length = 1 + (end - start - 1) / step;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    uint64_t magnitude = uint64_t{0} - static_cast<uint64_t>(step);
    if (start > end) r.length = static_cast<int64_t>(1 + static_cast<uint64_t>(start - end - 1) / magnitude);
  }
  r.start = start;
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Shape queries

Status infer_shape(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType(DType::i64, unknown_dims(1));
    return Status::ok();
  }
  const int64_t rank = in.rank();
  auto clamp_end = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  int64_t start = clamp_end(ctx.node().get_int("start", 0));
  int64_t end = ctx.node().has_attr("end") ? clamp_end(ctx.node().get_int("end")) : rank;
  ctx.outputs[0] = TensorType(DType::i64, {Dim(std::max<int64_t>(end - start, 0))});
  return Status::ok();
}

Status infer_size(InferContext& ctx) {
  ctx.outputs[0] = TensorType(DType::i64, {});
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------------
// Reshape family

// Resolves Reshape's -1 from the input dims when the product of the other dims allows it, cancelling
// symbols that appear on both sides ([batch, seq, 512] -> [batch, -1, 64] gives seq * 8 = unknown,
// [batch, seq, 8, 64] -> [0, 0, -1] gives 512).
Status resolve_reshape_dims(const TensorType& in, std::vector<Dim>& dims, int infer_at) {
  int64_t in_static = 1;
  int64_t out_static = 1;
  std::map<std::string, int> symbols;  // input symbols minus output symbols
  bool overflow = false;
  bool has_symbols = false;
  for (const Dim& d : in.dims()) {
    if (d.is_unknown()) return Status::ok();
    if (d.is_symbol()) {
      ++symbols[d.symbol_name()];
      has_symbols = true;
      continue;
    }
    auto p = mul_dims(in_static, d.value());
    overflow |= !p;
    if (p) in_static = *p;
  }
  for (int i = 0; i < static_cast<int>(dims.size()); ++i) {
    if (i == infer_at) continue;
    const Dim& d = dims[i];
    if (d.is_unknown()) return Status::ok();
    if (d.is_symbol()) {
      --symbols[d.symbol_name()];
      has_symbols = true;
      continue;
    }
    auto p = mul_dims(out_static, d.value());
    overflow |= !p;
    if (p) out_static = *p;
  }
  if (overflow) return Status::ok();
  int remaining = 0;
  std::string remaining_symbol;
  for (const auto& [name, count] : symbols) {
    if (count < 0) return Status::ok();  // output has a symbol the input lacks
    remaining += count;
    if (count > 0) remaining_symbol = name;
  }
  if (infer_at < 0) {
    if (!has_symbols && in_static != out_static) {
      return make_error("cannot reshape {} ({} elements) to a shape with {} elements", in.to_string(),
                        in_static, out_static);
    }
    return Status::ok();
  }
  if (remaining == 0) {
    if (out_static == 0 || in_static % out_static != 0) {
      if (has_symbols || in_static == 0) return Status::ok();
      return make_error(
          "cannot reshape {} ({} elements): the other dims multiply to {}, which does not divide it",
          in.to_string(), in_static, out_static);
    }
    dims[infer_at] = Dim(in_static / out_static);
  } else if (remaining == 1 && in_static == out_static && out_static != 0) {
    dims[infer_at] = Dim::symbol(remaining_symbol);
  }
  return Status::ok();
}

Status infer_reshape(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "shape"));
  auto spec = constant_ints(ctx, 1);
  if (!spec) {
    auto n = static_length(ctx, 1);
    ctx.outputs[0] = n ? TensorType(dt, unknown_dims(*n)) : TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const bool allowzero = ctx.node().get_int("allowzero", 0) != 0;
  std::vector<Dim> dims;
  int infer_at = -1;
  bool has_zero = false;
  for (int i = 0; i < static_cast<int>(spec->size()); ++i) {
    int64_t v = (*spec)[i];
    if (v == -1) {
      if (infer_at >= 0) return make_error("shape has more than one -1 (at {} and {})", infer_at, i);
      infer_at = i;
      dims.push_back(Dim::unknown());
    } else if (v < -1) {
      return make_error("shape[{}] = {} is negative", i, v);
    } else if (v == 0 && !allowzero) {
      if (!in.has_rank()) {
        dims.push_back(Dim::unknown());
      } else if (i >= in.rank()) {
        return make_error("shape[{}] = 0 copies input dim {}, but the input {} has rank {}", i, i,
                          in.to_string(), in.rank());
      } else {
        dims.push_back(in.dim(i));
      }
    } else {
      has_zero |= v == 0;
      dims.push_back(Dim(v));
    }
  }
  if (allowzero && has_zero && infer_at >= 0)
    return make_error("shape has both 0 and -1 while allowzero = 1");
  if (in.has_rank()) SEQRUN_TRY(resolve_reshape_dims(in, dims, infer_at));
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_flatten(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType(in.dtype(), unknown_dims(2));
    return Status::ok();
  }
  const int rank = in.rank();
  int64_t axis = ctx.node().get_int("axis", 1);
  if (axis < -rank || axis > rank) return make_error("axis {} out of range [-{}, {}]", axis, rank, rank);
  if (axis < 0) axis += rank;
  const int a = static_cast<int>(axis);
  ctx.outputs[0] = TensorType(in.dtype(), {product_dim(in.dims(), 0, a), product_dim(in.dims(), a, rank)});
  return Status::ok();
}

Status infer_squeeze(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "axes"));
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  std::vector<Dim> dims;
  if (!ctx.has_input(1)) {
    for (const Dim& d : in.dims()) {
      if (!d.is_static()) {  // a symbol may be 1 at run time: the rank is unknown
        ctx.outputs[0] = TensorType::unknown_rank(dt);
        return Status::ok();
      }
      if (d.value() != 1) dims.push_back(d);
    }
    ctx.outputs[0] = TensorType(dt, std::move(dims));
    return Status::ok();
  }
  auto axes = constant_ints(ctx, 1);
  if (!axes) {
    auto n = static_length(ctx, 1);
    ctx.outputs[0] = n ? TensorType(dt, unknown_dims(in.rank() - *n)) : TensorType::unknown_rank(dt);
    return Status::ok();
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, *axes, in.rank()));
  std::vector<bool> drop(in.rank(), false);
  for (int a : norm) {
    if (in.dim(a).is_static() && in.dim(a).value() != 1) {
      return make_error("cannot squeeze axis {} of {}: its size is {}, not 1", a, in.to_string(),
                        in.dim(a).value());
    }
    drop[a] = true;
  }
  for (int i = 0; i < in.rank(); ++i) {
    if (!drop[i]) dims.push_back(in.dim(i));
  }
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_unsqueeze(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "axes"));
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  auto axes = constant_ints(ctx, 1);
  if (!axes) {
    auto n = static_length(ctx, 1);
    ctx.outputs[0] = n ? TensorType(dt, unknown_dims(in.rank() + *n)) : TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const int out_rank = in.rank() + static_cast<int>(axes->size());
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, *axes, out_rank));
  std::vector<bool> inserted(out_rank, false);
  for (int a : norm) inserted[a] = true;
  std::vector<Dim> dims;
  int next = 0;
  for (int i = 0; i < out_rank; ++i) dims.push_back(inserted[i] ? Dim(1) : in.dim(next++));
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------------
// Layout: Transpose, Slice, Concat, Split, Expand, Tile, Pad, DepthToSpace, SpaceToDepth

Status infer_transpose(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(in.dtype());
    return Status::ok();
  }
  const int rank = in.rank();
  std::vector<int64_t> perm;
  if (ctx.node().has_attr("perm")) {
    perm = ctx.node().get_ints("perm");
  } else {
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != rank) {
    return make_error("perm has {} entries, the input {} has rank {}", perm.size(), in.to_string(), rank);
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, perm, rank));
  std::vector<Dim> dims;
  for (int p : norm) dims.push_back(in.dim(p));
  ctx.outputs[0] = TensorType(in.dtype(), std::move(dims));
  return Status::ok();
}

Status infer_slice(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  for (int i = 1; i <= 4; ++i)
    SEQRUN_TRY(require_integer_input(ctx, i,
                                     i == 1   ? "starts"
                                     : i == 2 ? "ends"
                                     : i == 3 ? "axes"
                                              : "steps"));
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const int rank = in.rank();
  auto starts = constant_ints(ctx, 1);
  auto ends = constant_ints(ctx, 2);
  std::optional<std::vector<int64_t>> axes;
  if (ctx.has_input(3)) {
    axes = constant_ints(ctx, 3);
  } else if (starts || static_length(ctx, 1)) {
    size_t n = starts ? starts->size() : static_cast<size_t>(*static_length(ctx, 1));
    axes = std::vector<int64_t>();
    for (size_t i = 0; i < n; ++i) axes->push_back(static_cast<int64_t>(i));
  }
  if (!axes) {  // which axes are sliced is unknown
    ctx.outputs[0] = TensorType(dt, unknown_dims(rank));
    return Status::ok();
  }
  std::optional<std::vector<int64_t>> steps;
  if (ctx.has_input(4)) {
    steps = constant_ints(ctx, 4);
  } else {
    steps = std::vector<int64_t>(axes->size(), 1);
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, *axes, rank));
  const size_t n = norm.size();
  if ((starts && starts->size() != n) || (ends && ends->size() != n) || (steps && steps->size() != n)) {
    return make_error("starts, ends, axes and steps must have the same length");
  }
  std::vector<Dim> dims = in.dims();
  for (size_t i = 0; i < n; ++i) {
    const int axis = norm[i];
    if (steps && (*steps)[i] == 0) return make_error("steps[{}] is 0", i);
    if (!starts || !ends || !steps) {
      dims[axis] = Dim::unknown();
      continue;
    }
    const int64_t start = (*starts)[i], end = (*ends)[i], step = (*steps)[i];
    if (in.dim(axis).is_static()) {
      dims[axis] = Dim(slice_range(start, end, step, in.dim(axis).value()).length);
    } else if (!(start == 0 && step == 1 && end >= std::numeric_limits<int32_t>::max())) {
      dims[axis] = Dim::unknown();  // x[0:INT_MAX] keeps a symbolic dim; anything else is unknown
    }
  }
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_concat(InferContext& ctx) {
  DType dt = DType::undefined;
  int rank = -1;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const TensorType& t = ctx.input_type(i);
    if (!ctx.has_input(i)) return make_error("input {} is absent", i);
    if (dt == DType::undefined) dt = t.dtype();
    if (t.dtype() != DType::undefined && t.dtype() != dt) {
      return make_error("inputs have different dtypes ({} and {})", dtype_name(dt), dtype_name(t.dtype()));
    }
    if (!t.has_rank()) continue;
    if (rank >= 0 && t.rank() != rank)
      return make_error("inputs have different ranks ({} and {})", rank, t.rank());
    rank = t.rank();
  }
  if (rank < 0) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  if (rank == 0) return make_error("cannot concatenate scalars");
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis"), rank));
  std::vector<Dim> dims(rank);
  bool sum_known = true;
  int64_t sum = 0;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const TensorType& t = ctx.input_type(i);
    if (!t.has_rank()) {
      sum_known = false;
      continue;
    }
    for (int d = 0; d < rank; ++d) {
      if (d == axis) continue;
      if (dims[d].is_static() && t.dim(d).is_static() && dims[d].value() != t.dim(d).value()) {
        return make_error("input {} has shape {}, which differs from the others at dim {}", i, t.to_string(),
                          d);
      }
      dims[d] = infer::merge_dim(dims[d], t.dim(d));
    }
    if (t.dim(axis).is_static()) {
      sum += t.dim(axis).value();
    } else {
      sum_known = false;
    }
  }
  dims[axis] = sum_known ? Dim(sum) : Dim::unknown();
  if (ctx.num_inputs() == 1 && ctx.input_type(0).has_rank()) dims[axis] = ctx.input_type(0).dim(axis);
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_split(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "split"));
  const int n_out = ctx.num_outputs();
  if (ctx.node().has_attr("num_outputs")) {
    if (ctx.has_input(1))
      return make_error("give either the 'split' input or the num_outputs attribute, not both");
    if (ctx.node().get_int("num_outputs") != n_out) {
      return make_error("num_outputs = {} but the node has {} outputs", ctx.node().get_int("num_outputs"),
                        n_out);
    }
  }
  if (!in.has_rank()) {
    for (auto& o : ctx.outputs) o = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  if (in.rank() == 0) return make_error("cannot split a scalar");
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", 0), in.rank()));
  std::vector<std::optional<int64_t>> sizes(n_out);
  const Dim& d = in.dim(axis);
  if (ctx.has_input(1)) {
    if (auto split = constant_ints(ctx, 1)) {
      if (static_cast<int>(split->size()) != n_out) {
        return make_error("split has {} entries, the node has {} outputs", split->size(), n_out);
      }
      int64_t sum = 0;
      for (int i = 0; i < n_out; ++i) {
        if ((*split)[i] < 0) return make_error("split[{}] = {} is negative", i, (*split)[i]);
        sum += (*split)[i];
        sizes[i] = (*split)[i];
      }
      if (d.is_static() && sum != d.value()) {
        return make_error("split sizes sum to {}, but axis {} of {} has size {}", sum, axis, in.to_string(),
                          d.value());
      }
    }
  } else if (d.is_static()) {
    // Opset 18: chunks of ceil(dim / n); the last one takes what is left.
    const int64_t dim = d.value();
    const int64_t chunk = (dim + n_out - 1) / n_out;
    const int64_t last = dim - chunk * (n_out - 1);
    if (last < 0) return make_error("cannot split size {} into {} chunks of {}", dim, n_out, chunk);
    for (int i = 0; i < n_out; ++i) sizes[i] = i + 1 < n_out ? chunk : last;
  }
  for (int i = 0; i < n_out; ++i) {
    std::vector<Dim> dims = in.dims();
    dims[axis] = sizes[i] ? Dim(*sizes[i]) : Dim::unknown();
    if (n_out == 1 && !sizes[i]) dims[axis] = d;
    ctx.outputs[i] = TensorType(dt, std::move(dims));
  }
  return Status::ok();
}

Status infer_expand(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "shape"));
  auto shape = constant_ints(ctx, 1);
  if (shape) {
    std::vector<Dim> dims;
    for (int64_t v : *shape) {
      if (v < 0) return make_error("shape has a negative dim {}", v);
      dims.push_back(Dim(v));
    }
    SEQRUN_ASSIGN(ctx.outputs[0], infer::broadcast(ctx, {in, TensorType(dt, std::move(dims))}, dt));
    return Status::ok();
  }
  auto n = static_length(ctx, 1);
  if (!in.has_rank() || !n) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  ctx.outputs[0] = TensorType(dt, unknown_dims(std::max<int64_t>(in.rank(), *n)));
  return Status::ok();
}

Status infer_tile(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "repeats"));
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  std::vector<Dim> dims = in.dims();
  auto repeats = constant_ints(ctx, 1);
  if (!repeats) {
    ctx.outputs[0] = TensorType(dt, unknown_dims(in.rank()));
    return Status::ok();
  }
  if (static_cast<int>(repeats->size()) != in.rank()) {
    return make_error("repeats has {} entries, the input {} has rank {}", repeats->size(), in.to_string(),
                      in.rank());
  }
  for (int i = 0; i < in.rank(); ++i) {
    const int64_t r = (*repeats)[i];
    if (r < 0) return make_error("repeats[{}] = {} is negative", i, r);
    if (r == 0) {
      dims[i] = Dim(0);
    } else if (dims[i].is_static()) {
      auto p = mul_dims(dims[i].value(), r);
      dims[i] = p ? Dim(*p) : Dim::unknown();
    } else if (r != 1) {
      dims[i] = Dim::unknown();
    }
  }
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_pad(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "pads"));
  SEQRUN_TRY(require_integer_input(ctx, 3, "axes"));
  const std::string mode = ctx.node().get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    return make_error("mode '{}' is not one of constant, reflect, edge, wrap", mode);
  }
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const int rank = in.rank();
  auto pads = constant_ints(ctx, 1);
  std::optional<std::vector<int64_t>> axes;
  if (ctx.has_input(3)) {
    axes = constant_ints(ctx, 3);
  } else {
    axes = std::vector<int64_t>();
    for (int i = 0; i < rank; ++i) axes->push_back(i);
  }
  if (!pads || !axes) {
    ctx.outputs[0] = TensorType(dt, unknown_dims(rank));
    return Status::ok();
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, *axes, rank));
  const size_t n = norm.size();
  if (pads->size() != 2 * n)
    return make_error("pads has {} entries, expected {} (2 per axis)", pads->size(), 2 * n);
  std::vector<Dim> dims = in.dims();
  for (size_t i = 0; i < n; ++i) {
    const int axis = norm[i];
    const int64_t before = (*pads)[i], after = (*pads)[i + n];
    if (before == 0 && after == 0) continue;
    if (!dims[axis].is_static()) {
      dims[axis] = Dim::unknown();
      continue;
    }
    const int64_t size = dims[axis].value();
    if (size + std::min<int64_t>(before, 0) + std::min<int64_t>(after, 0) < 0 || size + before + after < 0) {
      return make_error("pads {} and {} on axis {} remove more than its {} elements", before, after, axis,
                        size);
    }
    dims[axis] = Dim(size + before + after);
  }
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

// DepthToSpace (to_space) and SpaceToDepth on NCHW.
Status infer_depth_space(InferContext& ctx, bool to_space) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  const int64_t b = ctx.node().get_int("blocksize");
  if (b <= 0) return make_error("blocksize {} must be positive", b);
  if (ctx.node().op() == "DepthToSpace") {
    const std::string mode = ctx.node().get_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") return make_error("mode '{}' is not DCR or CRD", mode);
  }
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType(dt, unknown_dims(4));
    return Status::ok();
  }
  if (in.rank() != 4) return make_error("input {} must be 4-D (NCHW)", in.to_string());
  std::vector<Dim> dims = in.dims();
  auto scale = [&](int i, bool multiply) {
    if (!dims[i].is_static()) {
      dims[i] = Dim::unknown();
      return Status::ok();
    }
    const int64_t v = dims[i].value();
    if (multiply) {
      auto p = mul_dims(v, b);
      dims[i] = p ? Dim(*p) : Dim::unknown();
      return Status::ok();
    }
    if (v % b != 0) return make_error("dim {} of {} is not divisible by {}", i, in.to_string(), b);
    dims[i] = Dim(v / b);
    return Status::ok();
  };
  if (to_space) {
    if (dims[1].is_static() && dims[1].value() % (b * b) != 0) {
      return make_error("channels of {} are not divisible by blocksize^2 = {}", in.to_string(), b * b);
    }
    dims[1] = dims[1].is_static() ? Dim(dims[1].value() / (b * b)) : Dim::unknown();
    SEQRUN_TRY(scale(2, true));
    SEQRUN_TRY(scale(3, true));
  } else {
    SEQRUN_TRY(scale(2, false));
    SEQRUN_TRY(scale(3, false));
    auto p = dims[1].is_static() ? mul_dims(dims[1].value(), b * b) : std::nullopt;
    dims[1] = p ? Dim(*p) : Dim::unknown();
  }
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------------
// Indexing: Gather*, Scatter*, Compress, NonZero, OneHot

Status infer_gather(InferContext& ctx) {
  const TensorType& data = ctx.input_type(0);
  const TensorType& indices = ctx.input_type(1);
  const DType dt = data.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "indices"));
  if (!data.has_rank() || !indices.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  if (data.rank() == 0) return make_error("cannot gather from a scalar");
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", 0), data.rank()));
  if (auto idx = constant_ints(ctx, 1); idx && data.dim(axis).is_static()) {
    const int64_t size = data.dim(axis).value();
    for (int64_t v : *idx) {
      if (v < -size || v >= size)
        return make_error("index {} out of range for axis {} of size {}", v, axis, size);
    }
  }
  std::vector<Dim> dims(data.dims().begin(), data.dims().begin() + axis);
  for (const Dim& d : indices.dims()) dims.push_back(d);
  for (int i = axis + 1; i < data.rank(); ++i) dims.push_back(data.dim(i));
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_gather_elements(InferContext& ctx) {
  const TensorType& data = ctx.input_type(0);
  const TensorType& indices = ctx.input_type(1);
  SEQRUN_TRY(require_integer_input(ctx, 1, "indices"));
  if (data.has_rank() && indices.has_rank()) {
    if (data.rank() != indices.rank()) {
      return make_error("data {} and indices {} must have the same rank", data.to_string(),
                        indices.to_string());
    }
    SEQRUN_TRY(infer::normalize_axis(ctx, ctx.node().get_int("axis", 0), data.rank()).status());
  }
  ctx.outputs[0] =
      indices.has_rank() ? TensorType(data.dtype(), indices.dims()) : TensorType::unknown_rank(data.dtype());
  return Status::ok();
}

Status infer_gather_nd(InferContext& ctx) {
  const TensorType& data = ctx.input_type(0);
  const TensorType& indices = ctx.input_type(1);
  const DType dt = data.dtype();
  SEQRUN_TRY(require_integer_input(ctx, 1, "indices"));
  const int64_t b = ctx.node().get_int("batch_dims", 0);
  if (b < 0) return make_error("batch_dims {} is negative", b);
  if (!data.has_rank() || !indices.has_rank() || indices.rank() == 0 || !indices.dim(-1).is_static()) {
    if (indices.has_rank() && indices.rank() == 0) return make_error("indices must have rank >= 1");
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const int r = data.rank(), q = indices.rank();
  const int64_t k = indices.dim(-1).value();
  if (b >= std::min(q, r))
    return make_error("batch_dims {} must be less than both ranks ({} and {})", b, r, q);
  if (b + k > r)
    return make_error("index tuples of length {} after {} batch dims exceed data rank {}", k, b, r);
  std::vector<Dim> dims;
  for (int i = 0; i < q - 1; ++i)
    dims.push_back(i < b ? infer::merge_dim(indices.dim(i), data.dim(i)) : indices.dim(i));
  for (int64_t i = b + k; i < r; ++i) dims.push_back(data.dim(static_cast<int>(i)));
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_scatter(InferContext& ctx) {
  SEQRUN_TRY(require_integer_input(ctx, 1, "indices"));
  const std::string reduction = ctx.node().get_string("reduction", "none");
  if (reduction != "none" && reduction != "add" && reduction != "mul" && reduction != "max" &&
      reduction != "min") {
    return make_error("reduction '{}' is not one of none, add, mul, max, min", reduction);
  }
  const TensorType& data = ctx.input_type(0);
  const DType ut = ctx.input_dtype(2);
  if (data.dtype() != DType::undefined && ut != DType::undefined && ut != data.dtype()) {
    return make_error("updates dtype {} differs from data dtype {}", dtype_name(ut),
                      dtype_name(data.dtype()));
  }
  if (ctx.node().op() == "ScatterElements" && data.has_rank()) {
    SEQRUN_TRY(infer::normalize_axis(ctx, ctx.node().get_int("axis", 0), data.rank()).status());
  }
  return infer::same_as_input(ctx, 0);
}

Status infer_compress(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  const DType dt = in.dtype();
  std::optional<int64_t> count;
  if (const Tensor* cond = ctx.input_constant(1)) {
    count = 0;
    for (int64_t i = 0; i < cond->numel(); ++i) *count += cond->get_f64(i) != 0.0 ? 1 : 0;
  }
  const Dim out_dim = count ? Dim(*count) : Dim::unknown();
  if (!ctx.node().has_attr("axis")) {
    ctx.outputs[0] = TensorType(dt, {out_dim});
    return Status::ok();
  }
  if (!in.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis"), in.rank()));
  std::vector<Dim> dims = in.dims();
  dims[axis] = out_dim;
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_nonzero(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  ctx.outputs[0] =
      TensorType(DType::i64, {in.has_rank() ? Dim(std::max(in.rank(), 1)) : Dim::unknown(), Dim::unknown()});
  return Status::ok();
}

Status infer_onehot(InferContext& ctx) {
  const TensorType& indices = ctx.input_type(0);
  const DType dt = ctx.input_dtype(2);
  if (const Tensor* values = ctx.input_constant(2); values != nullptr && values->numel() != 2) {
    return make_error("values must hold 2 elements (off, on), has {}", values->numel());
  }
  if (!indices.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(dt);
    return Status::ok();
  }
  const int out_rank = indices.rank() + 1;
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", -1), out_rank));
  Dim depth_dim;
  if (auto depth = constant_scalar(ctx, 1)) {
    if (*depth < 0) return make_error("depth {} is negative", *depth);
    depth_dim = Dim(*depth);
  }
  std::vector<Dim> dims = indices.dims();
  dims.insert(dims.begin() + axis, depth_dim);
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------------
// Generators: Range, ConstantOfShape, EyeLike, Trilu, ReverseSequence

Status infer_range(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  for (int i = 1; i < 3; ++i) {
    DType t = ctx.input_dtype(i);
    if (dt != DType::undefined && t != DType::undefined && t != dt) {
      return make_error("start, limit and delta must share a dtype ({} vs {})", dtype_name(dt),
                        dtype_name(t));
    }
  }
  const Tensor* start = ctx.input_constant(0);
  const Tensor* limit = ctx.input_constant(1);
  const Tensor* delta = ctx.input_constant(2);
  Dim n;
  if (start && limit && delta && start->numel() == 1 && limit->numel() == 1 && delta->numel() == 1) {
    if (is_float(dt)) {
      const double d = delta->get_f64(0);
      if (d == 0.0) return make_error("delta is 0");
      const double count = std::ceil((limit->get_f64(0) - start->get_f64(0)) / d);
      if (std::isfinite(count) && count < 9.0e15) n = Dim(static_cast<int64_t>(std::max(count, 0.0)));
    } else {
      const __int128 d = delta->get_i64(0);
      if (d == 0) return make_error("delta is 0");
      const __int128 diff = static_cast<__int128>(limit->get_i64(0)) - start->get_i64(0);
      __int128 count = 0;
      if (d > 0 && diff > 0) count = (diff + d - 1) / d;
      if (d < 0 && diff < 0) count = (-diff + (-d) - 1) / (-d);
      if (count <= std::numeric_limits<int64_t>::max()) n = Dim(static_cast<int64_t>(count));
    }
  }
  ctx.outputs[0] = TensorType(dt, {n});
  return Status::ok();
}

Status infer_constant_of_shape(InferContext& ctx) {
  DType dt = DType::f32;
  if (const Attribute* value = ctx.node().attr("value")) {
    if (value->type() != AttrType::Tensor) return make_error("attribute 'value' must be a tensor");
    if (value->tensor().numel() != 1)
      return make_error("attribute 'value' must hold one element, has {}", value->tensor().numel());
    dt = value->tensor().dtype();
  }
  SEQRUN_TRY(require_integer_input(ctx, 0, "input"));
  if (auto shape = constant_ints(ctx, 0)) {
    std::vector<Dim> dims;
    for (int64_t v : *shape) {
      if (v < 0) return make_error("shape has a negative dim {}", v);
      dims.push_back(Dim(v));
    }
    ctx.outputs[0] = TensorType(dt, std::move(dims));
    return Status::ok();
  }
  auto n = static_length(ctx, 0);
  ctx.outputs[0] = n ? TensorType(dt, unknown_dims(*n)) : TensorType::unknown_rank(dt);
  return Status::ok();
}

Status infer_eye_like(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  DType dt = in.dtype();
  if (ctx.node().has_attr("dtype")) {
    Result<DType> t = dtype_from_onnx_type(ctx.node().get_int("dtype"));
    if (!t) return t.status().with_context("attribute 'dtype'");
    dt = *t;
  }
  if (in.has_rank() && in.rank() != 2) return make_error("input {} must be 2-D", in.to_string());
  ctx.outputs[0] = in.has_rank() ? TensorType(dt, in.dims()) : TensorType(dt, unknown_dims(2));
  return Status::ok();
}

Status infer_trilu(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  SEQRUN_TRY(require_integer_input(ctx, 1, "k"));
  if (in.has_rank() && in.rank() < 2) return make_error("input {} must have rank >= 2", in.to_string());
  return infer::same_as_input(ctx, 0);
}

Status infer_reverse_sequence(InferContext& ctx) {
  const TensorType& in = ctx.input_type(0);
  SEQRUN_TRY(require_integer_input(ctx, 1, "sequence_lens"));
  const int64_t batch_axis = ctx.node().get_int("batch_axis", 1);
  const int64_t time_axis = ctx.node().get_int("time_axis", 0);
  if ((batch_axis != 0 && batch_axis != 1) || (time_axis != 0 && time_axis != 1) || batch_axis == time_axis) {
    return make_error("batch_axis {} and time_axis {} must be 0 and 1 in some order", batch_axis, time_axis);
  }
  if (in.has_rank() && in.rank() < 2) return make_error("input {} must have rank >= 2", in.to_string());
  return infer::same_as_input(ctx, 0);
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  using A = AttrType;
  r.add(OpDef("Shape")
            .inputs(1)
            .doc("The input's shape as i64[rank], optionally dims [start, end) only")
            .attr("start", A::Int, int64_t{0})
            .attr("end", A::Int)
            .infer(infer_shape)
            .build());
  r.add(OpDef("Size").inputs(1).doc("The input's element count as an i64 scalar").infer(infer_size).build());
  r.add(OpDef("Reshape")
            .inputs(2)
            .doc("Same elements, new shape: 0 copies the input dim (unless allowzero), -1 is inferred")
            .attr("allowzero", A::Int, int64_t{0})
            .infer(infer_reshape)
            .build());
  r.add(OpDef("Flatten")
            .inputs(1)
            .doc("Reshape to 2-D: dims before axis, dims from axis on")
            .attr("axis", A::Int, int64_t{1})
            .infer(infer_flatten)
            .build());
  r.add(OpDef("Squeeze")
            .inputs(1, 2)
            .doc("Removes the listed size-1 axes (all size-1 axes when absent)")
            .infer(infer_squeeze)
            .build());
  r.add(OpDef("Unsqueeze")
            .inputs(2)
            .doc("Inserts size-1 axes at the listed output positions")
            .infer(infer_unsqueeze)
            .build());
  r.add(OpDef("Transpose")
            .inputs(1)
            .doc("Permutes axes: output dim i is input dim perm[i] (default: reversed)")
            .attr("perm", A::Ints)
            .infer(infer_transpose)
            .build());
  r.add(OpDef("Slice")
            .inputs(3, 5)
            .doc("Strided slice along axes, with ONNX clamping and negative steps")
            .infer(infer_slice)
            .build());
  r.add(OpDef("Concat")
            .inputs(1, OpSchema::kVariadic)
            .doc("Joins inputs along axis")
            .required_attr("axis", A::Int)
            .infer(infer_concat)
            .build());
  r.add(OpDef("Split")
            .inputs(1, 2)
            .outputs(1, OpSchema::kVariadic)
            .doc("Splits along axis by the 'split' sizes, or into num_outputs chunks (last one smaller)")
            .attr("axis", A::Int, int64_t{0})
            .attr("num_outputs", A::Int)
            .infer(infer_split)
            .build());
  r.add(OpDef("Expand")
            .inputs(2)
            .doc("Broadcasts the input against 'shape' (bidirectionally)")
            .infer(infer_expand)
            .build());
  r.add(OpDef("Tile")
            .inputs(2)
            .doc("Repeats the input repeats[i] times along each axis i")
            .infer(infer_tile)
            .build());
  r.add(OpDef("Pad")
            .inputs(2, 4)
            .doc("Pads (or crops, with negative pads) the listed axes: constant|reflect|edge|wrap")
            .attr("mode", A::String, std::string("constant"))
            .infer(infer_pad)
            .build());
  r.add(OpDef("DepthToSpace")
            .inputs(1)
            .doc("Moves channel blocks into spatial blocks (NCHW), DCR or CRD order")
            .required_attr("blocksize", A::Int)
            .attr("mode", A::String, std::string("DCR"))
            .infer([](InferContext& ctx) { return infer_depth_space(ctx, true); })
            .build());
  r.add(OpDef("SpaceToDepth")
            .inputs(1)
            .doc("Moves spatial blocks into channels (NCHW)")
            .required_attr("blocksize", A::Int)
            .infer([](InferContext& ctx) { return infer_depth_space(ctx, false); })
            .build());
  r.add(OpDef("Gather")
            .inputs(2)
            .doc("Takes entries of data along axis at indices (negative counts from the end)")
            .attr("axis", A::Int, int64_t{0})
            .infer(infer_gather)
            .build());
  r.add(OpDef("GatherElements")
            .inputs(2)
            .doc("out[i][j] = data[i][indices[i][j]] along axis (take_along_axis)")
            .attr("axis", A::Int, int64_t{0})
            .infer(infer_gather_elements)
            .build());
  r.add(OpDef("GatherND")
            .inputs(2)
            .doc("Gathers slices of data addressed by index tuples in indices' last dim")
            .attr("batch_dims", A::Int, int64_t{0})
            .infer(infer_gather_nd)
            .build());
  r.add(OpDef("ScatterND")
            .inputs(3)
            .doc("Copy of data with slices at index tuples replaced by (or reduced with) updates")
            .attr("reduction", A::String, std::string("none"))
            .infer(infer_scatter)
            .build());
  r.add(OpDef("ScatterElements")
            .inputs(3)
            .doc("Copy of data with elements at indices along axis set from updates")
            .attr("axis", A::Int, int64_t{0})
            .attr("reduction", A::String, std::string("none"))
            .infer(infer_scatter)
            .build());
  r.add(OpDef("Compress")
            .inputs(2)
            .doc("Keeps the slices along axis (or elements of the flattened input) where condition is true")
            .attr("axis", A::Int)
            .infer(infer_compress)
            .build());
  r.add(OpDef("NonZero")
            .inputs(1)
            .doc("Indices of the non-zero elements as i64[rank, count]")
            .infer(infer_nonzero)
            .build());
  r.add(OpDef("OneHot")
            .inputs(3)
            .doc("One-hot encoding of indices with depth classes and values (off, on)")
            .attr("axis", A::Int, int64_t{-1})
            .infer(infer_onehot)
            .build());
  r.add(OpDef("Range")
            .inputs(3)
            .doc("start, start + delta, ... up to (excluding) limit")
            .infer(infer_range)
            .build());
  r.add(OpDef("ConstantOfShape")
            .inputs(1)
            .doc("A tensor of the given shape filled with 'value' (default f32 0)")
            .attr("value", A::Tensor)
            .infer(infer_constant_of_shape)
            .build());
  r.add(OpDef("EyeLike")
            .inputs(1)
            .doc("2-D tensor like the input with ones on diagonal k, zeros elsewhere")
            .attr("dtype", A::Int)
            .attr("k", A::Int, int64_t{0})
            .infer(infer_eye_like)
            .build());
  r.add(OpDef("Trilu")
            .inputs(1, 2)
            .doc("Keeps the upper (or lower) triangle of the last two dims from diagonal k")
            .attr("upper", A::Int, int64_t{1})
            .infer(infer_trilu)
            .build());
  r.add(OpDef("ReverseSequence")
            .inputs(2)
            .doc("Reverses the first sequence_lens[b] steps along time_axis for each batch b")
            .attr("batch_axis", A::Int, int64_t{1})
            .attr("time_axis", A::Int, int64_t{0})
            .infer(infer_reverse_sequence)
            .build());
}

}  // namespace seqrun::ops
