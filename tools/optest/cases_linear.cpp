// The op-test table, matrix products: MatMul (2-D, vector, batched, broadcast, GEMM-sized), Gemm with its
// transposes, Linear (the projection every transformer layer runs, incl. one-token decode) and Einsum.
#include <string>

#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

// Gemm: K is A's second dim, or its first with transA.
double gemm_flops(bool trans_a, const std::vector<backends::TensorArg>& in,
                  const std::vector<backends::TensorArg>& out) {
  const int64_t k = trans_a ? in[0].shape[0] : in[0].shape[1];
  return 2.0 * static_cast<double>(out[0].numel()) * static_cast<double>(k);
}

// A fixed FLOP count (Einsum: the table knows the contraction).
CostFn fixed_flops(double flops) {
  return [flops](const std::vector<backends::TensorArg>&, const std::vector<backends::TensorArg>&) {
    return flops;
  };
}

void add_matmul_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t m = pick(rng, 1, 70), k = pick(rng, 1, 90), n = pick(rng, 1, 70), b = pick(rng, 2, 5);
  auto mm = [&](std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, "MatMul", std::move(inputs)).cost_flops(matmul_flops);
  };
  mm({f32({m, k}), f32({k, n})});
  mm({f32({m, k}), weight(DType::f32, {k, n})}).with_note("constant B");
  mm({f32({k}), f32({k, n})}).with_note("vector A");
  mm({f32({m, k}), f32({k})}).with_note("vector B");
  mm({f32({b, m, k}), f32({b, k, n})}).with_note("batched");
  mm({f32({b, m, k}), weight(DType::f32, {k, n})}).with_note("broadcast B");
  mm({f32({2, 1, m, k}), f32({3, k, n})}).with_note("broadcast batch");
  mm({f32({1, 1}), f32({1, 1})});
  mm({f32({64, 128}), f32({128, 96})});
  mm({f32({2, 8, 33, 64}), f32({2, 8, 64, 33})}).with_note("attention scores");
  mm({f32({512, 512}), f32({512, 512})});
  mm({f32({512, 512}), weight(DType::f32, {512, 512})}).with_note("constant B");
  mm({in(DType::f16, {64, 128}), in(DType::f16, {128, 96})});
  mm({in(DType::bf16, {64, 128}), in(DType::bf16, {128, 96})});
  // GEMM-like sizes: time only (the reference loops would take seconds).
  mm({f32({1024, 768}), weight(DType::f32, {768, 3072})}).perf();
  mm({f32({1024, 3072}), weight(DType::f32, {3072, 768})}).perf();
  mm({f32({1024, 1024}), f32({1024, 1024})}).perf();
  mm({f32({16, 12, 128, 64}), f32({16, 12, 64, 128})}).perf().with_note("attention scores");
  mm({in(DType::f16, {1024, 768}), weight(DType::f16, {768, 3072})}).perf();
}

void add_gemm_linear_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t m = pick(rng, 1, 50), k = pick(rng, 1, 70), n = pick(rng, 1, 60);
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Shape sa = ta ? Shape{k, m} : Shape{m, k};
      Shape sb = tb ? Shape{n, k} : Shape{k, n};
      add_case(cases, "Gemm", {f32(sa), weight(DType::f32, sb), weight(DType::f32, {n})})
          .attr("transA", ta)
          .attr("transB", tb)
          .cost_flops([ta](const auto& in, const auto& out) { return gemm_flops(ta != 0, in, out); });
    }
  }
  add_case(cases, "Gemm", {f32({m, k}), f32({k, n}), f32({m, n})})
      .attr("alpha", 0.5f)
      .attr("beta", 2.0f)
      .cost_flops([](const auto& in, const auto& out) { return gemm_flops(false, in, out); });
  add_case(cases, "Gemm", {f32({m, k}), f32({k, n})})
      .with_note("no C")
      .cost_flops([](const auto& in, const auto& out) { return gemm_flops(false, in, out); });
  add_case(cases, "Gemm", {f32({1024, 768}), weight(DType::f32, {3072, 768}), weight(DType::f32, {3072})})
      .attr("transB", 1)
      .perf()
      .cost_flops([](const auto& in, const auto& out) { return gemm_flops(false, in, out); });

  // Linear: y = x W^T + b, W [out, in] constant.
  const int64_t s = pick(rng, 1, 20), d_in = pick(rng, 1, 100), d_out = pick(rng, 1, 100);
  auto linear = [&](std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, "Linear", std::move(inputs)).cost_flops(matmul_flops);
  };
  linear({f32({2, s, d_in}), weight(DType::f32, {d_out, d_in}), weight(DType::f32, {d_out})});
  linear({f32({s, d_in}), weight(DType::f32, {d_out, d_in})}).with_note("no bias");
  linear({f32({d_in}), weight(DType::f32, {d_out, d_in}), weight(DType::f32, {d_out})}).with_note("vector");
  linear({f32({1, 768}), weight(DType::f32, {3072, 768}), weight(DType::f32, {3072})}).with_note("decode");
  linear({f32({4, 64, 256}), weight(DType::f32, {512, 256}), weight(DType::f32, {512})});
  linear({in(DType::f16, {16, 128}), weight(DType::f16, {96, 128}), weight(DType::f16, {96})});
  linear({f32({1024, 768}), weight(DType::f32, {3072, 768}), weight(DType::f32, {3072})}).perf();
  linear({f32({1024, 3072}), weight(DType::f32, {768, 3072}), weight(DType::f32, {768})}).perf();
  linear({f32({1, 4096}), weight(DType::f32, {4096, 4096})}).perf().with_note("decode");

  // FusedLinear: activation(x W + b), W [in, out] or (transB) [out, in]; one case per activation.
  auto fused = [&](std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, "FusedLinear", std::move(inputs)).cost_flops(matmul_flops);
  };
  for (const char* act : {"none", "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh"}) {
    const bool trans_b = std::string(act) != "relu";
    const Shape w = trans_b ? Shape{d_out, d_in} : Shape{d_in, d_out};
    fused({f32({2, s, d_in}, uniform(-2, 2)), weight(DType::f32, w), weight(DType::f32, {d_out})})
        .attr("activation", act)
        .attr("transB", trans_b ? 1 : 0)
        .with_note(act);
  }
  fused({f32({s, d_in}), weight(DType::f32, {d_in, d_out})}).with_note("no bias");
  fused({f32({1024, 768}), weight(DType::f32, {3072, 768}), weight(DType::f32, {3072})})
      .attr("activation", "gelu")
      .attr("transB", 1)
      .perf()
      .with_note("gelu");
}

void add_einsum_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t i = pick(rng, 1, 20), j = pick(rng, 1, 20), k = pick(rng, 1, 20), b = pick(rng, 1, 4);
  const double mm = 2.0 * static_cast<double>(i * j * k);
  add_case(cases, "Einsum", {f32({i, j}), f32({j, k})})
      .attr("equation", "ij,jk->ik")
      .cost_flops(fixed_flops(mm));
  add_case(cases, "Einsum", {f32({b, i, j}), f32({b, j, k})})
      .attr("equation", "bij,bjk->bik")
      .cost_flops(fixed_flops(mm * static_cast<double>(b)));
  add_case(cases, "Einsum", {f32({b, 2, i, 16}), f32({b, 2, j, 16})})
      .attr("equation", "bhid,bhjd->bhij")
      .cost_flops(fixed_flops(2.0 * static_cast<double>(b * 2 * i * j * 16)));
  add_case(cases, "Einsum", {f32({i, j})}).attr("equation", "ij->ji").exact();
  add_case(cases, "Einsum", {f32({j, j})}).attr("equation", "ii->i").exact().with_note("diagonal");
  add_case(cases, "Einsum", {f32({i, j}), f32({i, j})}).attr("equation", "ij,ij").with_note("implicit");
  add_case(cases, "Einsum", {f32({b, i, j})}).attr("equation", "...ij->...j").with_note("ellipsis sum");
  add_case(cases, "Einsum", {f32({i}), f32({j}), f32({k})}).attr("equation", "i,j,k->ijk");
}

}  // namespace

void add_linear_algebra_cases(std::vector<Case>& cases, Rng& rng) {
  add_matmul_cases(cases, rng);
  add_gemm_linear_cases(cases, rng);
  add_einsum_cases(cases, rng);
}

}  // namespace seqrun::optest
