// ExecutionPlan: results equal the reference executor, aliases share bytes, in-place chains, the memory
// report, the session's plan cache, caller-provided outputs, the dynamic-shape fallback, device copies, the
// profile, and every ONNX model in tests/data/models run through the plan.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "ir/infer.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/session.h"
#include "runtime/specialize.h"
#include "tools/export/onnx_import.h"

using namespace seqrun;
using backends::Backend;
using backends::DeviceKind;
using backends::Kernel;
using backends::KernelInfo;
using backends::TensorArg;
using runtime::ExecutionPlan;
using runtime::PlanOptions;
using runtime::Session;
using runtime::SessionOptions;

namespace {

// ---- fake backends -----------------------------------------------------------------------------------

// Every kernel call of the loop kernels below: node name, input and output data pointers.
struct Call {
  std::string node;
  std::vector<const void*> inputs;
  std::vector<const void*> outputs;
};

// f32 elementwise Exp/Neg/Relu and same-shape Add/Mul as plain loops, recording each call. With
// `inplace`, every output may overwrite input 0 or 1 (each element is read before it is written).
class LoopKernel : public Kernel {
 public:
  LoopKernel(const KernelInfo& info, bool inplace, std::vector<Call>* log)
      : op_(info.node->op()), node_(info.node->name()), inplace_(inplace), log_(log) {}
  bool can_run_in_place(int, int) const override { return inplace_; }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    Call call{node_, {}, {}};
    for (const TensorArg& a : in) call.inputs.push_back(a.data);
    for (const TensorArg& a : out) call.outputs.push_back(a.data);
    log_->push_back(call);
    const int64_t n = out[0].numel();
    const float* a = in[0].as<float>();
    float* y = out[0].as<float>();
    for (int64_t i = 0; i < n; ++i) {
      if (op_ == "Exp") y[i] = std::exp(a[i]);
      if (op_ == "Neg") y[i] = -a[i];
      if (op_ == "Relu") y[i] = a[i] > 0.0f ? a[i] : 0.0f;
      if (op_ == "Add") y[i] = a[i] + in[1].as<float>()[i];
      if (op_ == "Mul") y[i] = a[i] * in[1].as<float>()[i];
    }
    return Status::ok();
  }
  std::string label() const override { return inplace_ ? "loop:inplace" : "loop"; }

 private:
  std::string op_;
  std::string node_;
  bool inplace_;
  std::vector<Call>* log_;
};

// Accepts `ops` on f32 when all inputs have the output's shape.
backends::KernelFactory loop_factory(bool inplace, std::vector<Call>* log) {
  return [inplace, log](const KernelInfo& info) -> std::unique_ptr<Kernel> {
    for (const TensorArg& a : info.inputs) {
      if (a.dtype != DType::f32 || a.shape != info.outputs[0].shape) return nullptr;
    }
    return std::make_unique<LoopKernel>(info, inplace, log);
  };
}

// A host backend whose loop kernels may run in place.
class InplaceCpuBackend : public Backend {
 public:
  explicit InplaceCpuBackend(std::vector<std::string> ops) {
    for (const std::string& op : ops) kernels_.add(op, loop_factory(true, &calls));
  }
  std::string name() const override { return "inplace-cpu"; }
  DeviceKind device() const override { return DeviceKind::CPU; }
  Result<void*> allocate(size_t bytes) override { return std::aligned_alloc(64, (bytes + 63) / 64 * 64); }
  void deallocate(void* p) override { std::free(p); }
  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  std::vector<Call> calls;
};

// A "device" that is really host memory but counts what crosses the boundary and what it allocates.
class FakeDeviceBackend : public Backend {
 public:
  explicit FakeDeviceBackend(std::vector<std::string> ops) {
    for (const std::string& op : ops) kernels_.add(op, loop_factory(false, &calls));
  }
  std::string name() const override { return "fakedev"; }
  DeviceKind device() const override { return DeviceKind::CUDA; }
  Result<void*> allocate(size_t bytes) override {
    ++live_allocations;
    ++allocations;
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    owned.push_back(p);
    return p;
  }
  void deallocate(void* p) override {
    --live_allocations;
    std::free(p);
  }
  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    ++to_device;
    bytes_to_device += bytes;
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    ++to_host;
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  bool owns(const void* p, size_t within) const {
    for (const void* q : owned) {
      auto a = reinterpret_cast<uintptr_t>(q);
      auto b = reinterpret_cast<uintptr_t>(p);
      if (b >= a && b < a + within) return true;
    }
    return false;
  }
  std::vector<Call> calls;
  std::vector<void*> owned;
  int live_allocations = 0;
  int allocations = 0;
  int to_device = 0;
  int to_host = 0;
  size_t bytes_to_device = 0;
};

// ---- helpers -------------------------------------------------------------------------------------------

std::unique_ptr<ExecutionPlan> make_plan(const Graph& g, const std::vector<runtime::InputSpec>& specs,
                                         const PlanOptions& options) {
  auto specialized = runtime::specialize_graph(g, specs);
  INFO(specialized.status().message());
  REQUIRE(specialized.is_ok());
  auto plan = ExecutionPlan::build(std::move(specialized).value(), options);
  INFO(plan.status().message());
  REQUIRE(plan.is_ok());
  return std::move(plan).value();
}

PlanOptions on(std::vector<Backend*> list) {
  PlanOptions o;
  o.backends = std::move(list);
  return o;
}

Tensor ramp(const Shape& shape, float scale, float offset) {
  std::vector<float> v(static_cast<size_t>(num_elements(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(static_cast<int>(i % 13) - 6) * scale + offset;
  return Tensor::from_vector<float>(shape, v);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

const Call* find_call(const std::vector<Call>& calls, const std::string& node) {
  for (const Call& c : calls) {
    if (c.node == node) return &c;
  }
  return nullptr;
}

Node* named(Node* n, const std::string& name) {
  n->set_name(name);
  return n;
}

// x: f32[n] -> a = Exp -> b = Neg -> c = Relu -> y = Exp (output).
std::unique_ptr<Graph> unary_chain(const std::string& dim = "n") {
  auto g = std::make_unique<Graph>("chain");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol(dim)}));
  Node* a = named(g->add_node("Exp", {x}, 1, {}, {"a"}), "exp1");
  Node* b = named(g->add_node("Neg", {a->output(0)}, 1, {}, {"b"}), "neg");
  Node* c = named(g->add_node("Relu", {b->output(0)}, 1, {}, {"c"}), "relu");
  Node* y = named(g->add_node("Exp", {c->output(0)}, 1, {}, {"y"}), "exp2");
  g->set_outputs({y->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  return g;
}

std::vector<float> naive_unary_chain(const std::vector<float>& x) {
  std::vector<float> y;
  for (float v : x) {
    float c = -std::exp(v);
    y.push_back(std::exp(c > 0.0f ? c : 0.0f));
  }
  return y;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("plan: small graphs give the reference executor's bits") {
  // y = Softmax(Relu(x @ W + b) * x2), with a Transpose and a Reshape on the way.
  auto g = std::make_unique<Graph>("small");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim(4)}));
  Value* w = g->add_constant("W", ramp({4, 6}, 0.25f, 0.1f));
  Value* b = g->add_constant("b", ramp({6}, 0.5f, -0.2f));
  Node* mm = g->add_node("MatMul", {x, w}, 1, {}, {"xw"});
  Node* add = g->add_node("Add", {mm->output(0), b}, 1, {}, {"xwb"});
  Node* relu = g->add_node("Relu", {add->output(0)}, 1, {}, {"r"});
  Node* sq = g->add_node("Mul", {relu->output(0), relu->output(0)}, 1, {}, {"r2"});
  Node* tr = g->add_node("Transpose", {sq->output(0)}, 1, {{"perm", std::vector<int64_t>{1, 0}}}, {"t"});
  Value* shape = g->add_constant("shape", Tensor::from_vector<int64_t>({2}, {-1, 3}));
  Node* rs = g->add_node("Reshape", {tr->output(0), shape}, 1, {}, {"rs"});
  Node* sm = g->add_node("Softmax", {rs->output(0)}, 1, {{"axis", int64_t{-1}}}, {"y"});
  g->set_outputs({sm->output(0), relu->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());

  for (int64_t batch : {1, 3, 5}) {
    Tensor xt = ramp({batch, 4}, 0.3f, 0.05f);
    auto plan = make_plan(*g, {{DType::f32, {batch, 4}}}, on({&backends::cpu_reference_backend()}));
    CHECK_FALSE(plan->uses_reference_executor());
    std::vector<Tensor> got;
    REQUIRE(plan->run({xt}, got).is_ok());
    auto want = runtime::ReferenceExecutor().run(*g, {xt});
    REQUIRE(want.is_ok());
    REQUIRE(got.size() == 2);
    CHECK(same_bits(got[0], (*want)[0]));
    CHECK(same_bits(got[1], (*want)[1]));
    // Running again on the same plan (arena reused) gives the same bits.
    std::vector<Tensor> again;
    REQUIRE(plan->run({xt}, again).is_ok());
    CHECK(same_bits(again[0], (*want)[0]));
  }
}

TEST_CASE("plan: Reshape/Unsqueeze/Identity are aliases, never copies") {
  InplaceCpuBackend spy({"Exp", "Neg"});  // not in place here: Exp's input is the graph input
  auto g = std::make_unique<Graph>("aliases");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim(2), Dim(3)}));
  Node* e = named(g->add_node("Exp", {x}, 1, {}, {"e"}), "exp");
  Value* shape = g->add_constant("shape", Tensor::from_vector<int64_t>({1}, {6}));
  Node* r = g->add_node("Reshape", {e->output(0), shape}, 1, {}, {"flat"});
  Value* axes = g->add_constant("axes", Tensor::from_vector<int64_t>({1}, {0}));
  Node* u = g->add_node("Unsqueeze", {r->output(0), axes}, 1, {}, {"row"});
  Node* id = g->add_node("Identity", {u->output(0)}, 1, {}, {"row_copy"});
  Node* n = named(g->add_node("Neg", {id->output(0)}, 1, {}, {"y"}), "neg");
  Node* n2 = named(g->add_node("Neg", {e->output(0)}, 1, {}, {"z"}), "neg2");
  g->set_outputs({n->output(0), n2->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());

  auto plan = make_plan(*g, {{DType::f32, {2, 3}}}, on({&spy, &backends::cpu_reference_backend()}));
  const runtime::MemoryReport& m = plan->memory_report();
  CHECK(m.alias_values == 3);
  CHECK(m.arena_buffers == 1);  // only e: flat/row/row_copy are e's bytes, y and z are the outputs
  CHECK(m.arena_bytes == 64);   // 24 bytes rounded to the 64-byte alignment
  int alias_entries = 0;
  for (const runtime::PlacementEntry& p : plan->placement()) alias_entries += p.kernel == "alias" ? 1 : 0;
  CHECK(alias_entries == 3);

  Tensor xt = ramp({2, 3}, 0.5f, 0.0f);
  std::vector<Tensor> out;
  REQUIRE(plan->run({xt}, out).is_ok());
  const Call* exp = find_call(spy.calls, "exp");
  const Call* neg = find_call(spy.calls, "neg");
  const Call* neg2 = find_call(spy.calls, "neg2");
  REQUIRE(exp != nullptr);
  REQUIRE(neg != nullptr);
  REQUIRE(neg2 != nullptr);
  CHECK(exp->inputs[0] == xt.raw());         // the graph input is read in place
  CHECK(neg->inputs[0] == exp->outputs[0]);  // through three aliases: the same bytes
  CHECK(neg2->inputs[0] == exp->outputs[0]);
  CHECK(neg->outputs[0] == out[0].raw());  // outputs are written in place
  CHECK(neg2->outputs[0] == out[1].raw());
  CHECK(out[0].shape() == Shape{1, 6});
  std::vector<float> xs = xt.to_f32_vector();
  for (size_t i = 0; i < 6; ++i) {
    CHECK(out[0].data<float>()[i] == -std::exp(xs[i]));
    CHECK(out[1].data<float>()[i] == -std::exp(xs[i]));
  }
}

TEST_CASE("plan: an elementwise chain runs in place when the kernel allows it") {
  InplaceCpuBackend inplace({"Exp", "Neg", "Relu"});
  auto g = unary_chain();
  auto plan = make_plan(*g, {{DType::f32, {256}}}, on({&inplace}));
  const runtime::MemoryReport& m = plan->memory_report();
  CHECK(m.inplace_steps == 2);  // b over a, c over b (y is the pinned output)
  CHECK(m.arena_bytes == 1024);
  CHECK(m.no_reuse_bytes == 3 * 1024);

  Tensor xt = ramp({256}, 0.25f, 0.0f);
  std::vector<Tensor> out;
  REQUIRE(plan->run({xt}, out).is_ok());
  const Call* neg = find_call(inplace.calls, "neg");
  const Call* relu = find_call(inplace.calls, "relu");
  REQUIRE(neg != nullptr);
  REQUIRE(relu != nullptr);
  CHECK(neg->outputs[0] == neg->inputs[0]);
  CHECK(relu->outputs[0] == relu->inputs[0]);
  std::vector<float> want = naive_unary_chain(xt.to_f32_vector());
  for (size_t i = 0; i < want.size(); ++i) CHECK(out[0].data<float>()[i] == Approx(want[i]).epsilon(1e-6));
}

TEST_CASE("plan: no in-place write over a value that is read later") {
  InplaceCpuBackend inplace({"Exp", "Neg", "Add"});
  auto g = std::make_unique<Graph>("keep");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim(16)}));
  Node* a = named(g->add_node("Exp", {x}, 1, {}, {"a"}), "exp");
  Node* b = named(g->add_node("Neg", {a->output(0)}, 1, {}, {"b"}), "neg");
  Node* y = named(g->add_node("Add", {a->output(0), b->output(0)}, 1, {}, {"s"}), "add");
  Node* z = named(g->add_node("Neg", {y->output(0)}, 1, {}, {"y"}), "neg_out");
  g->set_outputs({z->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  auto plan = make_plan(*g, {{DType::f32, {16}}}, on({&inplace}));
  Tensor xt = ramp({16}, 0.1f, 0.0f);
  std::vector<Tensor> out;
  REQUIRE(plan->run({xt}, out).is_ok());
  const Call* neg = find_call(inplace.calls, "neg");
  const Call* add = find_call(inplace.calls, "add");
  REQUIRE(neg != nullptr);
  REQUIRE(add != nullptr);
  CHECK(neg->outputs[0] != neg->inputs[0]);  // a is still needed by the Add
  // The Add may write over a or b (both die there), never over both at once.
  CHECK((add->outputs[0] == add->inputs[0] || add->outputs[0] == add->inputs[1] ||
         (add->outputs[0] != add->inputs[0] && add->outputs[0] != add->inputs[1])));
  std::vector<float> xs = xt.to_f32_vector();
  for (size_t i = 0; i < 16; ++i) {
    const float av = std::exp(xs[i]);
    CHECK(out[0].data<float>()[i] == -(av + -av));
  }
}

TEST_CASE("plan: the memory report of a chain matches a hand count") {
  // Reference kernels never run in place: a [0,1], b [1,2], c [2,3]; y is the pinned output.
  auto g = unary_chain();
  auto plan = make_plan(*g, {{DType::f32, {256}}}, on({&backends::cpu_reference_backend()}));
  const runtime::MemoryReport& m = plan->memory_report();
  CHECK(m.arena_buffers == 3);
  CHECK(m.no_reuse_bytes == 3 * 1024);
  CHECK(m.lower_bound_bytes == 2 * 1024);
  CHECK(m.arena_bytes == 2 * 1024);  // a and c share
  CHECK(m.inplace_steps == 0);
  CHECK(m.pinned_input_bytes == 1024);
  CHECK(m.pinned_output_bytes == 1024);
  CHECK(m.weight_bytes == 0);
}

TEST_CASE("plan: the session caches one plan per shape signature") {
  auto s = Session::from_graph(unary_chain());
  REQUIRE(s.is_ok());
  const Session& session = **s;
  CHECK(session.plan_builds() == 0);
  Tensor x4 = ramp({4}, 0.5f, 0.0f);
  Tensor x7 = ramp({7}, 0.5f, 0.0f);
  REQUIRE(session.run(std::vector<Tensor>{x4}).is_ok());
  CHECK(session.plan_builds() == 1);
  auto again = session.run(std::vector<Tensor>{x4});
  REQUIRE(again.is_ok());
  CHECK(session.plan_builds() == 1);  // same shape: the plan is reused
  auto other = session.run(std::vector<Tensor>{x7});
  REQUIRE(other.is_ok());
  CHECK(session.plan_builds() == 2);  // new shape: re-planned
  REQUIRE(session.run(std::vector<Tensor>{x4}).is_ok());
  CHECK(session.plan_builds() == 2);
  CHECK(session.cached_plans() == 2);
  std::vector<float> want = naive_unary_chain(x7.to_f32_vector());
  for (size_t i = 0; i < want.size(); ++i) CHECK((*other)[0].data<float>()[i] == Approx(want[i]));

  SECTION("the cache keeps at most max_cached_plans") {
    SessionOptions options;
    options.max_cached_plans = 2;
    auto small = Session::from_graph(unary_chain(), options);
    REQUIRE(small.is_ok());
    for (int64_t n : {1, 2, 3, 1}) REQUIRE((*small)->run(std::vector<Tensor>{ramp({n}, 1.0f, 0.0f)}).is_ok());
    CHECK((*small)->cached_plans() == 2);
    CHECK((*small)->plan_builds() == 4);  // 1 was dropped when 3 came, so it was built again
  }
}

TEST_CASE("plan: run_into reuses the caller's output tensors") {
  auto s = Session::from_graph(unary_chain());
  REQUIRE(s.is_ok());
  std::vector<Tensor> outputs;
  Tensor x1 = ramp({32}, 0.5f, 0.0f);
  REQUIRE((*s)->run_into({x1}, outputs).is_ok());
  REQUIRE(outputs.size() == 1);
  const void* first = outputs[0].raw();
  Tensor x2 = ramp({32}, -0.25f, 1.0f);
  REQUIRE((*s)->run_into({x2}, outputs).is_ok());
  CHECK(outputs[0].raw() == first);  // same buffer, new values
  std::vector<float> want = naive_unary_chain(x2.to_f32_vector());
  for (size_t i = 0; i < want.size(); ++i) CHECK(outputs[0].data<float>()[i] == Approx(want[i]));

  SECTION("a caller tensor of the wrong shape is replaced") {
    std::vector<Tensor> wrong = {Tensor::empty(DType::f32, {31})};
    REQUIRE((*s)->run_into({x2}, wrong).is_ok());
    CHECK(wrong[0].shape() == Shape{32});
  }
  SECTION("an output tensor that is also an input is not written while it is read") {
    std::vector<Tensor> same = {x2};
    const std::vector<float> before = x2.to_f32_vector();
    REQUIRE((*s)->run_into({x2}, same).is_ok());
    CHECK(same[0].raw() != x2.raw());
    CHECK(x2.to_f32_vector() == before);
  }
}

TEST_CASE("plan: a session runs from several threads at once") {
  auto s = Session::from_graph(unary_chain());
  REQUIRE(s.is_ok());
  const Session& session = **s;
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&session, &failures, t] {
      const int64_t n = 8 + t % 2;  // two shapes: two plans, each shared by two threads
      Tensor x = ramp({n}, 0.25f * static_cast<float>(t + 1), 0.0f);
      std::vector<float> want = naive_unary_chain(x.to_f32_vector());
      std::vector<Tensor> out;
      for (int k = 0; k < 50; ++k) {
        if (!session.run_into({x}, out).is_ok()) {
          ++failures[t];
          continue;
        }
        for (size_t i = 0; i < want.size(); ++i) {
          if (std::fabs(out[0].data<float>()[i] - want[i]) > 1e-5f * std::fabs(want[i])) ++failures[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(failures == std::vector<int>{0, 0, 0, 0});
  CHECK(session.plan_builds() == 2);
}

TEST_CASE("plan: data-dependent shapes fall back to the reference executor") {
  auto g = std::make_unique<Graph>("nz");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("n")}));
  Node* nz = g->add_node("NonZero", {x}, 1, {}, {"where"});
  Node* cast = g->add_node("Cast", {nz->output(0)}, 1, {{"to", int64_t{1}}}, {"where_f"});
  Node* neg = g->add_node("Neg", {cast->output(0)}, 1, {}, {"y"});
  g->set_outputs({neg->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  auto s = Session::from_graph(std::move(g));
  REQUIRE(s.is_ok());
  Tensor xt = Tensor::from_vector<float>({6}, {0.0f, 2.0f, 0.0f, -1.0f, 0.0f, 3.0f});
  auto out = (*s)->run(std::vector<Tensor>{xt});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  CHECK((*out)[0].shape() == Shape{1, 3});
  CHECK((*out)[0].to_f32_vector() == std::vector<float>{-1.0f, -3.0f, -5.0f});
  auto report = (*s)->memory_report({{DType::f32, {6}}});
  REQUIRE(report.is_ok());
  CHECK(report->uses_reference_executor);
  CHECK(contains(report->fallback_reason, "where"));
  auto placement = (*s)->placement({{DType::f32, {6}}});
  REQUIRE(placement.is_ok());
  REQUIRE_FALSE(placement->empty());
  CHECK(placement->front().backend == "reference-executor");
  // A second run with the same shape reuses the (fallback) plan and writes into the given output.
  std::vector<Tensor> outputs = {Tensor::empty(DType::f32, {1, 3})};
  const void* buffer = outputs[0].raw();
  REQUIRE((*s)->run_into({xt}, outputs).is_ok());
  CHECK(outputs[0].raw() == buffer);
  CHECK(outputs[0].to_f32_vector() == std::vector<float>{-1.0f, -3.0f, -5.0f});
  CHECK((*s)->plan_builds() == 1);
}

TEST_CASE("plan: values crossing to another device get copy steps") {
  FakeDeviceBackend dev({"Relu", "Mul"});
  int to_device_at_build = 0;
  {
    // x -> Exp (cpu) -> Relu (dev) -> Mul by W (dev) -> Neg (cpu) -> y; the Mul result is also output m.
    auto g = std::make_unique<Graph>("devices");
    Value* x = g->add_input("x", TensorType(DType::f32, {Dim(8)}));
    Value* w = g->add_constant("W", ramp({8}, 0.5f, 0.25f));
    Node* e = named(g->add_node("Exp", {x}, 1, {}, {"e"}), "exp");
    Node* r = named(g->add_node("Relu", {e->output(0)}, 1, {}, {"r"}), "relu");
    Node* m = named(g->add_node("Mul", {r->output(0), w}, 1, {}, {"m"}), "mul");
    Node* y = named(g->add_node("Neg", {m->output(0)}, 1, {}, {"y"}), "neg");
    g->set_outputs({y->output(0), m->output(0)});
    REQUIRE(infer_graph_types(*g).is_ok());

    auto plan = make_plan(*g, {{DType::f32, {8}}}, on({&dev, &backends::cpu_reference_backend()}));
    CHECK(plan->device_names() == std::vector<std::string>{"cpu", "cuda"});
    to_device_at_build = dev.to_device;
    CHECK(to_device_at_build == 1);  // W is uploaded once, at build time
    CHECK(plan->memory_report().device_weight_bytes == 32);
    CHECK(plan->memory_report().copy_steps == 2);  // e to the device, m back for the Neg
    std::map<std::string, std::string> backend_of;
    std::vector<std::string> copy_labels;
    for (const runtime::PlacementEntry& p : plan->placement()) {
      backend_of[p.node] = p.backend;
      if (p.op == "Copy") copy_labels.push_back(p.kernel);
    }
    CHECK(backend_of["exp"] == "cpu-reference");
    CHECK(backend_of["relu"] == "fakedev");
    CHECK(backend_of["mul"] == "fakedev");
    CHECK(backend_of["neg"] == "cpu-reference");
    CHECK(copy_labels == std::vector<std::string>{"copy:cpu->cuda", "copy:cuda->cpu"});

    Tensor xt = ramp({8}, 0.5f, 0.0f);
    const int allocations_at_build = dev.allocations;
    CHECK(allocations_at_build == 2);  // the device arena and W
    std::vector<Tensor> out;
    for (int run = 1; run <= 2; ++run) {
      REQUIRE(plan->run({xt}, out).is_ok());
      CHECK(dev.to_device == to_device_at_build + run);  // e each run
      CHECK(dev.to_host == 2 * run);                     // m for the Neg, m as output
      auto want = runtime::ReferenceExecutor().run(*g, {xt});
      REQUIRE(want.is_ok());
      CHECK(out[0].to_f32_vector() == (*want)[0].to_f32_vector());
      CHECK(out[1].to_f32_vector() == (*want)[1].to_f32_vector());
    }
    CHECK(dev.allocations == allocations_at_build);  // runs allocate nothing on the device
    // The device kernels saw only device memory.
    const Call* relu = find_call(dev.calls, "relu");
    const Call* mul = find_call(dev.calls, "mul");
    REQUIRE(relu != nullptr);
    REQUIRE(mul != nullptr);
    const size_t big = 1 << 20;
    CHECK(dev.owns(relu->inputs[0], big));
    CHECK(dev.owns(relu->outputs[0], big));
    CHECK(dev.owns(mul->inputs[1], big));  // the uploaded W
    CHECK(mul->inputs[0] == relu->outputs[0]);
  }
  CHECK(dev.live_allocations == 0);  // the plan gave back its device arena and weights
}

TEST_CASE("plan: outputs that are inputs, constants or repeated values are copied") {
  auto g = std::make_unique<Graph>("passthrough");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim(3)}));
  Value* c = g->add_constant("c", Tensor::from_vector<float>({3}, {1.0f, 2.0f, 3.0f}));
  Node* id = g->add_node("Identity", {x}, 1, {}, {"x_id"});
  Node* n = g->add_node("Neg", {x}, 1, {}, {"n"});
  g->set_outputs({id->output(0), c, n->output(0), n->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  auto s = Session::from_graph(std::move(g), [] {
    SessionOptions o;
    o.opt_level = 0;
    return o;
  }());
  REQUIRE(s.is_ok());
  Tensor xt = Tensor::from_vector<float>({3}, {4.0f, -5.0f, 6.0f});
  auto out = (*s)->run(std::vector<Tensor>{xt});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  REQUIRE(out->size() == 4);
  CHECK((*out)[0].to_f32_vector() == std::vector<float>{4.0f, -5.0f, 6.0f});
  CHECK((*out)[0].raw() != xt.raw());
  CHECK((*out)[1].to_f32_vector() == std::vector<float>{1.0f, 2.0f, 3.0f});
  CHECK((*out)[2].to_f32_vector() == std::vector<float>{-4.0f, 5.0f, -6.0f});
  CHECK((*out)[3].to_f32_vector() == std::vector<float>{-4.0f, 5.0f, -6.0f});
  CHECK((*out)[2].raw() != (*out)[3].raw());
}

TEST_CASE("plan: empty tensors flow through the plan") {
  auto g = std::make_unique<Graph>("empty");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("n"), Dim(2)}));
  Node* e = g->add_node("Exp", {x}, 1, {}, {"e"});
  Node* r = g->add_node("ReduceSum", {e->output(0)}, 1, {{"keepdims", int64_t{0}}}, {"s"});
  g->set_outputs({e->output(0), r->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  auto s = Session::from_graph(std::move(g));
  REQUIRE(s.is_ok());
  auto out = (*s)->run(std::vector<Tensor>{Tensor::empty(DType::f32, {0, 2})});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  CHECK((*out)[0].shape() == Shape{0, 2});
  CHECK((*out)[1].shape() == Shape{});
  CHECK((*out)[1].data<float>()[0] == 0.0f);
}

TEST_CASE("plan: a profile has one event per node and writes a Chrome trace") {
  auto s = Session::from_graph(unary_chain());
  REQUIRE(s.is_ok());
  runtime::Profile profile;
  REQUIRE((*s)->run(std::vector<Tensor>{ramp({10}, 0.5f, 0.0f)}, &profile).is_ok());
  REQUIRE(profile.events().size() == 4);
  std::vector<std::string> ops;
  for (const runtime::ProfileEvent& e : profile.events()) {
    ops.push_back(e.op);
    CHECK(e.dur_us >= 0.0);
    REQUIRE(e.input_shapes.size() == 1);
    CHECK(e.input_shapes[0] == Shape{10});
    CHECK(e.output_shapes[0] == Shape{10});
    CHECK_FALSE(e.kernel.empty());
  }
  CHECK(ops == std::vector<std::string>{"Exp", "Neg", "Relu", "Exp"});
  CHECK(profile.events()[1].node == "neg");
  CHECK(profile.events()[1].start_us >= profile.events()[0].start_us);

  const std::string path =
      (std::filesystem::temp_directory_path() / ("seqrun_test_plan_" + std::to_string(::getpid()) + ".json"))
          .string();
  REQUIRE(profile.write_chrome_trace(path).is_ok());
  std::ifstream in(path);
  nlohmann::json trace = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  REQUIRE(trace["traceEvents"].is_array());
  REQUIRE(trace["traceEvents"].size() == 4);
  for (const auto& e : trace["traceEvents"]) {
    CHECK(e["ph"] == "X");
    CHECK(e.contains("ts"));
    CHECK(e.contains("dur"));
  }
  CHECK(trace["traceEvents"][2]["name"] == "Relu");
  CHECK(trace["traceEvents"][2]["args"]["node"] == "relu");
  CHECK(trace["traceEvents"][2]["args"]["input_shapes"][0][0] == 10);

  SECTION("an unwritable path is an error naming it") {
    Status st = profile.write_chrome_trace("/nonexistent/dir/trace.json");
    REQUIRE_FALSE(st.is_ok());
    CHECK(contains(st.message(), "/nonexistent/dir/trace.json"));
  }
}

TEST_CASE("plan: a node no backend accepts is an error naming it") {
  FakeDeviceBackend dev({"Relu"});
  auto g = unary_chain();
  auto specialized = runtime::specialize_graph(*g, {{DType::f32, {4}}});
  REQUIRE(specialized.is_ok());
  auto plan = ExecutionPlan::build(std::move(specialized).value(), on({&dev}));
  REQUIRE_FALSE(plan.is_ok());
  CHECK(contains(plan.status().message(), "Exp 'exp1'"));
  CHECK(contains(plan.status().message(), "fakedev"));
}

TEST_CASE("plan: an unspecialized graph is refused, naming the symbolic input") {
  auto plan = ExecutionPlan::build(unary_chain(), on({&backends::cpu_reference_backend()}));
  REQUIRE_FALSE(plan.is_ok());
  CHECK(contains(plan.status().message(), "input 'x'"));
  CHECK(contains(plan.status().message(), "specialize_graph"));
}

TEST_CASE("plan: the reference executor option still works") {
  SessionOptions options;
  options.executor = runtime::ExecutorKind::reference;
  auto s = Session::from_graph(unary_chain(), options);
  REQUIRE(s.is_ok());
  Tensor x = ramp({5}, 0.5f, 0.0f);
  auto out = (*s)->run(std::vector<Tensor>{x});
  REQUIRE(out.is_ok());
  CHECK((*s)->plan_builds() == 0);
  std::vector<float> want = naive_unary_chain(x.to_f32_vector());
  for (size_t i = 0; i < want.size(); ++i) CHECK((*out)[0].data<float>()[i] == Approx(want[i]));
}

// ---- real models -----------------------------------------------------------------------------------------

namespace {

std::vector<std::string> numbered(const std::filesystem::path& dir, const std::string& prefix) {
  std::vector<std::string> files;
  for (int i = 0;; ++i) {
    std::filesystem::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!std::filesystem::exists(p)) break;
    files.push_back(p.string());
  }
  return files;
}

}  // namespace

TEST_CASE("plan: every ONNX model in tests/data/models runs through the plan and matches PyTorch") {
  const std::filesystem::path root = std::filesystem::path(SEQRUN_TEST_DATA) / "models";
  std::vector<std::filesystem::path> models;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (std::filesystem::exists(entry.path() / "model.onnx")) models.push_back(entry.path());
  }
  std::sort(models.begin(), models.end());
  REQUIRE(models.size() >= 5);
  for (const auto& dir : models) {
    INFO("model " << dir.filename().string());
    auto graph = onnx_import::import_onnx_file((dir / "model.onnx").string());
    INFO(graph.status().message());
    REQUIRE(graph.is_ok());
    auto s = Session::from_graph(std::move(graph).value());
    INFO(s.status().message());
    REQUIRE(s.is_ok());
    const Session& session = **s;
    const std::filesystem::path set = dir / "test_data_set_0";
    std::vector<Tensor> inputs, expected;
    for (const std::string& f : numbered(set, "input_")) {
      auto t = onnx_import::read_tensor_proto_file(f);
      REQUIRE(t.is_ok());
      inputs.push_back(std::move(t).value());
    }
    for (const std::string& f : numbered(set, "output_")) {
      auto t = onnx_import::read_tensor_proto_file(f);
      REQUIRE(t.is_ok());
      expected.push_back(std::move(t).value());
    }
    auto plan = session.plan_for(runtime::input_specs_of(inputs));
    INFO(plan.status().message());
    REQUIRE(plan.is_ok());
    INFO("fallback: " << (*plan)->memory_report().fallback_reason);
    CHECK_FALSE((*plan)->uses_reference_executor());
    CHECK((*plan)->memory_report().arena_bytes <= (*plan)->memory_report().no_reuse_bytes);
    CHECK((*plan)->memory_report().arena_bytes >= (*plan)->memory_report().lower_bound_bytes);
    auto out = session.run(inputs);
    INFO(out.status().message());
    REQUIRE(out.is_ok());
    REQUIRE(out->size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      INFO("output " << i);
      REQUIRE((*out)[i].shape() == expected[i].shape());
      std::vector<float> got = (*out)[i].to_f32_vector();
      std::vector<float> want = expected[i].to_f32_vector();
      int bad = 0;
      for (size_t k = 0; k < want.size(); ++k) {
        if (!(std::fabs(got[k] - want[k]) <= 1e-5 + 1e-3 * std::fabs(want[k]))) ++bad;
      }
      CHECK(bad == 0);
    }
    CHECK(session.plan_builds() == 1);  // plan_for and run share the plan
  }
}
