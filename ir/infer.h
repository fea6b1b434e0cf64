// Type inference over graphs, and the helpers op schemas use to write their inference functions.
#pragma once

#include <vector>

#include "ir/graph.h"
#include "ir/op_schema.h"

namespace seqrun {

// Runs the node's schema inference and stores the output types. Where an output already has a
// more specific type (e.g. from the ONNX file) and inference says "unknown", the known one stays;
// a conflict between two known static dims is an error naming the node.
Status infer_node_types(Node& node);
// Infers every node in order (nested graphs too).
Status infer_graph_types(Graph& graph);

namespace infer {
// Normalizes a possibly-negative axis against `rank`; error names the node.
Result<int> normalize_axis(const InferContext& ctx, int64_t axis, int rank);
// Numpy-style broadcast of two or more types' dims (unknown rank -> unknown rank).
Result<TensorType> broadcast(const InferContext& ctx, const std::vector<TensorType>& types, DType dtype);
// Merges two dims that must be equal: static beats symbolic beats unknown.
Dim merge_dim(const Dim& a, const Dim& b);
// Output 0 = type of input `i` (unary elementwise).
Status same_as_input(InferContext& ctx, int i = 0);
// The constant integer values of input i, if it is a constant.
std::optional<std::vector<int64_t>> constant_ints(const InferContext& ctx, int i);
// Every output of unknown rank with `dtype`.
void unknown_outputs(InferContext& ctx, DType dtype);
}  // namespace infer

}  // namespace seqrun
