// Profile: per-step timings of an execution plan, written as a Chrome/Perfetto trace.
//
// An ExecutionPlan run with a Profile appends one event per step (every node of the specialized graph, plus
// the device copies the plan inserted): the op, the node's name, the kernel label, the input and output
// shapes, and the start and duration in microseconds since the Profile was created. `write_chrome_trace`
// writes {"traceEvents": [{"ph": "X", ...}, ...]}, which chrome://tracing and ui.perfetto.dev open directly.
// A Profile is not thread-safe: one run writes into it at a time.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::runtime {

struct ProfileEvent {
  std::string op;                   // "MatMul", or "Copy" for a device copy the plan inserted
  std::string node;                 // the node's name (or its first output's name when unnamed)
  std::string kernel;               // kernel label: "reference", "alias", "copy:cpu->cuda", ...
  std::string category;             // "node", "copy" or "graph" (a whole graph run by the reference executor)
  std::vector<Shape> input_shapes;  // absent optional inputs are omitted
  std::vector<Shape> output_shapes;
  double start_us = 0.0;  // since the Profile was created
  double dur_us = 0.0;
};

class Profile {
 public:
  Profile() : origin_(std::chrono::steady_clock::now()) {}

  // Microseconds from the Profile's creation to now; what runs use for start_us.
  double now_us() const {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - origin_).count();
  }
  void add(ProfileEvent event) { events_.push_back(std::move(event)); }
  const std::vector<ProfileEvent>& events() const { return events_; }
  void clear() { events_.clear(); }

  // The trace as a JSON string ("ph": "X" complete events, one per profiled step, pid 1 / tid 1).
  std::string to_chrome_trace() const;
  // Writes to_chrome_trace() to `path`; the error names the path.
  Status write_chrome_trace(const std::string& path) const;

 private:
  std::chrono::steady_clock::time_point origin_;
  std::vector<ProfileEvent> events_;
};

}  // namespace seqrun::runtime
