// Shared CLI plumbing: pipeline options, model opening by format, error reporting.
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "backends/registry.h"
#include "ir/serialize.h"
#include "passes/convert_dtype.h"
#include "tools/export/onnx_import.h"
#include "tools/seqrun/cli.h"

namespace seqrun::cli {

void add_pipeline_options(CLI::App& command, PipelineArgs& args) {
  CLI::Option* level = command
                           .add_option("-O,--opt-level", args.opt_level,
                                       "Optimization level: -O0 runs no passes, -O1 the default")
                           ->check(CLI::Range(0, 1))
                           ->capture_default_str();
  args.passes_option = command
                           .add_option("--passes", args.passes,
                                       "Run exactly these passes, comma-separated, in order (instead of -O)")
                           ->delimiter(',')
                           ->allow_extra_args(false)
                           ->excludes(level);
}

void add_dtype_option(CLI::App& command, PipelineArgs& args) {
  command
      .add_option("--dtype", args.dtype,
                  "Run the nodes the CUDA backend takes in f16/bf16 (weights converted at load, f32 "
                  "accumulation, outputs stay f32); needs --backend cuda, the CPU runs f32")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
}

Status check_dtype_backend(const PipelineArgs& pipeline, const GlobalArgs& global) {
  if (pipeline.dtype == "f32" || global.backend == "cuda") return Status::ok();
  return make_error("--dtype {} needs --backend cuda; the CPU backend runs f32", pipeline.dtype);
}

runtime::SessionOptions make_session_options(const PipelineArgs& pipeline, const GlobalArgs& global) {
  runtime::SessionOptions options;
  options.opt_level = pipeline.opt_level;
  options.threads = global.threads;
  // main() has checked the name; "cuda" places nodes on {cuda, cpu} (CPU fallback).
  Result<std::vector<backends::Backend*>> backend_list = backends::backend_list_by_name(global.backend);
  if (backend_list.is_ok()) options.backends = backend_list.value();
  Result<DType> dtype = passes::parse_execution_dtype(pipeline.dtype);  // checked by CLI::IsMember
  if (dtype.is_ok()) options.dtype = dtype.value();
  if (pipeline.passes_option != nullptr && pipeline.passes_option->count() > 0) {
    std::vector<std::string> names;
    for (const std::string& n : pipeline.passes) {
      if (!n.empty()) names.push_back(n);
    }
    options.passes = names;
  }
  return options;
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

Result<OpenedModel> open_model(const std::string& path, const runtime::SessionOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open the model file", path);
  char magic[4] = {};
  in.read(magic, 4);
  const bool is_seqrun = in.gcount() == 4 && std::equal(magic, magic + 4, kFileMagic);
  in.close();

  OpenedModel model;
  if (is_seqrun || ends_with(path, ".seqrun")) {
    model.format = "seqrun";
    SEQRUN_ASSIGN(model.session, runtime::Session::load(path, options));
  } else {
    model.format = "onnx";
    SEQRUN_ASSIGN(std::unique_ptr<Graph> graph, onnx_import::import_onnx_file(path));
    Result<std::unique_ptr<runtime::Session>> session =
        runtime::Session::from_graph(std::move(graph), options);
    if (!session) return session.status().with_context(path);
    model.session = std::move(session).value();
  }
  return model;
}

int report_error(const std::string& message, int exit_code) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n') c = ' ';  // one line, always
  }
  std::fprintf(stderr, "seqrun: error: %s\n", line.c_str());
  return exit_code;
}

}  // namespace seqrun::cli
