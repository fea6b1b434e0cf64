// The CPU backend's fast kernels (oneDNN + AVX2/OpenMP) against the reference kernels.
//
// Every case builds a one-node graph, asks cpu_backend() for a kernel through the Backend interface
// (checking that a fast kernel, not the reference fallback, took the node), prepares and runs it on
// the test's buffers, and compares with the reference kernel (KernelRegistry::global()) on the same
// inputs, by the normalized error sum((a - b)^2) / sum(b^2). Bounds per op family:
//   data movement (Gather, Transpose, Concat, Split, Slice): exactly 0 (bytes are copied);
//   matmul / conv / deform-conv: 1e-8 (f32 accumulation in another order vs the reference's double;
//     the observed values are ~1e-13..1e-11 at these sizes);
//   elementwise, norms, softmax, reductions: 1e-9 (vector exp/tanh/erf are within ~5e-7 relative
//     per element, i.e. ~1e-13 in this measure; reductions sum in f32 vs double);
//   fused activations through oneDNN's post-op: 1e-8.
// The shapes come from a fixed-seed generator, so failures reproduce.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/reference/kernel.h"
#include "ir/graph.h"
#include "ir/infer.h"

using namespace seqrun;
using seqrun::backends::KernelInfo;
using seqrun::backends::TensorArg;

namespace {

std::mt19937& rng() {
  static std::mt19937 gen(1234);
  return gen;
}

Tensor random_f32(const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng());
  return t;
}

int64_t random_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

[[maybe_unused]] Tensor i64s(const Shape& shape, const std::vector<int64_t>& values) {
  return Tensor::from_vector<int64_t>(shape, values);
}

// One input of a case: a tensor (undefined = absent optional input), constant or fed at run time.
struct Input {
  Tensor tensor;
  bool constant = false;
};
Input fed(Tensor t) {
  return {std::move(t), false};
}
Input constant(Tensor t) {
  return {std::move(t), true};
}
Input absent() {
  return {Tensor(), false};
}

struct Case {
  Case(std::string op_name, std::vector<Input> ins, std::map<std::string, Attribute> attributes = {},
       int outputs = 1)
      : op(std::move(op_name)), inputs(std::move(ins)), attrs(std::move(attributes)), num_outputs(outputs) {}
  std::string op;
  std::vector<Input> inputs;
  std::map<std::string, Attribute> attrs;
  int num_outputs = 1;
};

// The case as a one-node graph with inferred output types.
struct Built {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
};

Built build(const Case& c) {
  Built b;
  std::vector<Value*> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Input& in = c.inputs[i];
    const std::string name = "in" + std::to_string(i);
    if (!in.tensor.defined()) {
      ins.push_back(nullptr);
    } else if (in.constant) {
      ins.push_back(b.graph->add_constant(name, in.tensor));
    } else {
      ins.push_back(b.graph->add_input(name, TensorType::from_shape(in.tensor.dtype(), in.tensor.shape())));
    }
  }
  b.node = b.graph->add_node(c.op, ins, c.num_outputs, c.attrs);
  b.node->set_name("n");
  Status st = infer_node_types(*b.node);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return b;
}

KernelInfo info_for(const Built& b, const Case& c) {
  KernelInfo info;
  info.node = b.node;
  for (const Input& in : c.inputs) {
    TensorArg a;
    if (in.tensor.defined()) {
      a.dtype = in.tensor.dtype();
      a.shape = in.tensor.shape();
      if (in.constant) a.data = const_cast<void*>(in.tensor.raw());
    }
    info.inputs.push_back(a);
  }
  for (int i = 0; i < b.node->num_outputs(); ++i) {
    const TensorType& t = b.node->output(i)->type();
    auto shape = t.static_shape();
    REQUIRE(shape.has_value());
    info.outputs.push_back({t.dtype(), *shape, nullptr});
  }
  return info;
}

std::unique_ptr<backends::Kernel> create(const Case& c, Built& b, KernelInfo& info) {
  b = build(c);
  info = info_for(b, c);
  return backends::cpu_backend().kernels().create(info);
}

struct FastRun {
  std::string label;
  std::vector<Tensor> outputs;
};

// Runs the case on the fast CPU kernel; `in_place` aliases output 0 to input 0's buffer.
FastRun run_fast(const Case& c, bool in_place = false) {
  Built b;
  KernelInfo info;
  auto kernel = create(c, b, info);
  REQUIRE(kernel != nullptr);
  FastRun r;
  r.label = kernel->label();
  Status st = kernel->prepare(info);
  INFO(st.message());
  REQUIRE(st.is_ok());
  const size_t ws_bytes = std::max<size_t>(kernel->workspace_bytes(), 64);
  void* workspace = std::aligned_alloc(64, (ws_bytes + 63) / 64 * 64);
  std::vector<Tensor> held;
  std::vector<TensorArg> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    TensorArg a = info.inputs[i];
    if (c.inputs[i].tensor.defined()) {
      Tensor copy = c.inputs[i].constant ? c.inputs[i].tensor : c.inputs[i].tensor.clone();
      held.push_back(copy);
      a.data = copy.raw();
    }
    ins.push_back(a);
  }
  std::vector<TensorArg> outs = info.outputs;
  for (size_t i = 0; i < outs.size(); ++i) {
    if (in_place && i == 0) {
      outs[0].data = ins[0].data;
      r.outputs.push_back(held[0]);
      continue;
    }
    Tensor t = Tensor::empty(outs[i].dtype, outs[i].shape);
    // Poison the output so a kernel that skips elements fails.
    if (outs[i].dtype == DType::f32) {
      for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = std::nanf("");
    }
    outs[i].data = t.raw();
    r.outputs.push_back(t);
  }
  st = kernel->run(ins, outs, workspace);
  std::free(workspace);
  INFO(r.label << ": " << st.message());
  REQUIRE(st.is_ok());
  return r;
}

[[maybe_unused]] Status run_fast_status(const Case& c) {
  Built b;
  KernelInfo info;
  auto kernel = create(c, b, info);
  REQUIRE(kernel != nullptr);
  SEQRUN_TRY(kernel->prepare(info));
  void* workspace = std::aligned_alloc(64, (kernel->workspace_bytes() + 127) / 64 * 64);
  std::vector<TensorArg> ins = info.inputs, outs = info.outputs;
  std::vector<Tensor> held;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.inputs[i].tensor.defined()) ins[i].data = const_cast<void*>(c.inputs[i].tensor.raw());
  }
  for (TensorArg& o : outs) {
    held.push_back(Tensor::empty(o.dtype, o.shape));
    o.data = held.back().raw();
  }
  Status st = kernel->run(ins, outs, workspace);
  std::free(workspace);
  return st;
}

std::vector<Tensor> run_reference(const Case& c) {
  Built b = build(c);
  const reference::KernelEntry* entry = reference::KernelRegistry::global().find(c.op);
  REQUIRE(entry != nullptr);
  reference::KernelContext ctx{*b.node, {}, {}, nullptr};
  for (const Input& in : c.inputs) ctx.inputs.push_back(in.tensor.defined() ? &in.tensor : nullptr);
  Status st = entry->fn(ctx);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return ctx.outputs;
}

// The label of the kernel the CPU backend picks for the case ("reference" for the fallback).
std::string picked(const Case& c) {
  Built b;
  KernelInfo info;
  auto kernel = create(c, b, info);
  REQUIRE(kernel != nullptr);
  return kernel->label();
}

double normalized_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.dtype() == b.dtype());
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get_f64(i), y = b.get_f64(i);
    if (std::isnan(y) && std::isnan(x)) continue;
    num += (x - y) * (x - y);
    den += y * y;
  }
  if (den == 0.0) return num;
  return num / den;
}

// Runs the case both ways and checks every output against the bound.
void check_against_reference(const Case& c, double bound, bool in_place = false) {
  FastRun fast = run_fast(c, in_place);
  INFO(c.op << " via " << fast.label);
  CHECK(fast.label != "reference");
  std::vector<Tensor> ref = run_reference(c);
  REQUIRE(ref.size() == fast.outputs.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = normalized_error(fast.outputs[i], ref[i]);
    INFO("output " << i << " shape " << shape_to_string(ref[i].shape()) << " error " << err);
    CHECK(err <= bound);
  }
}

constexpr double kMatmulBound = 1e-8;
constexpr double kElementwiseBound = 1e-9;
constexpr double kExact = 0.0;

}  // namespace

// ------------------------------------------------------------------------------------------------
// oneDNN products

TEST_CASE("cpu MatMul: 2-D, batched, broadcast and vector operands match the reference") {
  const std::vector<std::pair<Shape, Shape>> shapes = {{{7, 5}, {5, 9}},
                                                       {{1, 64}, {64, 33}},
                                                       {{2, 3, 17, 8}, {8, 12}},
                                                       {{4, 6, 10}, {4, 10, 3}},
                                                       {{2, 1, 5, 6}, {3, 6, 4}},
                                                       {{5, 6}, {3, 6, 4}},
                                                       {{16}, {16, 5}},
                                                       {{3, 4, 7}, {7}},
                                                       {{9}, {9}},
                                                       {{2, 1, 4, 5}, {1, 3, 5, 2}}};
  for (const auto& [a, b] : shapes) {
    DYNAMIC_SECTION(shape_to_string(a) << " x " << shape_to_string(b)) {
      check_against_reference({"MatMul", {fed(random_f32(a)), fed(random_f32(b))}}, kMatmulBound);
      // A constant B takes the pre-packed path.
      check_against_reference({"MatMul", {fed(random_f32(a)), constant(random_f32(b))}}, kMatmulBound);
    }
  }
  for (int trial = 0; trial < 10; ++trial) {
    const int64_t m = random_int(1, 70), k = random_int(1, 90), n = random_int(1, 80);
    const Shape a = {random_int(1, 3), m, k};
    check_against_reference({"MatMul", {fed(random_f32(a)), constant(random_f32({k, n}))}}, kMatmulBound);
  }
}

TEST_CASE("cpu Gemm: transposes, alpha, beta and every C broadcast") {
  for (int trans_a = 0; trans_a < 2; ++trans_a) {
    for (int trans_b = 0; trans_b < 2; ++trans_b) {
      const int64_t m = random_int(1, 40), k = random_int(1, 40), n = random_int(1, 40);
      const Shape a = trans_a ? Shape{k, m} : Shape{m, k};
      const Shape b = trans_b ? Shape{n, k} : Shape{k, n};
      for (const Shape& c : std::vector<Shape>{{}, {n}, {1, n}, {m, 1}, {m, n}, {1}}) {
        for (const auto& [alpha, beta] : std::vector<std::pair<float, float>>{{1.0f, 1.0f}, {0.5f, -2.0f}}) {
          Case cs{
              "Gemm",
              {fed(random_f32(a)), constant(random_f32(b)), c.empty() ? absent() : constant(random_f32(c))},
              {{"transA", trans_a}, {"transB", trans_b}, {"alpha", alpha}, {"beta", beta}}};
          INFO("transA " << trans_a << " transB " << trans_b << " C " << shape_to_string(c) << " alpha "
                         << alpha);
          check_against_reference(cs, kMatmulBound);
        }
      }
    }
  }
}

TEST_CASE("cpu Linear and FusedLinear: bias and every activation") {
  for (int trial = 0; trial < 4; ++trial) {
    const int64_t in = random_int(1, 70), out = random_int(1, 70);
    const Shape x = {random_int(1, 3), random_int(1, 9), in};
    check_against_reference(
        {"Linear", {fed(random_f32(x)), constant(random_f32({out, in})), constant(random_f32({out}))}},
        kMatmulBound);
    check_against_reference({"Linear", {fed(random_f32(x)), fed(random_f32({out, in}))}}, kMatmulBound);
    for (const char* act : {"none", "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh"}) {
      for (int trans_b = 0; trans_b < 2; ++trans_b) {
        const Shape w = trans_b ? Shape{out, in} : Shape{in, out};
        INFO(act << " transB " << trans_b);
        check_against_reference({"FusedLinear",
                                 {fed(random_f32(x, -2.0f, 2.0f)), constant(random_f32(w)),
                                  trial % 2 ? absent() : constant(random_f32({out}))},
                                 {{"activation", act}, {"transB", trans_b}}},
                                kMatmulBound);
      }
    }
  }
}

TEST_CASE("cpu products decline what they do not support (f16, empty), so the reference runs them") {
  Tensor a16 = random_f32({4, 5}).cast(DType::f16);
  Tensor b16 = random_f32({5, 3}).cast(DType::f16);
  CHECK(picked({"MatMul", {fed(a16), fed(b16)}}) == "reference");
  CHECK(picked({"MatMul", {fed(random_f32({0, 5})), fed(random_f32({5, 3}))}}) == "reference");
  CHECK(picked({"MatMul", {fed(random_f32({4, 5})), fed(random_f32({5, 3}))}}).rfind("onednn:", 0) == 0);
}
