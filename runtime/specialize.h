// Shape specialization: a copy of a graph with every input's shape bound, its shape arithmetic folded away.
//
// `specialize_graph` clones the graph, gives every graph input the concrete dtype and shape the caller
// binds, forgets the intermediate types the graph carried (they may hold symbols), and then repeats until
// nothing changes: remove dead code, re-infer every type, and fold — evaluate with the reference kernels
// every node whose inputs are all constants (unless its outputs would exceed `max_folded_bytes`, so large
// weights are not duplicated), and turn Shape/Size of statically shaped values into constants. Control-flow
// nodes (Scan/Loop/If) are never folded. The result is deterministic for a given graph and binding.
//
// Afterwards every value has a static shape except data-dependent ones (NonZero, Loop outputs, ...);
// `SpecializeReport::dynamic_values` names those, and the execution plan falls back to the reference
// executor when there are any.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::runtime {

// The concrete type of one bound graph input.
struct InputSpec {
  DType dtype = DType::undefined;
  Shape shape;
};

struct SpecializeOptions {
  // A node whose outputs together exceed this many bytes is left in the graph (e.g. a Cast of a weight).
  uint64_t max_folded_bytes = uint64_t{16} << 20;
};

struct SpecializeReport {
  int folded_nodes = 0;      // nodes evaluated at plan time because all their inputs were constants
  int folded_shape_ops = 0;  // Shape/Size of values whose shape was static
  int removed_nodes = 0;     // dead code removed
  int rounds = 0;            // infer + fold rounds until the fixpoint
  std::vector<std::string> dynamic_values;  // used values whose shape is still not static
};

// The specs of concrete tensors (dtype and shape of each).
std::vector<InputSpec> input_specs_of(const std::vector<Tensor>& inputs);
// "f32[1, 8];i64[1, 8]": the cache key of a plan.
std::string shape_signature(const std::vector<InputSpec>& inputs);
// Checks specs against the graph's declared inputs (count, dtype, rank, static dims, consistent symbols),
// with the same messages as validate_inputs (runtime/executor.h).
Status check_input_specs(const Graph& graph, const std::vector<InputSpec>& inputs);

Result<std::unique_ptr<Graph>> specialize_graph(const Graph& graph, const std::vector<InputSpec>& inputs,
                                                const SpecializeOptions& options = {},
                                                SpecializeReport* report = nullptr);

// Runs one node with the reference kernels, converting f16/bf16/f64 through f32 exactly as the reference
// executor does. `inputs` has one entry per node input (null for absent ones). Used for folding.
Result<std::vector<Tensor>> evaluate_node_reference(const Node& node,
                                                    const std::vector<const Tensor*>& inputs);

}  // namespace seqrun::runtime
