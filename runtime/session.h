// Session: the C++ API for running a model — load a .seqrun file (or take an ir::Graph, e.g. from
// the ONNX importer), optimize it with a pass pipeline, bind inputs, run, read outputs.
//
// A Session owns its (optimized) graph. Inputs are checked against the graph's declared inputs
// (names, dtypes, ranks, static dims, consistent symbolic dims) and every error names the culprit.
// Execution currently uses the reference executor (runtime/executor.h).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "passes/pass.h"

namespace seqrun::runtime {

struct SessionOptions {
  int opt_level = 1;                                // -O0 / -O1
  std::optional<std::vector<std::string>> passes;   // explicit list overrides opt_level
  int threads = 0;                                  // 0 = all cores
  bool check_finite = false;                        // error on NaN/Inf in any float output of any node
};

class Session {
 public:
  // Loads a .seqrun file (mmap, verified) and runs the pass pipeline.
  static Result<std::unique_ptr<Session>> load(const std::string& path, const SessionOptions& options = {});
  static Result<std::unique_ptr<Session>> from_graph(std::unique_ptr<Graph> graph,
                                                     const SessionOptions& options = {});

  const Graph& graph() const { return *graph_; }
  const std::vector<passes::PassReport>& pass_reports() const { return pass_reports_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

  // Inputs in the graph's input order; outputs in the graph's output order.
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) const;
  // Inputs by name: unknown and missing names are errors that list the expected names.
  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs) const;

 private:
  Session() = default;
  std::unique_ptr<Graph> graph_;
  std::vector<passes::PassReport> pass_reports_;
  std::map<std::string, std::string> metadata_;
  SessionOptions options_;
};

}  // namespace seqrun::runtime
