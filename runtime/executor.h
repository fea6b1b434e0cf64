// ReferenceExecutor: runs an ir::Graph node by node with the reference kernels.
//
// This is the correctness baseline every faster path is compared with. It validates the bound
// inputs against the graph's declared types (dtype, rank, static dims, consistent symbols),
// evaluates nodes in the stored topological order, frees each intermediate after its last use,
// and runs control-flow bodies recursively. Errors name the input or node at fault.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::runtime {

struct ExecOptions {
  // Fail with the node's name when a float output contains NaN or Inf.
  bool check_finite = false;
};

class ReferenceExecutor {
 public:
  explicit ReferenceExecutor(ExecOptions options = {}) : options_(options) {}
  // Inputs in the graph's input order.
  Result<std::vector<Tensor>> run(const Graph& graph, const std::vector<Tensor>& inputs) const;
  // For nested bodies: inputs plus the tensors bound to the body's captures; no type validation
  // beyond counts (bodies' declared types are often partial).
  Result<std::vector<Tensor>> run_body(const Graph& body, const std::vector<Tensor>& inputs,
                                       const std::vector<Tensor>& captures) const;

 private:
  Result<std::vector<Tensor>> execute(const Graph& graph, const std::vector<Tensor>& inputs,
                                      const std::vector<Tensor>& captures) const;
  ExecOptions options_;
};

// Checks `inputs` against the graph's inputs: count, dtype, rank, static dims, and that every
// symbolic dim has one value across all inputs. Names the input at fault.
Status validate_inputs(const Graph& graph, const std::vector<Tensor>& inputs);

}  // namespace seqrun::runtime
