// Op schemas: control flow — Scan, Loop, If (ONNX semantics; bodies are Graph attributes whose
// captures are the node's last num_captures() inputs, see ir/graph.h).
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

// The type a value takes when it may be either `a` or `b` (loop-carried values, If branches):
// equal dims stay, differing dims become unknown, differing ranks give unknown rank.
TensorType join_types(const TensorType& a, const TensorType& b) {
  DType dt = a.dtype() != DType::undefined ? a.dtype() : b.dtype();
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return TensorType::unknown_rank(dt);
  std::vector<Dim> dims;
  for (int i = 0; i < a.rank(); ++i) dims.push_back(a.dim(i) == b.dim(i) ? a.dim(i) : Dim::unknown());
  return TensorType(dt, std::move(dims));
}

// `t` with `count` inserted at `axis` (already normalized to [0, rank]).
TensorType insert_dim(const TensorType& t, int axis, const Dim& count) {
  if (!t.has_rank()) return TensorType::unknown_rank(t.dtype());
  std::vector<Dim> dims = t.dims();
  dims.insert(dims.begin() + axis, count);
  return TensorType(t.dtype(), std::move(dims));
}

Status infer_scan(InferContext& ctx) {
  const Node& node = ctx.node();
  const Graph* body = node.get_graph("body");
  if (body == nullptr) return make_error("missing graph attribute 'body'");
  const int num_scan_inputs = static_cast<int>(node.get_int("num_scan_inputs", 0));
  const int num_inputs = ctx.num_inputs();
  if (num_scan_inputs <= 0 || num_scan_inputs > num_inputs) {
    return make_error("num_scan_inputs {} must be in [1, {}]", num_scan_inputs, num_inputs);
  }
  const int num_states = num_inputs - num_scan_inputs;
  const int num_scan_outputs = ctx.num_outputs() - num_states;
  if (num_scan_outputs < 0) {
    return make_error("{} outputs cannot hold the {} loop states", ctx.num_outputs(), num_states);
  }
  if (static_cast<int>(body->inputs().size()) != num_inputs) {
    return make_error("body has {} inputs, expected {} (states + scan inputs)", body->inputs().size(),
                      num_inputs);
  }
  if (static_cast<int>(body->outputs().size()) != ctx.num_outputs()) {
    return make_error("body has {} outputs, node has {}", body->outputs().size(), ctx.num_outputs());
  }
  if (static_cast<int>(body->captures().size()) != node.num_captures()) {
    return make_error("body has {} captures, node passes {}", body->captures().size(), node.num_captures());
  }
  const std::vector<int64_t> in_axes = node.get_ints("scan_input_axes");
  const std::vector<int64_t> in_dirs = node.get_ints("scan_input_directions");
  const std::vector<int64_t> out_axes = node.get_ints("scan_output_axes");
  const std::vector<int64_t> out_dirs = node.get_ints("scan_output_directions");
  if (!in_axes.empty() && static_cast<int>(in_axes.size()) != num_scan_inputs) {
    return make_error("scan_input_axes has {} entries, expected {}", in_axes.size(), num_scan_inputs);
  }
  if (!in_dirs.empty() && static_cast<int>(in_dirs.size()) != num_scan_inputs) {
    return make_error("scan_input_directions has {} entries, expected {}", in_dirs.size(), num_scan_inputs);
  }
  if (!out_axes.empty() && static_cast<int>(out_axes.size()) != num_scan_outputs) {
    return make_error("scan_output_axes has {} entries, expected {}", out_axes.size(), num_scan_outputs);
  }
  if (!out_dirs.empty() && static_cast<int>(out_dirs.size()) != num_scan_outputs) {
    return make_error("scan_output_directions has {} entries, expected {}", out_dirs.size(),
                      num_scan_outputs);
  }
  for (int64_t d : in_dirs) {
    if (d != 0 && d != 1) return make_error("scan_input_directions must be 0 or 1, got {}", d);
  }
  for (int64_t d : out_dirs) {
    if (d != 0 && d != 1) return make_error("scan_output_directions must be 0 or 1, got {}", d);
  }
  // Sequence length from the first scan input whose rank is known.
  Dim seq_len = Dim::unknown();
  for (int i = 0; i < num_scan_inputs; ++i) {
    const TensorType& t = ctx.input_type(num_states + i);
    if (!t.has_rank()) continue;
    SEQRUN_ASSIGN(int axis, infer::normalize_axis(ctx, in_axes.empty() ? 0 : in_axes[i], t.rank()));
    if (t.rank() == 0) {
      return make_error("scan input {} is a scalar; it needs a sequence axis", num_states + i);
    }
    if (seq_len.is_unknown()) seq_len = t.dim(axis);
  }
  for (int i = 0; i < num_states; ++i) {
    ctx.outputs[i] = join_types(ctx.input_type(i), body->outputs()[i]->type());
  }
  for (int j = 0; j < num_scan_outputs; ++j) {
    const TensorType& per_step = body->outputs()[num_states + j]->type();
    if (!per_step.has_rank()) {
      ctx.outputs[num_states + j] = TensorType::unknown_rank(per_step.dtype());
      continue;
    }
    SEQRUN_ASSIGN(int axis,
                  infer::normalize_axis(ctx, out_axes.empty() ? 0 : out_axes[j], per_step.rank() + 1));
    ctx.outputs[num_states + j] = insert_dim(per_step, axis, seq_len);
  }
  return Status::ok();
}

Status infer_loop(InferContext& ctx) {
  const Node& node = ctx.node();
  const Graph* body = node.get_graph("body");
  if (body == nullptr) return make_error("missing graph attribute 'body'");
  const int num_carried = ctx.num_inputs() - 2;
  const int num_scan_outputs = ctx.num_outputs() - num_carried;
  if (num_carried < 0) return make_error("Loop needs inputs (M, cond, carried...)");
  if (num_scan_outputs < 0) {
    return make_error("{} outputs cannot hold the {} loop-carried values", ctx.num_outputs(), num_carried);
  }
  if (static_cast<int>(body->inputs().size()) != 2 + num_carried) {
    return make_error("body has {} inputs, expected {} (iteration, cond, carried...)", body->inputs().size(),
                      2 + num_carried);
  }
  if (static_cast<int>(body->outputs().size()) != 1 + ctx.num_outputs()) {
    return make_error("body has {} outputs, expected {} (cond, carried..., scan outputs...)",
                      body->outputs().size(), 1 + ctx.num_outputs());
  }
  if (static_cast<int>(body->captures().size()) != node.num_captures()) {
    return make_error("body has {} captures, node passes {}", body->captures().size(), node.num_captures());
  }
  if (ctx.has_input(0) && ctx.input_dtype(0) != DType::undefined && ctx.input_dtype(0) != DType::i64) {
    return make_error("trip count M must be i64, is {}", dtype_name(ctx.input_dtype(0)));
  }
  if (ctx.has_input(1) && ctx.input_dtype(1) != DType::undefined && ctx.input_dtype(1) != DType::boolean) {
    return make_error("cond must be bool, is {}", dtype_name(ctx.input_dtype(1)));
  }
  for (int i = 0; i < num_carried; ++i) {
    ctx.outputs[i] = join_types(ctx.input_type(2 + i), body->outputs()[1 + i]->type());
  }
  for (int j = 0; j < num_scan_outputs; ++j) {
    ctx.outputs[num_carried + j] =
        insert_dim(body->outputs()[1 + num_carried + j]->type(), 0, Dim::unknown());
  }
  return Status::ok();
}

Status infer_if(InferContext& ctx) {
  const Node& node = ctx.node();
  const Graph* then_branch = node.get_graph("then_branch");
  const Graph* else_branch = node.get_graph("else_branch");
  if (then_branch == nullptr || else_branch == nullptr) {
    return make_error("needs both graph attributes 'then_branch' and 'else_branch'");
  }
  for (const Graph* g : {then_branch, else_branch}) {
    if (static_cast<int>(g->outputs().size()) != ctx.num_outputs()) {
      return make_error("branch '{}' has {} outputs, node has {}", g->name(), g->outputs().size(),
                        ctx.num_outputs());
    }
    if (!g->inputs().empty()) return make_error("branch '{}' must take no inputs", g->name());
    if (static_cast<int>(g->captures().size()) != node.num_captures()) {
      return make_error("branch '{}' has {} captures, node passes {}", g->name(), g->captures().size(),
                        node.num_captures());
    }
  }
  if (ctx.input_dtype(0) != DType::undefined && ctx.input_dtype(0) != DType::boolean) {
    return make_error("cond must be bool, is {}", dtype_name(ctx.input_dtype(0)));
  }
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    ctx.outputs[i] = join_types(then_branch->outputs()[i]->type(), else_branch->outputs()[i]->type());
  }
  return Status::ok();
}

}  // namespace

void register_control_flow_ops(OpRegistry& r) {
  r.add(OpDef("Scan")
            .doc("Runs `body` once per step of the scan inputs, carrying states (ONNX Scan 9+)")
            .inputs(1, OpSchema::kVariadic)
            .outputs(1, OpSchema::kVariadic)
            .required_attr("body", AttrType::Graph)
            .required_attr("num_scan_inputs", AttrType::Int)
            .attr("scan_input_axes", AttrType::Ints)
            .attr("scan_input_directions", AttrType::Ints)
            .attr("scan_output_axes", AttrType::Ints)
            .attr("scan_output_directions", AttrType::Ints)
            .infer(infer_scan)
            .build());
  r.add(OpDef("Loop")
            .doc("Runs `body` up to M times while cond holds; carried values and stacked scan outputs")
            .inputs(2, OpSchema::kVariadic)
            .outputs(1, OpSchema::kVariadic)
            .required_attr("body", AttrType::Graph)
            .infer(infer_loop)
            .build());
  r.add(OpDef("If")
            .doc("Runs then_branch or else_branch depending on a scalar bool")
            .inputs(1, 1)
            .outputs(1, OpSchema::kVariadic)
            .required_attr("then_branch", AttrType::Graph)
            .required_attr("else_branch", AttrType::Graph)
            .infer(infer_if)
            .build());
}

}  // namespace seqrun::ops
