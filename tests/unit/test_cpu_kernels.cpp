// The CPU backend's fast kernels (oneDNN + AVX2/OpenMP) against the reference kernels.
//
// Every case builds a one-node graph, asks cpu_backend() for a kernel through the Backend interface
// (checking that a fast kernel, not the reference fallback, took the node), prepares and runs it on
// the test's buffers, and compares with the reference kernel (KernelRegistry::global()) on the same
// inputs, by the normalized error sum((a - b)^2) / sum(b^2). Bounds per op family, with the largest
// values observed when they were set:
//   data movement (Gather, Transpose, Concat, Split, Slice), Add/Sub/Mul/Div, Pow, Where: exactly 0;
//   MatMul, Gemm, Linear, FusedLinear (oneDNN eltwise post-ops included), Conv, DeformConv: 1e-8
//     (f32 accumulation in another order than the reference's double; observed <= 9e-14);
//   unary activations, Softmax/LogSoftmax, LayerNorm/RMSNorm, ReduceSum/Mean/Max: 1e-9 (vector
//     exp/tanh/erf within ~5e-7 relative per element, f32 sums; observed <= 2e-12, the largest
//     being oneDNN's LogSoftmax).
// A separate sweep checks the vector math per element (relative error <= 2e-6, NaN/inf preserved).
// The shapes come from a fixed-seed generator, so failures reproduce.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_factories.h"
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

Tensor i64s(const Shape& shape, const std::vector<int64_t>& values) {
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

std::vector<Tensor> run_reference(const Case& c);

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
    if (!shape) shape = run_reference(c)[i].shape();  // shapes that depend on values (run-time axes)
    info.outputs.push_back({t.dtype(), *shape, nullptr});
  }
  return info;
}

// The CPU backend's kernel for the case, or, with `factory`, that factory's (to test kernels that a
// preferred one shadows in the registry).
std::unique_ptr<backends::Kernel> create(const Case& c, Built& b, KernelInfo& info,
                                         backends::cpu::KernelFactoryFn factory = nullptr) {
  b = build(c);
  info = info_for(b, c);
  return factory != nullptr ? factory(info) : backends::cpu_backend().kernels().create(info);
}

struct FastRun {
  std::string label;
  std::vector<Tensor> outputs;
};

// Runs the case on the fast CPU kernel; `in_place` aliases output 0 to input 0's buffer.
FastRun run_fast(const Case& c, bool in_place = false, backends::cpu::KernelFactoryFn factory = nullptr) {
  Built b;
  KernelInfo info;
  auto kernel = create(c, b, info, factory);
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

Status run_fast_status(const Case& c) {
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
    if ((std::isnan(y) && std::isnan(x)) || x == y) continue;  // equal infinities included
    num += (x - y) * (x - y);
    den += y * y;
  }
  if (den == 0.0) return num;
  return num / den;
}

// Runs the case both ways and checks every output against the bound.
void check_against_reference(const Case& c, double bound, bool in_place = false,
                             backends::cpu::KernelFactoryFn factory = nullptr) {
  FastRun fast = run_fast(c, in_place, factory);
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

// ------------------------------------------------------------------------------------------------
// Convolutions

TEST_CASE("cpu Conv: 1-D, 2-D and 3-D with groups, strides, dilations, pads, auto_pad and bias") {
  struct ConvCase {
    Shape x, w;
    std::map<std::string, Attribute> attrs;
  };
  using V = std::vector<int64_t>;
  const std::vector<ConvCase> cases = {
      {{1, 3, 17, 19}, {8, 3, 3, 3}, {{"pads", V{1, 1, 1, 1}}}},
      {{2, 16, 12, 12}, {32, 16, 3, 3}, {{"strides", V{2, 2}}, {"pads", V{1, 0, 1, 2}}}},
      {{1, 8, 15, 15}, {8, 1, 3, 3}, {{"group", 8}, {"pads", V{1, 1, 1, 1}}}},  // depthwise
      {{1, 12, 9, 11}, {6, 4, 2, 3}, {{"group", 3}, {"dilations", V{2, 1}}}},
      {{2, 5, 10, 10}, {4, 5, 1, 1}, {}},
      {{1, 6, 9, 9}, {4, 6, 3, 3}, {{"auto_pad", "SAME_UPPER"}, {"strides", V{2, 2}}}},
      {{1, 6, 9, 9}, {4, 6, 4, 4}, {{"auto_pad", "SAME_LOWER"}}},
      {{2, 4, 33}, {6, 4, 5}, {{"pads", V{2, 2}}, {"dilations", V{3}}}},  // 1-D
      {{1, 8, 20}, {8, 1, 4}, {{"group", 8}, {"pads", V{3, 0}}}},         // 1-D depthwise causal
      {{2, 16, 100}, {16, 1, 3}, {{"group", 16}, {"pads", V{2, 2}}, {"dilations", V{2}}}},  // 1-D depthwise
      {{1, 4, 5}, {4, 1, 7}, {{"group", 4}, {"pads", V{6, 0}}}},            // kernel longer than the input
      {{1, 3, 6, 7, 8}, {4, 3, 3, 3, 3}, {{"pads", V{1, 1, 1, 1, 1, 1}}}},  // 3-D
  };
  // Stride-1 1-D depthwise convs take the own AVX2 kernel, everything else oneDNN.
  CHECK(
      picked({"Conv", {fed(random_f32({2, 16, 100})), constant(random_f32({16, 1, 3}))}, {{"group", 16}}}) ==
      "avx2:depthwise_conv1d");
  for (size_t i = 0; i < cases.size(); ++i) {
    const ConvCase& c = cases[i];
    DYNAMIC_SECTION("case " << i << ": X " << shape_to_string(c.x) << " W " << shape_to_string(c.w)) {
      const Tensor bias = random_f32({c.w[0]});
      check_against_reference(
          {"Conv", {fed(random_f32(c.x)), constant(random_f32(c.w)), constant(bias)}, c.attrs}, kMatmulBound);
      check_against_reference({"Conv", {fed(random_f32(c.x)), fed(random_f32(c.w))}, c.attrs}, kMatmulBound);
    }
  }
}

TEST_CASE("cpu DeformConv: v1 and v2, groups, offset groups, padding, strides and dilations") {
  struct DeformCase {
    Shape x, w;
    int64_t offset_group;
    bool mask, bias;
    std::map<std::string, Attribute> attrs;
  };
  using V = std::vector<int64_t>;
  const std::vector<DeformCase> cases = {
      {{1, 4, 7, 8}, {6, 4, 3, 3}, 1, false, true, {{"pads", V{1, 1, 1, 1}}}},
      {{2, 6, 9, 9}, {4, 3, 3, 3}, 3, true, true, {{"group", 2}, {"pads", V{1, 1, 1, 1}}}},
      {{1, 4, 10, 11}, {8, 4, 2, 3}, 2, true, false, {{"strides", V{2, 1}}, {"dilations", V{1, 2}}}},
      {{1, 3, 5, 5}, {2, 3, 1, 1}, 1, false, false, {}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const DeformCase& c = cases[i];
    DYNAMIC_SECTION("case " << i) {
      std::map<std::string, Attribute> attrs = c.attrs;
      attrs["offset_group"] = c.offset_group;
      // Find the output size through shape inference on a probe node.
      const int64_t taps = c.w[2] * c.w[3];
      Case probe("DeformConv",
                 {fed(random_f32(c.x)), constant(random_f32(c.w)),
                  fed(random_f32({1, c.offset_group * taps * 2, 1, 1}))},
                 attrs);
      Built b = build(probe);
      const auto out = b.node->output(0)->type().static_shape();
      REQUIRE(out.has_value());
      const int64_t oh = (*out)[2], ow = (*out)[3];
      // Offsets up to +-3 pixels move taps across the border (zero-outside sampling included).
      Tensor offset = random_f32({c.x[0], c.offset_group * taps * 2, oh, ow}, -3.0f, 3.0f);
      Case cs("DeformConv",
              {fed(random_f32(c.x)), constant(random_f32(c.w)), fed(offset),
               c.bias ? constant(random_f32({c.w[0]})) : absent(),
               c.mask ? fed(random_f32({c.x[0], c.offset_group * taps, oh, ow}, 0.0f, 1.0f)) : absent()},
              attrs);
      check_against_reference(cs, kMatmulBound);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Elementwise

namespace {
// Input range per unary op: the domain where the op is defined and interesting.
std::pair<float, float> unary_range(const std::string& op) {
  if (op == "Sqrt" || op == "Rsqrt" || op == "Reciprocal") return {0.01f, 50.0f};
  if (op == "Exp") return {-80.0f, 80.0f};
  return {-8.0f, 8.0f};
}

struct UnaryCase {
  const char* op;
  std::map<std::string, Attribute> attrs;
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {{"Exp", {}},
                                               {"Tanh", {}},
                                               {"Erf", {}},
                                               {"Gelu", {}},
                                               {"Gelu", {{"approximate", "tanh"}}},
                                               {"Sigmoid", {}},
                                               {"Silu", {}},
                                               {"Swish", {{"alpha", 0.7f}}},
                                               {"Relu", {}},
                                               {"Sqrt", {}},
                                               {"Rsqrt", {}},
                                               {"Reciprocal", {}},
                                               {"Neg", {}},
                                               {"Abs", {}},
                                               {"LeakyRelu", {{"alpha", 0.2f}}}};
  return cases;
}
}  // namespace

TEST_CASE("cpu unary ops match the reference on random shapes, in place too") {
  for (const UnaryCase& u : unary_cases()) {
    const auto [lo, hi] = unary_range(u.op);
    for (const Shape& shape : std::vector<Shape>{{1}, {7}, {3, 13}, {2, 5, 33}, {300, 257}}) {
      INFO(u.op << " " << shape_to_string(shape));
      check_against_reference({u.op, {fed(random_f32(shape, lo, hi))}, u.attrs}, kElementwiseBound);
    }
    check_against_reference({u.op, {fed(random_f32({5, 17}, lo, hi))}, u.attrs}, kElementwiseBound, true);
  }
}

TEST_CASE("cpu vector exp/tanh/erf/sigmoid/GELU are within 2e-6 relative of exact values everywhere") {
  // Dense sweep plus special values; each element is compared on its own with the function
  // evaluated in double here, in forms without cancellation (the reference kernel's textbook
  // 0.5 x (1 + erf(x / sqrt 2)) loses all relative accuracy in the left tail, even in double).
  // NaN must stay NaN and infinities must match. Results below 1e-20, and the tanh-form GELU for
  // x < -5 (results below 1e-7), are skipped: there the float rounding of the argument (alpha x,
  // x^3) dominates any float formula (avx2_math.h).
  std::vector<float> sweep;
  for (float x = -30.0f; x <= 30.0f; x += 0.0137f) sweep.push_back(x);
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, 0.55f, 0.75f, -0.75f, 88.0f, 89.0f, -88.0f, -104.0f,
                  200.0f, -200.0f, INFINITY, -INFINITY, NAN}) {
    sweep.push_back(x);
  }
  const double k = std::sqrt(2.0 / M_PI);
  const std::vector<std::pair<UnaryCase, std::function<double(double)>>> exact = {
      {{"Exp", {}}, [](double x) { return std::exp(x); }},
      {{"Tanh", {}}, [](double x) { return std::tanh(x); }},
      {{"Erf", {}}, [](double x) { return std::erf(x); }},
      {{"Sigmoid", {}}, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }},
      {{"Silu", {}}, [](double x) { return x / (1.0 + std::exp(-x)); }},
      {{"Swish", {{"alpha", 0.7f}}}, [](double x) { return x / (1.0 + std::exp(-double(0.7f) * x)); }},
      {{"Gelu", {}}, [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }},
      {{"Gelu", {{"approximate", "tanh"}}},
       [k](double x) { return x / (1.0 + std::exp(-2.0 * k * (x + 0.044715 * x * x * x))); }},
  };
  const Tensor x = Tensor::from_vector<float>({static_cast<int64_t>(sweep.size())}, sweep);
  for (const auto& [u, f] : exact) {
    Case c(u.op, {fed(x)}, u.attrs);
    const Tensor fast = run_fast(c).outputs[0];
    // The tanh-form GELU's left tail (x < -5, results below 1e-7) amplifies the rounding of x^3.
    const bool tanh_gelu = u.attrs.count("approximate") > 0;
    double worst = 0.0;
    float worst_at = 0.0f;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double a = fast.data<float>()[i], b = static_cast<float>(f(sweep[i]));  // float overflow -> inf
      INFO(u.op << "(" << sweep[i] << "): fast " << a << " exact " << b);
      REQUIRE(std::isnan(a) == std::isnan(b));
      if (std::isnan(b) || a == b || std::fabs(b) < 1e-20 || (tanh_gelu && sweep[i] < -5.0f)) continue;
      REQUIRE(std::isfinite(a) == std::isfinite(b));
      const double rel = std::fabs(a - b) / std::fabs(b);
      if (rel > worst) {
        worst = rel;
        worst_at = sweep[i];
      }
    }
    INFO(u.op << " worst relative error " << worst << " at x = " << worst_at);
    CHECK(worst <= 2e-6);
  }
}

TEST_CASE("cpu binary ops: every broadcast pattern is exact, in place too") {
  const std::vector<std::pair<Shape, Shape>> shapes = {{{4, 9}, {4, 9}},
                                                       {{4, 9}, {}},
                                                       {{}, {4, 9}},
                                                       {{3, 5, 7}, {7}},
                                                       {{3, 5, 7}, {5, 1}},
                                                       {{3, 1, 7}, {3, 5, 7}},
                                                       {{2, 1, 4, 1}, {1, 3, 1, 5}},
                                                       {{6, 1}, {1, 11}},
                                                       {{1}, {1}},
                                                       {{300, 500}, {500}},
                                                       {{300, 500}, {300, 1}},
                                                       {{2, 3, 1}, {1}}};
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const auto& [a, b] : shapes) {
      INFO(op << " " << shape_to_string(a) << " with " << shape_to_string(b));
      check_against_reference({op, {fed(random_f32(a, 0.5f, 2.0f)), fed(random_f32(b, 0.5f, 2.0f))}}, kExact);
    }
    check_against_reference({op, {fed(random_f32({40, 33})), constant(random_f32({33}, 0.5f, 2.0f))}}, kExact,
                            true);
  }
}

TEST_CASE("cpu Pow with a constant exponent 2 or 0.5; other exponents fall back") {
  for (float e : {2.0f, 0.5f}) {
    check_against_reference(
        {"Pow", {fed(random_f32({7, 45}, 0.0f, 3.0f)), constant(Tensor::scalar<float>(e))}}, kExact);
  }
  // pow(-0, 0.5) = +0 and pow(-inf, 0.5) = +inf, unlike sqrt.
  const Tensor specials = Tensor::from_vector<float>({4}, {-0.0f, -INFINITY, INFINITY, 4.0f});
  Case c("Pow", {fed(specials), constant(Tensor::scalar<float>(0.5f))});
  const Tensor y = run_fast(c).outputs[0];
  CHECK(y.to_f32_vector() == std::vector<float>{0.0f, INFINITY, INFINITY, 2.0f});
  CHECK_FALSE(std::signbit(y.data<float>()[0]));
  CHECK(picked({"Pow", {fed(random_f32({3})), constant(Tensor::scalar<float>(3.0f))}}) == "reference");
  CHECK(picked({"Pow", {fed(random_f32({3})), fed(random_f32({3}))}}) == "reference");
}

TEST_CASE("cpu Where broadcasts condition, x and y") {
  auto cond = [](const Shape& shape) {
    Tensor t = Tensor::empty(DType::boolean, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = random_int(0, 1) ? 1 : 0;
    return t;
  };
  const std::vector<std::vector<Shape>> shapes = {
      {{4, 9}, {4, 9}, {4, 9}}, {{1, 9}, {4, 9}, {}}, {{4, 1}, {}, {4, 9}}, {{2, 1, 8}, {1, 3, 8}, {8}}};
  for (const auto& s : shapes) {
    check_against_reference({"Where", {fed(cond(s[0])), fed(random_f32(s[1])), fed(random_f32(s[2]))}},
                            kExact);
  }
}

// ------------------------------------------------------------------------------------------------
// Softmax and norms

TEST_CASE("cpu Softmax and LogSoftmax along every axis (oneDNN and the own AVX2 kernel)") {
  // The backend prefers oneDNN's primitive; the own kernel is its fallback and is tested directly.
  for (backends::cpu::KernelFactoryFn factory :
       {backends::cpu::KernelFactoryFn(nullptr), &backends::cpu::make_softmax_kernel}) {
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      for (const Shape& shape :
           std::vector<Shape>{{3, 7}, {2, 33, 5}, {4, 1000}, {2, 3, 4, 9}, {1}, {6, 8, 16}}) {
        for (int axis = -static_cast<int>(shape.size()); axis < static_cast<int>(shape.size()); ++axis) {
          INFO(op << " " << shape_to_string(shape) << " axis " << axis);
          check_against_reference({op, {fed(random_f32(shape, -10.0f, 10.0f))}, {{"axis", axis}}},
                                  kElementwiseBound, false, factory);
        }
      }
      check_against_reference({op, {fed(random_f32({5, 40}, -10.0f, 10.0f))}}, kElementwiseBound, true,
                              factory);
    }
    // Rows holding -inf entries (masked attention scores) and large values.
    Tensor x = random_f32({4, 19}, -5.0f, 5.0f);
    for (int i = 0; i < 19; i += 3) x.data<float>()[i] = -INFINITY;
    x.data<float>()[19 + 4] = 80.0f;
    check_against_reference({"Softmax", {fed(x)}}, kElementwiseBound, false, factory);
  }
  CHECK(picked({"Softmax", {fed(random_f32({2, 5}))}}).rfind("onednn:softmax", 0) == 0);
}

TEST_CASE("cpu LayerNormalization and RMSNormalization: axes, parameter shapes, optional outputs") {
  struct NormCase {
    Shape x;
    int axis;
    Shape scale;  // bias has the same shape
  };
  const std::vector<NormCase> cases = {
      {{4, 64}, -1, {64}},      {{2, 7, 33}, -1, {1, 33}}, {{2, 3, 5, 6}, 2, {5, 6}}, {{3, 10}, -1, {1}},
      {{2, 8, 768}, -1, {768}}, {{5, 1, 4}, 1, {4}},       {{300, 100}, 1, {100}}};
  for (const NormCase& c : cases) {
    INFO(shape_to_string(c.x) << " axis " << c.axis << " scale " << shape_to_string(c.scale));
    const Tensor x = random_f32(c.x, -3.0f, 5.0f);
    check_against_reference({"LayerNormalization",
                             {fed(x), constant(random_f32(c.scale)), constant(random_f32(c.scale))},
                             {{"axis", c.axis}, {"epsilon", 1e-5f}}},
                            kElementwiseBound);
    check_against_reference({"LayerNormalization", {fed(x), fed(random_f32(c.scale))}, {{"axis", c.axis}}, 3},
                            kElementwiseBound);
    check_against_reference(
        {"RMSNormalization", {fed(x), constant(random_f32(c.scale))}, {{"axis", c.axis}, {"epsilon", 1e-6f}}},
        kElementwiseBound);
  }
  check_against_reference({"LayerNormalization", {fed(random_f32({6, 40})), fed(random_f32({40}))}},
                          kElementwiseBound, true);
  // A scale that broadcasts inside the normalized row is left to the reference.
  CHECK(picked({"LayerNormalization", {fed(random_f32({2, 3, 4})), fed(random_f32({4}))}, {{"axis", 1}}}) ==
        "reference");
}

// ------------------------------------------------------------------------------------------------
// Reductions

TEST_CASE("cpu ReduceSum/Mean/Max over any constant axes, keepdims or not") {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{4, 37}, {-1}},     {{4, 37}, {0}},    {{3, 5, 7}, {1}},       {{3, 5, 7}, {0, 2}},
      {{3, 5, 7}, {1, 2}}, {{3, 5, 7}, {}},   {{2, 3, 4, 5}, {0, 3}}, {{2, 1, 4}, {1}},
      {{64, 1000}, {1}},   {{1000, 64}, {0}}, {{8, 16, 130}, {0, 1}}, {{1, 1}, {}}};
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
    for (const auto& [shape, axes] : cases) {
      for (int keepdims = 0; keepdims < 2; ++keepdims) {
        INFO(op << " " << shape_to_string(shape) << " axes " << axes.size() << " keepdims " << keepdims);
        std::vector<Input> ins = {fed(random_f32(shape, -2.0f, 3.0f))};
        if (!axes.empty()) ins.push_back(constant(i64s({static_cast<int64_t>(axes.size())}, axes)));
        check_against_reference({op, ins, {{"keepdims", keepdims}}}, kElementwiseBound);
      }
    }
  }
  // NaN propagates through ReduceMax along either walk.
  Tensor x = random_f32({3, 20});
  x.data<float>()[25] = NAN;
  check_against_reference({"ReduceMax", {fed(x), constant(i64s({1}, {1}))}}, kElementwiseBound);
  check_against_reference({"ReduceMax", {fed(x), constant(i64s({1}, {0}))}}, kElementwiseBound);
  // Axes only known at run time, and the noop form, go to the reference.
  CHECK(picked({"ReduceSum", {fed(random_f32({3, 4})), fed(i64s({1}, {1}))}}) == "reference");
  CHECK(picked({"ReduceSum", {fed(random_f32({3, 4}))}, {{"noop_with_empty_axes", 1}}}) == "reference");
}

// ------------------------------------------------------------------------------------------------
// Data movement (exact)

TEST_CASE("cpu Gather: embedding rows, other axes, i32/i64 indices, any dtype") {
  Tensor table = random_f32({50, 24});
  check_against_reference({"Gather", {constant(table), fed(i64s({2, 3}, {0, 49, -1, 7, 7, -50}))}}, kExact);
  Tensor idx32 = Tensor::from_vector<int32_t>({4}, {3, 0, -2, 1});
  check_against_reference({"Gather", {fed(random_f32({3, 5, 6})), fed(idx32)}, {{"axis", 1}}}, kExact);
  check_against_reference({"Gather", {fed(random_f32({3, 5, 6})), fed(i64s({}, {2}))}, {{"axis", -1}}},
                          kExact);
  check_against_reference({"Gather", {fed(random_f32({4, 6}).cast(DType::f16)), fed(i64s({3}, {1, 3, 0}))}},
                          kExact);
  check_against_reference({"Gather", {fed(i64s({5}, {10, 11, 12, 13, 14})), fed(i64s({2}, {4, 0}))}}, kExact);
  // A bad index is an error naming the node, found before anything is written.
  Status st = run_fast_status({"Gather", {constant(table), fed(i64s({2}, {3, 50}))}});
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find("Gather 'n'") != std::string::npos);
  CHECK(st.message().find("50") != std::string::npos);
}

TEST_CASE("cpu Transpose: runs and tiled paths, every element size") {
  using V = std::vector<int64_t>;
  const std::vector<std::pair<Shape, V>> cases = {{{300, 500}, {1, 0}},
                                                  {{2, 3, 4}, {0, 2, 1}},
                                                  {{2, 3, 4}, {2, 0, 1}},
                                                  {{2, 3, 4}, {1, 0, 2}},
                                                  {{2, 3, 4, 5}, {0, 2, 1, 3}},
                                                  {{2, 3, 4, 5}, {3, 1, 2, 0}},
                                                  {{4, 1, 6}, {2, 1, 0}},
                                                  {{2, 3, 4, 5, 6}, {0, 3, 1, 4, 2}},
                                                  {{7}, {0}},
                                                  {{33, 65}, {1, 0}}};
  for (const auto& [shape, perm] : cases) {
    INFO(shape_to_string(shape));
    check_against_reference({"Transpose", {fed(random_f32(shape))}, {{"perm", perm}}}, kExact);
    check_against_reference({"Transpose", {fed(random_f32(shape).cast(DType::f16))}, {{"perm", perm}}},
                            kExact);
    check_against_reference(
        {"Transpose", {fed(random_f32(shape, -100.0f, 100.0f).cast(DType::i64))}, {{"perm", perm}}}, kExact);
    check_against_reference(
        {"Transpose", {fed(random_f32(shape, 0.0f, 200.0f).cast(DType::u8))}, {{"perm", perm}}}, kExact);
  }
  check_against_reference({"Transpose", {fed(random_f32({3, 4, 5}))}}, kExact);  // default: reversed
}

TEST_CASE("cpu Concat, Split and Slice copy exactly") {
  check_against_reference(
      {"Concat",
       {fed(random_f32({2, 3, 4})), fed(random_f32({2, 5, 4})), fed(random_f32({2, 1, 4}))},
       {{"axis", 1}}},
      kExact);
  check_against_reference(
      {"Concat", {fed(random_f32({300, 200})), fed(random_f32({300, 200}))}, {{"axis", -1}}}, kExact);
  check_against_reference(
      {"Concat",
       {fed(random_f32({3, 4}).cast(DType::f16)), fed(random_f32({5, 4}).cast(DType::f16))},
       {{"axis", 0}}},
      kExact);
  check_against_reference(
      {"Split", {fed(random_f32({2, 9, 4})), constant(i64s({3}, {2, 3, 4}))}, {{"axis", 1}}, 3}, kExact);
  check_against_reference({"Split", {fed(random_f32({10, 7}))}, {{"axis", -1}, {"num_outputs", 3}}, 3},
                          kExact);
  check_against_reference({"Split", {fed(random_f32({400, 300}))}, {{"axis", 0}, {"num_outputs", 2}}, 2},
                          kExact);
  struct SliceCase {
    Shape x;
    std::vector<int64_t> starts, ends, axes, steps;
  };
  const std::vector<SliceCase> slices = {
      {{10, 8}, {2}, {7}, {0}, {1}},      {{10, 8}, {1}, {100}, {1}, {2}},
      {{10, 8}, {-1}, {-100}, {0}, {-1}}, {{4, 5, 6}, {0, 1}, {4, 5}, {1, 2}, {2, 1}},
      {{4, 5, 6}, {3}, {1}, {0}, {-2}},   {{4, 5, 6}, {0}, {0}, {2}, {1}},
      {{64, 512}, {0}, {256}, {1}, {1}}};
  for (const SliceCase& s : slices) {
    const int64_t n = static_cast<int64_t>(s.starts.size());
    check_against_reference(
        {"Slice",
         {fed(random_f32(s.x)), constant(i64s({n}, s.starts)), constant(i64s({n}, s.ends)),
          constant(i64s({n}, s.axes)), constant(i64s({n}, s.steps))}},
        kExact);
  }
  // Slice bounds only known at run time go to the reference.
  CHECK(picked({"Slice", {fed(random_f32({4})), fed(i64s({1}, {1})), constant(i64s({1}, {3}))}}) ==
        "reference");
}

TEST_CASE("cpu kernels decline other dtypes and unsupported attributes (the reference runs those)") {
  CHECK(picked({"Softmax", {fed(random_f32({2, 5}).cast(DType::f16))}}) == "reference");
  CHECK(picked({"Relu", {fed(random_f32({4}, -9.0f, 9.0f).cast(DType::i64))}}) == "reference");
  CHECK(picked({"Add", {fed(random_f32({4}).cast(DType::f64)), fed(random_f32({4}).cast(DType::f64))}}) ==
        "reference");
  CHECK(picked({"Conv",
                {fed(random_f32({1, 2, 5, 5}).cast(DType::f16)),
                 fed(random_f32({3, 2, 3, 3}).cast(DType::f16))}}) == "reference");
  CHECK(picked({"Gelu", {fed(random_f32({4}))}, {{"approximate", "other"}}}) == "reference");
  CHECK(picked({"Relu", {fed(random_f32({4}))}}) == "avx2:relu");
}

TEST_CASE("cpu elementwise kernels report in-place capability for equal shapes only") {
  auto kernel_for = [](const Case& c) {
    Built b;
    KernelInfo info;
    auto k = create(c, b, info);
    REQUIRE(k != nullptr);
    return k;
  };
  CHECK(kernel_for({"Tanh", {fed(random_f32({3, 4}))}})->can_run_in_place(0, 0));
  auto add = kernel_for({"Add", {fed(random_f32({3, 4})), fed(random_f32({4}))}});
  CHECK(add->can_run_in_place(0, 0));
  CHECK_FALSE(add->can_run_in_place(0, 1));
  CHECK_FALSE(
      kernel_for({"MatMul", {fed(random_f32({3, 4})), fed(random_f32({4, 4}))}})->can_run_in_place(0, 0));
}
