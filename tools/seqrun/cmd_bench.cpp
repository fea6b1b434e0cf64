// `seqrun bench`: time a model's load and its runs (warmup, then timed repeats with a steady clock) and
// report min/median/mean/max latency, peak RSS and the memory plan, as text or one JSON object.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "runtime/npy.h"
#include "tools/seqrun/cli.h"

namespace seqrun::cli {

namespace {

using Clock = std::chrono::steady_clock;

double elapsed_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Peak resident set size of this process so far (Linux reports ru_maxrss in KiB).
double peak_rss_mib() {
  struct rusage usage = {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

struct LatencyStats {
  double min_ms = 0, median_ms = 0, mean_ms = 0, max_ms = 0;
};

LatencyStats summarize_times(std::vector<double> times_ms) {
  LatencyStats s;
  if (times_ms.empty()) return s;
  std::sort(times_ms.begin(), times_ms.end());
  const size_t n = times_ms.size();
  s.min_ms = times_ms.front();
  s.max_ms = times_ms.back();
  s.median_ms = n % 2 == 1 ? times_ms[n / 2] : 0.5 * (times_ms[n / 2 - 1] + times_ms[n / 2]);
  double sum = 0;
  for (double t : times_ms) sum += t;
  s.mean_ms = sum / static_cast<double>(n);
  return s;
}

// "NAME=VALUE" -> (NAME, VALUE); neither part may be empty.
bool split_name_value(const std::string& spec, std::string& name, std::string& value) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) return false;
  name = spec.substr(0, eq);
  value = spec.substr(eq + 1);
  return true;
}

// "1x1024" -> {1, 1024}; "" (a scalar) is not accepted here, dims must be non-negative integers.
bool parse_shape(const std::string& text, Shape& shape) {
  shape.clear();
  size_t start = 0;
  while (start <= text.size()) {
    size_t x = text.find('x', start);
    std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 12)
      return false;
    shape.push_back(std::stoll(part));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return !shape.empty();
}

// Integer inputs that index a Gather's data (token ids) must stay inside that axis; other integer inputs
// get [0, 16). Returns the exclusive upper bound for random values of `input`.
int64_t random_int_bound(const Value& input) {
  int64_t bound = -1;
  for (const Use& use : input.uses()) {
    const Node& node = *use.node;
    if (node.op() != "Gather" || use.input_index != 1 || node.input(0) == nullptr) continue;
    const TensorType& data = node.input(0)->type();
    if (!data.has_rank() || data.rank() == 0) continue;
    int64_t axis = node.get_int("axis", 0);
    if (axis < 0) axis += data.rank();
    if (axis < 0 || axis >= data.rank() || !data.dim(static_cast<int>(axis)).is_static()) continue;
    const int64_t size = data.dim(static_cast<int>(axis)).value();
    if (size > 0) bound = bound < 0 ? size : std::min(bound, size);
  }
  return bound > 0 ? bound : 16;
}

// One input from the model's declared type with a seeded generator: floats uniform in [-1, 1), integers
// uniform in [0, bound), bools 0/1. Symbolic or unknown dims must be given by --input-shape.
Result<Tensor> make_random_input(const Value& input, const std::map<std::string, Shape>& given_shapes,
                                 std::mt19937_64& rng) {
  const TensorType& type = input.type();
  Shape shape;
  auto given = given_shapes.find(input.name());
  if (given != given_shapes.end()) {
    shape = given->second;
  } else {
    std::optional<std::vector<int64_t>> fixed = type.static_shape();
    if (!fixed) {
      return make_error(
          "input '{}': type {} has dims that are not static; give them with --input-shape {}=...",
          input.name(), type.to_string(), input.name());
    }
    shape = *fixed;
  }
  SEQRUN_ASSIGN(int64_t count, checked_num_elements(shape, 8));
  const DType dtype = type.dtype();
  if (is_float(dtype)) {
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    Tensor values = Tensor::empty(DType::f64, shape);
    for (int64_t i = 0; i < count; ++i) values.data<double>()[i] = dist(rng);
    return dtype == DType::f64 ? values : values.cast(dtype);
  }
  if (is_integer(dtype) || dtype == DType::boolean) {
    const int64_t bound = dtype == DType::boolean ? 2 : random_int_bound(input);
    std::uniform_int_distribution<int64_t> dist(0, bound - 1);
    Tensor values = Tensor::empty(DType::i64, shape);
    for (int64_t i = 0; i < count; ++i) values.data<int64_t>()[i] = dist(rng);
    return dtype == DType::i64 ? values : values.cast(dtype);
  }
  return make_error("input '{}': cannot generate random values of dtype {}", input.name(), dtype_name(dtype));
}

// An output name as a file stem: characters outside [A-Za-z0-9._-] become '_'.
std::string file_stem_for(const std::string& name, size_t index) {
  std::string stem;
  for (char c : name) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                c == '-' || c == '.';
    stem += keep ? c : '_';
  }
  if (stem.empty() || stem.find_first_not_of('.') == std::string::npos)
    stem = "output_" + std::to_string(index);
  return stem;
}

// The inputs by name -> the graph's input order; unknown and missing names are errors that list the
// model's inputs.
Result<std::vector<Tensor>> inputs_in_graph_order(const runtime::Session& session,
                                                  const std::map<std::string, Tensor>& inputs) {
  const std::vector<std::string> expected = session.input_names();
  std::string expected_list;
  for (const std::string& n : expected) expected_list += (expected_list.empty() ? "'" : ", '") + n + "'";
  for (const auto& [name, tensor] : inputs) {
    if (std::find(expected.begin(), expected.end(), name) == expected.end())
      return make_error("unknown input '{}' (the model's inputs: {})", name, expected_list);
  }
  std::vector<Tensor> ordered;
  for (const std::string& name : expected) {
    auto it = inputs.find(name);
    if (it == inputs.end())
      return make_error("missing input '{}' (the model's inputs: {}; or use --random-inputs)", name,
                        expected_list);
    ordered.push_back(it->second);
  }
  return ordered;
}

double to_mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// "arena: 12.0 MiB (lower bound 11.0 MiB, 1.09x; no reuse 40.0 MiB), weights 8.2 MiB", or the fallback.
std::string describe_memory(const runtime::MemoryReport& m) {
  if (m.uses_reference_executor) return "arena: none (reference executor: " + m.fallback_reason + ")";
  std::string ratio = m.lower_bound_bytes > 0
                          ? fmt::format(", {:.2f}x", static_cast<double>(m.arena_bytes) /
                                                         static_cast<double>(m.lower_bound_bytes))
                          : "";
  return fmt::format("arena: {:.2f} MiB (lower bound {:.2f} MiB{}; no reuse {:.2f} MiB), weights {:.2f} MiB",
                     to_mib(m.arena_bytes), to_mib(m.lower_bound_bytes), ratio, to_mib(m.no_reuse_bytes),
                     to_mib(m.weight_bytes));
}

nlohmann::ordered_json stats_json(const LatencyStats& s) {
  nlohmann::ordered_json j;
  j["min_ms"] = s.min_ms;
  j["median_ms"] = s.median_ms;
  j["mean_ms"] = s.mean_ms;
  j["max_ms"] = s.max_ms;
  return j;
}

}  // namespace

CLI::App* add_bench_command(CLI::App& app, BenchArgs& args, GlobalArgs& global) {
  CLI::App* cmd =
      app.add_subcommand("bench", "Time a model's load and runs: latency statistics and peak memory");
  cmd->add_option("MODEL", args.model, "A .seqrun file or an .onnx file")->required();
  cmd->add_option("-i,--input", args.inputs,
                  "Bind the model input NAME to the array in FILE.npy (repeat per input)")
      ->type_name("NAME=FILE.npy")
      ->allow_extra_args(false);
  cmd->add_flag("--random-inputs", args.random_inputs,
                "Generate inputs not given by --input from their declared types (seeded: floats in [-1, 1), "
                "token ids inside the embedding table)");
  cmd->add_option("--input-shape", args.input_shapes, "Shape of a random input whose dims are not all static")
      ->type_name("NAME=1x1024")
      ->allow_extra_args(false);
  cmd->add_option("--seed", args.seed, "Seed for --random-inputs")->capture_default_str();
  cmd->add_option("--warmup", args.warmup, "Untimed runs before timing")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--repeat", args.repeat, "Timed runs")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("--load-only", args.load_only,
                "Time only the model load (warmup + repeat loads, each a fresh session); no runs");
  cmd->add_option("--output-dir", args.output_dir,
                  "Write the last timed run's outputs to DIR/<output name>.npy");
  cmd->add_flag("--json", args.json, "Print one JSON object instead of text");
  cmd->add_option("--threads", global.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  add_pipeline_options(*cmd, args.pipeline);
  add_dtype_option(*cmd, args.pipeline);
  cmd->footer(
      "Load time (load_ms) covers reading the file (mmap for .seqrun, import for .onnx) and the pass "
      "pipeline.\n"
      "Each timed run is one Session::run on the same inputs, measured with a steady clock. Peak RSS is the\n"
      "process's high-water mark (getrusage), including the load.\n"
      "\n"
      "Examples:\n"
      "  seqrun bench model.seqrun --input input_ids=ids.npy --warmup 3 --repeat 10\n"
      "  seqrun bench model.onnx --random-inputs --input-shape input_ids=1x1024 -O1 --json\n"
      "  seqrun bench big.seqrun --load-only --repeat 10");
  return cmd;
}

int run_bench(const BenchArgs& args, const GlobalArgs& global) {
  std::map<std::string, std::string> files_by_name;
  for (const std::string& spec : args.inputs) {
    std::string name, file;
    if (!split_name_value(spec, name, file))
      return report_error(fmt::format("--input '{}': expected NAME=FILE.npy", spec), kExitUsage);
    if (!files_by_name.emplace(name, file).second)
      return report_error(fmt::format("--input '{}': input '{}' is given twice", spec, name), kExitUsage);
  }
  std::map<std::string, Shape> shapes_by_name;
  for (const std::string& spec : args.input_shapes) {
    std::string name, text;
    Shape shape;
    if (!split_name_value(spec, name, text) || !parse_shape(text, shape))
      return report_error(fmt::format("--input-shape '{}': expected NAME=DxDx... (e.g. ids=1x1024)", spec),
                          kExitUsage);
    shapes_by_name[name] = shape;
  }
  if (!shapes_by_name.empty() && !args.random_inputs)
    return report_error("--input-shape needs --random-inputs", kExitUsage);

  const runtime::SessionOptions options = make_session_options(args.pipeline, global);

  // Load: the first load is the one we keep; --load-only repeats it to time it.
  Clock::time_point load_start = Clock::now();
  Result<OpenedModel> model = open_model(args.model, options);
  const double first_load_ms = elapsed_ms(load_start);
  if (!model) return report_error(model.status().message());

  std::vector<double> load_times_ms;
  if (args.load_only) {
    for (int i = 0; i < args.warmup + args.repeat; ++i) {
      Clock::time_point start = Clock::now();
      Result<OpenedModel> again = open_model(args.model, options);
      const double ms = elapsed_ms(start);
      if (!again) return report_error(again.status().message());
      if (i >= args.warmup) load_times_ms.push_back(ms);
    }
  }
  const runtime::Session& session = *model->session;
  const Graph& graph = session.graph();

  std::map<std::string, Tensor> inputs;  // by name
  std::vector<double> run_times_ms;
  std::vector<Tensor> outputs;  // of the last run, in the graph's output order
  std::optional<runtime::MemoryReport> memory;
  if (!args.load_only) {
    for (const auto& [name, file] : files_by_name) {
      Result<Tensor> t = runtime::read_npy(file);
      if (!t) return report_error(fmt::format("input '{}': {}", name, t.status().message()));
      inputs.emplace(name, std::move(t).value());
    }
    std::set<std::string> declared;
    for (const Value* v : graph.inputs()) declared.insert(v->name());
    for (const auto& [name, shape] : shapes_by_name) {
      if (declared.count(name) == 0)
        return report_error(fmt::format("--input-shape: the model has no input '{}'", name), kExitUsage);
    }
    if (args.random_inputs) {
      std::mt19937_64 rng(args.seed);
      for (const Value* v : graph.inputs()) {
        if (inputs.count(v->name()) > 0) continue;
        Result<Tensor> t = make_random_input(*v, shapes_by_name, rng);
        if (!t) return report_error(t.status().message());
        inputs.emplace(v->name(), std::move(t).value());
      }
    }
    Result<std::vector<Tensor>> ordered = inputs_in_graph_order(session, inputs);
    if (!ordered) return report_error(args.model + ": " + ordered.status().message());

    // run_into reuses the output tensors: after the first run (which builds and caches the plan for these
    // shapes) a run allocates nothing, so the timed loop measures execution only.
    for (int i = 0; i < args.warmup + args.repeat; ++i) {
      Clock::time_point start = Clock::now();
      Status st = session.run_into(*ordered, outputs);
      const double ms = elapsed_ms(start);
      if (!st) return report_error(args.model + ": " + st.message());
      if (i >= args.warmup) run_times_ms.push_back(ms);
    }
    std::vector<runtime::InputSpec> specs;
    for (const Tensor& t : *ordered) specs.push_back(runtime::InputSpec{t.dtype(), t.shape()});
    Result<runtime::MemoryReport> report = session.memory_report(specs);
    if (report) {
      memory = *report;
    } else {
      spdlog::warn("no memory report: {}", report.status().message());
    }
  }

  std::vector<std::string> written;
  if (!args.output_dir.empty() && !args.load_only) {
    std::error_code ec;
    std::filesystem::create_directories(args.output_dir, ec);
    if (ec) return report_error(fmt::format("--output-dir '{}': {}", args.output_dir, ec.message()));
    const std::vector<std::string> names = session.output_names();
    std::set<std::string> used;
    for (size_t i = 0; i < names.size(); ++i) {
      std::string stem = file_stem_for(names[i], i);
      if (!used.insert(stem).second) stem += "_" + std::to_string(i);
      used.insert(stem);
      const std::string path = (std::filesystem::path(args.output_dir) / (stem + ".npy")).string();
      Status st = runtime::write_npy(path, outputs.at(i));
      if (!st) return report_error(fmt::format("output '{}': {}", names[i], st.message()));
      written.push_back(path);
    }
  }

  const double rss_mib = peak_rss_mib();
  const LatencyStats run_stats = summarize_times(run_times_ms);
  const LatencyStats load_stats = summarize_times(load_times_ms);
  std::string passes = "none";
  if (!session.pass_reports().empty()) {
    passes.clear();
    for (const passes::PassReport& r : session.pass_reports()) passes += (passes.empty() ? "" : ",") + r.pass;
  }

  if (args.json) {
    nlohmann::ordered_json j;
    j["model"] = args.model;
    j["format"] = model->format;
    j["passes"] = passes;
    j["threads"] = global.threads;
    j["warmup"] = args.warmup;
    j["repeat"] = args.repeat;
    j["load_ms"] = first_load_ms;
    if (args.load_only) {
      j["load"] = stats_json(load_stats);
      j["load_times_ms"] = load_times_ms;
    } else {
      nlohmann::ordered_json in = nlohmann::ordered_json::object();
      for (const auto& [name, t] : inputs)
        in[name] = fmt::format("{}{}", dtype_name(t.dtype()), shape_to_string(t.shape()));
      j["inputs"] = in;
      nlohmann::ordered_json stats = stats_json(run_stats);
      for (const auto& [key, value] : stats.items()) j[key] = value;
      j["times_ms"] = run_times_ms;
      if (!written.empty()) j["output_files"] = written;
      if (memory) {
        j["executor"] = memory->uses_reference_executor ? "reference" : "planned";
        if (memory->uses_reference_executor) j["fallback_reason"] = memory->fallback_reason;
        j["arena_bytes"] = memory->arena_bytes;
        j["arena_lower_bound_bytes"] = memory->lower_bound_bytes;
        j["arena_no_reuse_bytes"] = memory->no_reuse_bytes;
        j["weight_bytes"] = memory->weight_bytes;
      }
    }
    j["peak_rss_mib"] = rss_mib;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::printf("model: %s (%s), passes: %s, threads: %d\n", args.model.c_str(), model->format.c_str(),
              passes.c_str(), global.threads);
  std::printf("load: %.3f ms\n", first_load_ms);
  if (args.load_only) {
    std::printf("load x%d (warmup %d): min %.3f ms, median %.3f ms, mean %.3f ms, max %.3f ms\n", args.repeat,
                args.warmup, load_stats.min_ms, load_stats.median_ms, load_stats.mean_ms, load_stats.max_ms);
  } else {
    for (const auto& [name, t] : inputs)
      std::printf("input %s: %s%s\n", name.c_str(), std::string(dtype_name(t.dtype())).c_str(),
                  shape_to_string(t.shape()).c_str());
    std::printf("run x%d (warmup %d): min %.3f ms, median %.3f ms, mean %.3f ms, max %.3f ms\n", args.repeat,
                args.warmup, run_stats.min_ms, run_stats.median_ms, run_stats.mean_ms, run_stats.max_ms);
    if (memory) std::printf("%s\n", describe_memory(*memory).c_str());
    for (const std::string& path : written) std::printf("wrote %s\n", path.c_str());
  }
  std::printf("peak RSS: %.1f MiB\n", rss_mib);
  return 0;
}

}  // namespace seqrun::cli
