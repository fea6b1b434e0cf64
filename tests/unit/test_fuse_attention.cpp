// fuse-attention pass: IR text in -> pass -> expected IR text out for the attention variations exporters
// write (scale placement, transposes, causal / padding / bool / additive masks, softcap, GQA repeats, past
// KV, 3-D bmm attention, qk outputs), the graphs it must leave alone, and for every fused graph a numeric
// check: the reference executor runs the graph before and after the pass on the same random inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "ir/text.h"
#include "passes/pass.h"
#include "passes/pattern.h"
#include "passes/symbolic_dims.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

std::unique_ptr<Graph> parse_ok(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

std::string run_pass(const std::string& text) {
  std::unique_ptr<Graph> g = parse_ok(text);
  auto reports = passes::run_passes(*g, {"fuse-attention"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  return print_graph(*g);
}

std::string normalize(const std::string& text) {
  return print_graph(*parse_ok(text));
}

// Random inputs for the graph's inputs: floats in [-2, 2); integer inputs from `ints` (in order);
// bool inputs random with key 0 always true (no row is fully masked).
std::vector<Tensor> random_inputs(const Graph& g, const std::vector<Shape>& shapes,
                                  const std::vector<Tensor>& ints = {}) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<Tensor> out;
  size_t next_int = 0;
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const DType dt = g.inputs()[i]->type().dtype();
    if (is_integer(dt)) {
      out.push_back(ints.at(next_int++));
      continue;
    }
    Tensor t = Tensor::empty(dt, shapes.at(i));
    for (int64_t e = 0; e < t.numel(); ++e) {
      if (dt == DType::boolean) {
        t.data<bool>()[e] = (e % t.dim(-1)) == 0 || dist(gen) > 0.0f;
      } else {
        t.data<float>()[e] = dist(gen);
      }
    }
    out.push_back(t);
  }
  return out;
}

// Runs `text` before and after fuse-attention on the same inputs; every output must agree within 1e-5
// (relative to max(1, |value|)).
void check_same_outputs(const std::string& text, const std::vector<Shape>& shapes,
                        const std::vector<Tensor>& ints = {}) {
  std::unique_ptr<Graph> before = parse_ok(text);
  std::unique_ptr<Graph> after = parse_ok(text);
  auto reports = passes::run_passes(*after, {"fuse-attention"});
  REQUIRE(reports.is_ok());
  REQUIRE(print_graph(*after).find("Attention(") != std::string::npos);
  const std::vector<Tensor> inputs = random_inputs(*before, shapes, ints);
  auto y0 = runtime::ReferenceExecutor().run(*before, inputs);
  auto y1 = runtime::ReferenceExecutor().run(*after, inputs);
  INFO(y0.status().message() << " / " << y1.status().message());
  REQUIRE(y0.is_ok());
  REQUIRE(y1.is_ok());
  REQUIRE(y0->size() == y1->size());
  for (size_t o = 0; o < y0->size(); ++o) {
    const Tensor& a = (*y0)[o];
    const Tensor& b = (*y1)[o];
    REQUIRE(a.shape() == b.shape());
    for (int64_t i = 0; i < a.numel(); ++i) {
      INFO("output " << o << " element " << i);
      const double x = a.get_f64(i), y = b.get_f64(i);
      CHECK(std::fabs(x - y) <= 1e-5 * std::max(1.0, std::fabs(x)));
    }
  }
}

}  // namespace

TEST_CASE("fuse-attention: Q·Kᵀ, scale after, softmax, ·V") {
  const std::string in = R"(
graph main(%q: f32[2, 4, 8, 16], %k: f32[2, 4, 8, 16], %v: f32[2, 4, 8, 16]) {
  %c = const f32[] [0.25]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[2, 4, 16, 8]
  %s = MatMul(%q, %kt) : f32[2, 4, 8, 8]
  %ss = Mul(%s, %c) : f32[2, 4, 8, 8]
  %p = Softmax(%ss) {axis = -1} : f32[2, 4, 8, 8]
  %y = MatMul(%p, %v) : f32[2, 4, 8, 16]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[2, 4, 8, 16], %k: f32[2, 4, 8, 16], %v: f32[2, 4, 8, 16]) {
  %y = Attention(%q, %k, %v) {kv_num_heads = 4, q_num_heads = 4, scale = 0.25} : f32[2, 4, 8, 16]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{2, 4, 8, 16}, {2, 4, 8, 16}, {2, 4, 8, 16}});
}

TEST_CASE("fuse-attention: torch hand-written heads, K permuted straight to Kᵀ, Q divided before") {
  // q = x.reshape(n, t, h, d).permute(0, 2, 1, 3) / 2; k = ... .permute(0, 2, 3, 1); the fused node reads K
  // through one new Transpose [0, 2, 1, 3] and the divisors become the scale.
  const std::string in = R"(
graph main(%xq: f32[2, 8, 32], %xk: f32[2, 8, 32], %xv: f32[2, 8, 32]) {
  %heads = const i64[4] [2, 8, 2, 16]
  %two = const f32[] [2.0]
  %eight = const f32[] [8.0]
  %qr = Reshape(%xq, %heads) : f32[2, 8, 2, 16]
  %kr = Reshape(%xk, %heads) : f32[2, 8, 2, 16]
  %vr = Reshape(%xv, %heads) : f32[2, 8, 2, 16]
  %q = Transpose(%qr) {perm = [0, 2, 1, 3]} : f32[2, 2, 8, 16]
  %kt = Transpose(%kr) {perm = [0, 2, 3, 1]} : f32[2, 2, 16, 8]
  %v = Transpose(%vr) {perm = [0, 2, 1, 3]} : f32[2, 2, 8, 16]
  %qs = Div(%q, %two) : f32[2, 2, 8, 16]
  %s = MatMul(%qs, %kt) : f32[2, 2, 8, 8]
  %ss = Div(%s, %eight) : f32[2, 2, 8, 8]
  %p = Softmax(%ss) {axis = 3} : f32[2, 2, 8, 8]
  %y = MatMul(%p, %v) : f32[2, 2, 8, 16]
  return %y
}
)";
  const std::string expected = R"(
graph main(%xq: f32[2, 8, 32], %xk: f32[2, 8, 32], %xv: f32[2, 8, 32]) {
  %heads = const i64[4] [2, 8, 2, 16]
  %qr = Reshape(%xq, %heads) : f32[2, 8, 2, 16]
  %kr = Reshape(%xk, %heads) : f32[2, 8, 2, 16]
  %vr = Reshape(%xv, %heads) : f32[2, 8, 2, 16]
  %q = Transpose(%qr) {perm = [0, 2, 1, 3]} : f32[2, 2, 8, 16]
  %v = Transpose(%vr) {perm = [0, 2, 1, 3]} : f32[2, 2, 8, 16]
  %y_key = Transpose(%kr) {perm = [0, 2, 1, 3]} : f32[2, 2, 8, 16]
  %y = Attention(%q, %y_key, %v) {kv_num_heads = 2, q_num_heads = 2, scale = 0.0625} : f32[2, 2, 8, 16]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{2, 8, 32}, {2, 8, 32}, {2, 8, 32}});
}

TEST_CASE("fuse-attention: scale split over Q and Kᵀ with float Casts (the ONNX function body form)") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %eight = const i64[1] [8]
  %one = const f32[1] [1.0]
  %hf = Cast(%eight) {to = 1} : f32[1]
  %sq = Sqrt(%hf) : f32[1]
  %inv = Div(%one, %sq) : f32[1]
  %half = Sqrt(%inv) : f32[1]
  %qs = Mul(%q, %half) : f32[1, 2, 4, 8]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %ks = Mul(%kt, %half) : f32[1, 2, 8, 4]
  %s = MatMul(%qs, %ks) : f32[1, 2, 4, 4]
  %sc = Cast(%s) {to = 1} : f32[1, 2, 4, 4]
  %p = Softmax(%sc) {axis = -1} : f32[1, 2, 4, 4]
  %pc = Cast(%p) {to = 1} : f32[1, 2, 4, 4]
  %y = MatMul(%pc, %v) : f32[1, 2, 4, 8]
  return %y
}
)";
  const std::string out = run_pass(in);
  CHECK(out.find("%y = Attention(%q, %k, %v) {kv_num_heads = 2, q_num_heads = 2, scale = 0.35355") !=
        std::string::npos);
  CHECK(out.find("Softmax") == std::string::npos);
  check_same_outputs(in, {{1, 2, 4, 8}, {1, 2, 4, 8}, {1, 2, 4, 8}});
}

TEST_CASE("fuse-attention: GPT-2 causal mask, Trilu of ones over a symbolic length, masked_fill -inf") {
  const std::string in = R"(
graph main(%q: f32[1, 4, seq, 16], %k: f32[1, 4, seq, 16], %v: f32[1, 4, seq, 16]) {
  %two = const i64[] [2]
  %axes0 = const i64[1] [0]
  %one = const i64[] [1]
  %ninf = const f32[] [-inf]
  %scale = const f32[] [0.25]
  %shape = Shape(%q) : i64[4]
  %t = Gather(%shape, %two) {axis = 0} : i64[]
  %t1 = Unsqueeze(%t, %axes0) : i64[1]
  %tt = Concat(%t1, %t1) {axis = 0} : i64[2]
  %ones = ConstantOfShape(%tt) {value = tensor<bool[1]> [1]} : bool[?, ?]
  %mask = Trilu(%ones, %one) {upper = 1} : bool[?, ?]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 4, 16, seq]
  %s = MatMul(%q, %kt) : f32[1, 4, seq, seq]
  %ss = Mul(%s, %scale) : f32[1, 4, seq, seq]
  %sm = Where(%mask, %ninf, %ss) : f32[1, 4, seq, seq]
  %p = Softmax(%sm) {axis = -1} : f32[1, 4, seq, seq]
  %y = MatMul(%p, %v) : f32[1, 4, seq, 16]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 4, seq, 16], %k: f32[1, 4, seq, 16], %v: f32[1, 4, seq, 16]) {
  %y = Attention(%q, %k, %v) {is_causal = 1, kv_num_heads = 4, q_num_heads = 4, scale = 0.25} : f32[1, 4, seq, 16]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 4, 6, 16}, {1, 4, 6, 16}, {1, 4, 6, 16}});
}

TEST_CASE(
    "fuse-attention: Llama GQA repeat (unsqueeze, expand, reshape) and an additive finfo.min triangle") {
  const std::string in = R"(
graph main(%q: f32[1, 4, 6, 8], %k: f32[1, 2, 6, 8], %v: f32[1, 2, 6, 8]) {
  %axes2 = const i64[1] [2]
  %axes01 = const i64[2] [0, 1]
  %grow = const i64[5] [1, 2, 2, 6, 8]
  %heads = const i64[4] [1, 4, 6, 8]
  %tt = const i64[2] [6, 6]
  %one = const i64[] [1]
  %four = const f32[] [4.0]
  %full = ConstantOfShape(%tt) {value = tensor<f32[1]> [-3.40282347e+38]} : f32[6, 6]
  %tri = Trilu(%full, %one) {upper = 1} : f32[6, 6]
  %mask = Unsqueeze(%tri, %axes01) : f32[1, 1, 6, 6]
  %ku = Unsqueeze(%k, %axes2) : f32[1, 2, 1, 6, 8]
  %ke = Expand(%ku, %grow) : f32[1, 2, 2, 6, 8]
  %kr = Reshape(%ke, %heads) : f32[1, 4, 6, 8]
  %vu = Unsqueeze(%v, %axes2) : f32[1, 2, 1, 6, 8]
  %ve = Expand(%vu, %grow) : f32[1, 2, 2, 6, 8]
  %vr = Reshape(%ve, %heads) : f32[1, 4, 6, 8]
  %kt = Transpose(%kr) {perm = [0, 1, 3, 2]} : f32[1, 4, 8, 6]
  %s = MatMul(%q, %kt) : f32[1, 4, 6, 6]
  %sd = Div(%s, %four) : f32[1, 4, 6, 6]
  %sm = Add(%sd, %mask) : f32[1, 4, 6, 6]
  %p = Softmax(%sm) {axis = -1} : f32[1, 4, 6, 6]
  %pc = Cast(%p) {to = 1} : f32[1, 4, 6, 6]
  %y = MatMul(%pc, %vr) : f32[1, 4, 6, 8]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 4, 6, 8], %k: f32[1, 2, 6, 8], %v: f32[1, 2, 6, 8]) {
  %y = Attention(%q, %k, %v) {is_causal = 1, kv_num_heads = 2, q_num_heads = 4, scale = 0.25} : f32[1, 4, 6, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 4, 6, 8}, {1, 2, 6, 8}, {1, 2, 6, 8}});
}

TEST_CASE("fuse-attention: GQA repeat written with Tile on an unsqueezed head axis") {
  const std::string in = R"(
graph main(%q: f32[1, 6, 5, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4]) {
  %axes2 = const i64[1] [2]
  %reps = const i64[5] [1, 1, 3, 1, 1]
  %heads = const i64[4] [1, -1, 5, 4]
  %ku = Unsqueeze(%k, %axes2) : f32[1, 2, 1, 5, 4]
  %kt5 = Tile(%ku, %reps) : f32[1, 2, 3, 5, 4]
  %kr = Reshape(%kt5, %heads) : f32[1, 6, 5, 4]
  %vu = Unsqueeze(%v, %axes2) : f32[1, 2, 1, 5, 4]
  %vt5 = Tile(%vu, %reps) : f32[1, 2, 3, 5, 4]
  %vr = Reshape(%vt5, %heads) : f32[1, 6, 5, 4]
  %kt = Transpose(%kr) {perm = [0, 1, 3, 2]} : f32[1, 6, 4, 5]
  %s = MatMul(%q, %kt) : f32[1, 6, 5, 5]
  %p = Softmax(%s) {axis = -1} : f32[1, 6, 5, 5]
  %y = MatMul(%p, %vr) : f32[1, 6, 5, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 6, 5, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4]) {
  %y = Attention(%q, %k, %v) {kv_num_heads = 2, q_num_heads = 6, scale = 1.0} : f32[1, 6, 5, 4]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 6, 5, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}});
}

TEST_CASE("fuse-attention: past KV concatenated in front, causal frontier shifted by the past length") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 3, 4], %k: f32[1, 2, 3, 4], %v: f32[1, 2, 3, 4], %pk: f32[1, 2, 5, 4], %pv: f32[1, 2, 5, 4]) {
  %zero = const i64[] [0]
  %one = const i64[] [1]
  %rows_n = const i64[] [3]
  %cols_n = const i64[] [8]
  %past = const i64[1] [5]
  %ax1 = const i64[1] [1]
  %ax0 = const i64[1] [0]
  %ninf = const f32[] [-inf]
  %fzero = const f32[] [0.0]
  %half = const f32[] [0.5]
  %kc = Concat(%pk, %k) {axis = 2} : f32[1, 2, 8, 4]
  %vc = Concat(%pv, %v) {axis = 2} : f32[1, 2, 8, 4]
  %rows = Range(%zero, %rows_n, %one) : i64[3]
  %rows2 = Unsqueeze(%rows, %ax1) : i64[3, 1]
  %cols = Range(%zero, %cols_n, %one) : i64[8]
  %cols2 = Unsqueeze(%cols, %ax0) : i64[1, 8]
  %rowsp = Add(%rows2, %past) : i64[3, 1]
  %later = Less(%rowsp, %cols2) : bool[3, 8]
  %bias = Where(%later, %ninf, %fzero) : f32[3, 8]
  %kt = Transpose(%kc) {perm = [0, 1, 3, 2]} : f32[1, 2, 4, 8]
  %s = MatMul(%q, %kt) : f32[1, 2, 3, 8]
  %ss = Mul(%s, %half) : f32[1, 2, 3, 8]
  %sb = Add(%ss, %bias) : f32[1, 2, 3, 8]
  %p = Softmax(%sb) {axis = -1} : f32[1, 2, 3, 8]
  %y = MatMul(%p, %vc) : f32[1, 2, 3, 4]
  return %y, %kc, %vc
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 3, 4], %k: f32[1, 2, 3, 4], %v: f32[1, 2, 3, 4], %pk: f32[1, 2, 5, 4], %pv: f32[1, 2, 5, 4]) {
  %y, %kc, %vc = Attention(%q, %k, %v, _, %pk, %pv) {is_causal = 1, kv_num_heads = 2, q_num_heads = 2, scale = 0.5} : f32[1, 2, 3, 4], f32[1, 2, 8, 4], f32[1, 2, 8, 4]
  return %y, %kc, %vc
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 2, 3, 4}, {1, 2, 3, 4}, {1, 2, 3, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}});
}

TEST_CASE("fuse-attention: key padding from per-batch lengths becomes nonpad_kv_seqlen") {
  const std::string in = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 8, 4], %v: f32[2, 2, 8, 4], %len: i64[2]) {
  %zero = const i64[] [0]
  %one = const i64[] [1]
  %keys = const i64[] [8]
  %ax1 = const i64[1] [1]
  %ax12 = const i64[2] [1, 2]
  %ninf = const f32[] [-inf]
  %fzero = const f32[] [0.0]
  %half = const f32[] [0.5]
  %r = Range(%zero, %keys, %one) : i64[8]
  %l2 = Unsqueeze(%len, %ax1) : i64[2, 1]
  %valid = Less(%r, %l2) : bool[2, 8]
  %pb = Where(%valid, %fzero, %ninf) : f32[2, 8]
  %pb4 = Unsqueeze(%pb, %ax12) : f32[2, 1, 1, 8]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[2, 2, 4, 8]
  %s = MatMul(%q, %kt) : f32[2, 2, 3, 8]
  %ss = Mul(%s, %half) : f32[2, 2, 3, 8]
  %sb = Add(%ss, %pb4) : f32[2, 2, 3, 8]
  %p = Softmax(%sb) {axis = -1} : f32[2, 2, 3, 8]
  %y = MatMul(%p, %v) : f32[2, 2, 3, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 8, 4], %v: f32[2, 2, 8, 4], %len: i64[2]) {
  %y = Attention(%q, %k, %v, _, _, _, %len) {kv_num_heads = 2, q_num_heads = 2, scale = 0.5} : f32[2, 2, 3, 4]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{2, 2, 3, 4}, {2, 2, 8, 4}, {2, 2, 8, 4}, {2}},
                     {Tensor::from_vector<int64_t>({2}, {5, 8})});
}

TEST_CASE("fuse-attention: bool masks from inputs, kept where true or masked where true") {
  const std::string keep = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 4], %m: bool[2, 1, 1, 5]) {
  %ninf = const f32[] [-inf]
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[2, 2, 4, 5]
  %s = MatMul(%q, %kt) : f32[2, 2, 3, 5]
  %ss = Mul(%s, %c) : f32[2, 2, 3, 5]
  %sm = Where(%m, %ss, %ninf) : f32[2, 2, 3, 5]
  %p = Softmax(%sm) {axis = -1} : f32[2, 2, 3, 5]
  %y = MatMul(%p, %v) : f32[2, 2, 3, 4]
  return %y
}
)";
  const std::string keep_expected = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 4], %m: bool[2, 1, 1, 5]) {
  %y = Attention(%q, %k, %v, %m) {kv_num_heads = 2, q_num_heads = 2, scale = 0.5} : f32[2, 2, 3, 4]
  return %y
}
)";
  CHECK(run_pass(keep) == normalize(keep_expected));
  check_same_outputs(keep, {{2, 2, 3, 4}, {2, 2, 5, 4}, {2, 2, 5, 4}, {2, 1, 1, 5}});

  // masked_fill(pad, -inf) with pad true on padding: the fused node needs the keep mask, Not(pad). The
  // bool inputs of check_same_outputs are true at key 0, so here key 0 is padding for every row:
  const std::string masked = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 4], %pad: bool[2, 1, 1, 5]) {
  %ninf = const f32[] [-inf]
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[2, 2, 4, 5]
  %s = MatMul(%q, %kt) : f32[2, 2, 3, 5]
  %ss = Mul(%s, %c) : f32[2, 2, 3, 5]
  %sm = Where(%pad, %ninf, %ss) : f32[2, 2, 3, 5]
  %p = Softmax(%sm) {axis = -1} : f32[2, 2, 3, 5]
  %y = MatMul(%p, %v) : f32[2, 2, 3, 4]
  return %y
}
)";
  const std::string masked_expected = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 4], %pad: bool[2, 1, 1, 5]) {
  %y_keep = Not(%pad) : bool[2, 1, 1, 5]
  %y = Attention(%q, %k, %v, %y_keep) {kv_num_heads = 2, q_num_heads = 2, scale = 0.5} : f32[2, 2, 3, 4]
  return %y
}
)";
  CHECK(run_pass(masked) == normalize(masked_expected));
}

TEST_CASE("fuse-attention: an additive float mask input (ALiBi, relative position) becomes attn_mask") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 3, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4], %bias: f32[2, 3, 5]) {
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 4, 5]
  %s = MatMul(%q, %kt) : f32[1, 2, 3, 5]
  %ss = Mul(%s, %c) : f32[1, 2, 3, 5]
  %sb = Add(%bias, %ss) : f32[1, 2, 3, 5]
  %p = Softmax(%sb) {axis = -1} : f32[1, 2, 3, 5]
  %y = MatMul(%p, %v) : f32[1, 2, 3, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 3, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4], %bias: f32[2, 3, 5]) {
  %y = Attention(%q, %k, %v, %bias) {kv_num_heads = 2, q_num_heads = 2, scale = 0.5} : f32[1, 2, 3, 4]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 2, 3, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}, {2, 3, 5}});
}

TEST_CASE("fuse-attention: softcap tanh(s / c) · c with two equal constants") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %c = const f32[] [0.5]
  %cap1 = const f32[] [2.0]
  %cap2 = const f32[] [2.0]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %ss = Mul(%c, %s) : f32[1, 2, 4, 4]
  %d = Div(%ss, %cap1) : f32[1, 2, 4, 4]
  %t = Tanh(%d) : f32[1, 2, 4, 4]
  %capped = Mul(%t, %cap2) : f32[1, 2, 4, 4]
  %p = Softmax(%capped) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %y = Attention(%q, %k, %v) {kv_num_heads = 2, q_num_heads = 2, scale = 0.5, softcap = 2.0} : f32[1, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 2, 4, 8}, {1, 2, 4, 8}, {1, 2, 4, 8}});
}

TEST_CASE("fuse-attention: 3-D bmm attention (nn.MultiheadAttention) through a batch of one") {
  const std::string in = R"(
graph main(%q: f32[6, 5, 4], %k: f32[6, 5, 4], %v: f32[6, 5, 4]) {
  %c = const f32[] [2.0]
  %qs = Div(%q, %c) : f32[6, 5, 4]
  %kt = Transpose(%k) {perm = [0, 2, 1]} : f32[6, 4, 5]
  %s = MatMul(%qs, %kt) : f32[6, 5, 5]
  %p = Softmax(%s) {axis = -1} : f32[6, 5, 5]
  %y = MatMul(%p, %v) : f32[6, 5, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[6, 5, 4], %k: f32[6, 5, 4], %v: f32[6, 5, 4]) {
  %y_axes = const i64[1] [0]
  %y_axes_1 = const i64[1] [0]
  %y_axes_2 = const i64[1] [0]
  %y_axes_3 = const i64[1] [0]
  %q_4d = Unsqueeze(%q, %y_axes) : f32[1, 6, 5, 4]
  %k_4d = Unsqueeze(%k, %y_axes_1) : f32[1, 6, 5, 4]
  %v_4d = Unsqueeze(%v, %y_axes_2) : f32[1, 6, 5, 4]
  %y_attention = Attention(%q_4d, %k_4d, %v_4d) {kv_num_heads = 6, q_num_heads = 6, scale = 0.5} : f32[1, 6, 5, 4]
  %y = Squeeze(%y_attention, %y_axes_3) : f32[6, 5, 4]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{6, 5, 4}, {6, 5, 4}, {6, 5, 4}});
}

TEST_CASE("fuse-attention: probabilities returned as well become qk_matmul_output (mode 3)") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %ss = Mul(%s, %c) : f32[1, 2, 4, 4]
  %p = Softmax(%ss) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y, %p
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %y, %y_attention_1, %y_attention_2, %p = Attention(%q, %k, %v) {kv_num_heads = 2, q_num_heads = 2, qk_matmul_output_mode = 3, scale = 0.5} : f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 4]
  return %y, %p
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 2, 4, 8}, {1, 2, 4, 8}, {1, 2, 4, 8}});
}

TEST_CASE("fuse-attention: scaled scores returned before the mask become qk_matmul_output (mode 1)") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %bias: f32[4, 4]) {
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %ss = Mul(%s, %c) : f32[1, 2, 4, 4]
  %sb = Add(%ss, %bias) : f32[1, 2, 4, 4]
  %p = Softmax(%sb) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y, %ss
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %bias: f32[4, 4]) {
  %y, %y_attention_1, %y_attention_2, %ss = Attention(%q, %k, %v, %bias) {kv_num_heads = 2, q_num_heads = 2, qk_matmul_output_mode = 1, scale = 0.5} : f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 4]
  return %y, %ss
}
)";
  CHECK(run_pass(in) == normalize(expected));
  check_same_outputs(in, {{1, 2, 4, 8}, {1, 2, 4, 8}, {1, 2, 4, 8}, {4, 4}});
}

TEST_CASE("fuse-attention: a sliding-window mask stays an attn_mask tensor (Attention has no window)") {
  // masked iff j > i or j < i - 2: a union of two half-planes; the causal half alone cannot be split off.
  const std::string in = R"(
graph main(%q: f32[1, 1, 6, 4], %k: f32[1, 1, 6, 4], %v: f32[1, 1, 6, 4]) {
  %zero = const i64[] [0]
  %one = const i64[] [1]
  %n = const i64[] [6]
  %w = const i64[] [2]
  %ax1 = const i64[1] [1]
  %ax0 = const i64[1] [0]
  %ninf = const f32[] [-inf]
  %fzero = const f32[] [0.0]
  %r = Range(%zero, %n, %one) : i64[6]
  %rows = Unsqueeze(%r, %ax1) : i64[6, 1]
  %cols = Unsqueeze(%r, %ax0) : i64[1, 6]
  %ahead = Less(%rows, %cols) : bool[6, 6]
  %colsw = Add(%cols, %w) : i64[1, 6]
  %behind = Less(%colsw, %rows) : bool[6, 6]
  %out = Or(%ahead, %behind) : bool[6, 6]
  %bias = Where(%out, %ninf, %fzero) : f32[6, 6]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 1, 4, 6]
  %s = MatMul(%q, %kt) : f32[1, 1, 6, 6]
  %sb = Add(%s, %bias) : f32[1, 1, 6, 6]
  %p = Softmax(%sb) {axis = -1} : f32[1, 1, 6, 6]
  %y = MatMul(%p, %v) : f32[1, 1, 6, 4]
  return %y
}
)";
  const std::string out = run_pass(in);
  CHECK(out.find("%y = Attention(%q, %k, %v, %bias) {kv_num_heads = 1, q_num_heads = 1, scale = 1.0}") !=
        std::string::npos);
  check_same_outputs(in, {{1, 1, 6, 4}, {1, 1, 6, 4}, {1, 1, 6, 4}});
}

// ------------------------------------------------------------------------------ graphs left alone

TEST_CASE("fuse-attention: leaves alone a softmax over a non-key axis") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %p = Softmax(%s) {axis = 2} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fuse-attention: leaves alone a mask whose size it cannot tie to the scores") {
  // The triangle is n x n with n from another input: nothing proves n == seq.
  const std::string in = R"(
graph main(%q: f32[1, 2, seq, 8], %k: f32[1, 2, seq, 8], %v: f32[1, 2, seq, 8], %other: f32[n, 3]) {
  %zero = const i64[] [0]
  %axes0 = const i64[1] [0]
  %one = const i64[] [1]
  %ninf = const f32[] [-inf]
  %shape = Shape(%other) : i64[2]
  %t = Gather(%shape, %zero) {axis = 0} : i64[]
  %t1 = Unsqueeze(%t, %axes0) : i64[1]
  %tt = Concat(%t1, %t1) {axis = 0} : i64[2]
  %ones = ConstantOfShape(%tt) {value = tensor<bool[1]> [1]} : bool[?, ?]
  %mask = Trilu(%ones, %one) {upper = 1} : bool[?, ?]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, seq]
  %s = MatMul(%q, %kt) : f32[1, 2, seq, seq]
  %sm = Where(%mask, %ninf, %s) : f32[1, 2, seq, seq]
  %p = Softmax(%sm) {axis = -1} : f32[1, 2, seq, seq]
  %y = MatMul(%p, %v) : f32[1, 2, seq, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fuse-attention: leaves alone a scale that is not a constant") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %scale: f32[]) {
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %ss = Mul(%s, %scale) : f32[1, 2, 4, 4]
  %p = Softmax(%ss) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fuse-attention: leaves alone Q·Kᵀ with another op before the softmax") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %r = Relu(%s) : f32[1, 2, 4, 4]
  %p = Softmax(%r) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fuse-attention: leaves alone raw scores that another node also reads") {
  // %s (before the scale) is not one of the values Attention can return.
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %ss = Mul(%s, %c) : f32[1, 2, 4, 4]
  %p = Softmax(%ss) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  %e = Exp(%s) : f32[1, 2, 4, 4]
  return %y, %e
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fuse-attention: leaves alone a mask added before the scale") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %bias: f32[4, 4]) {
  %c = const f32[] [0.5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %sb = Add(%s, %bias) : f32[1, 2, 4, 4]
  %ss = Mul(%sb, %c) : f32[1, 2, 4, 4]
  %p = Softmax(%ss) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(in) == normalize(in));
}

TEST_CASE("fuse-attention: a finite fill is -inf only where no row can be fully masked") {
  // masked_fill(pad, -1e9) on a mask from an input: a fully padded row averages V in the graph but would
  // be 0 in Attention, so the graph stays.
  const std::string padded = R"(
graph main(%q: f32[2, 2, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 4], %pad: bool[2, 1, 1, 5]) {
  %big = const f32[] [-1e+09]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[2, 2, 4, 5]
  %s = MatMul(%q, %kt) : f32[2, 2, 3, 5]
  %sm = Where(%pad, %big, %s) : f32[2, 2, 3, 5]
  %p = Softmax(%sm) {axis = -1} : f32[2, 2, 3, 5]
  %y = MatMul(%p, %v) : f32[2, 2, 3, 4]
  return %y
}
)";
  CHECK(run_pass(padded) == normalize(padded));
  // The same fill on a causal triangle: the diagonal is always visible, so it is exactly is_causal.
  const std::string causal = R"(
graph main(%q: f32[1, 2, 5, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4]) {
  %big = const f32[] [-1e+09]
  %one = const i64[] [1]
  %tt = const i64[2] [5, 5]
  %ones = ConstantOfShape(%tt) {value = tensor<bool[1]> [1]} : bool[5, 5]
  %mask = Trilu(%ones, %one) {upper = 1} : bool[5, 5]
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 4, 5]
  %s = MatMul(%q, %kt) : f32[1, 2, 5, 5]
  %sm = Where(%mask, %big, %s) : f32[1, 2, 5, 5]
  %p = Softmax(%sm) {axis = -1} : f32[1, 2, 5, 5]
  %y = MatMul(%p, %v) : f32[1, 2, 5, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 5, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4]) {
  %y = Attention(%q, %k, %v) {is_causal = 1, kv_num_heads = 2, q_num_heads = 2, scale = 1.0} : f32[1, 2, 5, 4]
  return %y
}
)";
  CHECK(run_pass(causal) == normalize(expected));
  check_same_outputs(causal, {{1, 2, 5, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}});
}

TEST_CASE("fuse-attention: leaves alone batch or mask broadcasting Attention would not do") {
  // K has batch 1 while Q has batch 2: MatMul broadcasts, Attention requires equal batches.
  const std::string batch = R"(
graph main(%q: f32[2, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[2, 2, 4, 4]
  %p = Softmax(%s) {axis = -1} : f32[2, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[2, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(batch) == normalize(batch));
  // The mask's batch 3 would grow the scores' batch 1.
  const std::string grow = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %bias: f32[3, 1, 4, 4]) {
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %sb = Add(%s, %bias) : f32[3, 2, 4, 4]
  %p = Softmax(%sb) {axis = -1} : f32[3, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[3, 2, 4, 8]
  return %y
}
)";
  CHECK(run_pass(grow) == normalize(grow));
}

TEST_CASE("fuse-attention: a GQA repeat of K alone (V not repeated alike) is read repeated") {
  // Only K is repeated: un-repeating it would pair 2 K heads with 4 V heads. The fused node reads both
  // as the MatMuls see them.
  const std::string in = R"(
graph main(%q: f32[1, 4, 6, 8], %k: f32[1, 2, 6, 8], %v: f32[1, 4, 6, 8]) {
  %axes2 = const i64[1] [2]
  %grow = const i64[5] [1, 2, 2, 6, 8]
  %heads = const i64[4] [1, 4, 6, 8]
  %ku = Unsqueeze(%k, %axes2) : f32[1, 2, 1, 6, 8]
  %ke = Expand(%ku, %grow) : f32[1, 2, 2, 6, 8]
  %kr = Reshape(%ke, %heads) : f32[1, 4, 6, 8]
  %kt = Transpose(%kr) {perm = [0, 1, 3, 2]} : f32[1, 4, 8, 6]
  %s = MatMul(%q, %kt) : f32[1, 4, 6, 6]
  %p = Softmax(%s) {axis = -1} : f32[1, 4, 6, 6]
  %y = MatMul(%p, %v) : f32[1, 4, 6, 8]
  return %y
}
)";
  const std::string out = run_pass(in);
  CHECK(out.find("Attention(%q, %kr, %v) {kv_num_heads = 4, q_num_heads = 4, scale = 1.0}") !=
        std::string::npos);
  check_same_outputs(in, {{1, 4, 6, 8}, {1, 2, 6, 8}, {1, 4, 6, 8}});
}

// ------------------------------------------------------------------------------ the pattern helpers

namespace {
std::vector<std::string> dims_text(passes::ShapeReasoner& shapes, const Value* v) {
  std::vector<std::string> out;
  auto d = shapes.dims(v);
  REQUIRE(d.has_value());
  for (const passes::SymDim& x : *d) out.push_back(x.to_string());
  return out;
}
}  // namespace

TEST_CASE("ShapeReasoner: sizes through a Reshape whose target is computed from Shape, and a -1") {
  const std::string text = R"(
graph main(%x: f32[1, seq, 64]) {
  %zero = const i64[] [0]
  %one = const i64[] [1]
  %ax0 = const i64[1] [0]
  %tail = const i64[2] [4, -1]
  %shape = Shape(%x) : i64[3]
  %b = Gather(%shape, %zero) {axis = 0} : i64[]
  %s = Gather(%shape, %one) {axis = 0} : i64[]
  %b1 = Unsqueeze(%b, %ax0) : i64[1]
  %s1 = Unsqueeze(%s, %ax0) : i64[1]
  %target = Concat(%b1, %s1, %tail) {axis = 0} : i64[4]
  %r = Reshape(%x, %target) : f32[?, ?, ?, ?]
  %t = Transpose(%r) {perm = [0, 2, 1, 3]} : f32[?, ?, ?, ?]
  return %t
}
)";
  std::unique_ptr<Graph> g = parse_ok(text);
  passes::ShapeReasoner shapes;
  CHECK(dims_text(shapes, g->find_value("t")) == std::vector<std::string>{"1", "4", "seq", "16"});
  auto target = shapes.elements(g->find_value("target"));
  REQUIRE(target.has_value());
  CHECK((*target)[1] == passes::SymDim::atom("seq"));
}

TEST_CASE("ShapeReasoner: torch's expand(-1) shape arithmetic (Equal, Where) and symbolic products") {
  const std::string text = R"(
graph main(%k: f32[1, 2, seq, 16]) {
  %two = const i64[1] [2]
  %minus = const i64[5] [-1, -1, -1, -1, -1]
  %ones = const i64[5] [1, 1, 1, 1, 1]
  %ax2 = const i64[1] [2]
  %shape = Shape(%k) : i64[4]
  %head = Shape(%k) {end = 2, start = 0} : i64[2]
  %rest = Shape(%k) {start = 2} : i64[2]
  %want = Concat(%head, %two, %rest) {axis = 0} : i64[5]
  %is_minus = Equal(%want, %minus) : bool[5]
  %sizes = Where(%is_minus, %ones, %want) : i64[5]
  %u = Unsqueeze(%k, %ax2) : f32[1, 2, 1, seq, 16]
  %e = Expand(%u, %sizes) : f32[?, ?, ?, ?, ?]
  return %e
}
)";
  std::unique_ptr<Graph> g = parse_ok(text);
  passes::ShapeReasoner shapes;
  CHECK(dims_text(shapes, g->find_value("e")) == std::vector<std::string>{"1", "2", "2", "seq", "16"});
  const passes::SymDim seq = passes::SymDim::atom("seq");
  CHECK(seq.times(passes::SymDim::of(4)).divided_by(passes::SymDim::of(2)) ==
        seq.times(passes::SymDim::of(2)));
  CHECK_FALSE(seq.divided_by(passes::SymDim::atom("n")).known());
  CHECK_FALSE(passes::SymDim() == passes::SymDim());  // unknown never equals anything
}

TEST_CASE("ShapeReasoner: constants computed the way the graph computes them (f32 rounding)") {
  const std::string text = R"(
graph main(%x: f32[2]) {
  %d = const i64[1] [8]
  %one = const f32[1] [1.0]
  %df = Cast(%d) {to = 1} : f32[1]
  %sq = Sqrt(%df) : f32[1]
  %inv = Div(%one, %sq) : f32[1]
  %half = Sqrt(%inv) : f32[1]
  %y = Mul(%x, %half) : f32[2]
  return %y
}
)";
  std::unique_ptr<Graph> g = parse_ok(text);
  passes::ShapeReasoner shapes;
  auto c = shapes.constant_value(g->find_value("half"));
  REQUIRE(c.has_value());
  const float expected = std::sqrt(1.0f / std::sqrt(8.0f));
  CHECK(*c == static_cast<double>(expected));
  CHECK_FALSE(shapes.constant_value(g->find_value("y")).has_value());  // reads an input
}

TEST_CASE("match_pattern: commutative operands, scalar captures by value, repeated value captures") {
  const std::string text = R"(
graph main(%s: f32[2, 2]) {
  %c1 = const f32[] [30.0]
  %c2 = const f32[] [30.0]
  %c3 = const f32[] [20.0]
  %d = Div(%s, %c1) : f32[2, 2]
  %t = Tanh(%d) : f32[2, 2]
  %good = Mul(%c2, %t) : f32[2, 2]
  %bad = Mul(%t, %c3) : f32[2, 2]
  %twice = Add(%s, %s) : f32[2, 2]
  %other = Add(%s, %d) : f32[2, 2]
  return %good, %bad, %twice, %other
}
)";
  std::unique_ptr<Graph> g = parse_ok(text);
  passes::ShapeReasoner shapes;
  using passes::any;
  using passes::op;
  const passes::Pattern softcap = passes::commutative(
      "Mul", op("Tanh", {op("Div", {any("x"), passes::scalar("cap")})}), passes::scalar("cap"));
  passes::Match m;
  REQUIRE(passes::match_pattern(softcap, g->find_value("good"), shapes, &m));
  CHECK(m["x"] == g->find_value("s"));
  CHECK(m.scalars["cap"] == 30.0);
  CHECK(m.nodes.size() == 3);
  passes::Match bad;
  CHECK_FALSE(passes::match_pattern(softcap, g->find_value("bad"), shapes, &bad));  // 30 vs 20
  const passes::Pattern same_twice = op("Add", {any("a"), any("a")});
  passes::Match m2, m3;
  CHECK(passes::match_pattern(same_twice, g->find_value("twice"), shapes, &m2));
  CHECK_FALSE(passes::match_pattern(same_twice, g->find_value("other"), shapes, &m3));
}
