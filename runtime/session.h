// Session: the C++ API for running a model — load a .seqrun file (or take an ir::Graph, e.g. from
// the ONNX importer), optimize it with a pass pipeline, bind inputs, run, read outputs.
//
// A Session reads its (optimized) graph from a runtime::Model (runtime/model.h) that it shares: `load` and
// `from_graph` make a Model of their own, `from_model` takes one that many Sessions use at once (one
// mapping of the weights, one optimized graph; each Session keeps its own plans and arenas, so sessions on
// different threads never wait for each other). Inputs are checked against the graph's declared inputs
// (names, dtypes, ranks, static dims, consistent symbolic dims) and every error names the culprit.
// By default a run goes through an ExecutionPlan (runtime/plan.h): the first run with a given shape
// signature (the inputs' dtypes and shapes) specializes the graph to it and builds a plan; later runs with
// the same signature reuse that plan without allocating (run_into with the caller's output tensors).
// Plans are cached per signature (at most `max_cached_plans`, least recently used dropped first), under a
// mutex, so a Session may be run from several threads. `executor = reference` runs the reference executor
// (runtime/executor.h) instead.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "passes/pass.h"
#include "runtime/model.h"
#include "runtime/plan.h"
#include "runtime/profile.h"
#include "runtime/specialize.h"

namespace seqrun::runtime {

enum class ExecutorKind : uint8_t { planned = 0, reference = 1 };

struct SessionOptions {
  int opt_level = 1;                               // -O0 / -O1
  std::optional<std::vector<std::string>> passes;  // explicit list overrides opt_level
  int threads = 0;                                 // 0 = all cores
  bool check_finite = false;                       // error on NaN/Inf in any float output of any node
  ExecutorKind executor = ExecutorKind::planned;   // planned: shape-specialized, memory-planned
  std::vector<backends::Backend*> backends;        // placement order; empty = {&backends::cpu_backend()}
  size_t max_cached_plans = 16;                    // plans kept per session (one per shape signature)
  // f16 / bf16: every plan runs the nodes a non-CPU backend (CUDA) takes in that dtype, with f32
  // accumulation in the kernels; weights are converted when the plan is built, Casts sit at the CPU
  // boundaries and at graph inputs/outputs (outputs stay f32). Needs a non-CPU backend in `backends` and the
  // planned executor (the CPU runs f32): Session creation fails otherwise. See passes/convert_dtype.h.
  DType dtype = DType::f32;
};

class Session {
 public:
  // Loads a .seqrun file (mmap, verified) and runs the pass pipeline.
  static Result<std::unique_ptr<Session>> load(const std::string& path, const SessionOptions& options = {});
  static Result<std::unique_ptr<Session>> from_graph(std::unique_ptr<Graph> graph,
                                                     const SessionOptions& options = {});
  // A session over a model that is already loaded and optimized (options.opt_level and options.passes are
  // not used: the model's pipeline already ran). Sessions made this way share the model read-only.
  static Result<std::unique_ptr<Session>> from_model(std::shared_ptr<const Model> model,
                                                     const SessionOptions& options = {});

  const std::shared_ptr<const Model>& model() const { return model_; }
  const Graph& graph() const { return model_->graph(); }
  const std::vector<passes::PassReport>& pass_reports() const { return model_->pass_reports(); }
  const std::map<std::string, std::string>& metadata() const { return model_->metadata(); }
  const SessionOptions& options() const { return options_; }
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

  // Inputs in the graph's input order; outputs in the graph's output order. A Profile, when given,
  // receives one event per executed step.
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs, Profile* profile = nullptr) const;
  // Inputs by name: unknown and missing names are errors that list the expected names.
  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs,
                                            Profile* profile = nullptr) const;
  // Like run, but writes into `outputs` (resized to the graph's outputs): tensors already there with the
  // right dtype and shape are reused, so a steady loop over one shape allocates nothing.
  Status run_into(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs,
                  Profile* profile = nullptr) const;

  // The plan for one binding of input types (built and cached like a run would); errors name the input.
  Result<std::shared_ptr<ExecutionPlan>> plan_for(const std::vector<InputSpec>& inputs) const;
  Result<MemoryReport> memory_report(const std::vector<InputSpec>& inputs) const;
  Result<std::vector<PlacementEntry>> placement(const std::vector<InputSpec>& inputs) const;
  // How many plans this session has built (a cache miss builds one) and how many it keeps now.
  int plan_builds() const;
  size_t cached_plans() const;

 private:
  Session() = default;
  std::shared_ptr<const Model> model_;
  const Graph* graph_ = nullptr;  // model_->graph()
  SessionOptions options_;

  // The cached plan for already-validated input specs, built on a miss.
  Result<std::shared_ptr<ExecutionPlan>> cached_plan(const std::vector<InputSpec>& inputs) const;

  // Plan cache: signature -> plan and its place in the use order (least recently used first).
  struct CachedPlan {
    std::shared_ptr<ExecutionPlan> plan;
    std::list<std::string>::iterator use;
  };
  mutable std::mutex plans_mutex_;
  mutable std::map<std::string, CachedPlan> plans_;
  mutable std::list<std::string> plans_by_use_;
  mutable int plan_builds_ = 0;
};

}  // namespace seqrun::runtime
