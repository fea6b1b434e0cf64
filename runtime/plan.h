// ExecutionPlan: a shape-specialized graph placed on backends, with its memory planned, ready to run many
// times without allocating.
//
// `build` takes a graph whose values all have static shapes (see runtime/specialize.h) and decides, once:
// - placement: each node runs on the first backend whose kernel registry accepts it (KernelFactoryRegistry
//   ::create); a value read on another device than the one holding it gets a copy step (host<->device
//   through Backend::copy_to_device/copy_to_host; constants are uploaded once at build time).
// - where every value lives: graph inputs are read in place from the caller's tensors; constants in place
//   from the weights; Reshape/Squeeze/Unsqueeze/Flatten/Identity outputs are aliases (the same bytes as
//   their input: a chain resolves to one root buffer that lives until the last use of any alias); graph
//   outputs are written directly into the output tensors (an output that is an input, a constant, a value
//   on another device, or a second name for one already pinned is copied there at the end); everything
//   else gets an offset in one 64-byte-aligned arena per device (liveness over the step order, then
//   plan_arena_offsets). An output runs in place over an input when the kernel allows it and the input's
//   buffer dies at that step.
// - one workspace buffer per device, the largest any of its kernels asks for.
// When a used value is still not static (data-dependent shapes: NonZero, Loop, ...), the plan instead runs
// the whole graph with the reference executor and says so (`uses_reference_executor`).
//
// `run` checks the inputs against the plan's shapes, writes into the caller's output tensors when their
// dtype and shape match (allocating only those that do not), and runs every step; a Profile, when given,
// receives one event per step. Runs of one plan are serialized by an internal mutex (one arena).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/memory_plan.h"
#include "runtime/profile.h"

namespace seqrun::runtime {

struct PlanOptions {
  // Tried in order for every node; empty = {&backends::cpu_backend()}.
  std::vector<backends::Backend*> backends;
  int threads = 1;            // handed to kernels (KernelInfo::threads)
  bool check_finite = false;  // fail, naming the node, when a float output holds NaN or Inf (host values)
};

struct MemoryReport {
  bool uses_reference_executor = false;  // dynamic shapes: nothing below is planned
  std::string fallback_reason;
  uint64_t arena_bytes = 0;          // all devices' arenas together
  uint64_t lower_bound_bytes = 0;    // largest total of simultaneously live arena bytes (summed over devices)
  uint64_t no_reuse_bytes = 0;       // sum of every arena buffer's size
  uint64_t weight_bytes = 0;         // constants the plan reads in place (incl. folded ones)
  uint64_t device_weight_bytes = 0;  // constants uploaded to a non-host device
  uint64_t pinned_input_bytes = 0;
  uint64_t pinned_output_bytes = 0;
  uint64_t workspace_bytes = 0;
  int arena_buffers = 0;
  int inplace_steps = 0;  // outputs written over their input
  int alias_values = 0;   // values that share their input's bytes (no copy)
  int copy_steps = 0;     // device copies inserted
};

// Where one step runs, for `seqrun inspect --placement`.
struct PlacementEntry {
  std::string op;       // "Copy" for an inserted device copy
  std::string node;     // node name (or its first output's name)
  std::string backend;  // backend name; "-" for aliases, "reference-executor" in the fallback
  std::string kernel;   // kernel label: "reference", "alias", "copy:cpu->cuda", ...
};

// One arena buffer, for tests and tools: its lifetime in steps and where it sits.
struct PlannedBuffer {
  std::string value;  // the root value's name
  int device = 0;     // index into the plan's devices (0 = host)
  uint64_t size_bytes = 0;
  uint64_t offset = 0;
  int first_step = 0;
  int last_step = 0;    // steps().size() when an output copy at the end reads it
  int inplace_of = -1;  // buffer it was allowed to overwrite (the planner may or may not have used it)
};

// One step, for tests: which arena buffers it reads and writes (-1: not an arena buffer).
struct StepInfo {
  std::string kind;  // "kernel", "alias" or "copy"
  std::string node;
  std::vector<int> reads;
  std::vector<int> writes;
};

class ExecutionPlan {
 public:
  static Result<std::unique_ptr<ExecutionPlan>> build(std::unique_ptr<Graph> graph,
                                                      const PlanOptions& options = {});
  ~ExecutionPlan();
  ExecutionPlan(const ExecutionPlan&) = delete;
  ExecutionPlan& operator=(const ExecutionPlan&) = delete;

  // Inputs in the graph's input order. `outputs` is resized to the graph's outputs; a tensor already there
  // with the right dtype and shape (and not overlapping an input) is written in place, others are replaced.
  Status run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs, Profile* profile = nullptr);

  const Graph& graph() const { return *graph_; }
  bool uses_reference_executor() const { return reference_fallback_; }
  const MemoryReport& memory_report() const { return report_; }
  const std::vector<PlacementEntry>& placement() const { return placement_; }
  const std::vector<PlannedBuffer>& buffers() const { return buffers_; }
  const std::vector<StepInfo>& steps() const { return step_infos_; }
  // Device names, index 0 first ("cpu", then e.g. "cuda").
  std::vector<std::string> device_names() const;

 private:
  ExecutionPlan() = default;
  struct Impl;
  Status build_steps(const PlanOptions& options);
  Status run_planned(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs, Profile* profile);
  Status run_reference(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs, Profile* profile);

  std::unique_ptr<Graph> graph_;
  bool reference_fallback_ = false;
  bool check_finite_ = false;
  int threads_ = 1;  // OpenMP team size for the own kernels and oneDNN, applied on the running thread
  MemoryReport report_;
  std::vector<PlacementEntry> placement_;
  std::vector<PlannedBuffer> buffers_;
  std::vector<StepInfo> step_infos_;
  // Per graph output: the graph input it may share memory with (a kernel that updates a caller-held buffer
  // in place and says so by can_run_in_place, e.g. CachedAttention's KV caches), or -1.
  std::vector<int> output_alias_input_;
  std::unique_ptr<Impl> impl_;
  std::mutex run_mutex_;
};

}  // namespace seqrun::runtime
