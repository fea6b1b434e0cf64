// fuse-scan-body pass: IR text in -> pass -> the fused op (CausalConvWithState, LinearAttention), the
// graphs it must leave alone (right padding, non-depthwise, dilation, a Scan body computing something
// else), and numeric checks of the original and fused graphs against naive loops written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(*g);
}

// Runs fuse-scan-body; returns whether it changed the graph.
bool run_pass(Graph& g) {
  auto reports = passes::run_passes(g, {"fuse-scan-body"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  return (*reports)[0].changed;
}

bool has(const Graph& g, const std::string& text) {
  return print_graph(g).find(text) != std::string::npos;
}

std::vector<Tensor> random_inputs(const Graph& g, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<Tensor> in;
  for (const Value* v : g.inputs()) {
    std::vector<int64_t> shape;
    for (int i = 0; i < v->type().rank(); ++i) shape.push_back(v->type().dim(i).value());
    Tensor t = Tensor::empty(DType::f32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
    in.push_back(std::move(t));
  }
  return in;
}

std::vector<Tensor> execute(const Graph& g, const std::vector<Tensor>& in) {
  auto out = runtime::ReferenceExecutor().run(g, in);
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  return std::move(*out);
}

void check_close(const Tensor& got, const std::vector<double>& want) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i);
    CHECK(std::fabs(got.get_f64(static_cast<int64_t>(i)) - want[i]) <=
          1e-5 * std::max(1.0, std::fabs(want[i])));
  }
}

// Naive causal depthwise conv over x [B, C, L] with w [C, 1, K], past [B, C, K-1] (zeros when empty):
// the output (SiLU when asked) and the last K-1 columns of concat(past, x).
void naive_causal_conv(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor* past, bool silu,
                       std::vector<double>* out, std::vector<double>* state) {
  const int64_t B = x.dim(0), C = x.dim(1), L = x.dim(2), K = w.dim(2);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      std::vector<double> seq;
      for (int64_t i = 0; i < K - 1; ++i)
        seq.push_back(past ? past->get_f64((b * C + c) * (K - 1) + i) : 0.0);
      for (int64_t i = 0; i < L; ++i) seq.push_back(x.get_f64((b * C + c) * L + i));
      for (int64_t t = 0; t < L; ++t) {
        double acc = bias ? bias->get_f64(c) : 0.0;
        for (int64_t j = 0; j < K; ++j) acc += w.get_f64(c * K + j) * seq[t + j];
        out->push_back(silu ? acc / (1.0 + std::exp(-acc)) : acc);
      }
      for (int64_t i = 0; i < K - 1; ++i) state->push_back(seq[L + i]);
    }
  }
}

const char* kConvSiluZeros = R"(
graph main(%x: f32[2, 3, 5], %w: f32[3, 1, 3], %b: f32[3]) {
  %zeros = const f32[2, 3, 2] [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
  %padded = Concat(%zeros, %x) {axis = 2} : f32[2, 3, 7]
  %c = Conv(%padded, %w, %b) {group = 3, kernel_shape = [3]} : f32[2, 3, 5]
  %s = Sigmoid(%c) : f32[2, 3, 5]
  %y = Mul(%c, %s) : f32[2, 3, 5]
  %starts = const i64[1] [5]
  %ends = const i64[1] [7]
  %axes = const i64[1] [2]
  %state = Slice(%padded, %starts, %ends, %axes) : f32[2, 3, 2]
  return %y, %state
}
)";

const char* kConvPast = R"(
graph main(%x: f32[2, 3, 5], %w: f32[3, 1, 3], %past: f32[2, 3, 2]) {
  %padded = Concat(%past, %x) {axis = -1} : f32[2, 3, 7]
  %y = Conv(%padded, %w) {group = 3} : f32[2, 3, 5]
  %starts = const i64[1] [-2]
  %ends = const i64[1] [9223372036854775807]
  %axes = const i64[1] [-1]
  %state = Slice(%padded, %starts, %ends, %axes) : f32[2, 3, 2]
  return %y, %state
}
)";

}  // namespace

TEST_CASE("fuse-scan-body: zero-padded depthwise Conv + SiLU + state slice -> CausalConvWithState") {
  auto original = parse(kConvSiluZeros);
  auto g = parse(kConvSiluZeros);
  REQUIRE(run_pass(*g));
  INFO(print_graph(*g));
  CHECK(has(*g, "%y, %state = CausalConvWithState(%x, %w, %b) {activation = \"silu\"}"));
  for (const char* gone : {"Conv(", "Sigmoid", "Slice", "Concat"}) CHECK_FALSE(has(*g, gone));
  const std::vector<Tensor> in = random_inputs(*original, 1);
  std::vector<double> y, state;
  naive_causal_conv(in[0], in[1], &in[2], nullptr, true, &y, &state);
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    check_close(out[0], y);
    check_close(out[1], state);
  }
}

TEST_CASE("fuse-scan-body: Conv over concat(past_state, x) with a negative-start slice -> state carried") {
  auto original = parse(kConvPast);
  auto g = parse(kConvPast);
  REQUIRE(run_pass(*g));
  INFO(print_graph(*g));
  CHECK(has(*g, "%y, %state = CausalConvWithState(%x, %w, _, %past) {activation = \"none\"}"));
  const std::vector<Tensor> in = random_inputs(*original, 2);
  std::vector<double> y, state;
  naive_causal_conv(in[0], in[1], nullptr, &in[2], false, &y, &state);
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    check_close(out[0], y);
    check_close(out[1], state);
  }
}

TEST_CASE("fuse-scan-body: Conv with left padding only (pads K-1, 0) -> CausalConvWithState") {
  const std::string text = R"(
graph main(%x: f32[1, 2, 4], %w: f32[2, 1, 2]) {
  %y = Conv(%x, %w) {group = 2, pads = [1, 0], strides = [1], dilations = [1]} : f32[1, 2, 4]
  return %y
}
)";
  auto original = parse(text);
  auto g = parse(text);
  REQUIRE(run_pass(*g));
  CHECK(has(*g, "%y = CausalConvWithState(%x, %w) {activation = \"none\"}"));
  const std::vector<Tensor> in = random_inputs(*original, 3);
  std::vector<double> y, state;
  naive_causal_conv(in[0], in[1], nullptr, nullptr, false, &y, &state);
  for (const Graph* graph : {original.get(), g.get()}) check_close(execute(*graph, in)[0], y);
}

TEST_CASE("fuse-scan-body: Mamba conv1d, pads K-1 on both sides, first L steps sliced, + SiLU") {
  const std::string text = R"(
graph main(%x: f32[1, 2, 4], %w: f32[2, 1, 3], %b: f32[2]) {
  %c = Conv(%x, %w, %b) {group = 2, kernel_shape = [3], pads = [2, 2]} : f32[1, 2, 6]
  %starts = const i64[1] [0]
  %ends = const i64[1] [4]
  %axes = const i64[1] [2]
  %steps = const i64[1] [1]
  %first = Slice(%c, %starts, %ends, %axes, %steps) : f32[1, 2, 4]
  %s = Sigmoid(%first) : f32[1, 2, 4]
  %y = Mul(%first, %s) : f32[1, 2, 4]
  %c3 = Conv(%x, %w, %b) {group = 2, pads = [2, 2]} : f32[1, 2, 6]
  %late = Slice(%c3, %axes, %ends, %axes) : f32[1, 2, 2]
  %c2 = Conv(%x, %w, %b) {group = 2, pads = [2, 2]} : f32[1, 2, 6]
  return %y, %late, %c2
}
)";
  auto original = parse(text);
  auto g = parse(text);
  REQUIRE(run_pass(*g));
  INFO(print_graph(*g));
  CHECK(has(*g, "%y = CausalConvWithState(%x, %w, %b) {activation = \"silu\"}"));
  // A Slice that keeps outputs past L, and an unsliced output, keep their Conv.
  CHECK(has(*g, "%late = Slice(%c3, %axes, %ends, %axes)"));
  CHECK(has(*g, "%c2 = Conv(%x, %w, %b)"));
  const std::vector<Tensor> in = random_inputs(*original, 6);
  std::vector<double> y, state;
  naive_causal_conv(in[0], in[1], &in[2], nullptr, true, &y, &state);
  for (const Graph* graph : {original.get(), g.get()}) check_close(execute(*graph, in)[0], y);
}

TEST_CASE("fuse-scan-body leaves alone: right padding, non-depthwise, dilation, short or nonzero padding") {
  const std::string text = R"(
graph main(%x: f32[1, 2, 4], %w: f32[2, 1, 3], %w_full: f32[2, 2, 3]) {
  %right = Conv(%x, %w) {group = 2, pads = [0, 2]} : f32[1, 2, 4]
  %both = Conv(%x, %w) {group = 2, pads = [1, 1]} : f32[1, 2, 4]
  %zeros2 = const f32[1, 2, 2] [0, 0, 0, 0]
  %padded = Concat(%zeros2, %x) {axis = 2} : f32[1, 2, 6]
  %full = Conv(%padded, %w_full) {group = 1} : f32[1, 2, 4]
  %zeros4 = const f32[1, 2, 4] [0, 0, 0, 0, 0, 0, 0, 0]
  %padded4 = Concat(%zeros4, %x) {axis = 2} : f32[1, 2, 8]
  %dilated = Conv(%padded4, %w) {group = 2, dilations = [2]} : f32[1, 2, 4]
  %zeros1 = const f32[1, 2, 1] [0, 0]
  %padded1 = Concat(%zeros1, %x) {axis = 2} : f32[1, 2, 5]
  %short = Conv(%padded1, %w) {group = 2, pads = [1, 0]} : f32[1, 2, 4]
  %ones = const f32[1, 2, 2] [1, 1, 1, 1]
  %padded_ones = Concat(%ones, %x) {axis = 2} : f32[1, 2, 6]
  %strided = Conv(%padded, %w) {group = 2, strides = [2]} : f32[1, 2, 2]
  return %right, %both, %full, %dilated, %short, %strided, %padded_ones
}
)";
  auto g = parse(text);
  CHECK_FALSE(run_pass(*g));
  CHECK(print_graph(*g) == print_graph(*parse(text)));
}

namespace {

// The ONNX LinearAttention function body as a Scan, B = 1, T = 3, H = 2, D = 2 ("gated" adds %g).
std::string linear_attention_graph(bool gated, const std::string& update = "Add(%s_prev, %outer)") {
  const std::string g_in = gated ? ", %g: f32[1, 3, 4]" : "";
  const std::string g_4d = gated ? "  %gr = Reshape(%g, %shape4) : f32[1, 3, 2, 2]\n"
                                   "  %g4 = Transpose(%gr) {perm = [1, 0, 2, 3]} : f32[3, 1, 2, 2]\n"
                                 : "";
  const std::string g_scan = gated ? ", %g4" : "";
  const std::string g_body = gated ? ", %g_t: f32[1, 2, 2]" : "";
  const std::string prev = gated ? "    %ge = Exp(%g_t) : f32[1, 2, 2]\n"
                                   "    %gu = Unsqueeze(%ge, %m1) : f32[1, 2, 2, 1]\n"
                                   "    %s_prev = Mul(%s, %gu) : f32[1, 2, 2, 2]\n"
                                 : "";
  std::string rule = update;  // without decay the previous state is the body's state input
  if (!gated) rule.replace(rule.find("%s_prev"), 7, "%s");
  return R"(
graph main(%q: f32[1, 3, 4], %k: f32[1, 3, 4], %v: f32[1, 3, 4])" +
         g_in + R"() {
  %shape4 = const i64[4] [1, 3, 2, -1]
  %qr = Reshape(%q, %shape4) : f32[1, 3, 2, 2]
  %q4 = Transpose(%qr) {perm = [1, 0, 2, 3]} : f32[3, 1, 2, 2]
  %kr = Reshape(%k, %shape4) : f32[1, 3, 2, 2]
  %k4 = Transpose(%kr) {perm = [1, 0, 2, 3]} : f32[3, 1, 2, 2]
  %vr = Reshape(%v, %shape4) : f32[1, 3, 2, 2]
  %v4 = Transpose(%vr) {perm = [1, 0, 2, 3]} : f32[3, 1, 2, 2]
)" + g_4d +
         R"(  %s0 = const f32[1, 2, 2, 2] [0, 0, 0, 0, 0, 0, 0, 0]
  %scale = const f32[] [0.5]
  %s_last, %o = Scan(%s0, %q4, %k4, %v4)" +
         g_scan +
         R"() captures(%scale) {body = graph step(%s: f32[1, 2, 2, 2], %q_t: f32[1, 2, 2], %k_t: f32[1, 2, 2], %v_t: f32[1, 2, 2])" +
         g_body + R"() captures(%sc: f32[]) {
    %m1 = const i64[1] [-1]
    %m2 = const i64[1] [-2]
)" + prev +
         R"(    %kc = Unsqueeze(%k_t, %m1) : f32[1, 2, 2, 1]
    %vrow = Unsqueeze(%v_t, %m2) : f32[1, 2, 1, 2]
    %outer = MatMul(%kc, %vrow) : f32[1, 2, 2, 2]
    %s_new = )" +
         rule + R"( : f32[1, 2, 2, 2]
    %qrow = Unsqueeze(%q_t, %m2) : f32[1, 2, 1, 2]
    %read = MatMul(%qrow, %s_new) : f32[1, 2, 1, 2]
    %rs = Squeeze(%read, %m2) : f32[1, 2, 2]
    %o_t = Mul(%sc, %rs) : f32[1, 2, 2]
    return %s_new, %o_t
  }, num_scan_inputs = )" +
         (gated ? "4" : "3") + R"(} : f32[1, 2, 2, 2], f32[3, 1, 2, 2]
  %ot = Transpose(%o) {perm = [1, 0, 2, 3]} : f32[1, 3, 2, 2]
  %shape3 = const i64[3] [1, 3, 4]
  %out = Reshape(%ot, %shape3) : f32[1, 3, 4]
  return %out, %s_last
}
)";
}

// Naive recurrence: S_h = exp(g_h) ⊙ S_h (gated) + k_h v_hᵀ; o_h = 0.5 · q_hᵀ S_h. Inputs [1, 3, 2*2].
void naive_linear_attention(const std::vector<Tensor>& in, bool gated, std::vector<double>* out,
                            std::vector<double>* state) {
  double S[2][2][2] = {};
  out->assign(12, 0.0);
  for (int t = 0; t < 3; ++t) {
    for (int h = 0; h < 2; ++h) {
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          const double decay = gated ? std::exp(in[3].get_f64(t * 4 + h * 2 + i)) : 1.0;
          S[h][i][j] =
              decay * S[h][i][j] + in[1].get_f64(t * 4 + h * 2 + i) * in[2].get_f64(t * 4 + h * 2 + j);
        }
      }
      for (int j = 0; j < 2; ++j) {
        double acc = 0;
        for (int i = 0; i < 2; ++i) acc += in[0].get_f64(t * 4 + h * 2 + i) * S[h][i][j];
        (*out)[t * 4 + h * 2 + j] = 0.5 * acc;
      }
    }
  }
  state->clear();
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) state->push_back(S[h][i][j]);
}

}  // namespace

TEST_CASE("fuse-scan-body: Scan with the linear and gated linear-attention bodies -> LinearAttention") {
  for (bool gated : {false, true}) {
    INFO("gated " << gated);
    auto original = parse(linear_attention_graph(gated));
    auto g = parse(linear_attention_graph(gated));
    REQUIRE(run_pass(*g));
    INFO(print_graph(*g));
    const std::string want = gated ? "%out, %s_last = LinearAttention(%q, %k, %v, _, %g) {kv_num_heads = 2, "
                                     "q_num_heads = 2, scale = 0.5, update_rule = \"gated\"}"
                                   : "%out, %s_last = LinearAttention(%q, %k, %v) {kv_num_heads = 2, "
                                     "q_num_heads = 2, scale = 0.5, update_rule = \"linear\"}";
    CHECK(has(*g, want));
    CHECK_FALSE(has(*g, "Scan("));
    const std::vector<Tensor> in = random_inputs(*original, 4);
    std::vector<double> y, state;
    naive_linear_attention(in, gated, &y, &state);
    for (const Graph* graph : {original.get(), g.get()}) {
      const std::vector<Tensor> out = execute(*graph, in);
      check_close(out[0], y);
      check_close(out[1], state);
    }
  }
}

TEST_CASE("fuse-scan-body leaves alone: a Scan body computing something else still runs") {
  // S' = S - k vᵀ: not a LinearAttention rule.
  const std::string text = linear_attention_graph(false, "Sub(%s_prev, %outer)");
  auto g = parse(text);
  CHECK_FALSE(run_pass(*g));
  CHECK(print_graph(*g) == print_graph(*parse(text)));
  std::vector<Tensor> in = random_inputs(*g, 5);
  std::vector<double> y, state;
  std::vector<Tensor> negated_k = {in[0], in[1].clone(), in[2]};  // S' = S - k vᵀ is the linear rule with -k
  for (int64_t i = 0; i < in[1].numel(); ++i) negated_k[1].data<float>()[i] = -in[1].data<float>()[i];
  naive_linear_attention(negated_k, false, &y, &state);
  const std::vector<Tensor> out = execute(*g, in);
  check_close(out[0], y);
  check_close(out[1], state);
}

TEST_CASE("fuse-scan-body is registered and runs in -O1 after canonicalize") {
  CHECK(passes::create_pass("fuse-scan-body") != nullptr);
  const std::vector<std::string> o1 = passes::pipeline_for_level(1);
  auto at = std::find(o1.begin(), o1.end(), "fuse-scan-body");
  REQUIRE(at != o1.end());
  CHECK(std::find(o1.begin(), at, "canonicalize") != at);
}
