// SelectiveScan (ir/ops/ssm.cpp, backends/reference/ssm.cpp): the reference kernel against a naive loop
// written here (grouped B/C, every optional input), the one-token step form continuing a sequence through
// h0 -> h, shape inference, and the errors for bad shapes and attributes.
#include <catch2/catch.hpp>

#include <cmath>
#include <optional>
#include <random>

#include "ir/infer.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

Tensor random_tensor(Shape shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::empty(DType::f32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

TensorType f32(const std::vector<Dim>& dims) {
  return TensorType(DType::f32, dims);
}

// A graph holding one SelectiveScan over inputs of the given types (an empty type = absent input).
std::unique_ptr<Graph> scan_graph(const std::vector<std::optional<TensorType>>& types, int outputs,
                                  int64_t softplus = 1) {
  static const char* names[9] = {"u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0"};
  auto g = std::make_unique<Graph>();
  std::vector<Value*> inputs;
  for (size_t i = 0; i < types.size(); ++i)
    inputs.push_back(types[i] ? g->add_input(names[i], *types[i]) : nullptr);
  Node* n = g->add_node("SelectiveScan", inputs, outputs, {{"delta_softplus", softplus}}, {"y", "h"});
  n->set_name("ssm");
  g->set_outputs(std::vector<Value*>(n->outputs().begin(), n->outputs().end()));
  return g;
}

struct Inputs {
  Tensor u, delta, A, Bm, Cm, D, z, bias, h0;
};

// y and the final state, by the formula, in double: channel d reads group d / (D / G).
std::pair<std::vector<double>, std::vector<double>> naive(const Inputs& in, bool softplus, bool grouped) {
  const int64_t B = in.u.dim(0), D = in.u.dim(1), L = in.u.dim(2), N = in.A.dim(1);
  const int64_t G = grouped ? in.Bm.dim(1) : 1;
  std::vector<double> y(B * D * L), h(B * D * N);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t d = 0; d < D; ++d) {
      const int64_t g = d / (D / G);
      std::vector<double> s(N);
      for (int64_t n = 0; n < N; ++n) s[n] = in.h0.defined() ? in.h0.data<float>()[(b * D + d) * N + n] : 0.0;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t at = (b * D + d) * L + l;
        double dt = in.delta.data<float>()[at] + (in.bias.defined() ? in.bias.data<float>()[d] : 0.0);
        if (softplus) dt = std::log1p(std::exp(dt));
        const double x = in.u.data<float>()[at];
        double acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t bc = ((b * G + g) * N + n) * L + l;
          s[n] = std::exp(dt * in.A.data<float>()[d * N + n]) * s[n] + dt * in.Bm.data<float>()[bc] * x;
          acc += in.Cm.data<float>()[bc] * s[n];
        }
        if (in.D.defined()) acc += in.D.data<float>()[d] * x;
        if (in.z.defined()) {
          const double z = in.z.data<float>()[at];
          acc *= z / (1.0 + std::exp(-z));
        }
        y[at] = acc;
      }
      for (int64_t n = 0; n < N; ++n) h[(b * D + d) * N + n] = s[n];
    }
  }
  return {y, h};
}

double max_abs_diff(const Tensor& t, const std::vector<double>& want) {
  double m = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(t.data<float>()[i] - want[i]));
  return m;
}

}  // namespace

TEST_CASE("SelectiveScan: grouped B/C with every optional input matches the formula") {
  std::mt19937 rng(11);
  const int64_t B = 2, D = 6, L = 5, N = 3, G = 2;
  Inputs in{random_tensor({B, D, L}, rng),
            random_tensor({B, D, L}, rng),
            random_tensor({D, N}, rng, -2.0f, -0.1f),
            random_tensor({B, G, N, L}, rng),
            random_tensor({B, G, N, L}, rng),
            random_tensor({D}, rng),
            random_tensor({B, D, L}, rng),
            random_tensor({D}, rng),
            random_tensor({B, D, N}, rng)};
  auto g = scan_graph({f32({B, D, L}), f32({B, D, L}), f32({D, N}), f32({B, G, N, L}), f32({B, G, N, L}),
                       f32({D}), f32({B, D, L}), f32({D}), f32({B, D, N})},
                      2);
  REQUIRE(infer_graph_types(*g).is_ok());
  CHECK(g->outputs()[0]->type() == f32({B, D, L}));
  CHECK(g->outputs()[1]->type() == f32({B, D, N}));
  auto out =
      runtime::ReferenceExecutor().run(*g, {in.u, in.delta, in.A, in.Bm, in.Cm, in.D, in.z, in.bias, in.h0});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  const auto [y, h] = naive(in, true, true);
  CHECK(max_abs_diff((*out)[0], y) < 1e-5);
  CHECK(max_abs_diff((*out)[1], h) < 1e-5);
}

TEST_CASE("SelectiveScan: the one-token step form continues a sequence through h0 -> h") {
  std::mt19937 rng(12);
  const int64_t B = 1, D = 4, L = 4, N = 2;
  Inputs in{random_tensor({B, D, L}, rng),
            random_tensor({B, D, L}, rng),
            random_tensor({D, N}, rng, -2.0f, -0.1f),
            random_tensor({B, N, L}, rng),
            random_tensor({B, N, L}, rng),
            Tensor(),
            Tensor(),
            Tensor(),
            Tensor()};
  const auto [y, h] = naive(in, false, false);
  // Step by step: L = 1, no softplus, the state fed back.
  auto g = scan_graph({f32({B, D, 1}), f32({B, D, 1}), f32({D, N}), f32({B, N, 1}), f32({B, N, 1}),
                       std::nullopt, std::nullopt, std::nullopt, f32({B, D, N})},
                      2, 0);
  REQUIRE(infer_graph_types(*g).is_ok());
  Tensor state = Tensor::empty(DType::f32, {B, D, N});
  for (int64_t i = 0; i < state.numel(); ++i) state.data<float>()[i] = 0.0f;
  auto step = [](const Tensor& t, int64_t l) {
    Tensor s = Tensor::empty(DType::f32, {t.dim(0), t.dim(1), 1});
    for (int64_t r = 0; r < t.dim(0) * t.dim(1); ++r) s.data<float>()[r] = t.data<float>()[r * t.dim(2) + l];
    return s;
  };
  double worst = 0.0;
  for (int64_t l = 0; l < L; ++l) {
    auto out = runtime::ReferenceExecutor().run(
        *g, {step(in.u, l), step(in.delta, l), in.A, step(in.Bm, l), step(in.Cm, l), state});
    INFO(out.status().message());
    REQUIRE(out.is_ok());
    for (int64_t d = 0; d < D; ++d)
      worst = std::max(worst, std::fabs((*out)[0].data<float>()[d] - y[d * L + l]));
    state = (*out)[1];
  }
  CHECK(worst < 1e-5);
  CHECK(max_abs_diff(state, h) < 1e-5);
}

TEST_CASE("SelectiveScan: inference and kernel errors name the node and the input") {
  const Dim u = Dim::unknown();
  // Inference: A must be [D, N] with the D of u.
  auto bad_a = scan_graph({f32({2, 4, 3}), f32({2, 4, 3}), f32({5, 2}), f32({2, 2, 3}), f32({2, 2, 3})}, 1);
  Status st = infer_graph_types(*bad_a);
  CHECK_FALSE(st.is_ok());
  CHECK_THAT(st.message(), Catch::Contains("ssm") && Catch::Contains("A"));
  auto bad_flag =
      scan_graph({f32({2, 4, 3}), f32({2, 4, 3}), f32({4, 2}), f32({2, 2, 3}), f32({2, 2, 3})}, 1, 2);
  CHECK_THAT(infer_graph_types(*bad_flag).message(), Catch::Contains("delta_softplus"));
  // Kernel: shapes unknown to inference, wrong at run time.
  auto g = scan_graph({f32({u, u, u}), f32({u, u, u}), f32({u, u}), f32({u, u, u}), f32({u, u, u}),
                       std::nullopt, f32({u, u, u})},
                      1);
  REQUIRE(infer_graph_types(*g).is_ok());
  std::mt19937 rng(13);
  Tensor x = random_tensor({1, 4, 3}, rng), A = random_tensor({4, 2}, rng),
         bc = random_tensor({1, 2, 3}, rng);
  auto wrong_z = runtime::ReferenceExecutor().run(*g, {x, x, A, bc, bc, random_tensor({1, 4, 2}, rng)});
  REQUIRE_FALSE(wrong_z.is_ok());
  CHECK_THAT(wrong_z.status().message(), Catch::Contains("ssm") && Catch::Contains("z must be [1, 4, 3]"));
  auto wrong_b = runtime::ReferenceExecutor().run(*g, {x, x, A, random_tensor({1, 3, 3}, rng), bc, x});
  REQUIRE_FALSE(wrong_b.is_ok());
  CHECK_THAT(wrong_b.status().message(), Catch::Contains("Bmat must be [1, 2, 3]"));
  auto grouped =
      scan_graph({f32({u, u, u}), f32({u, u, u}), f32({u, u}), f32({u, u, u, u}), f32({u, u, u, u})}, 1);
  REQUIRE(infer_graph_types(*grouped).is_ok());
  Tensor g3 = random_tensor({1, 3, 2, 3}, rng);  // 3 groups for 4 channels
  auto wrong_groups = runtime::ReferenceExecutor().run(*grouped, {x, x, A, g3, g3});
  REQUIRE_FALSE(wrong_groups.is_ok());
  CHECK_THAT(wrong_groups.status().message(),
             Catch::Contains("ssm") && Catch::Contains("groups do not divide"));
}
