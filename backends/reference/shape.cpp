// Reference kernels of the shape family: reshapes, layout changes (Transpose, Slice, Concat, Split, Expand,
// Tile, Pad, DepthToSpace, ...) here; indexing ops in shape_index.h; generators in shape_fill.h.
//
// Every kernel works on raw element bytes, so it handles every dtype and passes f16/bf16 through
// bit-exact (registered with compute_in_f32 = false). Layout kernels walk the output row-major and read
// the input through strides (memory-bound; no threading: this is the correctness baseline). Each kernel
// re-validates at run time what shape inference may not have known and returns an error naming the node.
#include <algorithm>
#include <limits>

#include "backends/reference/kernel.h"
#include "backends/reference/shape_fill.h"
#include "backends/reference/shape_index.h"
#include "backends/reference/shape_util.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

using namespace shape_detail;  // NOLINT(google-build-using-namespace): private helpers of this family

Status set_output(KernelContext& ctx, Tensor t) {
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(t));
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------------
// Shape queries and reshapes (outputs are copies with a new shape)

Status shape_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  auto clamp_end = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = clamp_end(ctx.node.get_int("start", 0));
  const int64_t end = ctx.node.has_attr("end") ? clamp_end(ctx.node.get_int("end")) : rank;
  const int64_t len = std::max<int64_t>(end - start, 0);
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, DType::i64, {len}));
  for (int64_t i = 0; i < len; ++i) out.data<int64_t>()[i] = x.dim(static_cast<int>(start + i));
  return set_output(ctx, std::move(out));
}

Status size_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  return set_output(ctx, Tensor::scalar<int64_t>(ctx.input(0).numel()));
}

// Reshape's target shape: 0 copies the input dim (unless allowzero), one -1 takes what is left.
Result<Shape> resolve_reshape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& spec,
                              bool allowzero) {
  Shape out;
  int infer_at = -1;
  bool has_zero = false;
  for (size_t i = 0; i < spec.size(); ++i) {
    const int64_t v = spec[i];
    if (v == -1) {
      if (infer_at >= 0) return ctx.error("shape {} has more than one -1", shape_to_string(spec));
      infer_at = static_cast<int>(i);
      out.push_back(1);
    } else if (v < -1) {
      return ctx.error("shape {} has a negative dim {}", shape_to_string(spec), v);
    } else if (v == 0 && !allowzero) {
      if (i >= in.size()) {
        return ctx.error("shape {}: 0 at position {} copies an input dim, but the input {} has rank {}",
                         shape_to_string(spec), i, shape_to_string(in), in.size());
      }
      out.push_back(in[i]);
    } else {
      has_zero |= v == 0;
      out.push_back(v);
    }
  }
  if (allowzero && has_zero && infer_at >= 0) {
    return ctx.error("shape {} has both 0 and -1 while allowzero = 1", shape_to_string(spec));
  }
  const int64_t in_count = num_elements(in);
  int64_t other = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (static_cast<int>(i) == infer_at) continue;
    if (__builtin_mul_overflow(other, out[i], &other)) {
      return ctx.error("shape {} has too many elements", shape_to_string(spec));
    }
  }
  if (infer_at >= 0) {
    if (other == 0 || in_count % other != 0) {
      return ctx.error("cannot reshape {} ({} elements) to {}: the -1 cannot be inferred",
                       shape_to_string(in), in_count, shape_to_string(spec));
    }
    out[infer_at] = in_count / other;
  } else if (other != in_count) {
    return ctx.error("cannot reshape {} ({} elements) to {} ({} elements)", shape_to_string(in), in_count,
                     shape_to_string(out), other);
  }
  return out;
}

Status reshape_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_ASSIGN(std::vector<int64_t> spec, read_ints(ctx, 1, "shape"));
  const bool allowzero = ctx.node.get_int("allowzero", 0) != 0;
  SEQRUN_ASSIGN(Shape shape, resolve_reshape(ctx, ctx.input(0).shape(), spec, allowzero));
  return set_output(ctx, ctx.input(0).clone().reshaped(std::move(shape)));
}

Status flatten_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", 1), x.rank(), /*allow_end=*/true));
  Shape shape{product(x.shape(), 0, axis), product(x.shape(), axis, x.shape().size())};
  return set_output(ctx, x.clone().reshaped(std::move(shape)));
}

Status squeeze_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<bool> drop(static_cast<size_t>(x.rank()), false);
  if (ctx.has_input(1)) {
    SEQRUN_ASSIGN(std::vector<int64_t> axes, read_ints(ctx, 1, "axes"));
    SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, axes, x.rank()));
    for (int a : norm) {
      if (x.dim(a) != 1) {
        return ctx.error("cannot squeeze axis {} of {}: its size is {}, not 1", a, shape_to_string(x.shape()),
                         x.dim(a));
      }
      drop[a] = true;
    }
  } else {
    for (int i = 0; i < x.rank(); ++i) drop[i] = x.dim(i) == 1;
  }
  Shape shape;
  for (int i = 0; i < x.rank(); ++i) {
    if (!drop[i]) shape.push_back(x.dim(i));
  }
  return set_output(ctx, x.clone().reshaped(std::move(shape)));
}

Status unsqueeze_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  SEQRUN_ASSIGN(std::vector<int64_t> axes, read_ints(ctx, 1, "axes"));
  const int out_rank = x.rank() + static_cast<int>(axes.size());
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, axes, out_rank));
  std::vector<bool> inserted(static_cast<size_t>(out_rank), false);
  for (int a : norm) inserted[a] = true;
  Shape shape;
  int next = 0;
  for (int i = 0; i < out_rank; ++i) shape.push_back(inserted[i] ? 1 : x.dim(next++));
  return set_output(ctx, x.clone().reshaped(std::move(shape)));
}

// ---------------------------------------------------------------------------------------------------
// Layout changes

Status transpose_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  const int rank = x.rank();
  std::vector<int64_t> perm;
  if (ctx.node.has_attr("perm")) {
    perm = ctx.node.get_ints("perm");
  } else {
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != rank) {
    return ctx.error("perm has {} entries, the input {} has rank {}", perm.size(), shape_to_string(x.shape()),
                     rank);
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, perm, rank));
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  Shape shape;
  std::vector<int64_t> strides;
  for (int p : norm) {
    shape.push_back(x.dim(p));
    strides.push_back(in_strides[p]);
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
  strided_copy(static_cast<uint8_t*>(out.raw()), static_cast<const uint8_t*>(x.raw()), dtype_size(x.dtype()),
               shape, strides, 0);
  return set_output(ctx, std::move(out));
}

// ONNX Slice clamping of one axis: the first index read and the number of elements taken.
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
    const uint64_t magnitude = uint64_t{0} - static_cast<uint64_t>(step);
    if (start > end) r.length = static_cast<int64_t>(1 + static_cast<uint64_t>(start - end - 1) / magnitude);
  }
  r.start = start;
  return r;
}

Status slice_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  const Tensor& x = ctx.input(0);
  SEQRUN_ASSIGN(std::vector<int64_t> starts, read_ints(ctx, 1, "starts"));
  SEQRUN_ASSIGN(std::vector<int64_t> ends, read_ints(ctx, 2, "ends"));
  std::vector<int64_t> axes;
  if (ctx.has_input(3)) {
    SEQRUN_ASSIGN(axes, read_ints(ctx, 3, "axes"));
  } else {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  std::vector<int64_t> steps(axes.size(), 1);
  if (ctx.has_input(4)) {
    SEQRUN_ASSIGN(steps, read_ints(ctx, 4, "steps"));
  }
  if (starts.size() != axes.size() || ends.size() != axes.size() || steps.size() != axes.size()) {
    return ctx.error("starts ({}), ends ({}), axes ({}) and steps ({}) must have the same length",
                     starts.size(), ends.size(), axes.size(), steps.size());
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, axes, x.rank()));
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  Shape shape = x.shape();
  std::vector<int64_t> strides = in_strides;
  int64_t offset = 0;
  for (size_t i = 0; i < norm.size(); ++i) {
    const int axis = norm[i];
    if (steps[i] == 0) return ctx.error("steps[{}] is 0", i);
    const SliceRange r = slice_range(starts[i], ends[i], steps[i], x.dim(axis));
    shape[axis] = r.length;
    if (r.length == 0) continue;
    offset += r.start * in_strides[axis];
    // A single element needs no stride (and a huge step times the stride could overflow).
    strides[axis] = r.length > 1 ? in_strides[axis] * steps[i] : 0;
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
  strided_copy(static_cast<uint8_t*>(out.raw()), static_cast<const uint8_t*>(x.raw()), dtype_size(x.dtype()),
               shape, strides, offset);
  return set_output(ctx, std::move(out));
}

Status concat_kernel(KernelContext& ctx) {
  const int n = ctx.num_inputs();
  if (n < 1) return ctx.error("needs at least one input");
  SEQRUN_TRY(require_inputs(ctx, n));
  const Tensor& first = ctx.input(0);
  const int rank = first.rank();
  if (rank == 0) return ctx.error("cannot concatenate scalars");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis"), rank));
  Shape shape = first.shape();
  shape[axis] = 0;
  for (int k = 0; k < n; ++k) {
    const Tensor& t = ctx.input(k);
    if (t.dtype() != first.dtype()) {
      return ctx.error("input {} has dtype {}, input 0 has {}", k, dtype_name(t.dtype()),
                       dtype_name(first.dtype()));
    }
    bool same = t.rank() == rank;
    for (int d = 0; same && d < rank; ++d) same = d == axis || t.dim(d) == first.dim(d);
    if (!same) {
      return ctx.error("input {} has shape {}, which does not match input 0's {} outside axis {}", k,
                       shape_to_string(t.shape()), shape_to_string(first.shape()), axis);
    }
    shape[axis] += t.dim(axis);
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, first.dtype(), shape));
  const int64_t esz = static_cast<int64_t>(dtype_size(first.dtype()));
  const int64_t outer = product(shape, 0, axis);
  const int64_t inner = product(shape, axis + 1, shape.size());
  uint8_t* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (int k = 0; k < n; ++k) {
      const int64_t block = ctx.input(k).dim(axis) * inner * esz;
      std::memcpy(dst, static_cast<const uint8_t*>(ctx.input(k).raw()) + o * block,
                  static_cast<size_t>(block));
      dst += block;
    }
  }
  return set_output(ctx, std::move(out));
}

Status split_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) return ctx.error("cannot split a scalar");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", 0), x.rank()));
  const int n_out = ctx.node.num_outputs();
  const int64_t dim = x.dim(axis);
  std::vector<int64_t> sizes;
  if (ctx.has_input(1)) {
    SEQRUN_ASSIGN(sizes, read_ints(ctx, 1, "split"));
    if (static_cast<int>(sizes.size()) != n_out) {
      return ctx.error("split has {} entries, the node has {} outputs", sizes.size(), n_out);
    }
    int64_t sum = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0 || sizes[i] > dim) return ctx.error("split[{}] = {} is out of range", i, sizes[i]);
      sum += sizes[i];
    }
    if (sum != dim) return ctx.error("split sizes sum to {}, but axis {} has size {}", sum, axis, dim);
  } else {
    if (ctx.node.has_attr("num_outputs") && ctx.node.get_int("num_outputs") != n_out) {
      return ctx.error("num_outputs = {} but the node has {} outputs", ctx.node.get_int("num_outputs"),
                       n_out);
    }
    // Opset 18: chunks of ceil(dim / n); the last one takes what is left.
    const int64_t chunk = (dim + n_out - 1) / n_out;
    const int64_t last = dim - chunk * (n_out - 1);
    if (last < 0) return ctx.error("cannot split size {} into {} chunks of {}", dim, n_out, chunk);
    for (int i = 0; i < n_out; ++i) sizes.push_back(i + 1 < n_out ? chunk : last);
  }
  const int64_t esz = static_cast<int64_t>(dtype_size(x.dtype()));
  const int64_t outer = product(x.shape(), 0, axis);
  const int64_t inner = product(x.shape(), axis + 1, x.shape().size());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  ctx.outputs.clear();
  int64_t begin = 0;
  for (int k = 0; k < n_out; ++k) {
    Shape shape = x.shape();
    shape[axis] = sizes[k];
    SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
    const int64_t block = sizes[k] * inner * esz;
    auto* dst = static_cast<uint8_t*>(out.raw());
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + o * block, src + (o * dim + begin) * inner * esz, static_cast<size_t>(block));
    }
    begin += sizes[k];
    ctx.outputs.push_back(std::move(out));
  }
  return Status::ok();
}

Status expand_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  SEQRUN_ASSIGN(std::vector<int64_t> target, read_ints(ctx, 1, "shape"));
  for (int64_t d : target) {
    if (d < 0) return ctx.error("shape {} has a negative dim", shape_to_string(target));
  }
  Result<Shape> shape = broadcast_shapes({x.shape(), target});
  if (!shape) return ctx.error("{}", shape.status().message());
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), *shape));
  strided_copy(static_cast<uint8_t*>(out.raw()), static_cast<const uint8_t*>(x.raw()), dtype_size(x.dtype()),
               *shape, broadcast_strides(x.shape(), *shape), 0);
  return set_output(ctx, std::move(out));
}

Status tile_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  SEQRUN_ASSIGN(std::vector<int64_t> repeats, read_ints(ctx, 1, "repeats"));
  const int rank = x.rank();
  if (static_cast<int>(repeats.size()) != rank) {
    return ctx.error("repeats has {} entries, the input {} has rank {}", repeats.size(),
                     shape_to_string(x.shape()), rank);
  }
  Shape shape(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    if (repeats[i] < 0) return ctx.error("repeats[{}] = {} is negative", i, repeats[i]);
    if (__builtin_mul_overflow(x.dim(i), repeats[i], &shape[i])) {
      return ctx.error("repeating dim {} of size {} {} times overflows", i, x.dim(i), repeats[i]);
    }
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
  const int64_t n = out.numel();
  const size_t esz = dtype_size(x.dtype());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  if (n == 0) return set_output(ctx, std::move(out));
  if (rank == 0) {
    copy_elem(dst, src, esz);
    return set_output(ctx, std::move(out));
  }
  // Each output row is the matching input row repeated repeats[-1] times.
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  const int64_t in_row = x.dim(rank - 1);
  const int64_t rows = n / shape[rank - 1];
  std::vector<int64_t> idx(static_cast<size_t>(rank - 1), 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset = 0;
    for (int d = 0; d < rank - 1; ++d) offset += (idx[d] % x.dim(d)) * in_strides[d];
    for (int64_t k = 0; k < repeats[rank - 1]; ++k) {
      std::memcpy(dst, src + offset * static_cast<int64_t>(esz), static_cast<size_t>(in_row) * esz);
      dst += in_row * static_cast<int64_t>(esz);
    }
    for (int d = rank - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return set_output(ctx, std::move(out));
}

// Where output position o of a padded axis reads from: an input index, or -1 for the constant.
// Negative pads crop first; the modes then pad the cropped range [crop_lo, crop_lo + kept).
int64_t pad_source_index(const std::string& mode, int64_t o, int64_t pad_lo, int64_t crop_lo, int64_t kept) {
  int64_t i = o - pad_lo;
  if (i >= 0 && i < kept) return crop_lo + i;
  if (mode == "constant") return -1;
  if (mode == "edge") {
    i = std::clamp<int64_t>(i, 0, kept - 1);
  } else if (mode == "wrap") {
    i = ((i % kept) + kept) % kept;
  } else {  // reflect, periodic like numpy.pad for pads larger than the axis
    const int64_t period = 2 * (kept - 1);
    if (period == 0) {
      i = 0;
    } else {
      i = ((i % period) + period) % period;
      if (i >= kept) i = period - i;
    }
  }
  return crop_lo + i;
}

Status pad_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const int rank = x.rank();
  const std::string mode = ctx.node.get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    return ctx.error("mode '{}' is not one of constant, reflect, edge, wrap", mode);
  }
  SEQRUN_ASSIGN(std::vector<int64_t> pads, read_ints(ctx, 1, "pads"));
  std::vector<int64_t> axes;
  if (ctx.has_input(3)) {
    SEQRUN_ASSIGN(axes, read_ints(ctx, 3, "axes"));
  } else {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  SEQRUN_ASSIGN(std::vector<int> norm, normalize_axes(ctx, axes, rank));
  const size_t n_axes = norm.size();
  if (pads.size() != 2 * n_axes) {
    return ctx.error("pads has {} entries, expected {} (begin and end for each of {} axes)", pads.size(),
                     2 * n_axes, n_axes);
  }
  std::vector<int64_t> before(static_cast<size_t>(rank), 0), after(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < n_axes; ++i) {
    before[norm[i]] = pads[i];
    after[norm[i]] = pads[i + n_axes];
  }
  // Per axis: the source index of every output position.
  Shape shape(static_cast<size_t>(rank));
  std::vector<std::vector<int64_t>> source(static_cast<size_t>(rank));
  for (int d = 0; d < rank; ++d) {
    const int64_t crop_lo = std::max<int64_t>(-before[d], 0), crop_hi = std::max<int64_t>(-after[d], 0);
    const int64_t pad_lo = std::max<int64_t>(before[d], 0), pad_hi = std::max<int64_t>(after[d], 0);
    if (crop_lo > x.dim(d) || crop_hi > x.dim(d) - crop_lo) {
      return ctx.error("pads {} and {} on axis {} remove more than its {} elements", before[d], after[d], d,
                       x.dim(d));
    }
    const int64_t kept = x.dim(d) - crop_lo - crop_hi;
    if (pad_lo > kMaxOutputElements || pad_hi > kMaxOutputElements) {
      return ctx.error("pads {} and {} on axis {} are too large", before[d], after[d], d);
    }
    shape[d] = kept + pad_lo + pad_hi;
    if (kept == 0 && shape[d] > 0 && mode != "constant") {
      return ctx.error("cannot pad an empty axis {} in mode '{}'", d, mode);
    }
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
  for (int d = 0; d < rank; ++d) {
    const int64_t crop_lo = std::max<int64_t>(-before[d], 0), crop_hi = std::max<int64_t>(-after[d], 0);
    const int64_t kept = x.dim(d) - crop_lo - crop_hi;
    for (int64_t o = 0; o < shape[d]; ++o) {
      source[d].push_back(pad_source_index(mode, o, std::max<int64_t>(before[d], 0), crop_lo, kept));
    }
  }
  const size_t esz = dtype_size(x.dtype());
  std::vector<uint8_t> fill(esz, 0);
  if (ctx.has_input(2) && mode == "constant") {
    const Tensor& c = ctx.input(2);
    if (c.numel() > 1) return ctx.error("constant_value must be a scalar, has {} elements", c.numel());
    if (c.numel() == 1) {
      Tensor value = c.dtype() == x.dtype() ? c : c.cast(x.dtype());
      std::memcpy(fill.data(), value.raw(), esz);
    }
  }
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  const int64_t n = out.numel();
  if (n == 0) return set_output(ctx, std::move(out));
  if (rank == 0) {
    copy_elem(dst, src, esz);
    return set_output(ctx, std::move(out));
  }
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  const int64_t row = shape[rank - 1];
  const std::vector<int64_t>& row_source = source[rank - 1];
  std::vector<int64_t> idx(static_cast<size_t>(rank - 1), 0);
  for (int64_t r = 0; r < n / row; ++r) {
    int64_t offset = 0;
    bool constant_row = false;
    for (int d = 0; d < rank - 1; ++d) {
      const int64_t s = source[d][idx[d]];
      constant_row |= s < 0;
      offset += s * in_strides[d];
    }
    for (int64_t k = 0; k < row; ++k, dst += esz) {
      const int64_t s = row_source[k];
      if (constant_row || s < 0) {
        copy_elem(dst, fill.data(), esz);
      } else {
        copy_elem(dst, src + (offset + s) * static_cast<int64_t>(esz), esz);
      }
    }
    for (int d = rank - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return set_output(ctx, std::move(out));
}

// DepthToSpace / SpaceToDepth as one strided copy through a 6-D view of the NCHW output.
Status depth_space_kernel(KernelContext& ctx, bool to_space) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  const int64_t b = ctx.node.get_int("blocksize");
  if (b <= 0) return ctx.error("blocksize {} must be positive", b);
  if (x.rank() != 4) return ctx.error("input {} must be 4-D (NCHW)", shape_to_string(x.shape()));
  if (b > (int64_t{1} << 15)) return ctx.error("blocksize {} is too large", b);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  if (std::max({N, C, H, W}) > kMaxOutputElements) {
    return ctx.error("input {} is too large", shape_to_string(x.shape()));
  }
  Shape shape;
  Shape view;
  std::vector<int64_t> strides;
  if (to_space) {
    if (C % (b * b) != 0) {
      return ctx.error("channels of {} are not divisible by blocksize^2", shape_to_string(x.shape()));
    }
    const int64_t c_out = C / (b * b);
    shape = {N, c_out, H * b, W * b};
    view = {N, c_out, H, b, W, b};  // out[n, c, h*b + i, w*b + j]
    const std::string mode = ctx.node.get_string("mode", "DCR");
    if (mode == "DCR") {  // reads x[n, (i*b + j)*c_out + c, h, w]
      strides = {C * H * W, H * W, W, b * c_out * H * W, 1, c_out * H * W};
    } else if (mode == "CRD") {  // reads x[n, c*b*b + i*b + j, h, w]
      strides = {C * H * W, b * b * H * W, W, b * H * W, 1, H * W};
    } else {
      return ctx.error("mode '{}' is not DCR or CRD", mode);
    }
  } else {
    if (H % b != 0 || W % b != 0) {
      return ctx.error("spatial dims of {} are not divisible by blocksize {}", shape_to_string(x.shape()), b);
    }
    shape = {N, C * b * b, H / b, W / b};
    view = {N, b, b, C, H / b, W / b};  // out[n, (i*b + j)*C + c, h, w] reads x[n, c, h*b + i, w*b + j]
    strides = {C * H * W, W, 1, H * W, b * W, b};
  }
  SEQRUN_ASSIGN(Tensor out, alloc_output(ctx, x.dtype(), shape));
  strided_copy(static_cast<uint8_t*>(out.raw()), static_cast<const uint8_t*>(x.raw()), dtype_size(x.dtype()),
               view, strides, 0);
  return set_output(ctx, std::move(out));
}

Status trilu_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.error("input {} must have rank >= 2", shape_to_string(x.shape()));
  int64_t k = 0;
  if (ctx.has_input(1)) {
    SEQRUN_ASSIGN(k, read_scalar_int(ctx, 1, "k"));
  }
  const bool upper = ctx.node.get_int("upper", 1) != 0;
  Tensor out = x.clone();
  const int64_t rows = x.dim(-2), cols = x.dim(-1);
  const int64_t matrices = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  const size_t esz = dtype_size(x.dtype());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t m = 0; m < matrices; ++m) {
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const bool keep = upper ? (j - i >= k) : (j - i <= k);
        if (!keep) std::memset(dst + ((m * rows + i) * cols + j) * esz, 0, esz);
      }
    }
  }
  return set_output(ctx, std::move(out));
}

Status reverse_sequence_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.error("input {} must have rank >= 2", shape_to_string(x.shape()));
  const int64_t batch_axis = ctx.node.get_int("batch_axis", 1), time_axis = ctx.node.get_int("time_axis", 0);
  if ((batch_axis != 0 && batch_axis != 1) || (time_axis != 0 && time_axis != 1) || batch_axis == time_axis) {
    return ctx.error("batch_axis {} and time_axis {} must be 0 and 1 in some order", batch_axis, time_axis);
  }
  SEQRUN_ASSIGN(std::vector<int64_t> lens, read_ints(ctx, 1, "sequence_lens"));
  const int64_t batch = x.dim(static_cast<int>(batch_axis)), steps = x.dim(static_cast<int>(time_axis));
  if (static_cast<int64_t>(lens.size()) != batch) {
    return ctx.error("sequence_lens has {} entries, the batch has {}", lens.size(), batch);
  }
  const int64_t esz = static_cast<int64_t>(dtype_size(x.dtype()));
  const int64_t inner = product(x.shape(), 2, x.shape().size()) * esz;  // bytes per (batch, time) cell
  const int64_t stride0 = x.dim(1) * inner, stride1 = inner;
  const int64_t batch_stride = batch_axis == 0 ? stride0 : stride1;
  const int64_t time_stride = time_axis == 0 ? stride0 : stride1;
  Tensor out = x.clone();
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t b = 0; b < batch; ++b) {
    if (lens[b] < 0 || lens[b] > steps) {
      return ctx.error("sequence_lens[{}] = {} is outside [0, {}]", b, lens[b], steps);
    }
    for (int64_t t = 0; t < lens[b]; ++t) {
      std::memcpy(dst + b * batch_stride + t * time_stride,
                  src + b * batch_stride + (lens[b] - 1 - t) * time_stride, static_cast<size_t>(inner));
    }
  }
  return set_output(ctx, std::move(out));
}

}  // namespace

void register_shape_kernels(KernelRegistry& r) {
  r.add("Shape", shape_kernel);
  r.add("Size", size_kernel);
  r.add("Reshape", reshape_kernel);
  r.add("Flatten", flatten_kernel);
  r.add("Squeeze", squeeze_kernel);
  r.add("Unsqueeze", unsqueeze_kernel);
  r.add("Transpose", transpose_kernel);
  r.add("Slice", slice_kernel);
  r.add("Concat", concat_kernel);
  r.add("Split", split_kernel);
  r.add("Expand", expand_kernel);
  r.add("Tile", tile_kernel);
  r.add("Pad", pad_kernel);
  r.add("DepthToSpace", [](KernelContext& ctx) { return depth_space_kernel(ctx, true); });
  r.add("SpaceToDepth", [](KernelContext& ctx) { return depth_space_kernel(ctx, false); });
  r.add("Trilu", trilu_kernel);
  r.add("ReverseSequence", reverse_sequence_kernel);
  register_shape_index_kernels(r);
  register_shape_fill_kernels(r);
}

}  // namespace seqrun::reference
