// MixedChunkAttention (GAU/FLASH): the reference kernel against a naive loop written here over every
// (query, key) pair — quad weight relu(qs·q_t·k_j + bias)² inside the chunk (j <= t when causal), linear
// weight ls·(lq_t·lk_j) for keys in earlier chunks (every key when non-causal) — its errors, and the
// fuse-mixed-chunk-attention pass: IR text in -> MixedChunkAttention out, numerically equal to the naive
// loop, plus the graphs it must leave alone.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

Tensor random_tensor(const Shape& shape, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

float at(const Tensor& t, int64_t b, int64_t s, int64_t c) {
  return t.data<float>()[(b * t.dim(1) + s) * t.dim(2) + c];
}

// The definition, one (query t, key j) pair at a time, no chunk state.
Tensor naive_mixed_chunk(const Tensor& qq, const Tensor& qk, const Tensor& lq, const Tensor& lk,
                         const Tensor& v, const Tensor* bias, int64_t chunk, bool causal, double quad_scale,
                         double lin_scale) {
  const int64_t B = v.dim(0), T = v.dim(1), E = v.dim(2);
  Tensor out = Tensor::empty(DType::f32, {B, T, E});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t e = 0; e < E; ++e) {
        double acc = 0.0;
        for (int64_t j = 0; j < T; ++j) {
          double weight = 0.0;
          if (t / chunk == j / chunk && (!causal || j <= t)) {
            double s = 0.0;
            for (int64_t r = 0; r < qq.dim(2); ++r) s += double(at(qq, b, t, r)) * at(qk, b, j, r);
            s = quad_scale * s + (bias ? bias->data<float>()[(t % chunk) * chunk + j % chunk] : 0.0);
            weight += s > 0 ? s * s : 0.0;
          }
          if (!causal || j / chunk < t / chunk) {
            double s = 0.0;
            for (int64_t r = 0; r < lq.dim(2); ++r) s += double(at(lq, b, t, r)) * at(lk, b, j, r);
            weight += lin_scale * s;
          }
          acc += weight * at(v, b, j, e);
        }
        out.data<float>()[(b * T + t) * E + e] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

double max_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::fabs(a.get_f64(i) - b.get_f64(i)) / std::max(1.0, std::fabs(b.get_f64(i))));
  }
  return worst;
}

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

Result<std::vector<Tensor>> run(const Graph& g, const std::vector<Tensor>& inputs) {
  return runtime::ReferenceExecutor().run(g, inputs);
}

// One MixedChunkAttention node over [B, T, *] inputs with the given attributes.
std::string op_graph(int64_t B, int64_t T, int64_t sq, int64_t sl, int64_t E, const std::string& attrs,
                     bool bias) {
  auto d = [&](int64_t w) {
    return "f32[" + std::to_string(B) + ", " + std::to_string(T) + ", " + std::to_string(w) + "]";
  };
  std::string text = "graph main(%qq: " + d(sq) + ", %qk: " + d(sq) + ", %lq: " + d(sl) + ", %lk: " + d(sl) +
                     ", %v: " + d(E);
  if (bias) text += ", %bias: f32[?, ?]";  // the kernel, not input validation, checks its size
  text += ") {\n  %y = MixedChunkAttention(%qq, %qk, %lq, %lk, %v" + std::string(bias ? ", %bias" : "") +
          ") {" + attrs + "} : " + d(E) + "\n  return %y\n}\n";
  return text;
}

}  // namespace

TEST_CASE("MixedChunkAttention kernel: causal, partial last chunk, bias, default scales 1/C") {
  std::mt19937 gen(21);
  const int64_t B = 2, T = 10, sq = 3, sl = 5, E = 4, C = 4;
  auto g = parse(op_graph(B, T, sq, sl, E, "chunk_size = 4", true));
  Tensor qq = random_tensor({B, T, sq}, gen), qk = random_tensor({B, T, sq}, gen);
  Tensor lq = random_tensor({B, T, sl}, gen), lk = random_tensor({B, T, sl}, gen);
  Tensor v = random_tensor({B, T, E}, gen), bias = random_tensor({C, C}, gen);
  auto y = run(*g, {qq, qk, lq, lk, v, bias});
  INFO(y.status().message());
  REQUIRE(y.is_ok());
  CHECK(max_error((*y)[0], naive_mixed_chunk(qq, qk, lq, lk, v, &bias, C, true, 0.25, 0.25)) < 1e-5);
}

TEST_CASE("MixedChunkAttention kernel: non-causal, explicit scales, no bias; chunk larger than T") {
  std::mt19937 gen(22);
  for (int64_t C : {3, 16}) {
    auto g = parse(op_graph(
        1, 9, 4, 4, 2,
        "chunk_size = " + std::to_string(C) + ", causal = 0, quad_scale = 0.5, lin_scale = 0.125", false));
    Tensor qq = random_tensor({1, 9, 4}, gen), qk = random_tensor({1, 9, 4}, gen);
    Tensor lq = random_tensor({1, 9, 4}, gen), lk = random_tensor({1, 9, 4}, gen);
    Tensor v = random_tensor({1, 9, 2}, gen);
    auto y = run(*g, {qq, qk, lq, lk, v});
    INFO(y.status().message());
    REQUIRE(y.is_ok());
    CHECK(max_error((*y)[0], naive_mixed_chunk(qq, qk, lq, lk, v, nullptr, C, false, 0.5, 0.125)) < 1e-5);
  }
}

TEST_CASE("MixedChunkAttention kernel: bad inputs are errors naming the node") {
  std::mt19937 gen(23);
  Tensor a = random_tensor({1, 8, 4}, gen);
  SECTION("bias of the wrong size") {
    auto g = parse(op_graph(1, 8, 4, 4, 4, "chunk_size = 4", true));
    auto y = run(*g, {a, a, a, a, a, random_tensor({3, 3}, gen)});
    REQUIRE_FALSE(y.is_ok());
    CHECK(y.status().message().find("MixedChunkAttention") != std::string::npos);
    CHECK(y.status().message().find("bias") != std::string::npos);
  }
  SECTION("a key with another length") {
    auto g = parse(R"(
graph main(%qq: f32[1, 8, 4], %qk: f32[1, 6, 4], %v: f32[1, 8, 4]) {
  %y = MixedChunkAttention(%qq, %qk, %qq, %qq, %v) {chunk_size = 4} : f32[1, 8, 4]
  return %y
}
)");
    auto y = run(*g, {a, random_tensor({1, 6, 4}, gen), a});
    REQUIRE_FALSE(y.is_ok());
    CHECK(y.status().message().find("quad_k") != std::string::npos);
  }
  SECTION("chunk_size must be positive") {
    auto g = parse_graph(op_graph(1, 8, 4, 4, 4, "chunk_size = 0", false));
    REQUIRE(g.is_ok());
    auto y = run(**g, {a, a, a, a, a});
    REQUIRE_FALSE(y.is_ok());
    CHECK(y.status().message().find("chunk_size") != std::string::npos);
  }
}

namespace {

// A FLASH attention core as torch exports it, static shapes: B 2, T 8, chunk 4, s 3, e 5.
std::string flash_graph(const std::string& mask_line, const std::string& linear_lines) {
  return R"(
graph main(%qq: f32[2, 8, 3], %qk: f32[2, 8, 3], %lq: f32[2, 8, 3], %lk: f32[2, 8, 3], %v: f32[2, 8, 5]) {
  %s3 = const i64[4] [2, 2, 4, 3]
  %s5 = const i64[4] [2, 2, 4, 5]
  %flat = const i64[3] [2, 8, 5]
  %c = const f32[] [4.0]
  %two = const f32[] [2.0]
  %tril = const f32[4, 4] [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]
  %bias = const f32[4, 4] [0.1, -0.2, 0.3, 0.0, 0.05, 0.1, -0.1, 0.2, 0.0, 0.3, 0.1, -0.3, 0.2, 0.1, 0.0, 0.1]
  %one = const i64[] [1]
  %pads = const i64[8] [0, 1, 0, 0, 0, 0, 0, 0]
  %st = const i64[1] [0]
  %en = const i64[1] [-1]
  %ax = const i64[1] [1]
  %qqc = Reshape(%qq, %s3) : f32[2, 2, 4, 3]
  %qkc = Reshape(%qk, %s3) : f32[2, 2, 4, 3]
  %lqc = Reshape(%lq, %s3) : f32[2, 2, 4, 3]
  %lkc = Reshape(%lk, %s3) : f32[2, 2, 4, 3]
  %vc = Reshape(%v, %s5) : f32[2, 2, 4, 5]
  %qkt = Transpose(%qkc) {perm = [0, 1, 3, 2]} : f32[2, 2, 3, 4]
  %s = MatMul(%qqc, %qkt) : f32[2, 2, 4, 4]
  %sd = Div(%s, %c) : f32[2, 2, 4, 4]
  %sb = Add(%sd, %bias) : f32[2, 2, 4, 4]
  %r = Relu(%sb) : f32[2, 2, 4, 4]
  %k2 = Pow(%r, %two) : f32[2, 2, 4, 4]
)" + mask_line +
         R"(
  %lkt = Transpose(%lkc) {perm = [0, 1, 3, 2]} : f32[2, 2, 3, 4]
  %kv = MatMul(%lkt, %vc) : f32[2, 2, 3, 5]
  %kvs = Div(%kv, %c) : f32[2, 2, 3, 5]
)" + linear_lines +
         R"(
  %sum = Add(%quad, %lin) : f32[2, 2, 4, 5]
  %y = Reshape(%sum, %flat) : f32[2, 8, 5]
  return %y
}
)";
}

const char* kCausalMask = R"(  %km = Mul(%k2, %tril) : f32[2, 2, 4, 4]
  %quad = MatMul(%km, %vc) : f32[2, 2, 4, 5])";
const char* kNoMask = "  %quad = MatMul(%k2, %vc) : f32[2, 2, 4, 5]";
const char* kPadShift = R"(  %cs = CumSum(%kvs, %one) : f32[2, 2, 3, 5]
  %pd = Pad(%cs, %pads) {mode = "constant"} : f32[2, 3, 3, 5]
  %ex = Slice(%pd, %st, %en, %ax) : f32[2, 2, 3, 5]
  %lin = MatMul(%lqc, %ex) : f32[2, 2, 4, 5])";
const char* kSubShift = R"(  %cs = CumSum(%kvs, %one) : f32[2, 2, 3, 5]
  %ex = Sub(%cs, %kvs) : f32[2, 2, 3, 5]
  %lin = MatMul(%lqc, %ex) : f32[2, 2, 4, 5])";
const char* kTotal = R"(  %tot = ReduceSum(%kvs, %ax) {keepdims = 1} : f32[2, 1, 3, 5]
  %lin = MatMul(%lqc, %tot) : f32[2, 2, 4, 5])";

std::map<std::string, int> fuse(Graph& g, bool* changed) {
  auto reports = passes::run_passes(g, {"fuse-mixed-chunk-attention"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  *changed = (*reports)[0].changed;
  std::map<std::string, int> ops;
  for (const Node* n : g.nodes()) ++ops[n->op()];
  return ops;
}

Tensor flash_bias() {
  return Tensor::from_vector<float>({4, 4}, {0.1f, -0.2f, 0.3f, 0.0f, 0.05f, 0.1f, -0.1f, 0.2f, 0.0f, 0.3f,
                                             0.1f, -0.3f, 0.2f, 0.1f, 0.0f, 0.1f});
}

}  // namespace

TEST_CASE("fuse-mixed-chunk-attention: causal FLASH core (pad shift and cumsum - x) -> MixedChunkAttention") {
  for (const char* shift : {kPadShift, kSubShift}) {
    auto g = parse(flash_graph(kCausalMask, shift));
    bool changed = false;
    auto ops = fuse(*g, &changed);
    REQUIRE(changed);
    CHECK(ops["MixedChunkAttention"] == 1);
    CHECK(ops.size() == 1);  // every other node was part of the pattern
    const std::string text = print_graph(*g);
    CHECK(text.find("chunk_size = 4") != std::string::npos);
    CHECK(text.find("causal = 1") != std::string::npos);
    std::mt19937 gen(24);
    std::vector<Tensor> in;
    for (int i = 0; i < 4; ++i) in.push_back(random_tensor({2, 8, 3}, gen));
    in.push_back(random_tensor({2, 8, 5}, gen));
    auto y = run(*g, in);
    INFO(y.status().message());
    REQUIRE(y.is_ok());
    Tensor bias = flash_bias();
    CHECK(max_error((*y)[0],
                    naive_mixed_chunk(in[0], in[1], in[2], in[3], in[4], &bias, 4, true, 0.25, 0.25)) < 1e-5);
  }
}

TEST_CASE("fuse-mixed-chunk-attention: non-causal FLASH core (ReduceSum over chunks)") {
  auto g = parse(flash_graph(kNoMask, kTotal));
  bool changed = false;
  auto ops = fuse(*g, &changed);
  REQUIRE(changed);
  CHECK(ops["MixedChunkAttention"] == 1);
  CHECK(print_graph(*g).find("causal = 0") != std::string::npos);
  std::mt19937 gen(25);
  std::vector<Tensor> in;
  for (int i = 0; i < 4; ++i) in.push_back(random_tensor({2, 8, 3}, gen));
  in.push_back(random_tensor({2, 8, 5}, gen));
  auto y = run(*g, in);
  REQUIRE(y.is_ok());
  Tensor bias = flash_bias();
  CHECK(max_error((*y)[0],
                  naive_mixed_chunk(in[0], in[1], in[2], in[3], in[4], &bias, 4, false, 0.25, 0.25)) < 1e-5);
}

TEST_CASE("fuse-mixed-chunk-attention: graphs it must leave alone") {
  auto unchanged = [](const std::string& text) {
    auto g = parse(text);
    const std::string before = print_graph(*g);
    bool changed = true;
    fuse(*g, &changed);
    CHECK_FALSE(changed);
    CHECK(print_graph(*g) == before);
  };
  SECTION("causal mask inside chunks but every chunk in the linear part") {
    unchanged(flash_graph(kCausalMask, kTotal));
  }
  SECTION("no mask but an exclusive prefix sum") {
    unchanged(flash_graph(kNoMask, kPadShift));
  }
  SECTION("an anti-causal mask") {
    std::string text = flash_graph(kCausalMask, kPadShift);
    text.replace(text.find("[1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]"), 48,
                 "[1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1]");
    unchanged(text);
  }
  SECTION("an inclusive prefix sum (the own chunk counted twice)") {
    unchanged(flash_graph(kCausalMask, R"(  %cs = CumSum(%kvs, %one) : f32[2, 2, 3, 5]
  %lin = MatMul(%lqc, %cs) : f32[2, 2, 4, 5])"));
  }
  SECTION("the squared scores are also a graph output") {
    std::string text = flash_graph(kCausalMask, kPadShift);
    text.replace(text.find("return %y"), 9, "return %y, %k2");
    unchanged(text);
  }
  SECTION("softmax instead of relu²") {
    std::string text = flash_graph(kCausalMask, kPadShift);
    text.replace(text.find("%r = Relu(%sb)"), 14, "%r = Softmax(%sb) {axis = -1}");
    unchanged(text);
  }
}
