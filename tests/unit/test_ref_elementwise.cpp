// Elementwise ops: schemas (shape/dtype inference, errors) and reference kernels, checked against
// naive loops, hand-computed values and values PyTorch computed (activations).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/infer.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

// One-node graph: inputs marked constant become graph constants, the rest graph inputs;
// an undefined Tensor is an absent optional input.
struct OneNode {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
  std::vector<Tensor> feeds;

  OneNode(const std::string& op, const std::vector<Tensor>& inputs,
          std::map<std::string, Attribute> attrs = {}, int num_outputs = 1,
          const std::vector<int>& constant_inputs = {}) {
    std::vector<Value*> ins;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = inputs[i];
      bool is_const = false;
      for (int c : constant_inputs) is_const = is_const || c == static_cast<int>(i);
      if (!t.defined()) {
        ins.push_back(nullptr);
      } else if (is_const) {
        ins.push_back(graph->add_constant("c" + std::to_string(i), t));
      } else {
        ins.push_back(
            graph->add_input("in" + std::to_string(i), TensorType::from_shape(t.dtype(), t.shape())));
        feeds.push_back(t);
      }
    }
    node = graph->add_node(op, ins, num_outputs, std::move(attrs), {}, nullptr);
    node->set_name("n");
    graph->set_outputs(node->outputs());
  }
  Status infer() { return infer_graph_types(*graph); }
  Result<std::vector<Tensor>> run() {
    Status st = infer();
    if (!st) return st;
    return runtime::ReferenceExecutor().run(*graph, feeds);
  }
  const TensorType& out_type(int i = 0) const { return node->output(i)->type(); }
};

// Runs and requires success; returns output `i`.
Tensor run_ok(OneNode& n, int i = 0) {
  auto r = n.run();
  INFO((r.is_ok() ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return r.value()[i];
}

Tensor run_ok(const std::string& op, const std::vector<Tensor>& inputs,
              std::map<std::string, Attribute> attrs = {}) {
  OneNode n(op, inputs, std::move(attrs));
  return run_ok(n);
}

// The error message of a run that must fail.
std::string run_error(OneNode& n) {
  auto r = n.run();
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

template <typename T>
Tensor tensor(Shape shape, std::vector<T> values) {
  return Tensor::from_vector<T>(std::move(shape), values);
}

Tensor btensor(Shape shape, std::vector<bool> values) {
  return Tensor::from_vector<bool>(std::move(shape), values);
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  REQUIRE(t.dtype() == dtype_of<T>::value);
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

std::vector<bool> bools_of(const Tensor& t) {
  REQUIRE(t.dtype() == DType::boolean);
  std::vector<bool> out;
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(t.data<uint8_t>()[i] != 0);
  return out;
}

void check_close(const Tensor& t, const std::vector<float>& expected, float tol = 1e-6f) {
  std::vector<float> got = t.to_f32_vector();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
    if (std::isnan(expected[i])) {
      CHECK(std::isnan(got[i]));
    } else if (std::isinf(expected[i])) {
      CHECK(got[i] == expected[i]);
    } else {
      CHECK(std::fabs(got[i] - expected[i]) <= tol * (1.0f + std::fabs(expected[i])));
    }
  }
}

bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

}  // namespace

TEST_CASE("elementwise: activations match PyTorch values") {
  const std::vector<float> x = {-3.0f, -1.5f, -0.5f, 0.0f, 0.25f, 1.0f, 2.75f};
  struct Case {
    std::string op;
    std::map<std::string, Attribute> attrs;
    std::vector<float> expected;
  };
  const std::vector<Case> cases = {
      {"Sigmoid",
       {},
       {0.0474258736f, 0.182425529f, 0.377540678f, 0.5f, 0.562176526f, 0.731058598f, 0.939913332f}},
      {"Tanh",
       {},
       {-0.995054781f, -0.905148268f, -0.462117165f, 0.0f, 0.244918659f, 0.761594176f, 0.991859734f}},
      {"Softplus",
       {},
       {0.048587352f, 0.201413274f, 0.474076986f, 0.693147182f, 0.825939417f, 1.31326163f, 2.81196761f}},
      {"Softsign", {}, {-0.75f, -0.600000024f, -0.333333343f, 0.0f, 0.200000003f, 0.5f, 0.733333349f}},
      {"Elu", {{"alpha", 0.5f}}, {-0.475106478f, -0.388434917f, -0.196734667f, 0.0f, 0.25f, 1.0f, 2.75f}},
      {"Selu", {}, {-1.6705687f, -1.36581433f, -0.691758215f, 0.0f, 0.262675256f, 1.05070102f, 2.88942766f}},
      {"Celu", {{"alpha", 2.0f}}, {-1.55373967f, -1.05526686f, -0.442398429f, 0.0f, 0.25f, 1.0f, 2.75f}},
      {"LeakyRelu",
       {{"alpha", 0.1f}},
       {-0.300000012f, -0.150000006f, -0.0500000007f, 0.0f, 0.25f, 1.0f, 2.75f}},
      {"ThresholdedRelu", {{"alpha", 0.5f}}, {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 2.75f}},
      {"HardSigmoid",
       {{"alpha", 0.25f}, {"beta", 0.4f}},
       {0.0f, 0.0250000004f, 0.275000006f, 0.400000006f, 0.462500006f, 0.649999976f, 1.0f}},
      {"HardSwish", {}, {-0.0f, -0.375f, -0.208333328f, 0.0f, 0.135416672f, 0.666666687f, 2.63541675f}},
      {"Gelu",
       {},
       {-0.00404969417f, -0.100210801f, -0.154268771f, 0.0f, 0.149676576f, 0.841344774f, 2.74180555f}},
      {"Gelu",
       {{"approximate", "tanh"}},
       {-0.00363739207f, -0.100428425f, -0.154285997f, 0.0f, 0.149675354f, 0.841192007f, 2.74227691f}},
      {"Erf",
       {},
       {-0.999977887f, -0.966105163f, -0.520499885f, 0.0f, 0.276326388f, 0.842700779f, 0.999899387f}},
      {"Swish",
       {{"alpha", 1.5f}},
       {-0.0329608284f, -0.143024191f, -0.160410658f, 0.0f, 0.148166656f, 0.817574501f, 2.70625734f}},
      {"Silu",
       {},
       {-0.142277613f, -0.273638278f, -0.188770339f, 0.0f, 0.140544131f, 0.731058598f, 2.58476162f}},
      {"Mish",
       {},
       {-0.145647466f, -0.298099756f, -0.220743775f, 0.0f, 0.169572413f, 0.865098417f, 2.73021412f}},
      {"Shrink", {{"bias", 0.5f}, {"lambd", 0.5f}}, {-2.5f, -1.0f, 0.0f, 0.0f, 0.0f, 0.5f, 2.25f}},
  };
  for (const Case& c : cases) {
    SECTION(c.op + (c.attrs.empty() ? "" : " with attributes")) {
      Tensor out = run_ok(c.op, {tensor<float>({7}, x)}, c.attrs);
      CHECK(out.dtype() == DType::f32);
      check_close(out, c.expected, 2e-6f);
    }
  }
}

TEST_CASE("elementwise: math functions follow their definitions") {
  struct Case {
    std::string op;
    std::vector<float> x;
    double (*f)(double);
  };
  const std::vector<float> any = {-2.0f, -0.7f, 0.0f, 0.3f, 1.9f};
  const std::vector<float> unit = {-0.9f, -0.2f, 0.0f, 0.5f, 0.99f};
  const std::vector<float> positive = {0.01f, 0.5f, 1.0f, 3.0f, 100.0f};
  const std::vector<Case> cases = {
      {"Exp", any, [](double v) { return std::exp(v); }},
      {"Log", positive, [](double v) { return std::log(v); }},
      {"Sqrt", positive, [](double v) { return std::sqrt(v); }},
      {"Rsqrt", positive, [](double v) { return 1.0 / std::sqrt(v); }},
      {"Reciprocal", positive, [](double v) { return 1.0 / v; }},
      {"Sin", any, [](double v) { return std::sin(v); }},
      {"Cos", any, [](double v) { return std::cos(v); }},
      {"Tan", any, [](double v) { return std::tan(v); }},
      {"Asin", unit, [](double v) { return std::asin(v); }},
      {"Acos", unit, [](double v) { return std::acos(v); }},
      {"Atan", any, [](double v) { return std::atan(v); }},
      {"Sinh", any, [](double v) { return std::sinh(v); }},
      {"Cosh", any, [](double v) { return std::cosh(v); }},
      {"Asinh", any, [](double v) { return std::asinh(v); }},
      {"Acosh", {1.0f, 1.5f, 3.0f, 10.0f}, [](double v) { return std::log(v + std::sqrt(v * v - 1)); }},
      {"Atanh", unit, [](double v) { return 0.5 * std::log((1 + v) / (1 - v)); }},
      {"Floor", {-1.5f, -0.2f, 0.0f, 0.7f, 2.0f}, [](double v) { return std::floor(v); }},
      {"Ceil", {-1.5f, -0.2f, 0.0f, 0.7f, 2.0f}, [](double v) { return std::ceil(v); }},
  };
  for (const Case& c : cases) {
    SECTION(c.op) {
      std::vector<float> expected;
      for (float v : c.x) expected.push_back(static_cast<float>(c.f(v)));
      Tensor out = run_ok(c.op, {tensor<float>({static_cast<int64_t>(c.x.size())}, c.x)});
      check_close(out, expected, 1e-6f);
    }
  }
}

TEST_CASE("elementwise: Round is half to even, Sign keeps NaN") {
  check_close(run_ok("Round", {tensor<float>({8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, -2.6f, 3.0f})}),
              {0.0f, 2.0f, 2.0f, -0.0f, -2.0f, 2.0f, -3.0f, 3.0f});
  check_close(run_ok("Sign", {tensor<float>({4}, {-2.0f, 0.0f, 3.5f, kNaN})}), {-1.0f, 0.0f, 1.0f, kNaN});
}

TEST_CASE("elementwise: Abs, Neg, Sign and Relu on integers") {
  CHECK(values_of<int32_t>(run_ok("Abs", {tensor<int32_t>({3}, {-5, 0, 7})})) ==
        std::vector<int32_t>{5, 0, 7});
  CHECK(values_of<int64_t>(run_ok("Neg", {tensor<int64_t>({3}, {-5, 0, 7})})) ==
        std::vector<int64_t>{5, 0, -7});
  CHECK(values_of<int8_t>(run_ok("Sign", {tensor<int8_t>({3}, {-5, 0, 7})})) ==
        std::vector<int8_t>{-1, 0, 1});
  CHECK(values_of<int16_t>(run_ok("Relu", {tensor<int16_t>({3}, {-5, 0, 7})})) ==
        std::vector<int16_t>{0, 0, 7});
  CHECK(values_of<uint8_t>(run_ok("Relu", {tensor<uint8_t>({2}, {0, 200})})) == std::vector<uint8_t>{0, 200});
}

TEST_CASE("elementwise: IsNaN and IsInf give bool") {
  Tensor x = tensor<float>({4}, {1.0f, kNaN, kInf, -kInf});
  CHECK(bools_of(run_ok("IsNaN", {x})) == std::vector<bool>{false, true, false, false});
  CHECK(bools_of(run_ok("IsInf", {x})) == std::vector<bool>{false, false, true, true});
  CHECK(bools_of(run_ok("IsInf", {x}, {{"detect_negative", 0}})) ==
        std::vector<bool>{false, false, true, false});
  CHECK(bools_of(run_ok("IsInf", {x}, {{"detect_positive", 0}})) ==
        std::vector<bool>{false, false, false, true});
}

TEST_CASE("elementwise: f16 input runs through f32 and comes back as f16") {
  std::vector<float> x = {-1.0f, 0.0f, 0.5f, 2.0f};
  Tensor x16 = tensor<float>({4}, x).cast(DType::f16);
  OneNode n("Exp", {x16});
  Tensor out = run_ok(n);
  CHECK(n.out_type().dtype() == DType::f16);
  REQUIRE(out.dtype() == DType::f16);
  std::vector<float> expected;
  for (float v : x) expected.push_back(std::exp(v));
  check_close(out, expected, 1e-3f);  // f16 keeps ~3 decimal digits

  Tensor b16 = tensor<float>({4}, {0.0f, 1.0f, 1.0f, -3.0f}).cast(DType::f16);
  Tensor less = run_ok("Less", {x16, b16});
  CHECK(bools_of(less) == std::vector<bool>{true, true, true, false});
}

TEST_CASE("elementwise: float-only op rejects an integer input") {
  OneNode n("Exp", {tensor<int32_t>({2}, {1, 2})});
  std::string msg = run_error(n);
  CHECK(mentions(msg, "Exp 'n'"));
  CHECK(mentions(msg, "float"));
}

TEST_CASE("elementwise: Add/Sub/Mul/Div broadcast [2,1,3] with [4,1]") {
  std::vector<float> a(6), b(4);
  for (int i = 0; i < 6; ++i) a[i] = 0.5f * static_cast<float>(i) - 1.0f;
  for (int i = 0; i < 4; ++i) b[i] = static_cast<float>(i) + 0.25f;
  struct Case {
    const char* op;
    float (*f)(float, float);
  };
  const Case cases[] = {{"Add", [](float p, float q) { return p + q; }},
                        {"Sub", [](float p, float q) { return p - q; }},
                        {"Mul", [](float p, float q) { return p * q; }},
                        {"Div", [](float p, float q) { return p / q; }}};
  for (const Case& c : cases) {
    SECTION(c.op) {
      OneNode n(c.op, {tensor<float>({2, 1, 3}, a), tensor<float>({4, 1}, b)});
      Tensor out = run_ok(n);
      CHECK(n.out_type() == TensorType(DType::f32, {Dim(2), Dim(4), Dim(3)}));
      REQUIRE(out.shape() == Shape{2, 4, 3});
      std::vector<float> expected;
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 4; ++j) {
          for (int k = 0; k < 3; ++k) expected.push_back(c.f(a[i * 3 + k], b[j]));
        }
      }
      check_close(out, expected);
    }
  }
}

TEST_CASE("elementwise: integer arithmetic, division truncates toward zero") {
  Tensor a = tensor<int32_t>({4}, {7, -7, 7, -7});
  Tensor b = tensor<int32_t>({4}, {2, 2, -2, -2});
  CHECK(values_of<int32_t>(run_ok("Div", {a, b})) == std::vector<int32_t>{3, -3, -3, 3});
  CHECK(values_of<int32_t>(run_ok("Add", {a, b})) == std::vector<int32_t>{9, -5, 5, -9});
  CHECK(values_of<int32_t>(run_ok("Mul", {a, b})) == std::vector<int32_t>{14, -14, -14, 14});
  Tensor u = tensor<uint8_t>({3}, {250, 3, 9});
  CHECK(values_of<uint8_t>(run_ok("Sub", {u, tensor<uint8_t>({1}, {4})})) ==
        std::vector<uint8_t>{246, 255, 5});
  CHECK(values_of<int64_t>(run_ok("Div", {tensor<int64_t>({2}, {9, -9}), tensor<int64_t>({}, {4})})) ==
        std::vector<int64_t>{2, -2});
}

TEST_CASE("elementwise: integer division by zero is an error naming the node") {
  OneNode n("Div", {tensor<int32_t>({2}, {1, 2}), tensor<int32_t>({2}, {1, 0})});
  std::string msg = run_error(n);
  CHECK(mentions(msg, "Div 'n'"));
  CHECK(mentions(msg, "zero"));
}

TEST_CASE("elementwise: Mod follows the divisor's sign unless fmod = 1") {
  Tensor a = tensor<int64_t>({4}, {5, -5, 5, -5});
  Tensor b = tensor<int64_t>({4}, {3, 3, -3, -3});
  CHECK(values_of<int64_t>(run_ok("Mod", {a, b})) == std::vector<int64_t>{2, 1, -1, -2});
  CHECK(values_of<int64_t>(run_ok("Mod", {a, b}, {{"fmod", 1}})) == std::vector<int64_t>{2, -2, 2, -2});
  Tensor fa = tensor<float>({4}, {5.5f, -5.5f, 5.5f, -5.5f});
  Tensor fb = tensor<float>({4}, {2.0f, 2.0f, -2.0f, -2.0f});
  check_close(run_ok("Mod", {fa, fb}, {{"fmod", 1}}), {1.5f, -1.5f, 1.5f, -1.5f});
  check_close(run_ok("Mod", {fa, fb}), {1.5f, 0.5f, -0.5f, -1.5f});
}

TEST_CASE("elementwise: Pow with float and integer exponents") {
  Tensor base = tensor<float>({3}, {2.0f, 0.5f, 9.0f});
  check_close(run_ok("Pow", {base, tensor<float>({3}, {3.0f, -1.0f, 0.5f})}), {8.0f, 2.0f, 3.0f});
  OneNode n("Pow", {base, tensor<int64_t>({1}, {2})});
  check_close(run_ok(n), {4.0f, 0.25f, 81.0f});
  CHECK(n.out_type().dtype() == DType::f32);
  CHECK(values_of<int64_t>(
            run_ok("Pow", {tensor<int64_t>({3}, {2, -3, 7}), tensor<int64_t>({3}, {10, 3, 0})})) ==
        std::vector<int64_t>{1024, -27, 1});
  CHECK(values_of<int32_t>(run_ok("Pow", {tensor<int32_t>({2}, {2, 3}), tensor<float>({2}, {3.0f, 2.0f})})) ==
        std::vector<int32_t>{8, 9});
}

TEST_CASE("elementwise: variadic Max/Min/Sum/Mean broadcast three inputs") {
  Tensor a = tensor<float>({2, 2}, {1.0f, 5.0f, -2.0f, kNaN});
  Tensor b = tensor<float>({2}, {3.0f, 0.0f});
  Tensor c = tensor<float>({1}, {2.0f});
  check_close(run_ok("Max", {a, b, c}), {3.0f, 5.0f, 3.0f, kNaN});
  check_close(run_ok("Min", {a, b, c}), {1.0f, 0.0f, -2.0f, kNaN});
  Tensor a2 = tensor<float>({2, 2}, {1.0f, 5.0f, -2.0f, 4.0f});
  check_close(run_ok("Sum", {a2, b, c}), {6.0f, 7.0f, 3.0f, 6.0f});
  check_close(run_ok("Mean", {a2, b, c}), {2.0f, 7.0f / 3.0f, 1.0f, 2.0f});
  check_close(run_ok("Max", {a2}), {1.0f, 5.0f, -2.0f, 4.0f});
  CHECK(values_of<int32_t>(
            run_ok("Max", {tensor<int32_t>({3}, {1, -4, 9}), tensor<int32_t>({3}, {2, -5, 8})})) ==
        std::vector<int32_t>{2, -4, 9});
  CHECK(values_of<uint64_t>(run_ok("Min", {tensor<uint64_t>({2}, {1, 40}), tensor<uint64_t>({1}, {7})})) ==
        std::vector<uint64_t>{1, 7});
}

TEST_CASE("elementwise: PRelu broadcasts the slope") {
  Tensor x = tensor<float>({2, 3}, {-1.0f, 2.0f, -3.0f, 4.0f, -5.0f, 0.0f});
  Tensor slope = tensor<float>({3}, {0.1f, 0.2f, 0.3f});
  check_close(run_ok("PRelu", {x, slope}), {-0.1f, 2.0f, -0.9f, 4.0f, -1.0f, 0.0f});
}

TEST_CASE("elementwise: comparisons give bool with broadcasting") {
  Tensor a = tensor<float>({2, 2}, {1.0f, 2.0f, 3.0f, kNaN});
  Tensor b = tensor<float>({2}, {2.0f, 2.0f});
  CHECK(bools_of(run_ok("Equal", {a, b})) == std::vector<bool>{false, true, false, false});
  CHECK(bools_of(run_ok("Less", {a, b})) == std::vector<bool>{true, false, false, false});
  CHECK(bools_of(run_ok("LessOrEqual", {a, b})) == std::vector<bool>{true, true, false, false});
  CHECK(bools_of(run_ok("Greater", {a, b})) == std::vector<bool>{false, false, true, false});
  CHECK(bools_of(run_ok("GreaterOrEqual", {a, b})) == std::vector<bool>{false, true, true, false});
  Tensor i = tensor<int64_t>({3}, {-1, 5, 9});
  CHECK(bools_of(run_ok("Greater", {i, tensor<int64_t>({}, {5})})) == std::vector<bool>{false, false, true});
  CHECK(bools_of(run_ok("Equal", {btensor({2}, {true, false}), btensor({2}, {true, true})})) ==
        std::vector<bool>{true, false});
}

TEST_CASE("elementwise: logic ops and Not") {
  Tensor a = btensor({2, 2}, {true, true, false, false});
  Tensor b = btensor({2}, {true, false});
  CHECK(bools_of(run_ok("And", {a, b})) == std::vector<bool>{true, false, false, false});
  CHECK(bools_of(run_ok("Or", {a, b})) == std::vector<bool>{true, true, true, false});
  CHECK(bools_of(run_ok("Xor", {a, b})) == std::vector<bool>{false, true, true, false});
  CHECK(bools_of(run_ok("Not", {a})) == std::vector<bool>{false, false, true, true});
}

TEST_CASE("elementwise: BitShift on unsigned integers") {
  Tensor x = tensor<uint8_t>({3}, {16, 4, 1});
  Tensor y = tensor<uint8_t>({3}, {1, 2, 3});
  CHECK(values_of<uint8_t>(run_ok("BitShift", {x, y}, {{"direction", "RIGHT"}})) ==
        std::vector<uint8_t>{8, 1, 0});
  CHECK(values_of<uint8_t>(run_ok("BitShift", {x, y}, {{"direction", "LEFT"}})) ==
        std::vector<uint8_t>{32, 16, 8});
  Tensor x32 = tensor<uint32_t>({2}, {1, 0x80000000u});
  CHECK(values_of<uint32_t>(run_ok("BitShift", {x32, tensor<uint32_t>({1}, {31})},
                                   {{"direction", "LEFT"}})) == std::vector<uint32_t>{0x80000000u, 0});
  OneNode bad("BitShift", {x, y}, {{"direction", "UP"}});
  CHECK(mentions(run_error(bad), "BitShift 'n'"));
}

TEST_CASE("elementwise: Where broadcasts three ways and keeps f16 bits") {
  Tensor cond = btensor({2, 1}, {true, false});
  Tensor x = tensor<float>({3}, {1.0f, 2.0f, 3.0f}).cast(DType::f16);
  Tensor y = tensor<float>({1}, {-7.5f}).cast(DType::f16);
  OneNode n("Where", {cond, x, y});
  Tensor out = run_ok(n);
  CHECK(n.out_type() == TensorType(DType::f16, {Dim(2), Dim(3)}));
  REQUIRE(out.dtype() == DType::f16);
  REQUIRE(out.shape() == Shape{2, 3});
  const uint16_t* o = out.data<uint16_t>();
  const uint16_t* xb = x.data<uint16_t>();
  const uint16_t yb = y.data<uint16_t>()[0];
  std::vector<uint16_t> expected = {xb[0], xb[1], xb[2], yb, yb, yb};
  CHECK(std::vector<uint16_t>(o, o + 6) == expected);

  Tensor xi = tensor<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor yi = tensor<int64_t>({2, 2}, {-1, -2, -3, -4});
  CHECK(values_of<int64_t>(run_ok("Where", {btensor({2}, {false, true}), xi, yi})) ==
        std::vector<int64_t>{-1, 2, -3, 4});
}

TEST_CASE("elementwise: Cast converts by ONNX type number") {
  Tensor x = tensor<float>({4}, {1.9f, -1.9f, 0.0f, 300.5f});
  OneNode to_i32("Cast", {x}, {{"to", 6}});
  CHECK(values_of<int32_t>(run_ok(to_i32)) == std::vector<int32_t>{1, -1, 0, 300});
  CHECK(to_i32.out_type() == TensorType(DType::i32, {Dim(4)}));
  CHECK(bools_of(run_ok("Cast", {x}, {{"to", 9}})) == std::vector<bool>{true, true, false, true});
  CHECK(values_of<double>(run_ok("Cast", {tensor<int64_t>({2}, {-3, 1LL << 40})}, {{"to", 11}})) ==
        std::vector<double>{-3.0, 1099511627776.0});
  // 1 + 2^-11 is halfway between two f16 values and rounds to even (1.0); 65520 overflows to inf.
  Tensor h = run_ok("Cast", {tensor<float>({3}, {1.00048828125f, 0.25f, 65520.0f})}, {{"to", 10}});
  REQUIRE(h.dtype() == DType::f16);
  CHECK(std::vector<uint16_t>(h.data<uint16_t>(), h.data<uint16_t>() + 3) ==
        std::vector<uint16_t>{0x3C00, 0x3400, 0x7C00});
  Tensor bf = run_ok("Cast", {tensor<float>({1}, {-2.0f})}, {{"to", 16}});
  REQUIRE(bf.dtype() == DType::bf16);
  CHECK(bf.data<uint16_t>()[0] == 0xC000);
  Tensor back = run_ok("Cast", {h}, {{"to", 1}});
  check_close(back, {1.0f, 0.25f, kInf});
}

TEST_CASE("elementwise: Cast to an unsupported type is an error naming node and type") {
  OneNode n("Cast", {tensor<float>({1}, {1.0f})}, {{"to", 8}});
  Status st = n.infer();
  REQUIRE_FALSE(st.is_ok());
  CHECK(mentions(st.message(), "Cast 'n'"));
  CHECK(mentions(st.message(), "STRING"));
  OneNode f8("Cast", {tensor<float>({1}, {1.0f})}, {{"to", 17}});
  CHECK(mentions(run_error(f8), "FLOAT8E4M3FN"));
}

TEST_CASE("elementwise: CastLike takes the dtype of its second input") {
  OneNode n("CastLike", {tensor<float>({2}, {2.7f, -0.5f}), tensor<int64_t>({1}, {0})});
  CHECK(values_of<int64_t>(run_ok(n)) == std::vector<int64_t>{2, 0});
  CHECK(n.out_type().dtype() == DType::i64);
}

TEST_CASE("elementwise: Clip with both, one or crossed bounds") {
  Tensor x = tensor<float>({5}, {-3.0f, -1.0f, 0.5f, 2.0f, kNaN});
  Tensor lo = tensor<float>({}, {-1.5f});
  Tensor hi = tensor<float>({}, {1.0f});
  check_close(run_ok("Clip", {x, lo, hi}), {-1.5f, -1.0f, 0.5f, 1.0f, kNaN});
  check_close(run_ok("Clip", {x, lo}), {-1.5f, -1.0f, 0.5f, 2.0f, kNaN});
  check_close(run_ok("Clip", {x, Tensor(), hi}), {-3.0f, -1.0f, 0.5f, 1.0f, kNaN});
  check_close(run_ok("Clip", {x, tensor<float>({}, {2.0f}), tensor<float>({}, {1.0f})}),
              {1.0f, 1.0f, 1.0f, 1.0f, kNaN});
  CHECK(values_of<int8_t>(run_ok("Clip", {tensor<int8_t>({3}, {-100, 5, 100}), tensor<int8_t>({}, {-10}),
                                          tensor<int8_t>({}, {10})})) == std::vector<int8_t>{-10, 5, 10});
}

TEST_CASE("elementwise: Dropout passes data through with an all-true mask") {
  Tensor x = tensor<float>({2, 2}, {1.0f, -2.0f, 3.0f, 4.0f}).cast(DType::f16);
  OneNode n("Dropout", {x, tensor<float>({}, {0.5f})}, {}, 2);
  auto r = n.run();
  REQUIRE(r.is_ok());
  CHECK(r.value()[0].same_bytes(x));
  CHECK(bools_of(r.value()[1]) == std::vector<bool>{true, true, true, true});
  CHECK(n.out_type(1) == TensorType(DType::boolean, {Dim(2), Dim(2)}));

  OneNode training("Dropout", {x, tensor<float>({}, {0.5f}), btensor({}, {true})});
  CHECK(mentions(run_error(training), "training_mode"));
  // ratio 0 drops nothing, so training mode is the same identity.
  OneNode no_drop("Dropout", {x, tensor<float>({}, {0.0f}), btensor({}, {true})}, {}, 2);
  auto kept = no_drop.run();
  REQUIRE(kept.is_ok());
  CHECK(kept.value()[0].same_bytes(x));
  CHECK(bools_of(kept.value()[1]) == std::vector<bool>{true, true, true, true});
}

TEST_CASE("elementwise: Identity keeps any dtype unchanged") {
  Tensor x = tensor<float>({3}, {1.5f, -0.1f, 1e4f}).cast(DType::bf16);
  Tensor out = run_ok("Identity", {x});
  CHECK(out.same_bytes(x));
  Tensor b = btensor({2}, {true, false});
  CHECK(run_ok("Identity", {b}).same_bytes(b));
}

TEST_CASE("elementwise: shapes that cannot broadcast are errors naming the node") {
  SECTION("static shapes fail in inference") {
    OneNode n("Add",
              {tensor<float>({2, 3}, std::vector<float>(6)), tensor<float>({4}, std::vector<float>(4))});
    Status st = n.infer();
    REQUIRE_FALSE(st.is_ok());
    CHECK(mentions(st.message(), "Add 'n'"));
  }
  SECTION("symbolic shapes fail in the kernel") {
    Graph g;
    Value* a = g.add_input("a", TensorType(DType::f32, {Dim::symbol("s"), Dim(3)}));
    Value* b = g.add_input("b", TensorType(DType::f32, {Dim::symbol("t"), Dim(3)}));
    Node* n = g.add_node("Mul", {a, b}, 1, {}, {"y"});
    n->set_name("m");
    g.set_outputs({n->output(0)});
    REQUIRE(infer_graph_types(g).is_ok());
    auto r = runtime::ReferenceExecutor().run(
        g, {tensor<float>({2, 3}, std::vector<float>(6)), tensor<float>({3, 3}, std::vector<float>(9))});
    REQUIRE_FALSE(r.is_ok());
    CHECK(mentions(r.status().message(), "Mul 'm'"));
    CHECK(mentions(r.status().message(), "broadcast"));
  }
  SECTION("mixed dtypes fail in inference") {
    OneNode n("Sub", {tensor<float>({2}, {1.0f, 2.0f}), tensor<int32_t>({2}, {1, 2})});
    Status st = n.infer();
    REQUIRE_FALSE(st.is_ok());
    CHECK(mentions(st.message(), "Sub 'n'"));
  }
}

TEST_CASE("elementwise: broadcast inference merges symbolic and static dims") {
  Graph g;
  Value* a = g.add_input("a", TensorType(DType::f32, {Dim::symbol("batch"), Dim(1), Dim(8)}));
  Value* b = g.add_input("b", TensorType(DType::f32, {Dim(5), Dim(1)}));
  Value* c = g.add_input("c", TensorType(DType::boolean, {Dim(8)}));
  Node* add = g.add_node("Add", {a, b}, 1);
  Node* eq = g.add_node("Equal", {a, b}, 1);
  Node* where = g.add_node("Where", {c, add->output(0), b}, 1);
  g.set_outputs({add->output(0), eq->output(0), where->output(0)});
  REQUIRE(infer_graph_types(g).is_ok());
  TensorType expected(DType::f32, {Dim::symbol("batch"), Dim(5), Dim(8)});
  CHECK(add->output(0)->type() == expected);
  CHECK(eq->output(0)->type() == TensorType(DType::boolean, {Dim::symbol("batch"), Dim(5), Dim(8)}));
  CHECK(where->output(0)->type() == expected);
}
