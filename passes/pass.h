// Pass and PassManager: named graph rewrites and the pipelines (-O0, -O1, --passes a,b,c) that run them.
//
// A pass rewrites a Graph in place and reports whether it changed anything. The manager runs a
// pipeline in order, re-infers types and runs the verifier after each pass (always: graphs are
// small next to the cost of running them), so a broken rewrite is reported by the pass that broke it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace seqrun::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // Returns true when the graph changed.
  virtual Result<bool> run(Graph& graph) = 0;
};

using PassFactory = std::function<std::unique_ptr<Pass>()>;

// Every known pass, by name.
const std::vector<std::pair<std::string, PassFactory>>& pass_registry();
std::unique_ptr<Pass> create_pass(const std::string& name);

// The standard pipeline for an optimization level (0: none; 1: the default).
std::vector<std::string> pipeline_for_level(int level);

struct PassReport {
  std::string pass;
  bool changed = false;
};

// Runs the named passes in order; unknown names are an error listing the known ones.
Result<std::vector<PassReport>> run_passes(Graph& graph, const std::vector<std::string>& names);

}  // namespace seqrun::passes
