// Model: load or adopt a graph, infer and verify it, run the pass pipeline, verify again; then it is
// read-only.
#include "runtime/model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "ir/infer.h"
#include "ir/serialize.h"
#include "ir/verify.h"

namespace seqrun::runtime {

namespace {

// Infers types, verifies, runs the pipeline the options ask for, and verifies again, so a model only ever
// holds a graph the verifier accepted.
Result<std::vector<passes::PassReport>> prepare_graph(Graph& graph, const ModelOptions& options) {
  if (options.opt_level < 0)
    return make_error("invalid optimization level {} (use 0 or 1)", options.opt_level);
  SEQRUN_TRY(verify_graph(graph));
  SEQRUN_TRY(infer_graph_types(graph));
  const std::vector<std::string> pipeline =
      options.passes ? *options.passes : passes::pipeline_for_level(options.opt_level);
  SEQRUN_ASSIGN(std::vector<passes::PassReport> reports, passes::run_passes(graph, pipeline));
  SEQRUN_TRY(verify_graph(graph));
  for (const passes::PassReport& r : reports) {
    spdlog::debug("pass {}: {}", r.pass, r.changed ? "changed the graph" : "no change");
  }
  return reports;
}

// A model from a loaded file: its graph, optimized, and its metadata with the producer.
Result<std::shared_ptr<const Model>> from_file(ModelFile file, const std::string& name,
                                               const ModelOptions& options) {
  if (!file.graph) return make_error("{}: the file holds no graph", name);
  std::map<std::string, std::string> metadata = std::move(file.metadata);
  if (!file.producer.empty()) metadata.emplace("producer", file.producer);
  return Model::from_graph(std::move(file.graph), options, std::move(metadata));
}

}  // namespace

Result<std::shared_ptr<const Model>> Model::load(const std::string& path, const ModelOptions& options) {
  SEQRUN_ASSIGN(ModelFile file, load_model(path));
  return from_file(std::move(file), path, options);
}

Result<std::shared_ptr<const Model>> Model::load_from_memory(const void* data, size_t size,
                                                             const std::string& name,
                                                             const ModelOptions& options) {
  if (data == nullptr) return make_error("{}: no data", name);
  const size_t rounded = (std::max<size_t>(size, 1) + 63) / 64 * 64;
  void* raw = std::aligned_alloc(64, rounded);
  if (raw == nullptr) return make_error("{}: cannot allocate {} bytes for the model", name, size);
  std::shared_ptr<void> bytes(raw, std::free);  // the graph's constants keep it alive
  std::memcpy(raw, data, size);
  SEQRUN_ASSIGN(ModelFile file, load_model_from_memory(static_cast<const uint8_t*>(raw), size, name, bytes));
  return from_file(std::move(file), name, options);
}

Result<std::shared_ptr<const Model>> Model::from_graph(std::unique_ptr<Graph> graph,
                                                       const ModelOptions& options,
                                                       std::map<std::string, std::string> metadata) {
  if (!graph) return make_error("Model::from_graph: the graph is null");
  Result<std::vector<passes::PassReport>> reports = prepare_graph(*graph, options);
  if (!reports) return reports.status().with_context("graph '" + graph->name() + "'");
  std::shared_ptr<Model> model(new Model());
  model->graph_ = std::move(graph);
  model->pass_reports_ = std::move(reports).value();
  model->metadata_ = std::move(metadata);
  return std::shared_ptr<const Model>(std::move(model));
}

std::vector<std::string> Model::input_names() const {
  std::vector<std::string> names;
  for (const Value* v : graph_->inputs()) names.push_back(v->name());
  return names;
}

std::vector<std::string> Model::output_names() const {
  std::vector<std::string> names;
  for (const Value* v : graph_->outputs()) names.push_back(v->name());
  return names;
}

}  // namespace seqrun::runtime
