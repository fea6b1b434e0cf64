// `--approximate favor[:M]` for `seqrun run` and `seqrun inspect`: the pipeline that adds the opt-in
// approximate-attention pass, and the report that runs the exact and the approximated model on the same
// inputs and prints the measured output error next to the speed-up.
//
// The approximation is never silent: whenever --approximate is given, both models run and one line says
//   approximate favor:256: relative error 0.0123 (||y-y_exact||/||y_exact||), speed-up 3.41x (exact 12.3 ms,
//   approximate 3.6 ms)
// where the error is over every float output together and each time is the median of the timed runs (at
// least 5 and 200 ms, at most 50) after a warm-up run.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/session.h"

namespace seqrun::cli {

// Registers --approximate on a subcommand.
void add_approximate_option(CLI::App& command, std::string& spec);

// `options` with approximate-attention=SPEC right after fuse-attention in its pipeline (fuse-attention is
// added in front when the pipeline lacks it: the approximation replaces fused Attention nodes). The error
// (a malformed SPEC) is a usage error.
Result<runtime::SessionOptions> approximate_session_options(runtime::SessionOptions options,
                                                            const std::string& spec);

// NAME=FILE.npy specs -> tensors by name; errors name the spec or the file.
Result<std::map<std::string, Tensor>> read_named_inputs(const std::vector<std::string>& specs);
// Normal(0, 1) float (zero integer) inputs for a graph whose inputs all have static shapes, seed 0.
Result<std::map<std::string, Tensor>> random_inputs(const Graph& graph);

// Runs both sessions on `inputs` and returns the report line (see above).
Result<std::string> approximation_report(const std::string& spec, const runtime::Session& exact,
                                         const runtime::Session& approximate,
                                         const std::map<std::string, Tensor>& inputs);

}  // namespace seqrun::cli
