// One model shared by many threads: 8 threads, each with its own session over the same runtime::Model (and,
// through the C API, the same seqrun_model_t), run the tiny GPT-2 100 times each on two input shapes; every
// result must be bit-identical to a single-thread run, which itself matches the ONNX test data's expected
// logits. A Session shared by several threads gives the same bits too. tools/tsan.sh runs this file under
// ThreadSanitizer.
//
// The C++ sessions ask for one kernel thread (SessionOptions::threads = 1); the C API sessions keep the
// default options (all cores). Under tools/tsan.sh OMP_NUM_THREADS=1 keeps every OpenMP team at one thread:
// parallelism comes from the sessions, as in a server with one session per worker thread — and libgomp is
// not TSan-instrumented, so OpenMP teams would only add false reports.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "ir/serialize.h"
#include "ir/text.h"
#include "runtime/model.h"
#include "runtime/seqrun.h"
#include "runtime/session.h"
#include "tools/export/onnx_import.h"

using namespace seqrun;
using runtime::Model;
using runtime::Session;
using runtime::SessionOptions;

namespace {

constexpr int kThreads = 8;
constexpr int kRunsPerThread = 100;

const std::string kModelDir = std::string(SEQRUN_TEST_DATA) + "/models/gpt2_opset17";

// The two ONNX test data sets: input_ids i64[1, 16] and i64[1, 7], with the expected logits.
struct Case {
  Tensor input;
  Tensor expected;
};

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  for (const char* set : {"test_data_set_0", "test_data_set_1"}) {
    Result<Tensor> input = onnx_import::read_tensor_proto_file(kModelDir + "/" + set + "/input_0.pb");
    Result<Tensor> expected = onnx_import::read_tensor_proto_file(kModelDir + "/" + set + "/output_0.pb");
    REQUIRE(input.is_ok());
    REQUIRE(expected.is_ok());
    cases.push_back({*input, *expected});
  }
  return cases;
}

std::unique_ptr<Graph> import_gpt2() {
  Result<std::unique_ptr<Graph>> graph = onnx_import::import_onnx_file(kModelDir + "/model.onnx");
  REQUIRE(graph.is_ok());
  return std::move(graph).value();
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Within the ONNX conformance tolerance of the expected logits (PyTorch's, via the exported test data).
void check_close(const Tensor& got, const Tensor& want) {
  REQUIRE(got.dtype() == DType::f32);
  REQUIRE(got.shape() == want.shape());
  int bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float g = got.data<float>()[i];
    const float w = want.data<float>()[i];
    if (!(std::fabs(g - w) <= 1e-4f + 1e-3f * std::fabs(w))) ++bad;
  }
  CHECK(bad == 0);
}

SessionOptions options_for(const std::string& backend) {
  SessionOptions options;
  options.threads = 1;
  options.backends = {backend == "cpu" ? &backends::cpu_backend() : &backends::cpu_reference_backend()};
  return options;
}

// What each worker thread reports; Catch's macros are only used on the main thread.
struct WorkerReport {
  int runs = 0;
  int mismatches = 0;
  std::string error;
};

}  // namespace

TEST_CASE("threads: one Model, a Session per thread, bit-identical to one thread") {
  const std::string backend = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  INFO("backend " << backend);
  const SessionOptions options = options_for(backend);
  Result<std::shared_ptr<const Model>> loaded = Model::from_graph(import_gpt2());
  REQUIRE(loaded.is_ok());
  const std::shared_ptr<const Model> model = *loaded;
  const std::string graph_before = print_graph(model->graph());
  const std::vector<Case> cases = load_cases();

  // The single-thread baseline, checked against the expected logits.
  std::vector<Tensor> baseline;
  {
    Result<std::unique_ptr<Session>> session = Session::from_model(model, options);
    REQUIRE(session.is_ok());
    for (const Case& c : cases) {
      Result<std::vector<Tensor>> out = (*session)->run({c.input});
      REQUIRE(out.is_ok());
      REQUIRE(out->size() == 1);
      check_close((*out)[0], c.expected);
      baseline.push_back((*out)[0]);
    }
  }

  std::vector<WorkerReport> reports(kThreads);
  std::vector<std::thread> workers;
  std::atomic<int> ready{0};
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      WorkerReport& report = reports[t];
      Result<std::unique_ptr<Session>> session = Session::from_model(model, options);
      ++ready;
      while (ready.load() < kThreads)
        std::this_thread::yield();  // start together, to overlap the plan builds
      if (!session) {
        report.error = session.status().message();
        return;
      }
      std::vector<Tensor> outputs;
      for (int r = 0; r < kRunsPerThread; ++r) {
        const size_t k = static_cast<size_t>(t + r) % cases.size();  // alternate shapes: both plans stay hot
        Status status = (*session)->run_into({cases[k].input}, outputs);
        if (!status) {
          report.error = status.message();
          return;
        }
        ++report.runs;
        if (outputs.size() != 1 || !same_bits(outputs[0], baseline[k])) ++report.mismatches;
      }
    });
  }
  for (std::thread& w : workers) w.join();

  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(reports[t].error == "");
    CHECK(reports[t].runs == kRunsPerThread);
    CHECK(reports[t].mismatches == 0);
  }
  // Nobody wrote to the shared model.
  CHECK(print_graph(model->graph()) == graph_before);
}

TEST_CASE("threads: one Session shared by several threads runs them one plan at a time, same bits") {
  const SessionOptions options = options_for("cpu");
  Result<std::shared_ptr<const Model>> model = Model::from_graph(import_gpt2());
  REQUIRE(model.is_ok());
  Result<std::unique_ptr<Session>> session = Session::from_model(*model, options);
  REQUIRE(session.is_ok());
  const std::vector<Case> cases = load_cases();
  std::vector<Tensor> baseline;
  for (const Case& c : cases) {
    Result<std::vector<Tensor>> out = (*session)->run({c.input});
    REQUIRE(out.is_ok());
    check_close((*out)[0], c.expected);
    baseline.push_back((*out)[0]);
  }

  constexpr int kSharing = 4;
  std::vector<WorkerReport> reports(kSharing);
  std::vector<std::thread> workers;
  for (int t = 0; t < kSharing; ++t) {
    workers.emplace_back([&, t] {
      WorkerReport& report = reports[t];
      for (int r = 0; r < kRunsPerThread / 2; ++r) {
        const size_t k = static_cast<size_t>(t + r) % cases.size();
        Result<std::vector<Tensor>> out = (*session)->run({cases[k].input});
        if (!out) {
          report.error = out.status().message();
          return;
        }
        ++report.runs;
        if (out->size() != 1 || !same_bits((*out)[0], baseline[k])) ++report.mismatches;
      }
    });
  }
  for (std::thread& w : workers) w.join();
  for (int t = 0; t < kSharing; ++t) {
    INFO("thread " << t);
    CHECK(reports[t].error == "");
    CHECK(reports[t].runs == kRunsPerThread / 2);
    CHECK(reports[t].mismatches == 0);
  }
  CHECK((*session)->plan_builds() == 2);  // one per shape, never rebuilt
}

TEST_CASE("threads: one seqrun_model_t, a seqrun_session_t per thread (C API), bit-identical to one thread") {
  const std::vector<Case> cases = load_cases();
  const std::string bytes = serialize_model(*import_gpt2());
  seqrun_model_t* model = nullptr;
  REQUIRE(seqrun_model_load_from_memory(bytes.data(), bytes.size(), nullptr, &model) == SEQRUN_OK);
  // Default options (threads = 0: all cores), as most applications would leave them.
  seqrun_session_options options;
  seqrun_session_options_init(&options);

  // Inputs are views of the cases' tensors, shared read-only by all threads.
  std::vector<seqrun_tensor_t*> inputs;
  for (const Case& c : cases) {
    seqrun_tensor_t* t = nullptr;
    REQUIRE(seqrun_tensor_view(SEQRUN_DTYPE_I64, c.input.shape().data(), c.input.shape().size(),
                               const_cast<void*>(c.input.raw()), c.input.nbytes(), &t) == SEQRUN_OK);
    inputs.push_back(t);
  }

  std::vector<Tensor> baseline;
  {
    seqrun_session_t* session = nullptr;
    REQUIRE(seqrun_session_create(model, &options, &session) == SEQRUN_OK);
    for (size_t k = 0; k < cases.size(); ++k) {
      seqrun_tensor_t* out = nullptr;
      REQUIRE(seqrun_session_run(session, &inputs[k], 1, &out, 1) == SEQRUN_OK);
      std::vector<float> values(
          static_cast<const float*>(seqrun_tensor_data(out)),
          static_cast<const float*>(seqrun_tensor_data(out)) + seqrun_tensor_num_elements(out));
      const int64_t* s = seqrun_tensor_shape(out);
      baseline.push_back(Tensor::from_vector<float>(Shape(s, s + seqrun_tensor_rank(out)), values));
      check_close(baseline.back(), cases[k].expected);
      seqrun_tensor_free(out);
    }
    seqrun_session_free(session);
  }

  std::vector<WorkerReport> reports(kThreads);
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      WorkerReport& report = reports[t];
      seqrun_session_t* session = nullptr;
      if (seqrun_session_create(model, &options, &session) != SEQRUN_OK) {
        report.error = seqrun_last_error();
        return;
      }
      // One output handle per shape, reused run after run (written in place).
      seqrun_tensor_t* outputs[2] = {nullptr, nullptr};
      for (int r = 0; r < kRunsPerThread; ++r) {
        const size_t k = static_cast<size_t>(t + r) % cases.size();
        if (seqrun_session_run(session, &inputs[k], 1, &outputs[k], 1) != SEQRUN_OK) {
          report.error = seqrun_last_error();
          break;
        }
        ++report.runs;
        const Tensor& want = baseline[k];
        const bool same = seqrun_tensor_num_bytes(outputs[k]) == want.nbytes() &&
                          std::memcmp(seqrun_tensor_data(outputs[k]), want.raw(), want.nbytes()) == 0;
        if (!same) ++report.mismatches;
      }
      // A failing call on this thread sets only this thread's message.
      seqrun_tensor_t* bad = nullptr;
      seqrun_tensor_create(SEQRUN_DTYPE_F32, nullptr, 1, nullptr, 0, &bad);
      if (std::string(seqrun_last_error()) != "seqrun_tensor_create: shape is NULL but rank is 1") {
        report.error = std::string("unexpected last error: ") + seqrun_last_error();
      }
      for (seqrun_tensor_t* o : outputs) seqrun_tensor_free(o);
      seqrun_session_free(session);
    });
  }
  for (std::thread& w : workers) w.join();
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(reports[t].error == "");
    CHECK(reports[t].runs == kRunsPerThread);
    CHECK(reports[t].mismatches == 0);
  }
  for (seqrun_tensor_t* t : inputs) seqrun_tensor_free(t);
  seqrun_model_free(model);
}
