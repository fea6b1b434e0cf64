// Reduce-family ops: ReduceX, ArgMax/ArgMin, CumSum, Softmax/LogSoftmax/Hardmax and TopK —
// shape inference and reference kernels, checked against naive loops written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
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

// One-node graph: inputs listed in `constant_inputs` become graph constants, the rest graph
// inputs; an undefined Tensor is an absent optional input.
struct OneNode {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
  std::vector<Tensor> feeds;

  OneNode(const std::string& op, const std::vector<Tensor>& inputs,
          std::map<std::string, Attribute> attrs = {}, const std::vector<int>& constant_inputs = {},
          int num_outputs = 1) {
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

std::vector<Tensor> run_all(OneNode& n) {
  auto r = n.run();
  INFO((r.is_ok() ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return r.value();
}

Tensor run_ok(OneNode& n) {
  return run_all(n)[0];
}

std::string run_error(OneNode& n) {
  auto r = n.run();
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

template <typename T>
Tensor tensor(Shape shape, std::vector<T> values) {
  return Tensor::from_vector<T>(std::move(shape), values);
}

Tensor axes(const std::vector<int64_t>& values) {
  return tensor<int64_t>({static_cast<int64_t>(values.size())}, values);
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  REQUIRE(t.dtype() == dtype_of<T>::value);
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

void check_close(const Tensor& t, const std::vector<float>& expected, float tol = 1e-5f) {
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

// x[i][j][k] = a deterministic mix of positive and negative values, shape [2, 3, 4].
std::vector<float> sample_234() {
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[i] = static_cast<float>((i * 7) % 11) * 0.25f - 1.0f;
  return x;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

}  // namespace

TEST_CASE("reduce: every ReduceX over axes {0, 2} of [2,3,4] matches a naive loop") {
  const std::vector<float> x = sample_234();
  struct Case {
    const char* op;
    std::function<double(const std::vector<double>&)> f;
  };
  auto sum = [](const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e;
    return s;
  };
  const std::vector<Case> cases = {
      {"ReduceSum", sum},
      {"ReduceMean", [&](const std::vector<double>& v) { return sum(v) / static_cast<double>(v.size()); }},
      {"ReduceMax",
       [](const std::vector<double>& v) {
         double m = v[0];
         for (double e : v) m = e > m ? e : m;
         return m;
       }},
      {"ReduceMin",
       [](const std::vector<double>& v) {
         double m = v[0];
         for (double e : v) m = e < m ? e : m;
         return m;
       }},
      {"ReduceProd",
       [](const std::vector<double>& v) {
         double p = 1;
         for (double e : v) p *= e;
         return p;
       }},
      {"ReduceL1",
       [](const std::vector<double>& v) {
         double s = 0;
         for (double e : v) s += std::fabs(e);
         return s;
       }},
      {"ReduceL2",
       [](const std::vector<double>& v) {
         double s = 0;
         for (double e : v) s += e * e;
         return std::sqrt(s);
       }},
      {"ReduceSumSquare",
       [](const std::vector<double>& v) {
         double s = 0;
         for (double e : v) s += e * e;
         return s;
       }},
      {"ReduceLogSumExp",
       [](const std::vector<double>& v) {
         double s = 0;
         for (double e : v) s += std::exp(e);
         return std::log(s);
       }},
  };
  for (const Case& c : cases) {
    for (int keepdims : {1, 0}) {
      SECTION(std::string(c.op) + (keepdims ? " keepdims" : " no keepdims")) {
        OneNode n(c.op, {tensor<float>({2, 3, 4}, x), axes({0, -1})}, {{"keepdims", keepdims}}, {1});
        Tensor out = run_ok(n);
        Shape expected_shape = keepdims ? Shape{1, 3, 1} : Shape{3};
        CHECK(out.shape() == expected_shape);
        CHECK(n.out_type() == TensorType::from_shape(DType::f32, expected_shape));
        std::vector<float> expected;
        for (int j = 0; j < 3; ++j) {
          std::vector<double> group;
          for (int i = 0; i < 2; ++i) {
            for (int k = 0; k < 4; ++k) group.push_back(x[i * 12 + j * 4 + k]);
          }
          expected.push_back(static_cast<float>(c.f(group)));
        }
        check_close(out, expected);
      }
    }
  }
}

TEST_CASE("reduce: ReduceLogSum of positive values") {
  std::vector<float> x = {0.5f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  OneNode n("ReduceLogSum", {tensor<float>({2, 3}, x), axes({1})}, {}, {1});
  check_close(run_ok(n), {std::log(3.5f), std::log(12.0f)});
}

TEST_CASE("reduce: absent axes reduce everything unless noop_with_empty_axes") {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  OneNode all("ReduceSum", {tensor<float>({2, 3}, x)});
  Tensor out = run_ok(all);
  CHECK(out.shape() == Shape{1, 1});
  check_close(out, {21.0f});
  OneNode scalar("ReduceMean", {tensor<float>({2, 3}, x)}, {{"keepdims", 0}});
  Tensor mean = run_ok(scalar);
  CHECK(mean.shape() == Shape{});
  check_close(mean, {3.5f});
  OneNode noop("ReduceSum", {tensor<float>({2, 3}, x), axes({})}, {{"noop_with_empty_axes", 1}}, {1});
  Tensor same = run_ok(noop);
  CHECK(same.shape() == Shape{2, 3});
  check_close(same, x);
  CHECK(noop.out_type() == TensorType(DType::f32, {Dim(2), Dim(3)}));
}

TEST_CASE("reduce: integer ReduceSum/Max/Min/Prod stay exact") {
  std::vector<int64_t> x = {3, -1, 4, 1, -5, 9, 2, 6};
  OneNode sum("ReduceSum", {tensor<int64_t>({2, 4}, x), axes({1})}, {{"keepdims", 0}}, {1});
  CHECK(values_of<int64_t>(run_ok(sum)) == std::vector<int64_t>{7, 12});
  OneNode max("ReduceMax", {tensor<int64_t>({2, 4}, x), axes({0})}, {{"keepdims", 0}}, {1});
  CHECK(values_of<int64_t>(run_ok(max)) == std::vector<int64_t>{3, 9, 4, 6});
  OneNode min("ReduceMin", {tensor<int64_t>({2, 4}, x)}, {{"keepdims", 0}});
  CHECK(values_of<int64_t>(run_ok(min)) == std::vector<int64_t>{-5});
  std::vector<int32_t> xi = {2, 3, -4, 5, 1, 1};
  OneNode prod("ReduceProd", {tensor<int32_t>({3, 2}, xi), axes({0})}, {}, {1});
  CHECK(values_of<int32_t>(run_ok(prod)) == std::vector<int32_t>{-8, 15});
  std::vector<int64_t> big = {int64_t{1} << 60, 3};
  OneNode exact("ReduceSum", {tensor<int64_t>({2}, big)}, {{"keepdims", 0}});
  CHECK(values_of<int64_t>(run_ok(exact)) == std::vector<int64_t>{(int64_t{1} << 60) + 3});
}

TEST_CASE("reduce: ReduceMax propagates NaN, ReduceLogSumExp is stable") {
  OneNode max("ReduceMax", {tensor<float>({2, 2}, {1.0f, kNaN, 3.0f, 2.0f}), axes({1})}, {{"keepdims", 0}},
              {1});
  check_close(run_ok(max), {kNaN, 3.0f});
  OneNode lse("ReduceLogSumExp", {tensor<float>({2}, {1000.0f, 1000.0f})}, {{"keepdims", 0}});
  check_close(run_ok(lse), {1000.0f + std::log(2.0f)});
}

TEST_CASE("reduce: f16 input reduces through f32") {
  Tensor x = tensor<float>({2, 2}, {1.0f, 2.0f, 3.5f, -0.5f}).cast(DType::f16);
  OneNode n("ReduceSum", {x, axes({0})}, {}, {1});
  Tensor out = run_ok(n);
  CHECK(out.dtype() == DType::f16);
  check_close(out, {4.5f, 1.5f});
}

TEST_CASE("reduce: shape inference with constant, runtime and absent axes") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim(3), Dim(4)}));
  Value* ax = g.add_input("ax", TensorType(DType::i64, {Dim(1)}));
  Value* c = g.add_constant("c", axes({1}));
  Node* keep_const = g.add_node("ReduceMax", {x, c}, 1);
  Node* drop_const = g.add_node("ReduceMax", {x, c}, 1, {{"keepdims", 0}});
  Node* keep_runtime = g.add_node("ReduceSum", {x, ax}, 1);
  Node* drop_runtime = g.add_node("ReduceSum", {x, ax}, 1, {{"keepdims", 0}});
  Node* absent = g.add_node("ReduceL2", {x}, 1, {{"keepdims", 0}});
  g.set_outputs({keep_const->output(0), drop_const->output(0), keep_runtime->output(0),
                 drop_runtime->output(0), absent->output(0)});
  REQUIRE(infer_graph_types(g).is_ok());
  CHECK(keep_const->output(0)->type() == TensorType(DType::f32, {Dim::symbol("batch"), Dim(1), Dim(4)}));
  CHECK(drop_const->output(0)->type() == TensorType(DType::f32, {Dim::symbol("batch"), Dim(4)}));
  CHECK(keep_runtime->output(0)->type() == TensorType(DType::f32, {Dim(), Dim(), Dim()}));
  CHECK_FALSE(drop_runtime->output(0)->type().has_rank());
  CHECK(drop_runtime->output(0)->type().dtype() == DType::f32);
  CHECK(absent->output(0)->type() == TensorType(DType::f32, {}));

  // Runtime axes still compute the right values.
  std::vector<float> xv = sample_234();
  auto r = runtime::ReferenceExecutor().run(g, {tensor<float>({2, 3, 4}, xv), axes({2})});
  REQUIRE(r.is_ok());
  const Tensor& sum = r.value()[3];
  REQUIRE(sum.shape() == Shape{2, 3});
  std::vector<float> expected;
  for (int i = 0; i < 6; ++i) {
    float s = 0;
    for (int k = 0; k < 4; ++k) s += xv[i * 4 + k];
    expected.push_back(s);
  }
  check_close(sum, expected);
}

TEST_CASE("reduce: a bad axis is an error naming the node") {
  SECTION("constant axes fail in inference") {
    OneNode n("ReduceSum", {tensor<float>({2, 3}, std::vector<float>(6)), axes({2})}, {}, {1});
    Status st = n.infer();
    REQUIRE_FALSE(st.is_ok());
    CHECK(mentions(st.message(), "ReduceSum 'n'"));
    CHECK(mentions(st.message(), "axis"));
  }
  SECTION("runtime axes fail in the kernel") {
    OneNode n("ReduceMean", {tensor<float>({2, 3}, std::vector<float>(6)), axes({-3})});
    std::string msg = run_error(n);
    CHECK(mentions(msg, "ReduceMean 'n'"));
    CHECK(mentions(msg, "-3"));
  }
  SECTION("duplicate axes") {
    OneNode n("ReduceSum", {tensor<float>({2, 3}, std::vector<float>(6)), axes({1, -1})});
    CHECK(mentions(run_error(n), "ReduceSum 'n'"));
  }
  SECTION("ArgMax axis") {
    OneNode n("ArgMax", {tensor<float>({2, 3}, std::vector<float>(6))}, {{"axis", 2}});
    CHECK(mentions(run_error(n), "ArgMax 'n'"));
  }
  SECTION("Softmax axis") {
    OneNode n("Softmax", {tensor<float>({2, 3}, std::vector<float>(6))}, {{"axis", -3}});
    CHECK(mentions(run_error(n), "Softmax 'n'"));
  }
  SECTION("CumSum axis") {
    OneNode n("CumSum", {tensor<float>({2, 3}, std::vector<float>(6)), tensor<int64_t>({}, {5})});
    CHECK(mentions(run_error(n), "CumSum 'n'"));
  }
}

TEST_CASE("reduce: ArgMax/ArgMin with keepdims and select_last_index") {
  std::vector<float> x = {1.0f, 5.0f, 5.0f, 0.0f, 2.0f, 2.0f, 7.0f, 2.0f};  // [2, 4]
  OneNode first("ArgMax", {tensor<float>({2, 4}, x)}, {{"axis", 1}});
  Tensor a = run_ok(first);
  CHECK(a.shape() == Shape{2, 1});
  CHECK(values_of<int64_t>(a) == std::vector<int64_t>{1, 2});
  CHECK(first.out_type() == TensorType(DType::i64, {Dim(2), Dim(1)}));
  OneNode last("ArgMax", {tensor<float>({2, 4}, x)},
               {{"axis", -1}, {"keepdims", 0}, {"select_last_index", 1}});
  CHECK(values_of<int64_t>(run_ok(last)) == std::vector<int64_t>{2, 2});
  OneNode min0("ArgMin", {tensor<float>({2, 4}, x)}, {{"keepdims", 0}});
  CHECK(values_of<int64_t>(run_ok(min0)) == std::vector<int64_t>{0, 1, 0, 0});
  OneNode min_last("ArgMin", {tensor<float>({2, 4}, x)}, {{"axis", 1}, {"select_last_index", 1}});
  CHECK(values_of<int64_t>(run_ok(min_last)) == std::vector<int64_t>{3, 3});
  OneNode ints("ArgMin", {tensor<int32_t>({5}, {4, -2, 7, -2, 0})}, {{"keepdims", 0}});
  CHECK(values_of<int64_t>(run_ok(ints)) == std::vector<int64_t>{1});
}

TEST_CASE("reduce: CumSum forward, exclusive and reverse") {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};  // [2, 3]
  auto cumsum = [&](int axis, bool exclusive, bool reverse) {
    std::vector<float> out(6);
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 3; ++j) {
        float s = 0;
        for (int k = 0; k < (axis == 1 ? 3 : 2); ++k) {
          int ii = axis == 1 ? i : k;
          int jj = axis == 1 ? k : j;
          int pos = axis == 1 ? j : i;
          bool take = reverse ? (exclusive ? k > pos : k >= pos) : (exclusive ? k < pos : k <= pos);
          if (take) s += x[ii * 3 + jj];
        }
        out[i * 3 + j] = s;
      }
    }
    return out;
  };
  for (int axis : {0, 1}) {
    for (int exclusive : {0, 1}) {
      for (int reverse : {0, 1}) {
        OneNode n("CumSum", {tensor<float>({2, 3}, x), tensor<int32_t>({}, {axis - 2})},
                  {{"exclusive", exclusive}, {"reverse", reverse}}, {1});
        INFO("axis " << axis << " exclusive " << exclusive << " reverse " << reverse);
        check_close(run_ok(n), cumsum(axis, exclusive != 0, reverse != 0));
      }
    }
  }
  OneNode ints("CumSum", {tensor<int64_t>({4}, {1, -2, 3, 10}), tensor<int64_t>({1}, {0})});
  CHECK(values_of<int64_t>(run_ok(ints)) == std::vector<int64_t>{1, -1, 2, 12});
}

TEST_CASE("reduce: Softmax, LogSoftmax and Hardmax along an axis") {
  const std::vector<float> x = sample_234();
  for (int axis : {0, 1, -1}) {
    const int a = axis < 0 ? 2 : axis;
    const int dims[3] = {2, 3, 4};
    auto index = [](int i, int j, int k) { return i * 12 + j * 4 + k; };
    std::vector<float> soft(24), log_soft(24), hard(24, 0.0f);
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 3; ++j) {
        for (int k = 0; k < 4; ++k) {
          int pos[3] = {i, j, k};
          if (pos[a] != 0) continue;  // one pass per line along the axis
          double max_v = -1e30, sum = 0;
          int arg = 0;
          for (int t = 0; t < dims[a]; ++t) {
            pos[a] = t;
            double v = x[index(pos[0], pos[1], pos[2])];
            if (v > max_v) {
              max_v = v;
              arg = t;
            }
          }
          for (int t = 0; t < dims[a]; ++t) {
            pos[a] = t;
            sum += std::exp(x[index(pos[0], pos[1], pos[2])]);
          }
          for (int t = 0; t < dims[a]; ++t) {
            pos[a] = t;
            int at = index(pos[0], pos[1], pos[2]);
            soft[at] = static_cast<float>(std::exp(x[at]) / sum);
            log_soft[at] = static_cast<float>(x[at] - std::log(sum));
            hard[at] = t == arg ? 1.0f : 0.0f;
          }
        }
      }
    }
    INFO("axis " << axis);
    OneNode s("Softmax", {tensor<float>({2, 3, 4}, x)}, {{"axis", axis}});
    check_close(run_ok(s), soft);
    OneNode l("LogSoftmax", {tensor<float>({2, 3, 4}, x)}, {{"axis", axis}});
    check_close(run_ok(l), log_soft);
    OneNode h("Hardmax", {tensor<float>({2, 3, 4}, x)}, {{"axis", axis}});
    check_close(run_ok(h), hard);
  }
  OneNode big("Softmax", {tensor<float>({3}, {1000.0f, 1000.0f, -kInf})});
  check_close(run_ok(big), {0.5f, 0.5f, 0.0f});
  OneNode f16("LogSoftmax", {tensor<float>({2}, {0.0f, 0.0f}).cast(DType::f16)});
  Tensor out = run_ok(f16);
  CHECK(out.dtype() == DType::f16);
  check_close(out, {-std::log(2.0f), -std::log(2.0f)}, 1e-3f);
}

TEST_CASE("reduce: TopK largest/smallest with ties keeping the lower index") {
  std::vector<float> x = {3.0f, 1.0f, 3.0f, 2.0f, 0.0f, 5.0f, 5.0f, -1.0f};  // [2, 4]
  OneNode top("TopK", {tensor<float>({2, 4}, x), tensor<int64_t>({1}, {2})}, {}, {1}, 2);
  std::vector<Tensor> out = run_all(top);
  CHECK(top.out_type(0) == TensorType(DType::f32, {Dim(2), Dim(2)}));
  CHECK(top.out_type(1) == TensorType(DType::i64, {Dim(2), Dim(2)}));
  check_close(out[0], {3.0f, 3.0f, 5.0f, 5.0f});
  CHECK(values_of<int64_t>(out[1]) == std::vector<int64_t>{0, 2, 1, 2});

  OneNode low("TopK", {tensor<float>({2, 4}, x), tensor<int64_t>({1}, {3})}, {{"largest", 0}}, {}, 2);
  out = run_all(low);
  check_close(out[0], {1.0f, 2.0f, 3.0f, -1.0f, 0.0f, 5.0f});
  CHECK(values_of<int64_t>(out[1]) == std::vector<int64_t>{1, 3, 0, 3, 0, 1});

  OneNode axis0("TopK", {tensor<int32_t>({2, 4}, {1, 8, 3, 4, 5, 6, 7, 2}), tensor<int64_t>({1}, {1})},
                {{"axis", 0}}, {1}, 2);
  out = run_all(axis0);
  CHECK(values_of<int32_t>(out[0]) == std::vector<int32_t>{5, 8, 7, 4});
  CHECK(values_of<int64_t>(out[1]) == std::vector<int64_t>{1, 0, 1, 0});

  OneNode too_many("TopK", {tensor<float>({2, 4}, x), tensor<int64_t>({1}, {5})}, {}, {}, 2);
  std::string msg = run_error(too_many);
  CHECK(mentions(msg, "TopK 'n'"));
  CHECK(mentions(msg, "K = 5"));
}
