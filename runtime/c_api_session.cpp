// The C API's sessions (runtime/seqrun.h): seqrun_session_create over a shared runtime::Model, and runs by
// position or by name, reusing the caller's output tensors. Same conventions as c_api.cpp: every pointer
// checked, status + per-thread message, no exception past the boundary.
#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ir/tensor.h"
#include "runtime/c_api_internal.h"
#include "runtime/seqrun.h"
#include "runtime/session.h"
#include "runtime/specialize.h"

using seqrun::Result;
using seqrun::Status;
using seqrun::Tensor;
using seqrun::c_api::clear_out;
using seqrun::c_api::fail;
using seqrun::c_api::guarded;
using seqrun::c_api::join_names;
using seqrun::runtime::Session;

namespace {

// Runs the session on `inputs` (model order). `reuse[j]` is the caller's tensor for output j or null;
// `results[j]` receives output j. A caller's tensor whose dtype and shape fit always receives the values in
// its own bytes (the executor may have put them elsewhere, e.g. when the tensor overlaps an input); other
// results that are not fresh plan outputs are cloned, so a handle never shares bytes with an input, a weight
// or a plan (the reference executor may hand those out as results).
seqrun_status run_session(const char* function, seqrun_session_t* session, const std::vector<Tensor>& inputs,
                          const std::vector<seqrun_tensor_t*>& reuse, std::vector<Tensor>& results) {
  const seqrun::Graph& graph = session->session->graph();
  Status checked = seqrun::runtime::check_input_specs(graph, seqrun::runtime::input_specs_of(inputs));
  if (!checked) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, checked.message());
  results.assign(reuse.size(), Tensor());
  for (size_t j = 0; j < reuse.size(); ++j) {
    if (reuse[j] != nullptr) results[j] = reuse[j]->tensor;
  }
  Status ran = session->session->run_into(inputs, results);
  if (!ran) return fail(SEQRUN_ERROR_RUN, function, ran.message());
  for (size_t j = 0; j < results.size(); ++j) {
    Tensor& result = results[j];
    if (reuse[j] != nullptr) {
      Tensor& mine = reuse[j]->tensor;
      if (result.raw() == mine.raw() && result.dtype() == mine.dtype() && result.shape() == mine.shape())
        continue;
      if (mine.dtype() == result.dtype() && mine.shape() == result.shape() && mine.raw() != nullptr) {
        if (result.nbytes() > 0) std::memmove(mine.raw(), result.raw(), result.nbytes());
        result = mine;
        continue;
      }
    }
    if (result.nbytes() > 0) result = result.clone();
  }
  return SEQRUN_OK;
}

// Hands `results[j]` to `outputs[j]`: into the caller's handle when there was one, else a new handle.
void deliver_outputs(std::vector<Tensor>& results, const std::vector<size_t>& positions,
                     seqrun_tensor_t** outputs, size_t num_outputs) {
  std::vector<std::unique_ptr<seqrun_tensor>> fresh(num_outputs);
  for (size_t i = 0; i < num_outputs; ++i) {
    if (outputs[i] == nullptr) fresh[i] = std::make_unique<seqrun_tensor>();
  }
  // Nothing below allocates (tensors are moved), so no handle is left half delivered.
  for (size_t i = 0; i < num_outputs; ++i) {
    if (outputs[i] != nullptr) {
      outputs[i]->tensor = std::move(results[positions[i]]);
    } else {
      fresh[i]->tensor = std::move(results[positions[i]]);
      outputs[i] = fresh[i].release();
    }
  }
}

// Checks the handle arrays of a run: no NULL input, no output handle given twice.
seqrun_status check_run_arrays(const char* function, const seqrun_tensor_t* const* inputs, size_t num_inputs,
                               seqrun_tensor_t** outputs, size_t num_outputs) {
  if (num_inputs > 0 && inputs == nullptr) {
    return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "inputs is NULL");
  }
  if (num_outputs > 0 && outputs == nullptr) {
    return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "outputs is NULL");
  }
  for (size_t i = 0; i < num_inputs; ++i) {
    if (inputs[i] == nullptr) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, fmt::format("inputs[{}] is NULL", i));
    }
  }
  std::set<const seqrun_tensor_t*> seen;
  for (size_t i = 0; i < num_outputs; ++i) {
    if (outputs[i] != nullptr && !seen.insert(outputs[i]).second) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function,
                  fmt::format("outputs[{}] is a tensor already given as an earlier output", i));
    }
  }
  return SEQRUN_OK;
}

}  // namespace

extern "C" {

// ---- sessions ---------------------------------------------------------------------------------------

void seqrun_session_options_init(seqrun_session_options* options) {
  if (options == nullptr) return;
  options->threads = 0;
  options->executor = SEQRUN_EXECUTOR_PLANNED;
  options->check_finite = 0;
}

seqrun_status seqrun_session_create(const seqrun_model_t* model, const seqrun_session_options* options,
                                    seqrun_session_t** out) {
  const char* fn = "seqrun_session_create";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    if (model == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "model is NULL");
    seqrun::runtime::SessionOptions session_options;
    if (options != nullptr) {
      if (options->threads < 0) {
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                    fmt::format("invalid threads {} (use 0 for all cores)", options->threads));
      }
      if (options->executor != SEQRUN_EXECUTOR_PLANNED && options->executor != SEQRUN_EXECUTOR_REFERENCE) {
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                    fmt::format("unknown executor {}", static_cast<int>(options->executor)));
      }
      session_options.threads = options->threads;
      session_options.executor = options->executor == SEQRUN_EXECUTOR_REFERENCE
                                     ? seqrun::runtime::ExecutorKind::reference
                                     : seqrun::runtime::ExecutorKind::planned;
      session_options.check_finite = options->check_finite != 0;
    }
    // "All cores" is resolved here rather than by the session (backends::cpu_threads), which would also
    // change the calling thread's OpenMP setting and touches a process-wide value sessions on other threads
    // read and write.
    if (session_options.threads == 0) {
      session_options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
    Result<std::unique_ptr<Session>> session = Session::from_model(model->model, session_options);
    if (!session) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, session.status().message());
    auto handle = std::make_unique<seqrun_session>();
    handle->session = std::shared_ptr<Session>(std::move(session).value());
    *out = handle.release();
    return SEQRUN_OK;
  });
}

void seqrun_session_free(seqrun_session_t* session) {
  delete session;
}

seqrun_status seqrun_session_run(seqrun_session_t* session, const seqrun_tensor_t* const* inputs,
                                 size_t num_inputs, seqrun_tensor_t** outputs, size_t num_outputs) {
  const char* fn = "seqrun_session_run";
  return guarded(fn, [&]() -> seqrun_status {
    if (session == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "session is NULL");
    seqrun_status arrays = check_run_arrays(fn, inputs, num_inputs, outputs, num_outputs);
    if (arrays != SEQRUN_OK) return arrays;
    const seqrun::Graph& graph = session->session->graph();
    if (num_inputs != graph.inputs().size()) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                  fmt::format("{} inputs given, the model takes {} ({})", num_inputs, graph.inputs().size(),
                              join_names(session->session->input_names())));
    }
    if (num_outputs != graph.outputs().size()) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                  fmt::format("room for {} outputs given, the model has {} ({})", num_outputs,
                              graph.outputs().size(), join_names(session->session->output_names())));
    }
    std::vector<Tensor> in;
    for (size_t i = 0; i < num_inputs; ++i) in.push_back(inputs[i]->tensor);
    std::vector<seqrun_tensor_t*> reuse(outputs, outputs + num_outputs);
    std::vector<Tensor> results;
    seqrun_status ran = run_session(fn, session, in, reuse, results);
    if (ran != SEQRUN_OK) return ran;
    std::vector<size_t> positions;
    for (size_t j = 0; j < num_outputs; ++j) positions.push_back(j);
    deliver_outputs(results, positions, outputs, num_outputs);
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_session_run_named(seqrun_session_t* session, const char* const* input_names,
                                       const seqrun_tensor_t* const* inputs, size_t num_inputs,
                                       const char* const* output_names, seqrun_tensor_t** outputs,
                                       size_t num_outputs) {
  const char* fn = "seqrun_session_run_named";
  return guarded(fn, [&]() -> seqrun_status {
    if (session == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "session is NULL");
    if (num_inputs > 0 && input_names == nullptr) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "input_names is NULL");
    }
    if (num_outputs > 0 && output_names == nullptr) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "output_names is NULL");
    }
    seqrun_status arrays = check_run_arrays(fn, inputs, num_inputs, outputs, num_outputs);
    if (arrays != SEQRUN_OK) return arrays;
    const std::vector<std::string> expected_inputs = session->session->input_names();
    const std::vector<std::string> expected_outputs = session->session->output_names();

    // Inputs: each model input exactly once.
    std::vector<Tensor> in(expected_inputs.size());
    std::vector<bool> bound(expected_inputs.size(), false);
    for (size_t i = 0; i < num_inputs; ++i) {
      if (input_names[i] == nullptr) {
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, fmt::format("input_names[{}] is NULL", i));
      }
      size_t k = 0;
      while (k < expected_inputs.size() && expected_inputs[k] != input_names[i]) ++k;
      if (k == expected_inputs.size()) {
        return fail(SEQRUN_ERROR_NOT_FOUND, fn,
                    fmt::format("unknown input '{}' (the model's inputs: {})", input_names[i],
                                join_names(expected_inputs)));
      }
      if (bound[k]) {
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                    fmt::format("input '{}' is given twice", input_names[i]));
      }
      bound[k] = true;
      in[k] = inputs[i]->tensor;
    }
    std::vector<std::string> missing;
    for (size_t k = 0; k < expected_inputs.size(); ++k) {
      if (!bound[k]) missing.push_back(expected_inputs[k]);
    }
    if (!missing.empty()) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                  fmt::format("missing input{} {} (the model's inputs: {})", missing.size() > 1 ? "s" : "",
                              join_names(missing), join_names(expected_inputs)));
    }

    // Outputs: any subset, each at most once.
    std::vector<size_t> positions;
    std::vector<seqrun_tensor_t*> reuse(expected_outputs.size(), nullptr);
    std::vector<bool> requested(expected_outputs.size(), false);
    for (size_t i = 0; i < num_outputs; ++i) {
      if (output_names[i] == nullptr) {
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, fmt::format("output_names[{}] is NULL", i));
      }
      size_t k = 0;
      while (k < expected_outputs.size() && expected_outputs[k] != output_names[i]) ++k;
      if (k == expected_outputs.size()) {
        return fail(SEQRUN_ERROR_NOT_FOUND, fn,
                    fmt::format("unknown output '{}' (the model's outputs: {})", output_names[i],
                                join_names(expected_outputs)));
      }
      if (requested[k]) {
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                    fmt::format("output '{}' is asked for twice", output_names[i]));
      }
      requested[k] = true;
      reuse[k] = outputs[i];
      positions.push_back(k);
    }

    std::vector<Tensor> results;
    seqrun_status ran = run_session(fn, session, in, reuse, results);
    if (ran != SEQRUN_OK) return ran;
    deliver_outputs(results, positions, outputs, num_outputs);
    return SEQRUN_OK;
  });
}

}  // extern "C"
