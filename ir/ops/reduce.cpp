// Op schemas: reduce family — ReduceX (axes as an input), ArgMax/ArgMin, CumSum, the softmax
// family along one axis, and TopK.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

Status check_dtype(const InferContext& ctx, int i, bool allow_integer) {
  DType t = ctx.input_dtype(i);
  if (t == DType::undefined || is_float(t) || (allow_integer && is_integer(t))) return Status::ok();
  return make_error("input {} must be a {} tensor, got {}", i, allow_integer ? "numeric" : "float",
                    dtype_name(t));
}

// ReduceX(data, axes?): keepdims keeps reduced dims as 1; empty/absent axes reduce everything
// unless noop_with_empty_axes, which makes the op an identity.
Status infer_reduce(InferContext& ctx) {
  SEQRUN_TRY(check_dtype(ctx, 0, true));
  const TensorType& x = ctx.input_type(0);
  const bool keepdims = ctx.node().get_int("keepdims", 1) != 0;
  const bool noop_with_empty_axes = ctx.node().get_int("noop_with_empty_axes", 0) != 0;
  const DType dt = x.dtype();
  std::optional<std::vector<int64_t>> axes;
  if (!ctx.has_input(1)) {
    axes = std::vector<int64_t>{};
  } else {
    if (ctx.input_dtype(1) != DType::undefined && !is_integer(ctx.input_dtype(1))) {
      return make_error("axes must be an integer tensor, got {}", dtype_name(ctx.input_dtype(1)));
    }
    axes = infer::constant_ints(ctx, 1);
  }
  if (!x.has_rank()) {
    if (axes && axes->empty() && noop_with_empty_axes) return infer::same_as_input(ctx, 0);
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  const int rank = x.rank();
  if (!axes) {  // axes known only at run time
    ctx.outputs[0] =
        keepdims ? TensorType(dt, std::vector<Dim>(rank, Dim::unknown())) : TensorType::unknown_rank(dt);
    return Status::ok();
  }
  if (axes->empty() && noop_with_empty_axes) return infer::same_as_input(ctx, 0);
  std::vector<bool> reduced(rank, axes->empty());
  for (int64_t a : *axes) {
    SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, a, rank));
    if (rank == 0) continue;  // reducing a scalar over axis 0/-1 leaves it as is
    if (reduced[axis]) return make_error("axis {} appears twice in axes", a);
    reduced[axis] = true;
  }
  std::vector<Dim> dims;
  for (int i = 0; i < rank; ++i) {
    if (!reduced[i]) {
      dims.push_back(x.dim(i));
    } else if (keepdims) {
      dims.push_back(Dim(1));
    }
  }
  ctx.outputs[0] = TensorType(dt, std::move(dims));
  return Status::ok();
}

Status infer_arg_reduce(InferContext& ctx) {
  SEQRUN_TRY(check_dtype(ctx, 0, true));
  const TensorType& x = ctx.input_type(0);
  const bool keepdims = ctx.node().get_int("keepdims", 1) != 0;
  if (!x.has_rank()) {
    infer::unknown_outputs(ctx, DType::i64);
    return Status::ok();
  }
  if (x.rank() == 0) return make_error("input must have rank >= 1");
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", 0), x.rank()));
  std::vector<Dim> dims;
  for (int i = 0; i < x.rank(); ++i) {
    if (i != axis) {
      dims.push_back(x.dim(i));
    } else if (keepdims) {
      dims.push_back(Dim(1));
    }
  }
  ctx.outputs[0] = TensorType(DType::i64, std::move(dims));
  return Status::ok();
}

Status infer_cumsum(InferContext& ctx) {
  SEQRUN_TRY(check_dtype(ctx, 0, true));
  const TensorType& x = ctx.input_type(0);
  DType axis_dt = ctx.input_dtype(1);
  if (axis_dt != DType::undefined && axis_dt != DType::i32 && axis_dt != DType::i64) {
    return make_error("axis must be an i32 or i64 tensor, got {}", dtype_name(axis_dt));
  }
  if (auto axis = infer::constant_ints(ctx, 1); axis && x.has_rank()) {
    if (axis->size() != 1) return make_error("axis must hold one value, has {}", axis->size());
    SEQRUN_TRY(infer::normalize_axis(ctx, (*axis)[0], x.rank()).status());
  }
  return infer::same_as_input(ctx, 0);
}

// Softmax, LogSoftmax, Hardmax: same type as the input; the axis must fit its rank.
Status infer_softmax(InferContext& ctx) {
  SEQRUN_TRY(check_dtype(ctx, 0, false));
  const TensorType& x = ctx.input_type(0);
  if (x.has_rank()) SEQRUN_TRY(infer::normalize_axis(ctx, ctx.node().get_int("axis", -1), x.rank()).status());
  return infer::same_as_input(ctx, 0);
}

Status infer_topk(InferContext& ctx) {
  SEQRUN_TRY(check_dtype(ctx, 0, true));
  const TensorType& x = ctx.input_type(0);
  if (ctx.input_dtype(1) != DType::undefined && ctx.input_dtype(1) != DType::i64) {
    return make_error("K must be an i64 tensor, got {}", dtype_name(ctx.input_dtype(1)));
  }
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType::unknown_rank(x.dtype());
    ctx.outputs[1] = TensorType::unknown_rank(DType::i64);
    return Status::ok();
  }
  if (x.rank() == 0) return make_error("input must have rank >= 1");
  SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, ctx.node().get_int("axis", -1), x.rank()));
  std::vector<Dim> dims = x.dims();
  dims[axis] = Dim::unknown();
  if (auto k = infer::constant_ints(ctx, 1)) {
    if (k->size() != 1) return make_error("K must hold one value, has {}", k->size());
    if ((*k)[0] < 0) return make_error("K must be >= 0, is {}", (*k)[0]);
    const Dim& len = x.dim(axis);
    if (len.is_static() && (*k)[0] > len.value()) {
      return make_error("K = {} exceeds the axis length {}", (*k)[0], len.value());
    }
    dims[axis] = Dim((*k)[0]);
  }
  ctx.outputs[0] = TensorType(x.dtype(), dims);
  ctx.outputs[1] = TensorType(DType::i64, dims);
  return Status::ok();
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  struct Reduce {
    const char* name;
    const char* doc;
  };
  const Reduce reduces[] = {
      {"ReduceSum", "sum over axes"},
      {"ReduceMean", "mean over axes"},
      {"ReduceMax", "maximum over axes (NaN propagates; empty: -inf or the lowest integer)"},
      {"ReduceMin", "minimum over axes (NaN propagates; empty: +inf or the highest integer)"},
      {"ReduceProd", "product over axes"},
      {"ReduceL1", "sum of |x| over axes"},
      {"ReduceL2", "sqrt of the sum of x^2 over axes"},
      {"ReduceLogSum", "log of the sum over axes"},
      {"ReduceLogSumExp", "log of the sum of e^x over axes (computed stably)"},
      {"ReduceSumSquare", "sum of x^2 over axes"},
  };
  for (const Reduce& op : reduces) {
    r.add(OpDef(op.name)
              .inputs(1, 2)
              .doc(op.doc)
              .attr("keepdims", AttrType::Int, Attribute(int64_t{1}))
              .attr("noop_with_empty_axes", AttrType::Int, Attribute(int64_t{0}))
              .infer(infer_reduce)
              .build());
  }
  for (const char* name : {"ArgMax", "ArgMin"}) {
    r.add(OpDef(name)
              .inputs(1)
              .doc("index (i64) of the first (or, select_last_index, last) extreme value along axis")
              .attr("axis", AttrType::Int, Attribute(int64_t{0}))
              .attr("keepdims", AttrType::Int, Attribute(int64_t{1}))
              .attr("select_last_index", AttrType::Int, Attribute(int64_t{0}))
              .infer(infer_arg_reduce)
              .build());
  }
  r.add(OpDef("CumSum")
            .inputs(2)
            .doc("cumulative sum along the axis input; exclusive skips the current element, reverse runs "
                 "backward")
            .attr("exclusive", AttrType::Int, Attribute(int64_t{0}))
            .attr("reverse", AttrType::Int, Attribute(int64_t{0}))
            .infer(infer_cumsum)
            .build());
  const Reduce softmaxes[] = {
      {"Softmax", "e^x / sum(e^x) along axis"},
      {"LogSoftmax", "x - log(sum(e^x)) along axis"},
      {"Hardmax", "1 at the first maximum along axis, 0 elsewhere"},
  };
  for (const Reduce& op : softmaxes) {
    r.add(OpDef(op.name)
              .inputs(1)
              .doc(op.doc)
              .attr("axis", AttrType::Int, Attribute(int64_t{-1}))
              .infer(infer_softmax)
              .build());
  }
  r.add(OpDef("TopK")
            .inputs(2)
            .outputs(2)
            .doc("the K largest (or smallest) values along axis and their i64 indices; ties keep the lower "
                 "index")
            .attr("axis", AttrType::Int, Attribute(int64_t{-1}))
            .attr("largest", AttrType::Int, Attribute(int64_t{1}))
            .attr("sorted", AttrType::Int, Attribute(int64_t{1}))
            .infer(infer_topk)
            .build());
}

}  // namespace seqrun::ops
