// Session: load or adopt a graph, run the pass pipeline and the verifier, then run it by position or by name.
#include "runtime/session.h"

#include <set>

#include <spdlog/spdlog.h>

#include "ir/infer.h"
#include "ir/serialize.h"
#include "ir/verify.h"
#include "runtime/executor.h"

namespace seqrun::runtime {

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

// Infers types, verifies, runs the pipeline the options ask for, and verifies again, so a session
// only ever holds a graph the verifier accepted.
Result<std::vector<passes::PassReport>> prepare_graph(Graph& graph, const SessionOptions& options) {
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

}  // namespace

Result<std::unique_ptr<Session>> Session::load(const std::string& path, const SessionOptions& options) {
  SEQRUN_ASSIGN(ModelFile file, load_model(path));
  if (!file.graph) return make_error("{}: the file holds no graph", path);
  SEQRUN_ASSIGN(std::unique_ptr<Session> session, from_graph(std::move(file.graph), options));
  session->metadata_ = std::move(file.metadata);
  if (!file.producer.empty()) session->metadata_.emplace("producer", file.producer);
  return session;
}

Result<std::unique_ptr<Session>> Session::from_graph(std::unique_ptr<Graph> graph,
                                                     const SessionOptions& options) {
  if (!graph) return make_error("Session::from_graph: the graph is null");
  Result<std::vector<passes::PassReport>> reports = prepare_graph(*graph, options);
  if (!reports) return reports.status().with_context("graph '" + graph->name() + "'");
  std::unique_ptr<Session> session(new Session());
  session->graph_ = std::move(graph);
  session->pass_reports_ = std::move(reports).value();
  session->options_ = options;
  return session;
}

std::vector<std::string> Session::input_names() const {
  std::vector<std::string> names;
  for (const Value* v : graph_->inputs()) names.push_back(v->name());
  return names;
}

std::vector<std::string> Session::output_names() const {
  std::vector<std::string> names;
  for (const Value* v : graph_->outputs()) names.push_back(v->name());
  return names;
}

Result<std::vector<Tensor>> Session::run(const std::vector<Tensor>& inputs) const {
  // threads: the reference executor is single-threaded; the value is kept for the backends.
  SEQRUN_TRY(validate_inputs(*graph_, inputs));
  ExecOptions exec_options;
  exec_options.check_finite = options_.check_finite;
  return ReferenceExecutor(exec_options).run(*graph_, inputs);
}

Result<std::map<std::string, Tensor>> Session::run(const std::map<std::string, Tensor>& inputs) const {
  const std::vector<std::string> expected = input_names();
  const std::set<std::string> expected_set(expected.begin(), expected.end());
  std::vector<std::string> unknown;
  for (const auto& [name, tensor] : inputs) {
    if (expected_set.count(name) == 0) unknown.push_back(name);
  }
  if (!unknown.empty()) {
    return make_error("unknown input{} {} (the model's inputs: {})", unknown.size() > 1 ? "s" : "",
                      join_names(unknown), join_names(expected));
  }
  std::vector<std::string> missing;
  std::vector<Tensor> ordered;
  for (const std::string& name : expected) {
    auto it = inputs.find(name);
    if (it == inputs.end()) {
      missing.push_back(name);
    } else {
      ordered.push_back(it->second);
    }
  }
  if (!missing.empty()) {
    return make_error("missing input{} {} (the model's inputs: {})", missing.size() > 1 ? "s" : "",
                      join_names(missing), join_names(expected));
  }
  SEQRUN_ASSIGN(std::vector<Tensor> outputs, run(ordered));
  std::map<std::string, Tensor> named;
  const std::vector<std::string> names = output_names();
  for (size_t i = 0; i < names.size() && i < outputs.size(); ++i) named.emplace(names[i], outputs[i]);
  return named;
}

}  // namespace seqrun::runtime
