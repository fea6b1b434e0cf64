// fold-batchnorm pass: IR text in -> pass -> expected IR text out (folded values computed by hand),
// the graphs it must leave alone, and a numeric check of the rewrite with the reference executor.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {
std::string run_pass(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  auto reports = passes::run_passes(**g, {"fold-batchnorm"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  return print_graph(**g);
}

std::string normalize(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return print_graph(**g);
}
}  // namespace

TEST_CASE("fold-batchnorm: Conv with bias + BatchNormalization -> Conv with folded weights") {
  // s = scale / sqrt(var + eps) = [1 / sqrt(4), 2 / sqrt(0.25)] = [0.5, 4]
  // W' = W * s = [2 * 0.5, 3 * 4] = [1, 12]
  // B' = (B - mean) * s + bias = [(1 - 1) * 0.5 + 0.5, (-1 - 1) * 4 + 0] = [0.5, -8]
  const std::string in = R"(
graph main(%x: f32[1, 1, 3, 3]) {
  %w = const f32[2, 1, 1, 1] [2, 3]
  %b = const f32[2] [1, -1]
  %scale = const f32[2] [1, 2]
  %shift = const f32[2] [0.5, 0]
  %mean = const f32[2] [1, 1]
  %var = const f32[2] [4, 0.25]
  %c = Conv(%x, %w, %b) {pads = [0, 0, 0, 0]} : f32[1, 2, 3, 3]
  %y = BatchNormalization(%c, %scale, %shift, %mean, %var) {epsilon = 0} : f32[1, 2, 3, 3]
  return %y
}
)";
  const std::string expected = R"(
graph main(%x: f32[1, 1, 3, 3]) {
  %w_bn_folded = const f32[2, 1, 1, 1] [1, 12]
  %y_bias = const f32[2] [0.5, -8]
  %y = Conv(%x, %w_bn_folded, %y_bias) {pads = [0, 0, 0, 0]} : f32[1, 2, 3, 3]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
}

TEST_CASE("fold-batchnorm: Conv without bias, default epsilon; same function before and after") {
  const std::string in = R"(
graph main(%x: f32[2, 3, 6, 6]) {
  %w = const f32[4, 3, 3, 3] [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.3, 0.2, -0.1, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.3, 0.2, -0.1, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.3, 0.2, -0.1, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2, 0.3, 0.2, -0.1]
  %scale = const f32[4] [1, 0.5, -2, 1.5]
  %shift = const f32[4] [0.5, 0, -1, 2]
  %mean = const f32[4] [0.1, -0.3, 0.2, 1]
  %var = const f32[4] [1, 0.3, 2, 0.01]
  %c = Conv(%x, %w) {group = 1, pads = [1, 1, 1, 1], strides = [2, 2]} : f32[2, 4, 3, 3]
  %y = BatchNormalization(%c, %scale, %shift, %mean, %var) : f32[2, 4, 3, 3]
  return %y
}
)";
  auto before = parse_graph(in);
  auto after = parse_graph(in);
  REQUIRE(before.is_ok());
  REQUIRE(after.is_ok());
  auto reports = passes::run_passes(**after, {"fold-batchnorm"});
  REQUIRE(reports.is_ok());
  REQUIRE((*reports)[0].changed);
  const std::string text = print_graph(**after);
  CHECK(text.find("BatchNormalization") == std::string::npos);
  CHECK(
      text.find("%y = Conv(%x, %w_bn_folded, %y_bias) {group = 1, pads = [1, 1, 1, 1], strides = [2, 2]}") !=
      std::string::npos);
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  Tensor x = Tensor::empty(DType::f32, {2, 3, 6, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(gen);
  auto y0 = runtime::ReferenceExecutor().run(**before, {x});
  auto y1 = runtime::ReferenceExecutor().run(**after, {x});
  REQUIRE(y0.is_ok());
  REQUIRE(y1.is_ok());
  for (int64_t i = 0; i < (*y0)[0].numel(); ++i) {
    const double a = (*y0)[0].get_f64(i), b = (*y1)[0].get_f64(i);
    INFO("element " << i);
    REQUIRE(std::fabs(a - b) <= 1e-5 * std::max(1.0, std::fabs(a)));
  }
}

TEST_CASE("fold-batchnorm leaves alone: shared Conv output, non-constant parameters or weights, training") {
  const std::string in = R"(
graph main(%x: f32[1, 1, 3, 3], %mean_in: f32[2], %w_in: f32[2, 1, 1, 1]) {
  %w = const f32[2, 1, 1, 1] [2, 3]
  %scale = const f32[2] [1, 2]
  %shift = const f32[2] [0.5, 0]
  %mean = const f32[2] [1, 1]
  %var = const f32[2] [4, 0.25]
  %c1 = Conv(%x, %w) : f32[1, 2, 3, 3]
  %y1 = BatchNormalization(%c1, %scale, %shift, %mean, %var) : f32[1, 2, 3, 3]
  %c2 = Conv(%x, %w) : f32[1, 2, 3, 3]
  %y2 = BatchNormalization(%c2, %scale, %shift, %mean_in, %var) : f32[1, 2, 3, 3]
  %c3 = Conv(%x, %w_in) : f32[1, 2, 3, 3]
  %y3 = BatchNormalization(%c3, %scale, %shift, %mean, %var) : f32[1, 2, 3, 3]
  %c4 = Conv(%x, %w) : f32[1, 2, 3, 3]
  %y4 = BatchNormalization(%c4, %scale, %shift, %mean, %var) {training_mode = 1} : f32[1, 2, 3, 3]
  %r = Relu(%x) : f32[1, 1, 3, 3]
  %y5 = BatchNormalization(%r, %scale, %shift, %mean, %var) : f32[1, 1, 3, 3]
  return %y1, %c1, %y2, %y3, %y4, %y5
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fold-batchnorm is registered and runs in -O1") {
  CHECK(passes::create_pass("fold-batchnorm") != nullptr);
  const std::vector<std::string> o1 = passes::pipeline_for_level(1);
  CHECK(std::find(o1.begin(), o1.end(), "fold-batchnorm") != o1.end());
}
