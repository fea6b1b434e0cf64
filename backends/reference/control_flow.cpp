// Reference kernels: control flow — Scan, Loop, If. Bodies run through KernelContext::run_graph
// with the node's captures; tensors pass through untouched (no f32 conversion), so these kernels
// only move bytes: slice a scan input at one step, stack per-step outputs along an axis.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

// A Loop whose trip count and condition never stop it is cut off here with an error.
constexpr int64_t kMaxLoopIterations = 10'000'000;

// Bytes of the dims before `axis` (outer count) and after it (inner bytes) of a row-major shape.
struct AxisSplit {
  int64_t outer = 1;
  int64_t length = 0;
  int64_t inner_bytes = 0;
};
AxisSplit split_at_axis(const Shape& shape, int axis, DType dtype) {
  AxisSplit s;
  for (int d = 0; d < axis; ++d) s.outer *= shape[d];
  s.length = shape[axis];
  s.inner_bytes = static_cast<int64_t>(dtype_size(dtype));
  for (size_t d = axis + 1; d < shape.size(); ++d) s.inner_bytes *= shape[d];
  return s;
}

// Element `step` of `t` along `axis` (a tensor of rank r-1).
Tensor slice_step(const Tensor& t, int axis, int64_t step) {
  Shape out_shape = t.shape();
  out_shape.erase(out_shape.begin() + axis);
  Tensor out = Tensor::empty(t.dtype(), out_shape);
  const AxisSplit s = split_at_axis(t.shape(), axis, t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < s.outer; ++o) {
    std::memcpy(dst + o * s.inner_bytes, src + (o * s.length + step) * s.inner_bytes, s.inner_bytes);
  }
  return out;
}

// Stacks `steps` (equal shapes and dtypes) along a new `axis`; step t lands at position
// `reverse ? n-1-t : t`. With no steps, `empty_step_shape` / `empty_dtype` give the result's shape.
Result<Tensor> stack_steps(const KernelContext& ctx, const std::vector<Tensor>& steps, int64_t axis_attr,
                           bool reverse, const Shape& empty_step_shape, DType empty_dtype, int output_index) {
  const Shape& step_shape = steps.empty() ? empty_step_shape : steps[0].shape();
  const DType dtype = steps.empty() ? empty_dtype : steps[0].dtype();
  const int out_rank = static_cast<int>(step_shape.size()) + 1;
  if (axis_attr < -out_rank || axis_attr >= out_rank) {
    return ctx.error("scan output {}: axis {} out of range for rank {}", output_index, axis_attr, out_rank);
  }
  const int axis = static_cast<int>(axis_attr < 0 ? axis_attr + out_rank : axis_attr);
  const int64_t n = static_cast<int64_t>(steps.size());
  Shape out_shape = step_shape;
  out_shape.insert(out_shape.begin() + axis, n);
  SEQRUN_ASSIGN(int64_t count, checked_num_elements(out_shape, dtype_size(dtype)));
  (void)count;
  Tensor out = Tensor::empty(dtype, out_shape);
  const AxisSplit s = split_at_axis(out_shape, axis, dtype);
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t t = 0; t < n; ++t) {
    const Tensor& step = steps[t];
    if (step.shape() != step_shape || step.dtype() != dtype) {
      return ctx.error("scan output {}: step {} is {} {}, step 0 was {} {}", output_index, t,
                       dtype_name(step.dtype()), shape_to_string(step.shape()), dtype_name(dtype),
                       shape_to_string(step_shape));
    }
    const int64_t pos = reverse ? n - 1 - t : t;
    const auto* src = static_cast<const uint8_t*>(step.raw());
    for (int64_t o = 0; o < s.outer; ++o) {
      std::memcpy(dst + (o * n + pos) * s.inner_bytes, src + o * s.inner_bytes, s.inner_bytes);
    }
  }
  return out;
}

// Shape and dtype of a per-step output when a loop runs zero times: static dims of the body's
// declared output, 0 where unknown.
Shape declared_step_shape(const Value* v) {
  Shape shape;
  const TensorType& t = v->type();
  if (!t.has_rank()) return shape;
  for (const Dim& d : t.dims()) shape.push_back(d.is_static() ? d.value() : 0);
  return shape;
}
DType declared_dtype(const Value* v) {
  return v->type().dtype() == DType::undefined ? DType::f32 : v->type().dtype();
}

// True when the body's condition output is its condition input, possibly through Identity nodes:
// such a loop without a trip count never ends once started.
bool condition_passes_through(const Graph& body) {
  if (body.inputs().size() < 2 || body.outputs().empty()) return false;
  const Value* v = body.outputs()[0];
  for (int hops = 0; v != nullptr && hops < 64; ++hops) {
    if (v == body.inputs()[1]) return true;
    const Node* p = v->producer();
    if (p == nullptr || p->op() != "Identity" || p->num_inputs() != 1) return false;
    v = p->input(0);
  }
  return false;
}

Result<bool> read_condition(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.numel() != 1) {
    return ctx.error("{} must hold exactly one element, has shape {}", what, shape_to_string(t.shape()));
  }
  return t.get_f64(0) != 0.0;
}

Status run_scan(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Graph* body = node.get_graph("body");
  if (body == nullptr) return ctx.error("missing graph attribute 'body'");
  const int num_inputs = ctx.num_inputs();
  const int num_scan_inputs = static_cast<int>(node.get_int("num_scan_inputs", 0));
  if (num_scan_inputs <= 0 || num_scan_inputs > num_inputs) {
    return ctx.error("num_scan_inputs {} must be in [1, {}]", num_scan_inputs, num_inputs);
  }
  const int num_states = num_inputs - num_scan_inputs;
  const int num_scan_outputs = node.num_outputs() - num_states;
  if (num_scan_outputs < 0) return ctx.error("fewer outputs than loop states");
  if (static_cast<int>(body->outputs().size()) != node.num_outputs()) {
    return ctx.error("body has {} outputs, node has {}", body->outputs().size(), node.num_outputs());
  }
  const std::vector<int64_t> in_axes =
      node.get_ints("scan_input_axes", std::vector<int64_t>(num_scan_inputs, 0));
  const std::vector<int64_t> in_dirs =
      node.get_ints("scan_input_directions", std::vector<int64_t>(num_scan_inputs, 0));
  const std::vector<int64_t> out_axes =
      node.get_ints("scan_output_axes", std::vector<int64_t>(num_scan_outputs, 0));
  const std::vector<int64_t> out_dirs =
      node.get_ints("scan_output_directions", std::vector<int64_t>(num_scan_outputs, 0));
  if (static_cast<int>(in_axes.size()) != num_scan_inputs ||
      static_cast<int>(in_dirs.size()) != num_scan_inputs ||
      static_cast<int>(out_axes.size()) != num_scan_outputs ||
      static_cast<int>(out_dirs.size()) != num_scan_outputs) {
    return ctx.error("scan axes/directions attributes must have one entry per scan input/output");
  }

  std::vector<Tensor> states;
  for (int i = 0; i < num_states; ++i) {
    if (!ctx.has_input(i)) return ctx.error("initial state {} is missing", i);
    states.push_back(ctx.input(i));
  }
  // Validate the scan inputs and find the common sequence length.
  std::vector<int> axes(num_scan_inputs);
  int64_t seq_len = -1;
  for (int i = 0; i < num_scan_inputs; ++i) {
    if (!ctx.has_input(num_states + i)) return ctx.error("scan input {} is missing", i);
    const Tensor& x = ctx.input(num_states + i);
    const int rank = x.rank();
    const int64_t a = in_axes[i];
    if (rank == 0 || a < -rank || a >= rank) {
      return ctx.error("scan input {} ({}): axis {} out of range", i, shape_to_string(x.shape()), a);
    }
    axes[i] = static_cast<int>(a < 0 ? a + rank : a);
    if (in_dirs[i] != 0 && in_dirs[i] != 1) return ctx.error("scan_input_directions must be 0 or 1");
    const int64_t len = x.dim(axes[i]);
    if (seq_len >= 0 && len != seq_len) {
      return ctx.error("scan input {} has sequence length {}, scan input 0 has {}", i, len, seq_len);
    }
    seq_len = len;
  }
  for (int64_t d : out_dirs) {
    if (d != 0 && d != 1) return ctx.error("scan_output_directions must be 0 or 1");
  }

  const std::vector<Tensor> captures = ctx.captures();
  std::vector<std::vector<Tensor>> scan_steps(num_scan_outputs);
  for (int64_t t = 0; t < seq_len; ++t) {
    std::vector<Tensor> body_inputs = states;
    for (int i = 0; i < num_scan_inputs; ++i) {
      const int64_t step = in_dirs[i] == 1 ? seq_len - 1 - t : t;
      body_inputs.push_back(slice_step(ctx.input(num_states + i), axes[i], step));
    }
    auto result = ctx.run_graph(*body, body_inputs, captures);
    if (!result.is_ok()) {
      return result.status().with_context(node.describe() + " (step " + std::to_string(t) + ")");
    }
    std::vector<Tensor>& outs = result.value();
    if (static_cast<int>(outs.size()) != node.num_outputs()) {
      return ctx.error("body returned {} outputs, expected {}", outs.size(), node.num_outputs());
    }
    for (int i = 0; i < num_states; ++i) states[i] = outs[i];
    for (int j = 0; j < num_scan_outputs; ++j) scan_steps[j].push_back(outs[num_states + j]);
  }

  ctx.outputs.clear();
  for (int i = 0; i < num_states; ++i) ctx.outputs.push_back(states[i]);
  for (int j = 0; j < num_scan_outputs; ++j) {
    const Value* decl = body->outputs()[num_states + j];
    SEQRUN_ASSIGN(Tensor stacked, stack_steps(ctx, scan_steps[j], out_axes[j], out_dirs[j] == 1,
                                              declared_step_shape(decl), declared_dtype(decl), j));
    ctx.outputs.push_back(std::move(stacked));
  }
  return Status::ok();
}

Status run_loop(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Graph* body = node.get_graph("body");
  if (body == nullptr) return ctx.error("missing graph attribute 'body'");
  const int num_carried = ctx.num_inputs() - 2;
  const int num_scan_outputs = node.num_outputs() - num_carried;
  if (num_carried < 0 || num_scan_outputs < 0) {
    return ctx.error("inputs/outputs do not match (M, cond, carried...)");
  }
  if (static_cast<int>(body->outputs().size()) != 1 + node.num_outputs()) {
    return ctx.error("body has {} outputs, expected {}", body->outputs().size(), 1 + node.num_outputs());
  }

  int64_t trip_count = -1;  // -1: no limit from M
  if (ctx.has_input(0)) {
    const Tensor& m = ctx.input(0);
    if (m.numel() != 1 || !is_integer(m.dtype())) {
      return ctx.error("trip count M must be one integer, is {} {}", dtype_name(m.dtype()),
                       shape_to_string(m.shape()));
    }
    trip_count = std::max<int64_t>(m.get_i64(0), 0);
  }
  bool cond = true;
  if (ctx.has_input(1)) {
    SEQRUN_ASSIGN(cond, read_condition(ctx, ctx.input(1), "cond"));
  }

  std::vector<Tensor> carried;
  for (int i = 0; i < num_carried; ++i) {
    if (!ctx.has_input(2 + i)) return ctx.error("loop-carried input {} is missing", i);
    carried.push_back(ctx.input(2 + i));
  }
  if (trip_count < 0 && cond && condition_passes_through(*body)) {
    return ctx.error(
        "never ends: no trip count M, cond is true and the body returns its condition unchanged");
  }
  const std::vector<Tensor> captures = ctx.captures();
  std::vector<std::vector<Tensor>> scan_steps(num_scan_outputs);
  int64_t iteration = 0;
  for (; cond && (trip_count < 0 || iteration < trip_count); ++iteration) {
    if (iteration >= kMaxLoopIterations) {
      return ctx.error("stopped after {} iterations: the loop's trip count and condition never ended it",
                       kMaxLoopIterations);
    }
    std::vector<Tensor> body_inputs;
    body_inputs.push_back(Tensor::scalar<int64_t>(iteration));
    body_inputs.push_back(Tensor::scalar<bool>(cond));
    for (const Tensor& c : carried) body_inputs.push_back(c);
    auto result = ctx.run_graph(*body, body_inputs, captures);
    if (!result.is_ok()) {
      return result.status().with_context(node.describe() + " (iteration " + std::to_string(iteration) + ")");
    }
    std::vector<Tensor>& outs = result.value();
    if (static_cast<int>(outs.size()) != 1 + node.num_outputs()) {
      return ctx.error("body returned {} outputs, expected {}", outs.size(), 1 + node.num_outputs());
    }
    SEQRUN_ASSIGN(cond, read_condition(ctx, outs[0], "body condition output"));
    for (int i = 0; i < num_carried; ++i) carried[i] = outs[1 + i];
    for (int j = 0; j < num_scan_outputs; ++j) scan_steps[j].push_back(outs[1 + num_carried + j]);
  }

  ctx.outputs.clear();
  for (const Tensor& c : carried) ctx.outputs.push_back(c);
  for (int j = 0; j < num_scan_outputs; ++j) {
    const Value* decl = body->outputs()[1 + num_carried + j];
    SEQRUN_ASSIGN(Tensor stacked, stack_steps(ctx, scan_steps[j], 0, false, declared_step_shape(decl),
                                              declared_dtype(decl), j));
    ctx.outputs.push_back(std::move(stacked));
  }
  return Status::ok();
}

Status run_if(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Graph* then_branch = node.get_graph("then_branch");
  const Graph* else_branch = node.get_graph("else_branch");
  if (then_branch == nullptr || else_branch == nullptr) {
    return ctx.error("needs both graph attributes 'then_branch' and 'else_branch'");
  }
  if (!ctx.has_input(0)) return ctx.error("cond is missing");
  SEQRUN_ASSIGN(bool cond, read_condition(ctx, ctx.input(0), "cond"));
  const Graph* branch = cond ? then_branch : else_branch;
  auto result = ctx.run_graph(*branch, {}, ctx.captures());
  if (!result.is_ok()) {
    return result.status().with_context(node.describe() + (cond ? " (then_branch)" : " (else_branch)"));
  }
  if (static_cast<int>(result.value().size()) != node.num_outputs()) {
    return ctx.error("branch returned {} outputs, node has {}", result.value().size(), node.num_outputs());
  }
  ctx.outputs = std::move(result).value();
  return Status::ok();
}

}  // namespace

void register_control_flow_kernels(KernelRegistry& r) {
  r.add("Scan", run_scan, /*compute_in_f32=*/false);
  r.add("Loop", run_loop, /*compute_in_f32=*/false);
  r.add("If", run_if, /*compute_in_f32=*/false);
}

}  // namespace seqrun::reference
