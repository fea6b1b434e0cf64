// --approximate for seqrun run/inspect (see approximate.h): pipeline edit, inputs, exact-vs-approximate
// report.
#include "tools/seqrun/approximate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "passes/approximate_attention.h"
#include "passes/pass.h"
#include "runtime/npy.h"

namespace seqrun::cli {

namespace {

// At least kMinRuns timed runs and kMinTotalMs of them (small models), at most kMaxRuns.
constexpr int kMinRuns = 5, kMaxRuns = 50;
constexpr double kMinTotalMs = 200.0;

// The median wall time of the timed runs after one warm-up run (which also builds the plan), and the
// last outputs.
Result<double> median_run_ms(const runtime::Session& session, const std::map<std::string, Tensor>& inputs,
                             std::map<std::string, Tensor>* outputs) {
  SEQRUN_ASSIGN(*outputs, session.run(inputs));
  std::vector<double> times_ms;
  double total_ms = 0.0;
  while (static_cast<int>(times_ms.size()) < kMaxRuns &&
         (static_cast<int>(times_ms.size()) < kMinRuns || total_ms < kMinTotalMs)) {
    const auto start = std::chrono::steady_clock::now();
    SEQRUN_ASSIGN(*outputs, session.run(inputs));
    times_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    total_ms += times_ms.back();
  }
  std::sort(times_ms.begin(), times_ms.end());
  return times_ms[times_ms.size() / 2];
}

}  // namespace

void add_approximate_option(CLI::App& command, std::string& spec) {
  command
      .add_option(
          "--approximate", spec,
          "APPROXIMATE (changes the outputs): replace softmax attention by FAVOR+ random features, M of them "
          "(default 256); runs the exact model too and prints the measured relative output error and the "
          "speed-up")
      ->type_name("favor[:M]");
}

Result<runtime::SessionOptions> approximate_session_options(runtime::SessionOptions options,
                                                            const std::string& spec) {
  Result<passes::FavorOptions> favor = passes::parse_favor_spec(spec);
  if (!favor) return make_error("--approximate: {}", favor.status().message());
  std::vector<std::string> pipeline =
      options.passes ? *options.passes : passes::pipeline_for_level(options.opt_level);
  auto fuse = std::find(pipeline.begin(), pipeline.end(), "fuse-attention");
  if (fuse == pipeline.end()) fuse = pipeline.insert(pipeline.begin(), "fuse-attention");
  pipeline.insert(fuse + 1, "approximate-attention=favor:" + std::to_string(favor->features));
  options.passes = pipeline;
  return options;
}

Result<std::map<std::string, Tensor>> read_named_inputs(const std::vector<std::string>& specs) {
  std::map<std::string, Tensor> inputs;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return make_error("--input '{}': expected NAME=FILE.npy", spec);
    }
    const std::string name = spec.substr(0, eq);
    Result<Tensor> t = runtime::read_npy(spec.substr(eq + 1));
    if (!t) return make_error("input '{}': {}", name, t.status().message());
    if (!inputs.emplace(name, std::move(t).value()).second) {
      return make_error("--input '{}': input '{}' is given twice", spec, name);
    }
  }
  return inputs;
}

Result<std::map<std::string, Tensor>> random_inputs(const Graph& graph) {
  std::mt19937 gen(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::map<std::string, Tensor> inputs;
  for (const Value* v : graph.inputs()) {
    const std::optional<Shape> shape = v->type().static_shape();
    if (!shape) {
      return make_error("input '{}' has the shape {}: give --input {}=FILE.npy to measure the approximation",
                        v->name(), v->type().to_string(), v->name());
    }
    const DType dt = v->type().dtype();
    if (is_float(dt)) {
      std::vector<float> values(num_elements(*shape));
      for (float& x : values) x = normal(gen);
      inputs.emplace(v->name(), Tensor::from_vector<float>(*shape, values).cast(dt));
    } else {
      inputs.emplace(v->name(), Tensor::zeros(dt, *shape));
    }
  }
  return inputs;
}

Result<std::string> approximation_report(const std::string& spec, const runtime::Session& exact,
                                         const runtime::Session& approximate,
                                         const std::map<std::string, Tensor>& inputs) {
  Result<passes::FavorOptions> favor = passes::parse_favor_spec(spec);
  if (!favor) return make_error("--approximate: {}", favor.status().message());
  bool changed = false;
  for (const passes::PassReport& r : approximate.pass_reports()) {
    changed = changed || (r.pass.rfind("approximate-attention", 0) == 0 && r.changed);
  }
  std::map<std::string, Tensor> exact_out, approx_out;
  SEQRUN_ASSIGN(double exact_ms, median_run_ms(exact, inputs, &exact_out));
  SEQRUN_ASSIGN(double approx_ms, median_run_ms(approximate, inputs, &approx_out));
  double diff = 0.0, norm = 0.0;
  for (const auto& [name, want] : exact_out) {
    const Tensor& got = approx_out.at(name);
    if (!is_float(want.dtype()) || got.numel() != want.numel()) continue;
    for (int64_t i = 0; i < want.numel(); ++i) {
      diff += std::pow(got.get_f64(i) - want.get_f64(i), 2);
      norm += std::pow(want.get_f64(i), 2);
    }
  }
  const double error = norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  std::string line = fmt::format(
      "approximate {}: relative error {:.4g} (||y-y_exact||/||y_exact||), speed-up {:.2f}x (exact {:.3g} ms, "
      "approximate {:.3g} ms)",
      "favor:" + std::to_string(favor->features), error, approx_ms > 0.0 ? exact_ms / approx_ms : 0.0,
      exact_ms, approx_ms);
  if (!changed) line += "; no softmax attention was approximated";
  return line;
}

}  // namespace seqrun::cli
