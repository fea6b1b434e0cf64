// `seqrun run`: bind .npy inputs by name, run the model, summarize each output and optionally save it as
// .npy.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "runtime/npy.h"
#include "tools/seqrun/approximate.h"
#include "tools/seqrun/cli.h"

namespace seqrun::cli {

namespace {

// "NAME=FILE.npy" -> (NAME, FILE); the name may not be empty, the file part may contain '='.
bool split_input_spec(const std::string& spec, std::string& name, std::string& file) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) return false;
  name = spec.substr(0, eq);
  file = spec.substr(eq + 1);
  return true;
}

// One line per output: "name: f32[2, 3] min=... max=... mean=..." (+ " nan=N" when there are NaNs).
std::string summarize_output(const std::string& name, const Tensor& t) {
  std::string line = fmt::format("{}: {}{}", name, dtype_name(t.dtype()), shape_to_string(t.shape()));
  const int64_t n = t.numel();
  if (n == 0) return line + " (empty)";
  double lo = INFINITY, hi = -INFINITY, sum = 0.0;
  int64_t nan_count = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = t.get_f64(i);
    if (std::isnan(v)) {
      ++nan_count;
      continue;
    }
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  if (nan_count == n) return line + fmt::format(" nan={} (all values)", nan_count);
  line += fmt::format(" min={:.6g} max={:.6g} mean={:.6g}", lo, hi, sum / static_cast<double>(n - nan_count));
  if (nan_count > 0) line += fmt::format(" nan={}", nan_count);
  return line;
}

// An output name as a file name: characters other than [A-Za-z0-9._-] become '_' ("out/sum:0" ->
// "out_sum_0").
std::string sanitize_file_stem(const std::string& name, size_t index) {
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

}  // namespace

CLI::App* add_run_command(CLI::App& app, RunArgs& args, GlobalArgs& global) {
  CLI::App* cmd = app.add_subcommand("run", "Run a model on .npy inputs and summarize (or save) its outputs");
  cmd->add_option("MODEL", args.model, "A .seqrun file or an .onnx file")->required();
  cmd->add_option("-i,--input", args.inputs,
                  "Bind the model input NAME to the array in FILE.npy (repeat per input)")
      ->type_name("NAME=FILE.npy")
      ->allow_extra_args(false);
  cmd->add_option(
      "-o,--output-dir", args.output_dir,
      "Write each output to DIR/<output name>.npy (characters outside [A-Za-z0-9._-] become '_')");
  cmd->add_option("--threads", global.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--check-finite", args.check_finite,
                "Fail, naming the node, when any float result is NaN or Inf");
  cmd->add_option("--profile", args.profile_path,
                  "Write a Chrome/Perfetto trace (one event per node: op, shapes, time) to FILE.json")
      ->type_name("FILE.json");
  add_pipeline_options(*cmd, args.pipeline);
  add_dtype_option(*cmd, args.pipeline);
  add_approximate_option(*cmd, args.approximate);
  cmd->footer(
      "Each output prints as one line: name, dtype and shape, min/max/mean (and the NaN count when there are "
      "NaNs).\n"
      "\n"
      "Examples:\n"
      "  seqrun run model.onnx --input x=x.npy\n"
      "  seqrun run model.seqrun -i tokens=tokens.npy -i mask=mask.npy --output-dir out/\n"
      "  seqrun run model.onnx --input x=x.npy -O0 --check-finite   unoptimized, stop at the first NaN/Inf\n"
      "  seqrun run model.onnx --input x=x.npy --profile trace.json  open in ui.perfetto.dev or "
      "chrome://tracing\n"
      "  seqrun run model.onnx --input x=x.npy --approximate favor:256  FAVOR+ attention, with its measured "
      "error");
  return cmd;
}

int run_run(const RunArgs& args, const GlobalArgs& global) {
  // Parse every --input first: a malformed one is a usage error, before any file is touched.
  std::map<std::string, std::string> files_by_name;
  for (const std::string& spec : args.inputs) {
    std::string name, file;
    if (!split_input_spec(spec, name, file)) {
      return report_error(fmt::format("--input '{}': expected NAME=FILE.npy", spec), kExitUsage);
    }
    if (!files_by_name.emplace(name, file).second) {
      return report_error(fmt::format("--input '{}': input '{}' is given twice", spec, name), kExitUsage);
    }
  }

  runtime::SessionOptions options = make_session_options(args.pipeline, global);
  options.check_finite = args.check_finite;
  runtime::SessionOptions run_options = options;
  if (!args.approximate.empty()) {  // the outputs printed are the approximated model's
    Result<runtime::SessionOptions> approximated = approximate_session_options(options, args.approximate);
    if (!approximated) return report_error(approximated.status().message(), kExitUsage);
    run_options = *approximated;
  }
  Result<OpenedModel> model = open_model(args.model, run_options);
  if (!model) return report_error(model.status().message());
  const runtime::Session& session = *model->session;

  std::map<std::string, Tensor> inputs;
  for (const auto& [name, file] : files_by_name) {
    Result<Tensor> t = runtime::read_npy(file);
    if (!t) return report_error(fmt::format("input '{}': {}", name, t.status().message()));
    spdlog::debug("input '{}': {}{} from {}", name, dtype_name(t->dtype()), shape_to_string(t->shape()),
                  file);
    inputs.emplace(name, std::move(t).value());
  }

  runtime::Profile profile;
  Result<std::map<std::string, Tensor>> outputs =
      session.run(inputs, args.profile_path.empty() ? nullptr : &profile);
  if (!outputs) return report_error(args.model + ": " + outputs.status().message());
  if (!args.profile_path.empty()) {
    Status st = profile.write_chrome_trace(args.profile_path);
    if (!st) return report_error("--profile: " + st.message());
  }

  if (!args.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(args.output_dir, ec);
    if (ec) return report_error(fmt::format("--output-dir '{}': {}", args.output_dir, ec.message()));
  }
  std::set<std::string> used_stems;
  const std::vector<std::string> names = session.output_names();
  for (size_t i = 0; i < names.size(); ++i) {
    const Tensor& t = outputs->at(names[i]);
    std::string line = summarize_output(names[i], t);
    if (!args.output_dir.empty()) {
      std::string stem = sanitize_file_stem(names[i], i);
      if (!used_stems.insert(stem).second) stem += "_" + std::to_string(i);  // two names sanitized alike
      used_stems.insert(stem);
      const std::string path = (std::filesystem::path(args.output_dir) / (stem + ".npy")).string();
      Status st = runtime::write_npy(path, t);
      if (!st) return report_error(fmt::format("output '{}': {}", names[i], st.message()));
      line += " -> " + path;
    }
    std::printf("%s\n", line.c_str());
  }
  if (!args.profile_path.empty()) {
    std::printf("profile: %zu events -> %s\n", profile.events().size(), args.profile_path.c_str());
  }
  if (!args.approximate.empty()) {
    Result<OpenedModel> exact = open_model(args.model, options);
    if (!exact) return report_error(exact.status().message());
    Result<std::string> report = approximation_report(args.approximate, *exact->session, session, inputs);
    if (!report) return report_error(args.model + ": " + report.status().message());
    std::printf("%s\n", report->c_str());
  }
  return 0;
}

}  // namespace seqrun::cli
