// linearize-attention pass: IR text in -> pass -> the ops left (and, for the simplest cases, the exact
// IR text out), the graphs it must leave alone, and numeric checks of every rewritten graph against a naive
// loop written here: y_i = Σ_{j (<= i)} s·φ(q_i)·φ(k_j) v_j, divided by Σ_j s·φ(q_i)·φ(k_j) + eps when
// normalized — the quadratic formula itself, independent of LinearAttention's recurrence.
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

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

bool run_linearize(Graph& g) {
  auto reports = passes::run_passes(g, {"linearize-attention"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  return (*reports)[0].changed;
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node* n : g.nodes()) ++counts[n->op()];
  return counts;
}

Tensor random_tensor(const Shape& shape, std::mt19937& gen, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

enum class Phi { identity, elu1, relu };

double phi(double x, Phi f) {
  if (f == Phi::elu1) return x >= 0 ? x + 1.0 : std::exp(x);
  if (f == Phi::relu) return x > 0 ? x : 0.0;
  return x;
}

// Naive quadratic attention over [N, T, d] (N = every batch and head), written from the formula.
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, Phi f, bool causal, bool normalized,
                       double scale, double eps) {
  const int64_t T = q.dim(-2), dk = q.dim(-1), dv = v.dim(-1), N = q.numel() / (T * dk);
  Tensor y = Tensor::empty(DType::f32, v.shape());
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> num(dv, 0.0);
      double den = 0.0;
      for (int64_t j = 0; j < (causal ? i + 1 : T); ++j) {
        double w = 0.0;
        for (int64_t r = 0; r < dk; ++r) {
          w += phi(q.data<float>()[(n * T + i) * dk + r], f) * phi(k.data<float>()[(n * T + j) * dk + r], f);
        }
        w *= scale;
        den += w;
        for (int64_t c = 0; c < dv; ++c) num[c] += w * v.data<float>()[(n * T + j) * dv + c];
      }
      for (int64_t c = 0; c < dv; ++c) {
        y.data<float>()[(n * T + i) * dv + c] =
            static_cast<float>(normalized ? num[c] / (den + eps) : num[c]);
      }
    }
  }
  return y;
}

double max_relative_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::fabs(a.get_f64(i) - b.get_f64(i)) / std::max(1.0, std::fabs(b.get_f64(i))));
  }
  return worst;
}

Tensor run_graph(const Graph& g, const std::vector<Tensor>& inputs) {
  auto out = runtime::ReferenceExecutor().run(g, inputs);
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  return (*out)[0];
}

// Rank-4 heads [B, H, seq, d], feature map elu+1, torch.tril mask, normalized with eps.
const char* kCausalEluNorm = R"(
graph main(%q: f32[2, 3, seq, 4], %k: f32[2, 3, seq, 4], %v: f32[2, 3, seq, 5]) {
  %one = const f32[] [1.0]
  %eps = const f32[] [1e-06]
  %last = const i64[1] [-1]
  %eq = Elu(%q) : f32[2, 3, seq, 4]
  %pq = Add(%eq, %one) : f32[2, 3, seq, 4]
  %ek = Elu(%k) : f32[2, 3, seq, 4]
  %pk = Add(%ek, %one) : f32[2, 3, seq, 4]
  %kt = Transpose(%pk) {perm = [0, 1, 3, 2]} : f32[2, 3, 4, seq]
  %s = MatMul(%pq, %kt) : f32[2, 3, seq, seq]
  %a = Trilu(%s) {upper = 0} : f32[2, 3, seq, seq]
  %num = MatMul(%a, %v) : f32[2, 3, seq, 5]
  %den = ReduceSum(%a, %last) {keepdims = 1} : f32[2, 3, seq, 1]
  %den_eps = Add(%den, %eps) : f32[2, 3, seq, 1]
  %y = Div(%num, %den_eps) : f32[2, 3, seq, 5]
  return %y
}
)";

}  // namespace

TEST_CASE("linearize-attention: causal elu+1, torch.tril, normalized, [B, H, T, d] -> LinearAttention") {
  auto g = parse(kCausalEluNorm);
  REQUIRE(run_linearize(*g));
  auto ops = op_counts(*g);
  CHECK(ops["LinearAttention"] == 1);
  CHECK(ops.count("Trilu") == 0);
  CHECK(ops.count("ReduceSum") == 0);
  CHECK(ops.count("MatMul") == 0);
  const std::string text = print_graph(*g);
  CHECK(text.find("update_rule = \"linear\"") != std::string::npos);
  CHECK(text.find("q_num_heads = 3") != std::string::npos);

  std::mt19937 gen(11);
  for (int64_t seq : {1, 7, 20}) {
    Tensor q = random_tensor({2, 3, seq, 4}, gen), k = random_tensor({2, 3, seq, 4}, gen);
    Tensor v = random_tensor({2, 3, seq, 5}, gen);
    Tensor y = run_graph(*g, {q, k, v});
    Tensor expected = naive_attention(q, k, v, Phi::elu1, true, true, 1.0, 1e-6);
    CHECK(max_relative_error(y, expected) < 1e-5);
  }
}

TEST_CASE("linearize-attention: causal relu, sliced tril buffer Mul, scale Div, [N, T, d] unnormalized") {
  std::string tril;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 8; ++j) tril += std::string(tril.empty() ? "" : ", ") + (j <= i ? "1" : "0");
  }
  const std::string text = R"(
graph main(%q: f32[3, seq, 4], %k: f32[3, seq, 4], %v: f32[3, seq, 6]) {
  %tril = const f32[8, 8] [)" +
                           tril + R"(]
  %c1 = const i64[] [1]
  %zero = const i64[1] [0]
  %ax0 = const i64[1] [0]
  %ax1 = const i64[1] [1]
  %two = const f32[] [2.0]
  %shape = Shape(%q) : i64[3]
  %t = Gather(%shape, %c1) {axis = 0} : i64[]
  %t1 = Unsqueeze(%t, %zero) : i64[1]
  %m0 = Slice(%tril, %zero, %t1, %ax0) : f32[?, 8]
  %m = Slice(%m0, %zero, %t1, %ax1) : f32[?, ?]
  %pq = Relu(%q) : f32[3, seq, 4]
  %pk = Relu(%k) : f32[3, seq, 4]
  %kt = Transpose(%pk) {perm = [0, 2, 1]} : f32[3, 4, seq]
  %s = MatMul(%pq, %kt) : f32[3, seq, seq]
  %sd = Div(%s, %two) : f32[3, seq, seq]
  %a = Mul(%sd, %m) : f32[3, seq, seq]
  %y = MatMul(%a, %v) : f32[3, seq, 6]
  return %y
}
)";
  auto g = parse(text);
  REQUIRE(run_linearize(*g));
  auto ops = op_counts(*g);
  CHECK(ops["LinearAttention"] == 1);
  CHECK(ops.count("MatMul") == 0);
  CHECK(ops.count("Mul") == 0);
  CHECK(ops.count("Transpose") == 0);  // K'ᵀ's Transpose composes away: LinearAttention reads φ(K) itself
  CHECK(print_graph(*g).find("scale = 0.5") != std::string::npos);
  std::mt19937 gen(12);
  for (int64_t seq : {5, 8}) {
    Tensor q = random_tensor({3, seq, 4}, gen), k = random_tensor({3, seq, 4}, gen);
    Tensor v = random_tensor({3, seq, 6}, gen);
    Tensor expected = naive_attention(q, k, v, Phi::relu, true, false, 0.5, 0.0);
    CHECK(max_relative_error(run_graph(*g, {q, k, v}), expected) < 1e-5);
  }
}

TEST_CASE("linearize-attention: masked_fill(~tril, 0) as Where over Cast(Equal(tril, 0)), identity map") {
  const std::string text = R"(
graph main(%q: f32[2, 2, seq, 3], %k: f32[2, 2, seq, 3], %v: f32[2, 2, seq, 3]) {
  %tril = const f32[4, 4] [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]
  %zf = const f32[] [0.0]
  %zs = const f32[] [0.0]
  %eq = Equal(%tril, %zf) : bool[4, 4]
  %c = Cast(%eq) {to = 9} : bool[4, 4]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[2, 2, 3, seq]
  %s = MatMul(%q, %kt) : f32[2, 2, seq, seq]
  %a = Where(%c, %zs, %s) : f32[2, 2, seq, seq]
  %y = MatMul(%a, %v) : f32[2, 2, seq, 3]
  return %y
}
)";
  // The mask is a static [4, 4]: it only fits scores whose length is provably 4.
  auto g = parse(text);
  CHECK_FALSE(run_linearize(*g));

  std::string fixed = text;
  for (size_t at = fixed.find("seq"); at != std::string::npos; at = fixed.find("seq"))
    fixed.replace(at, 3, "4");
  // Static length 4 with dk = dv = 3: 4·(3 + 3) > 2·3·3, still worth it.
  auto h = parse(fixed);
  REQUIRE(run_linearize(*h));
  CHECK(op_counts(*h)["LinearAttention"] == 1);
  std::mt19937 gen(13);
  Tensor q = random_tensor({2, 2, 4, 3}, gen), k = random_tensor({2, 2, 4, 3}, gen);
  Tensor v = random_tensor({2, 2, 4, 3}, gen);
  Tensor expected = naive_attention(q, k, v, Phi::identity, true, false, 1.0, 0.0);
  CHECK(max_relative_error(run_graph(*h, {q, k, v}), expected) < 1e-5);
}

TEST_CASE("linearize-attention: masks computed in the graph (Range/Less, Cast of >=, Trilu of ones)") {
  const std::string head = R"(
graph main(%q: f32[2, seq, 4], %k: f32[2, seq, 4], %v: f32[2, seq, 5]) {
  %c0 = const i64[] [0]
  %c1 = const i64[] [1]
  %ax0 = const i64[1] [0]
  %ax1 = const i64[1] [1]
  %fz = const f32[] [0.0]
  %shape = Shape(%q) : i64[3]
  %t = Gather(%shape, %c1) {axis = 0} : i64[]
  %r = Range(%c0, %t, %c1) : i64[seq]
  %ri = Unsqueeze(%r, %ax1) : i64[seq, 1]
  %rj = Unsqueeze(%r, %ax0) : i64[1, seq]
  %t1 = Unsqueeze(%t, %ax0) : i64[1]
  %tt = Concat(%t1, %t1) {axis = 0} : i64[2]
  %kt = Transpose(%k) {perm = [0, 2, 1]} : f32[2, 4, seq]
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
)";
  const std::string tail = R"(
  %y = MatMul(%a, %v) : f32[2, seq, 5]
  return %y
}
)";
  const char* masks[] = {
      // masked_fill(future, 0) with future = i < j from Range
      "  %future = Less(%ri, %rj) : bool[seq, seq]\n  %a = Where(%future, %fz, %s) : f32[2, seq, seq]",
      // s * (i >= j).float()
      "  %keep = GreaterOrEqual(%ri, %rj) : bool[seq, seq]\n  %m = Cast(%keep) {to = 1} : f32[seq, seq]\n"
      "  %a = Mul(%s, %m) : f32[2, seq, seq]",
      // s * torch.ones(T, T).tril()
      "  %ones = ConstantOfShape(%tt) {value = tensor<f32[1]> [1.0]} : f32[seq, seq]\n"
      "  %m = Trilu(%ones) {upper = 0} : f32[seq, seq]\n  %a = Mul(%m, %s) : f32[2, seq, seq]",
  };
  std::mt19937 gen(16);
  for (const char* mask : masks) {
    INFO(mask);
    auto g = parse(head + mask + tail);
    REQUIRE(run_linearize(*g));
    CHECK(op_counts(*g)["LinearAttention"] == 1);
    CHECK(op_counts(*g).count("MatMul") == 0);
    Tensor q = random_tensor({2, 6, 4}, gen), k = random_tensor({2, 6, 4}, gen),
           v = random_tensor({2, 6, 5}, gen);
    Tensor expected = naive_attention(q, k, v, Phi::identity, true, false, 1.0, 0.0);
    CHECK(max_relative_error(run_graph(*g, {q, k, v}), expected) < 1e-5);
  }
  // The same predicates one position off (i <= j masks the diagonal too) are not causal.
  auto off = parse(head +
                   "  %future = LessOrEqual(%ri, %rj) : bool[seq, seq]\n  %a = Where(%future, %fz, %s) : "
                   "f32[2, seq, seq]" +
                   tail);
  CHECK_FALSE(run_linearize(*off));
}

TEST_CASE("linearize-attention: non-causal normalized -> Q(KᵀV) and Q·ΣK, exact IR") {
  const std::string in = R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 3]) {
  %last = const i64[1] [-1]
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %y = MatMul(%s, %v) : f32[2, seq, 3]
  %den = ReduceSum(%s, %last) {keepdims = 1} : f32[2, seq, 1]
  %out = Div(%y, %den) : f32[2, seq, 3]
  return %out
}
)";
  const std::string expected = R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 3]) {
  %y_linear_axes = const i64[1] [-1]
  %y_linear_MatMul = MatMul(%kt, %v) : f32[2, 4, 3]
  %y = MatMul(%q, %y_linear_MatMul) : f32[2, seq, 3]
  %y_linear_ReduceSum = ReduceSum(%kt, %y_linear_axes) {keepdims = 1} : f32[2, 4, 1]
  %den = MatMul(%q, %y_linear_ReduceSum) : f32[2, seq, 1]
  %out = Div(%y, %den) : f32[2, seq, 3]
  return %out
}
)";
  auto g = parse(in);
  REQUIRE(run_linearize(*g));
  CHECK(print_graph(*g) == print_graph(*parse(expected)));

  std::mt19937 gen(14);
  Tensor q = random_tensor({2, 9, 4}, gen, 0.1f, 1.0f), v = random_tensor({2, 9, 3}, gen);
  Tensor k = random_tensor({2, 9, 4}, gen, 0.1f, 1.0f);
  Tensor kt = Tensor::empty(DType::f32, {2, 4, 9});
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 9; ++t) {
      for (int64_t r = 0; r < 4; ++r)
        kt.data<float>()[(b * 4 + r) * 9 + t] = k.data<float>()[(b * 9 + t) * 4 + r];
    }
  }
  Tensor want = naive_attention(q, k, v, Phi::identity, false, true, 1.0, 0.0);
  CHECK(max_relative_error(run_graph(*g, {q, kt, v}), want) < 1e-5);
}

TEST_CASE("linearize-attention: non-causal scaled relu, the scale moves to the end") {
  const std::string in = R"(
graph main(%q: f32[1, 2, seq, 4], %k: f32[1, 2, seq, 4], %v: f32[1, 2, seq, 4]) {
  %c = const f32[] [0.25]
  %pq = Relu(%q) : f32[1, 2, seq, 4]
  %pk = Relu(%k) : f32[1, 2, seq, 4]
  %kt = Transpose(%pk) {perm = [0, 1, 3, 2]} : f32[1, 2, 4, seq]
  %s = MatMul(%pq, %kt) : f32[1, 2, seq, seq]
  %a = Mul(%c, %s) : f32[1, 2, seq, seq]
  %y = MatMul(%a, %v) : f32[1, 2, seq, 4]
  return %y
}
)";
  auto g = parse(in);
  REQUIRE(run_linearize(*g));
  auto ops = op_counts(*g);
  CHECK(ops["MatMul"] == 2);
  CHECK(ops["Mul"] == 1);
  for (const Node* n : g->nodes()) {  // no [seq, seq] value is left
    CHECK(n->output(0)->type().to_string().find("seq, seq") == std::string::npos);
  }
  std::mt19937 gen(15);
  Tensor q = random_tensor({1, 2, 6, 4}, gen), k = random_tensor({1, 2, 6, 4}, gen);
  Tensor v = random_tensor({1, 2, 6, 4}, gen);
  CHECK(max_relative_error(run_graph(*g, {q, k, v}),
                           naive_attention(q, k, v, Phi::relu, false, false, 0.25, 0.0)) < 1e-5);
}

TEST_CASE("linearize-attention: graphs it must leave alone") {
  auto unchanged = [](const std::string& text) {
    auto g = parse(text);
    const std::string before = print_graph(*g);
    CHECK_FALSE(run_linearize(*g));
    CHECK(print_graph(*g) == before);
  };
  SECTION("softmax attention") {
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 4]) {
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %p = Softmax(%s) {axis = -1} : f32[2, seq, seq]
  %y = MatMul(%p, %v) : f32[2, seq, 4]
  return %y
}
)");
  }
  SECTION("the scores are also a graph output") {
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 4]) {
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %a = Trilu(%s) {upper = 0} : f32[2, seq, seq]
  %y = MatMul(%a, %v) : f32[2, seq, 4]
  return %y, %a
}
)");
  }
  SECTION("the unmasked scores have another user") {
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 4]) {
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %a = Trilu(%s) {upper = 0} : f32[2, seq, seq]
  %y = MatMul(%a, %v) : f32[2, seq, 4]
  %e = Exp(%s) : f32[2, seq, seq]
  return %y, %e
}
)");
  }
  SECTION("upper-triangular and shifted masks are not causal") {
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 4]) {
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %a = Trilu(%s) {upper = 1} : f32[2, seq, seq]
  %y = MatMul(%a, %v) : f32[2, seq, 4]
  return %y
}
)");
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 4]) {
  %one = const i64[] [1]
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %a = Trilu(%s, %one) {upper = 0} : f32[2, seq, seq]
  %y = MatMul(%a, %v) : f32[2, seq, 4]
  return %y
}
)");
  }
  SECTION("a 0/1 mask that is not lower-triangular") {
    unchanged(R"(
graph main(%q: f32[2, 3, 4], %kt: f32[2, 4, 3], %v: f32[2, 3, 4]) {
  %m = const f32[3, 3] [1, 0, 0, 1, 1, 0, 1, 0, 1]
  %s = MatMul(%q, %kt) : f32[2, 3, 3]
  %a = Mul(%s, %m) : f32[2, 3, 3]
  %y = MatMul(%a, %v) : f32[2, 3, 4]
  return %y
}
)");
  }
  SECTION("a short static sequence where the quadratic form is cheaper") {
    unchanged(R"(
graph main(%q: f32[2, 4, 16], %kt: f32[2, 16, 4], %v: f32[2, 4, 16]) {
  %s = MatMul(%q, %kt) : f32[2, 4, 4]
  %y = MatMul(%s, %v) : f32[2, 4, 16]
  return %y
}
)");
  }
  SECTION("row sums over the wrong axis") {
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[2, 4, seq], %v: f32[2, seq, 4]) {
  %ax = const i64[1] [-2]
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %y = MatMul(%s, %v) : f32[2, seq, 4]
  %d = ReduceSum(%s, %ax) {keepdims = 1} : f32[2, 1, seq]
  return %y, %d
}
)");
  }
  SECTION("causal, but K's batch does not provably match Q's") {
    unchanged(R"(
graph main(%q: f32[2, seq, 4], %kt: f32[?, 4, seq], %v: f32[2, seq, 4]) {
  %s = MatMul(%q, %kt) : f32[2, seq, seq]
  %a = Trilu(%s) {upper = 0} : f32[2, seq, seq]
  %y = MatMul(%a, %v) : f32[2, seq, 4]
  return %y
}
)");
  }
}
