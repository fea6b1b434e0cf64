// Graph-level type inference and shared inference helpers.
#include "ir/infer.h"

namespace seqrun {

namespace {
TensorType merge_types(const TensorType& known, const TensorType& inferred) {
  if (!inferred.has_rank()) {
    if (known.dtype() == DType::undefined || !known.has_rank()) {
      TensorType t = known.has_rank() ? known : inferred;
      if (t.dtype() == DType::undefined) t.set_dtype(inferred.dtype());
      return t;
    }
    TensorType t = known;
    if (inferred.dtype() != DType::undefined) t.set_dtype(inferred.dtype());
    return t;
  }
  if (!known.has_rank() || known.rank() != inferred.rank()) {
    TensorType t = inferred;
    if (t.dtype() == DType::undefined) t.set_dtype(known.dtype());
    return t;
  }
  std::vector<Dim> dims;
  for (int i = 0; i < inferred.rank(); ++i) dims.push_back(infer::merge_dim(inferred.dim(i), known.dim(i)));
  DType dt = inferred.dtype() != DType::undefined ? inferred.dtype() : known.dtype();
  return TensorType(dt, std::move(dims));
}
}  // namespace

Status infer_node_types(Node& node) {
  const OpSchema* s = node.schema();
  if (s == nullptr) return make_error("unknown op '{}' (node {})", node.op(), node.describe());
  if (!s->infer) return Status::ok();
  InferContext ctx(node);
  ctx.outputs.resize(node.num_outputs());
  Status st = s->infer(ctx);
  if (!st) return st.with_context(node.describe());
  for (int i = 0; i < node.num_outputs() && i < static_cast<int>(ctx.outputs.size()); ++i) {
    Value* out = node.output(i);
    out->owner()->set_value_type(out, merge_types(out->type(), ctx.outputs[i]));
  }
  return Status::ok();
}

Status infer_graph_types(Graph& graph) {
  for (Node* n : graph.nodes()) {
    for (const auto& [key, attr] : n->attrs()) {
      if (attr.type() == AttrType::Graph) SEQRUN_TRY(infer_graph_types(*attr.graph()));
    }
    SEQRUN_TRY(infer_node_types(*n));
  }
  return Status::ok();
}

namespace infer {

Result<int> normalize_axis(const InferContext& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= std::max(rank, 1)) {
    return make_error("axis {} out of range for rank {}", axis, rank);
  }
  (void)ctx;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Dim merge_dim(const Dim& a, const Dim& b) {
  if (a.is_static()) return a;
  if (b.is_static()) return b;
  if (a.is_symbol()) return a;
  return b;
}

Result<TensorType> broadcast(const InferContext& ctx, const std::vector<TensorType>& types, DType dtype) {
  int rank = 0;
  for (const TensorType& t : types) {
    if (!t.has_rank()) return TensorType::unknown_rank(dtype);
    rank = std::max(rank, t.rank());
  }
  std::vector<Dim> out(rank, Dim(1));
  for (const TensorType& t : types) {
    int off = rank - t.rank();
    for (int i = 0; i < t.rank(); ++i) {
      const Dim& d = t.dim(i);
      Dim& o = out[off + i];
      if (d.is_static() && d.value() == 1) continue;
      if (o.is_static() && o.value() == 1) {
        o = d;
        continue;
      }
      if (d.is_static() && o.is_static() && d.value() != o.value()) {
        return make_error("shapes {} cannot broadcast (dim {} vs {})", t.to_string(), d.value(), o.value());
      }
      o = merge_dim(o, d);
    }
  }
  (void)ctx;
  return TensorType(dtype, std::move(out));
}

Status same_as_input(InferContext& ctx, int i) {
  for (auto& o : ctx.outputs) o = ctx.input_type(i);
  return Status::ok();
}

std::optional<std::vector<int64_t>> constant_ints(const InferContext& ctx, int i) {
  const Tensor* t = ctx.input_constant(i);
  if (t == nullptr) return std::nullopt;
  if (!is_integer(t->dtype())) return std::nullopt;
  return t->to_i64_vector();
}

void unknown_outputs(InferContext& ctx, DType dtype) {
  for (auto& o : ctx.outputs) o = TensorType::unknown_rank(dtype);
}

}  // namespace infer
}  // namespace seqrun
