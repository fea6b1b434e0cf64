// approximate-attention (FAVOR+): on random inputs the approximated graph stays close to exact softmax
// attention computed by a naive loop here (relative error ||y - y_exact|| / ||y_exact||, loose bounds, the
// measured values are printed), M features live in one constant weight, the same seed gives the same graph
// and outputs, the feature blocks are orthogonal, and the pass is opt-in and leaves unsupported Attention
// alone.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "ir/text.h"
#include "passes/approximate_attention.h"
#include "passes/pass.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

std::string attention_graph(int64_t B, int64_t H, int64_t T, int64_t d, bool causal) {
  const std::string shape = "f32[" + std::to_string(B) + ", " + std::to_string(H) + ", " + std::to_string(T) +
                            ", " + std::to_string(d) + "]";
  return "graph main(%q: " + shape + ", %k: " + shape + ", %v: " + shape +
         ") {\n  %y = Attention(%q, %k, %v) {is_causal = " + std::string(causal ? "1" : "0") +
         "} : " + shape + "\n  return %y\n}\n";
}

Tensor gaussian_tensor(const Shape& shape, std::mt19937& gen, float stddev) {
  std::normal_distribution<float> dist(0.0f, stddev);
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

// softmax(scale·q·kᵀ [causal])·v over [N, T, d], one row at a time.
Tensor naive_softmax_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const int64_t T = q.dim(-2), d = q.dim(-1), N = q.numel() / (T * d);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  Tensor y = Tensor::empty(DType::f32, v.shape());
  std::vector<double> w(T);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < T; ++i) {
      const int64_t keys = causal ? i + 1 : T;
      double top = -1e300, total = 0.0;
      for (int64_t j = 0; j < keys; ++j) {
        double s = 0.0;
        for (int64_t r = 0; r < d; ++r)
          s += double(q.data<float>()[(n * T + i) * d + r]) * k.data<float>()[(n * T + j) * d + r];
        w[j] = scale * s;
        top = std::max(top, w[j]);
      }
      for (int64_t j = 0; j < keys; ++j) total += (w[j] = std::exp(w[j] - top));
      for (int64_t c = 0; c < d; ++c) {
        double acc = 0.0;
        for (int64_t j = 0; j < keys; ++j) acc += w[j] * v.data<float>()[(n * T + j) * d + c];
        y.data<float>()[(n * T + i) * d + c] = static_cast<float>(acc / total);
      }
    }
  }
  return y;
}

double relative_error(const Tensor& y, const Tensor& exact) {
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    diff += std::pow(y.get_f64(i) - exact.get_f64(i), 2);
    norm += std::pow(exact.get_f64(i), 2);
  }
  return std::sqrt(diff / norm);
}

Tensor run_graph(const Graph& g, const std::vector<Tensor>& inputs) {
  auto out = runtime::ReferenceExecutor().run(g, inputs);
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  return (*out)[0];
}

// Applies approximate-attention=favor:M and returns the rewritten graph.
std::unique_ptr<Graph> approximate(const std::string& text, int64_t features) {
  auto g = parse(text);
  auto reports = passes::run_passes(*g, {"approximate-attention=favor:" + std::to_string(features)});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  REQUIRE((*reports)[0].changed);
  return g;
}

}  // namespace

TEST_CASE("approximate-attention: FAVOR+ M=256 is close to softmax attention; M features are one weight") {
  std::mt19937 gen(31);
  const int64_t B = 2, H = 2, T = 64, d = 16;
  for (bool causal : {false, true}) {
    auto g = approximate(attention_graph(B, H, T, d, causal), 256);
    int attention = 0, linear = 0, weights = 0;
    for (const Node* n : g->nodes()) {
      attention += n->op() == "Attention";
      linear += n->op() == "LinearAttention";
    }
    for (const Value* c : g->constants()) weights += c->constant().shape() == Shape{d, 256};
    CHECK(attention == 0);
    CHECK(linear == (causal ? 1 : 0));
    CHECK(weights == 1);
    Tensor q = gaussian_tensor({B, H, T, d}, gen, 0.5f), k = gaussian_tensor({B, H, T, d}, gen, 0.5f);
    Tensor v = gaussian_tensor({B, H, T, d}, gen, 1.0f);
    const double error = relative_error(run_graph(*g, {q, k, v}), naive_softmax_attention(q, k, v, causal));
    std::printf("FAVOR+ M=256 %s, [2, 2, 64, 16], q, k ~ N(0, 0.5²), v ~ N(0, 1): relative error %.4f\n",
                causal ? "causal" : "non-causal", error);
    CHECK(error < 0.3);  // measured ~0.2; the estimator's variance grows like exp(scale·|q + k|²)
  }
}

TEST_CASE("approximate-attention: more features, smaller error") {
  std::mt19937 gen(32);
  Tensor q = gaussian_tensor({1, 4, 48, 8}, gen, 0.5f), k = gaussian_tensor({1, 4, 48, 8}, gen, 0.5f);
  Tensor v = gaussian_tensor({1, 4, 48, 8}, gen, 1.0f);
  const Tensor exact = naive_softmax_attention(q, k, v, false);
  const std::string text = attention_graph(1, 4, 48, 8, false);
  const double e16 = relative_error(run_graph(*approximate(text, 16), {q, k, v}), exact);
  const double e1024 = relative_error(run_graph(*approximate(text, 1024), {q, k, v}), exact);
  std::printf("FAVOR+ [1, 4, 48, 8]: relative error M=16 %.4f, M=1024 %.4f\n", e16, e1024);
  CHECK(e1024 < e16);
  CHECK(e1024 < 0.15);
}

TEST_CASE("approximate-attention: the same seed gives the same graph and outputs, another seed does not") {
  const std::string text = attention_graph(1, 2, 16, 8, true);
  auto a = approximate(text, 32);
  auto b = approximate(text, 32);
  PrintOptions all;
  all.inline_limit_elements = 1 << 20;
  CHECK(print_graph(*a, all) == print_graph(*b, all));
  std::mt19937 gen(33);
  Tensor q = gaussian_tensor({1, 2, 16, 8}, gen, 1.0f), k = gaussian_tensor({1, 2, 16, 8}, gen, 1.0f);
  Tensor v = gaussian_tensor({1, 2, 16, 8}, gen, 1.0f);
  CHECK(run_graph(*a, {q, k, v}).same_bytes(run_graph(*b, {q, k, v})));

  auto c = parse(text);
  passes::FavorOptions other;
  other.features = 32;
  other.seed = 7;
  auto changed = passes::ApproximateAttentionPass(other).run(*c);
  REQUIRE(changed.is_ok());
  CHECK(print_graph(*c, all) != print_graph(*a, all));
  CHECK(passes::favor_features(32, 8, 7) != passes::favor_features(32, 8, passes::FavorOptions().seed));
}

TEST_CASE("approximate-attention: feature blocks are orthogonal with Gaussian-like row norms") {
  const int64_t d = 8, M = 20;  // two full blocks of 8 rows and a partial one of 4
  const std::vector<float> omega = passes::favor_features(M, d, 99);
  REQUIRE(omega.size() == static_cast<size_t>(M * d));
  double mean_sq_norm = 0.0;
  for (int64_t i = 0; i < M; ++i) {
    double ii = 0.0;
    for (int64_t c = 0; c < d; ++c) ii += double(omega[i * d + c]) * omega[i * d + c];
    mean_sq_norm += ii / M;
    for (int64_t j = (i / d) * d; j < i; ++j) {  // earlier rows of the same block
      double ij = 0.0, jj = 0.0;
      for (int64_t c = 0; c < d; ++c) {
        ij += double(omega[i * d + c]) * omega[j * d + c];
        jj += double(omega[j * d + c]) * omega[j * d + c];
      }
      CHECK(std::fabs(ij) < 1e-5 * std::sqrt(ii * jj));
    }
  }
  CHECK(mean_sq_norm > 0.4 * d);  // E|g|² = d for a Gaussian row
  CHECK(mean_sq_norm < 2.0 * d);
}

TEST_CASE("approximate-attention: opt-in only, specs, and Attention it leaves alone") {
  for (int level : {0, 1}) {
    for (const std::string& name : passes::pipeline_for_level(level))
      CHECK(name.find("approximate") == std::string::npos);
  }
  CHECK(passes::parse_favor_spec("favor").is_ok());
  CHECK((*passes::parse_favor_spec("favor:64")).features == 64);
  CHECK_FALSE(passes::parse_favor_spec("favor:0").is_ok());
  CHECK_FALSE(passes::parse_favor_spec("favor:x").is_ok());
  CHECK_FALSE(passes::parse_favor_spec("nystrom").is_ok());
  CHECK(passes::create_pass("approximate-attention=favor:") == nullptr);

  auto unchanged = [](const std::string& text) {
    auto g = parse(text);
    const std::string before = print_graph(*g);
    auto reports = passes::run_passes(*g, {"approximate-attention"});
    REQUIRE(reports.is_ok());
    CHECK_FALSE((*reports)[0].changed);
    CHECK(print_graph(*g) == before);
  };
  unchanged(R"(
graph main(%q: f32[1, 2, 8, 4], %k: f32[1, 2, 8, 4], %v: f32[1, 2, 8, 4], %m: f32[8, 8]) {
  %y = Attention(%q, %k, %v, %m) : f32[1, 2, 8, 4]
  return %y
}
)");
  unchanged(R"(
graph main(%q: f32[1, 2, 8, 4], %k: f32[1, 2, 8, 4], %v: f32[1, 2, 8, 4]) {
  %y = Attention(%q, %k, %v) {softcap = 30.0} : f32[1, 2, 8, 4]
  return %y
}
)");
  unchanged(R"(
graph main(%q: f32[1, 4, 8, 4], %k: f32[1, 2, 8, 4], %v: f32[1, 2, 8, 4]) {
  %y = Attention(%q, %k, %v) : f32[1, 4, 8, 4]
  return %y
}
)");
}
