// Session: over a shared Model (loaded or adopted, optimized and verified), run it by position or by name
// through a cached, shape-specialized execution plan (or the reference executor).
#include "runtime/session.h"

#include <algorithm>
#include <iterator>
#include <set>

#include <spdlog/spdlog.h>

#include "passes/convert_dtype.h"
#include "runtime/executor.h"

namespace seqrun::runtime {

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

ModelOptions model_options_of(const SessionOptions& options) {
  ModelOptions model_options;
  model_options.opt_level = options.opt_level;
  model_options.passes = options.passes;
  return model_options;
}

// SessionOptions::dtype needs a device backend to run on and the planned executor.
Status check_dtype_option(const SessionOptions& options) {
  if (options.dtype == DType::f32) return Status::ok();
  if (options.dtype != DType::f16 && options.dtype != DType::bf16) {
    return make_error("SessionOptions::dtype must be f32, f16 or bf16, is {}", dtype_name(options.dtype));
  }
  bool device = false;
  for (const backends::Backend* b : options.backends) {
    device = device || (b != nullptr && b->device() != backends::DeviceKind::CPU);
  }
  if (!device || options.executor != ExecutorKind::planned) {
    return make_error("dtype {} needs a CUDA backend and the planned executor; the CPU backends run f32",
                      dtype_name(options.dtype));
  }
  return Status::ok();
}

// convert-dtype's predicate for a plan: a node converts when, asked with the low-dtype types, the first
// backend whose kernel factory takes it is not the CPU (the CPU kernels run f32).
passes::ConvertPredicate runs_on_device(const std::vector<backends::Backend*>& list, int threads) {
  return [list, threads](const Node& node, const passes::ProposedTypes& types) {
    backends::KernelInfo info;
    info.node = &node;
    info.threads = threads;
    for (int i = 0; i < node.num_inputs(); ++i) {
      const Value* v = node.input(i);
      const std::optional<Shape> shape = v != nullptr ? v->type().static_shape() : std::nullopt;
      if (v != nullptr && !shape) return false;
      const bool same_bytes = v != nullptr && v->is_constant() && v->constant().dtype() == types.inputs[i];
      void* data = same_bytes ? const_cast<void*>(v->constant().raw()) : nullptr;
      info.inputs.push_back(v == nullptr ? backends::TensorArg{}
                                         : backends::TensorArg{types.inputs[i], *shape, data});
    }
    for (int i = 0; i < node.num_outputs(); ++i) {
      const std::optional<Shape> shape = node.output(i)->type().static_shape();
      if (!shape) return false;
      info.outputs.push_back(backends::TensorArg{types.outputs[i], *shape, nullptr});
    }
    for (backends::Backend* b : list) {
      if (b->kernels().create(info)) return b->device() != backends::DeviceKind::CPU;
    }
    return false;
  };
}

}  // namespace

Result<std::unique_ptr<Session>> Session::load(const std::string& path, const SessionOptions& options) {
  SEQRUN_ASSIGN(std::shared_ptr<const Model> model, Model::load(path, model_options_of(options)));
  return from_model(std::move(model), options);
}

Result<std::unique_ptr<Session>> Session::from_graph(std::unique_ptr<Graph> graph,
                                                     const SessionOptions& options) {
  if (!graph) return make_error("Session::from_graph: the graph is null");
  SEQRUN_ASSIGN(std::shared_ptr<const Model> model,
                Model::from_graph(std::move(graph), model_options_of(options)));
  return from_model(std::move(model), options);
}

Result<std::unique_ptr<Session>> Session::from_model(std::shared_ptr<const Model> model,
                                                     const SessionOptions& options) {
  if (!model) return make_error("Session::from_model: the model is null");
  SEQRUN_TRY(check_dtype_option(options));
  std::unique_ptr<Session> session(new Session());
  session->graph_ = &model->graph();
  session->model_ = std::move(model);
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

Result<std::shared_ptr<ExecutionPlan>> Session::plan_for(const std::vector<InputSpec>& inputs) const {
  SEQRUN_TRY(check_input_specs(*graph_, inputs));
  return cached_plan(inputs);
}

Result<std::shared_ptr<ExecutionPlan>> Session::cached_plan(const std::vector<InputSpec>& inputs) const {
  const std::string key = shape_signature(inputs);
  std::lock_guard<std::mutex> lock(plans_mutex_);
  auto it = plans_.find(key);
  if (it != plans_.end()) {
    plans_by_use_.splice(plans_by_use_.end(), plans_by_use_, it->second.use);  // now the most recent
    return it->second.plan;
  }
  // Built under the lock: a second thread asking for the same shape waits instead of building it twice.
  SEQRUN_ASSIGN(std::unique_ptr<Graph> specialized, specialize_graph(*graph_, inputs));
  PlanOptions plan_options;
  plan_options.backends = options_.backends;
  plan_options.threads = options_.threads > 0 ? options_.threads : backends::cpu_threads();
  if (options_.dtype != DType::f32) {
    passes::ConvertDTypeOptions convert;
    convert.dtype = options_.dtype;
    convert.predicate = runs_on_device(options_.backends, plan_options.threads);
    Result<passes::ConvertDTypeReport> converted = passes::convert_float_dtype(*specialized, convert);
    if (!converted)
      return converted.status().with_context("graph '" + graph_->name() + "' in " +
                                             std::string(dtype_name(options_.dtype)));
    spdlog::debug("{} plan for {}: {} nodes converted, {} constants, {} casts", dtype_name(options_.dtype),
                  key, converted->converted_nodes, converted->converted_constants, converted->casts);
  }
  plan_options.check_finite = options_.check_finite;
  Result<std::unique_ptr<ExecutionPlan>> built = ExecutionPlan::build(std::move(specialized), plan_options);
  if (!built) return built.status().with_context("graph '" + graph_->name() + "' with inputs " + key);
  ++plan_builds_;
  std::shared_ptr<ExecutionPlan> plan(std::move(built).value());
  spdlog::debug("plan for {}: {}", key,
                plan->uses_reference_executor()
                    ? "reference executor (" + plan->memory_report().fallback_reason + ")"
                    : std::to_string(plan->memory_report().arena_bytes) + " arena bytes");
  plans_by_use_.push_back(key);
  plans_.emplace(key, CachedPlan{plan, std::prev(plans_by_use_.end())});
  const size_t limit = std::max<size_t>(options_.max_cached_plans, 1);
  while (plans_.size() > limit) {
    plans_.erase(plans_by_use_.front());
    plans_by_use_.pop_front();
  }
  return plan;
}

Result<MemoryReport> Session::memory_report(const std::vector<InputSpec>& inputs) const {
  SEQRUN_ASSIGN(std::shared_ptr<ExecutionPlan> plan, plan_for(inputs));
  return plan->memory_report();
}

Result<std::vector<PlacementEntry>> Session::placement(const std::vector<InputSpec>& inputs) const {
  SEQRUN_ASSIGN(std::shared_ptr<ExecutionPlan> plan, plan_for(inputs));
  return plan->placement();
}

int Session::plan_builds() const {
  std::lock_guard<std::mutex> lock(plans_mutex_);
  return plan_builds_;
}

size_t Session::cached_plans() const {
  std::lock_guard<std::mutex> lock(plans_mutex_);
  return plans_.size();
}

Status Session::run_into(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs,
                         Profile* profile) const {
  SEQRUN_TRY(validate_inputs(*graph_, inputs));
  if (options_.executor == ExecutorKind::reference) {
    ExecOptions exec_options;
    exec_options.check_finite = options_.check_finite;
    const double start = profile != nullptr ? profile->now_us() : 0.0;
    SEQRUN_ASSIGN(outputs, ReferenceExecutor(exec_options).run(*graph_, inputs));
    if (profile != nullptr) {
      ProfileEvent e;
      e.op = "graph";
      e.node = graph_->name();
      e.kernel = "reference-executor";
      e.category = "graph";
      for (const Tensor& t : inputs) e.input_shapes.push_back(t.shape());
      for (const Tensor& t : outputs) e.output_shapes.push_back(t.shape());
      e.start_us = start;
      e.dur_us = profile->now_us() - start;
      profile->add(std::move(e));
    }
    return Status::ok();
  }
  SEQRUN_ASSIGN(std::shared_ptr<ExecutionPlan> plan, cached_plan(input_specs_of(inputs)));
  return plan->run(inputs, outputs, profile);
}

Result<std::vector<Tensor>> Session::run(const std::vector<Tensor>& inputs, Profile* profile) const {
  std::vector<Tensor> outputs;
  SEQRUN_TRY(run_into(inputs, outputs, profile));
  return outputs;
}

Result<std::map<std::string, Tensor>> Session::run(const std::map<std::string, Tensor>& inputs,
                                                   Profile* profile) const {
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
  SEQRUN_ASSIGN(std::vector<Tensor> outputs, run(ordered, profile));
  std::map<std::string, Tensor> named;
  const std::vector<std::string> names = output_names();
  for (size_t i = 0; i < names.size() && i < outputs.size(); ++i) named.emplace(names[i], outputs[i]);
  return named;
}

}  // namespace seqrun::runtime
