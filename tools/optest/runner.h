// The op-test runner: turns one Case into a one-node graph with filled inputs, computes the expected
// outputs with the reference kernels on the host, runs the node on a Backend (device buffers, kernel
// create/prepare/run, copies back) and compares or times the result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "tools/optest/optest.h"

namespace seqrun::optest {

// One case made concrete: the graph (inputs, constants, the node), the input values and, once
// computed, the expected outputs. Output argument shapes come from shape inference, or from the
// reference run where inference leaves them open (NonZero, Compress, Loop...).
struct CaseData {
  std::unique_ptr<Graph> graph;
  Node* node = nullptr;
  std::vector<Tensor> inputs;                    // one per node input (captures last); undefined = absent
  std::vector<bool> constant;                    // per node input: a graph constant
  std::vector<Tensor> graph_inputs;              // the non-constant inputs, in graph input order
  std::vector<backends::TensorArg> output_args;  // concrete output types (data null)
  std::vector<Tensor> expected;                  // reference outputs; empty until compute_reference
};

// Builds the graph, fills the inputs from `data_seed` and infers types. When `need_reference` is set,
// or when inference leaves an output shape open, the reference outputs are computed too.
Result<CaseData> build_case(const Case& c, uint64_t data_seed, bool need_reference);

// What one backend produced for one case.
struct BackendRun {
  bool supported = true;         // false: the backend has no kernel for this node (nothing ran)
  std::string label;             // the kernel's label ("reference", "avx2:softmax", ...)
  std::vector<Tensor> outputs;   // copied back to the host
  std::vector<double> times_us;  // one per timed run (perf mode)
};

struct TimingOptions {
  int warmup = 0;         // untimed runs before timing
  int repeat = 0;         // timed runs (0: one untimed run for correctness)
  double budget_s = 2.0;  // fewer timed runs when one run is slow
};

// Creates the backend's kernel for the node (constant inputs passed with their device data), prepares
// it and runs it on device buffers holding the case's inputs. A backend without a kernel for the node
// gives supported = false (a GPU backend need not cover every op; the CPU one falls back to reference).
Result<BackendRun> run_on_backend(const CaseData& data, backends::Backend& backend,
                                  const TimingOptions& timing);

// The comparison of a backend's outputs with the reference outputs.
struct Comparison {
  bool ok = true;
  double nmse = 0.0;   // the worst output's normalized mean squared error
  double bound = 0.0;  // 0 = bit for bit
  std::string detail;  // why it failed (first mismatching element, shape...)
};

// `exact` forces bit-for-bit comparison of every output (a "reference" kernel must reproduce the
// reference executor exactly); otherwise float outputs are held to the case's bound.
Comparison compare_outputs(const Case& c, const std::vector<Tensor>& got, const std::vector<Tensor>& expected,
                           bool exact);

// The case's bound for an output of `dtype` (its max_nmse, or the dtype default).
double nmse_bound(const Case& c, DType dtype);

// Work of one run: FLOPs when the case has a FLOP formula, else input + output bytes.
double case_work(const Case& c, const CaseData& data, bool* is_flops);

}  // namespace seqrun::optest
