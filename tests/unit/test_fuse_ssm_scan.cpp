// fuse-ssm-scan pass: IR text in -> pass -> IR text / op list out, for each form the pass recognizes (the
// primitive chain around LinearRecurrence, a Loop body with the torch.jit.script ScatterND idiom, a Loop
// with a scan output, a Scan body) and for graphs it must leave alone. Every positive case is also run:
// the rewritten graph's outputs are compared with a naive selective-scan loop written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <random>

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

std::unique_ptr<Graph> run_pass(const std::string& text) {
  auto g = parse(text);
  auto reports = passes::run_passes(*g, {"fuse-ssm-scan"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  return g;
}

// "Add=1 SelectiveScan=1 Transpose=2": the top-level op counts.
std::string op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node* n : g.nodes()) counts[n->op()]++;
  std::string s;
  for (const auto& [op, n] : counts) s += (s.empty() ? "" : " ") + op + "=" + std::to_string(n);
  return s;
}

const Node* find_op(const Graph& g, const std::string& op) {
  for (const Node* n : g.nodes()) {
    if (n->op() == op) return n;
  }
  return nullptr;
}

// Random inputs for every graph input (uniform in [-1, 1]).
std::vector<Tensor> random_inputs(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<Tensor> inputs;
  for (const Value* v : g.inputs()) {
    Tensor t = Tensor::empty(DType::f32, *v->type().static_shape());
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
    inputs.push_back(t);
  }
  return inputs;
}

// Element of a row-major tensor by multi-index.
float at(const Tensor& t, std::initializer_list<int64_t> idx) {
  int64_t off = 0, k = 0;
  for (int64_t i : idx) off = off * t.dim(static_cast<int>(k++)) + i;
  return t.data<float>()[off];
}

// A selective scan in plain loops, reading its operands through accessors (so each test states the
// layout its graph uses). Returns y [B, D, L] and the final state [B, D, N], row-major.
struct NaiveScan {
  int64_t B = 0, D = 0, N = 0, L = 0;
  std::function<float(int64_t, int64_t, int64_t)> u, dt, z;  // (b, d, l)
  std::function<float(int64_t, int64_t)> A;                  // (d, n)
  std::function<float(int64_t, int64_t, int64_t)> Bm, Cm;    // (b, n, l)
  std::function<float(int64_t)> Dskip, bias;                 // (d)
  std::function<float(int64_t, int64_t, int64_t)> h0;        // (b, d, n)
  bool softplus = false;

  std::pair<std::vector<double>, std::vector<double>> run() const {
    std::vector<double> y(B * D * L), h(B * D * N);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t d = 0; d < D; ++d) {
        std::vector<double> s(N);
        for (int64_t n = 0; n < N; ++n) s[n] = h0 ? h0(b, d, n) : 0.0;
        for (int64_t l = 0; l < L; ++l) {
          double delta = dt(b, d, l) + (bias ? bias(d) : 0.0);
          if (softplus) delta = std::log1p(std::exp(delta));
          double acc = 0.0;
          for (int64_t n = 0; n < N; ++n) {
            s[n] = std::exp(delta * A(d, n)) * s[n] + delta * Bm(b, n, l) * u(b, d, l);
            acc += Cm(b, n, l) * s[n];
          }
          if (Dskip) acc += Dskip(d) * u(b, d, l);
          if (z) acc *= z(b, d, l) / (1.0 + std::exp(-z(b, d, l)));
          y[(b * D + d) * L + l] = acc;
        }
        for (int64_t n = 0; n < N; ++n) h[(b * D + d) * N + n] = s[n];
      }
    }
    return {y, h};
  }
};

// max |actual - expected| / max |expected| over a tensor read through `get(b, d, x)`.
double relative_error(const std::vector<double>& expected, int64_t B, int64_t D, int64_t X,
                      const std::function<float(int64_t, int64_t, int64_t)>& get) {
  double diff = 0.0, scale = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t x = 0; x < X; ++x) {
        const double e = expected[(b * D + d) * X + x];
        diff = std::max(diff, std::fabs(get(b, d, x) - e));
        scale = std::max(scale, std::fabs(e));
      }
    }
  }
  return diff / std::max(scale, 1e-30);
}

std::vector<Tensor> execute(const Graph& g, const std::vector<Tensor>& inputs) {
  auto out = runtime::ReferenceExecutor().run(g, inputs);
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  return *out;
}

void check_unchanged(const std::string& text) {
  auto g = run_pass(text);
  CHECK(print_graph(*g) == print_graph(*parse(text)));
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// ---------------------------------------------------------------------------------------------
// 1. The primitive chain around LinearRecurrence, channels last ([B, L, D], state [B, L, D, N]).

const char* kChannelsLast = R"(
graph main(%x: f32[2, 5, 8], %dt: f32[2, 5, 8], %bias: f32[8], %A: f32[8, 4], %Bm: f32[2, 5, 4], %Cm: f32[2, 5, 4], %D: f32[8], %z: f32[2, 5, 8]) {
  %last = const i64[1] [-1]
  %two = const i64[1] [2]
  %dtb = Add(%dt, %bias) : f32[2, 5, 8]
  %delta = Softplus(%dtb) : f32[2, 5, 8]
  %B4 = Unsqueeze(%Bm, %two) : f32[2, 5, 1, 4]
  %delta4 = Unsqueeze(%delta, %last) : f32[2, 5, 8, 1]
  %dA = Mul(%delta4, %A) : f32[2, 5, 8, 4]
  %decay = Exp(%dA) : f32[2, 5, 8, 4]
  %du = Mul(%delta, %x) : f32[2, 5, 8]
  %du4 = Unsqueeze(%du, %last) : f32[2, 5, 8, 1]
  %inject = Mul(%du4, %B4) : f32[2, 5, 8, 4]
  %h, %h_last = LinearRecurrence(%decay, %inject) {axis = 1} : f32[2, 5, 8, 4], f32[2, 8, 4]
  %C4 = Unsqueeze(%Cm, %two) : f32[2, 5, 1, 4]
  %hC = Mul(%h, %C4) : f32[2, 5, 8, 4]
  %y = ReduceSum(%hC, %last) {keepdims = 0} : f32[2, 5, 8]
  %Dx = Mul(%x, %D) : f32[2, 5, 8]
  %yD = Add(%y, %Dx) : f32[2, 5, 8]
  %sig = Sigmoid(%z) : f32[2, 5, 8]
  %gate = Mul(%z, %sig) : f32[2, 5, 8]
  %out = Mul(%yD, %gate) : f32[2, 5, 8]
  return %out, %h_last
}
)";

// The channels-last graph's scan, read from its inputs (x, dt, bias, A, Bm, Cm, D, z).
NaiveScan channels_last_reference(const std::vector<Tensor>& in) {
  NaiveScan s;
  s.B = 2, s.D = 8, s.N = 4, s.L = 5;
  s.u = [&in](int64_t b, int64_t d, int64_t l) { return at(in[0], {b, l, d}); };
  s.dt = [&in](int64_t b, int64_t d, int64_t l) { return at(in[1], {b, l, d}); };
  s.bias = [&in](int64_t d) { return at(in[2], {d}); };
  s.A = [&in](int64_t d, int64_t n) { return at(in[3], {d, n}); };
  s.Bm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[4], {b, l, n}); };
  s.Cm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[5], {b, l, n}); };
  s.Dskip = [&in](int64_t d) { return at(in[6], {d}); };
  s.z = [&in](int64_t b, int64_t d, int64_t l) { return at(in[7], {b, l, d}); };
  s.softplus = true;
  return s;
}

}  // namespace

TEST_CASE("fuse-ssm-scan: LinearRecurrence chain with softplus bias, D skip and gate -> one SelectiveScan") {
  auto g = run_pass(kChannelsLast);
  const std::string expected = R"(
graph main(%x: f32[2, 5, 8], %dt: f32[2, 5, 8], %bias: f32[8], %A: f32[8, 4], %Bm: f32[2, 5, 4], %Cm: f32[2, 5, 4], %D: f32[8], %z: f32[2, 5, 8]) {
  %out_ssm_u = Transpose(%x) {perm = [0, 2, 1]} : f32[2, 8, 5]
  %out_ssm_delta = Transpose(%dt) {perm = [0, 2, 1]} : f32[2, 8, 5]
  %out_ssm_B = Transpose(%Bm) {perm = [0, 2, 1]} : f32[2, 4, 5]
  %out_ssm_C = Transpose(%Cm) {perm = [0, 2, 1]} : f32[2, 4, 5]
  %out_ssm_z = Transpose(%z) {perm = [0, 2, 1]} : f32[2, 8, 5]
  %out_ssm, %h_last = SelectiveScan(%out_ssm_u, %out_ssm_delta, %A, %out_ssm_B, %out_ssm_C, %D, %out_ssm_z, %bias) {delta_softplus = 1} : f32[2, 8, 5], f32[2, 8, 4]
  %out = Transpose(%out_ssm) {perm = [0, 2, 1]} : f32[2, 5, 8]
  return %out, %h_last
}
)";
  CHECK(print_graph(*g) == print_graph(*parse(expected)));

  const auto original = parse(kChannelsLast);
  const std::vector<Tensor> in = random_inputs(*original, 1);
  const auto [y, h] = channels_last_reference(in).run();
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    CHECK(relative_error(y, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
            return at(out[0], {b, l, d});
          }) < 1e-5);
    CHECK(relative_error(h, 2, 8, 4, [&](int64_t b, int64_t d, int64_t n) {
            return at(out[1], {b, d, n});
          }) < 1e-5);
  }
}

TEST_CASE("fuse-ssm-scan: an epilogue whose input is used elsewhere is left outside the fused op") {
  // The raw scan output is also returned: neither the D skip nor the gate can be taken in.
  const std::string raw_out = replaced(kChannelsLast, "return %out, %h_last", "return %out, %y");
  auto g = run_pass(raw_out);
  CHECK(op_counts(*g) == "Add=1 Mul=3 SelectiveScan=1 Sigmoid=1 Transpose=5");
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->num_inputs() == 8);  // u, delta, A, B, C, _, _, delta_bias: neither D nor z
  CHECK(scan->input(5) == nullptr);
  CHECK(scan->input(6) == nullptr);
  CHECK(scan->num_outputs() == 1);
  // The D-skip result is returned: the D skip is fused, the gate stays outside.
  const std::string with_d_out = replaced(kChannelsLast, "return %out, %h_last", "return %out, %yD");
  auto g2 = run_pass(with_d_out);
  CHECK(op_counts(*g2) == "Mul=2 SelectiveScan=1 Sigmoid=1 Transpose=5");
  scan = find_op(*g2, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->input(5) != nullptr);
  CHECK(scan->input(6) == nullptr);

  for (const std::string& text : {raw_out, with_d_out}) {
    const auto original = parse(text);
    auto fused = run_pass(text);
    const std::vector<Tensor> in = random_inputs(*original, 2);
    NaiveScan ref = channels_last_reference(in);
    const auto gated = ref.run().first;
    ref.z = nullptr;
    if (text == raw_out) ref.Dskip = nullptr;
    const auto second = ref.run().first;
    for (const Graph* graph : {original.get(), fused.get()}) {
      const std::vector<Tensor> out = execute(*graph, in);
      CHECK(relative_error(gated, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
              return at(out[0], {b, l, d});
            }) < 1e-5);
      CHECK(relative_error(second, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
              return at(out[1], {b, l, d});
            }) < 1e-5);
    }
  }
}

TEST_CASE("fuse-ssm-scan: a softplus output used elsewhere stays; the op gets delta_softplus = 0") {
  std::string text = kChannelsLast;
  text.replace(text.find("return %out, %h_last"), 20, "return %out, %delta");
  auto g = run_pass(text);
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->get_int("delta_softplus", 1) == 0);
  CHECK(find_op(*g, "Softplus") != nullptr);
  CHECK(find_op(*g, "LinearRecurrence") == nullptr);
  const auto original = parse(text);
  const std::vector<Tensor> in = random_inputs(*original, 3);
  const auto y = channels_last_reference(in).run().first;
  const std::vector<Tensor> out = execute(*g, in);
  CHECK(relative_error(y, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
          return at(out[0], {b, l, d});
        }) < 1e-5);
}

namespace {
// Channels first, state [B, D, L, N] (axis 2), batch 1, A = -exp(A_log) written as exp(-(Δ ⊗ exp(A_log))),
// an initial state, no softplus, no epilogue, a keepdims readout squeezed afterwards.
const char* kChannelsFirst = R"(
graph main(%x: f32[1, 6, 3], %dt: f32[1, 6, 3], %A_log: f32[6, 2], %Bm: f32[1, 2, 3], %Cm: f32[1, 2, 3], %h0: f32[1, 6, 2]) {
  %last = const i64[1] [-1]
  %one = const i64[1] [1]
  %Ae = Exp(%A_log) : f32[6, 2]
  %A3 = Unsqueeze(%Ae, %one) : f32[6, 1, 2]
  %delta4 = Unsqueeze(%dt, %last) : f32[1, 6, 3, 1]
  %dA = Mul(%delta4, %A3) : f32[1, 6, 3, 2]
  %ndA = Neg(%dA) : f32[1, 6, 3, 2]
  %decay = Exp(%ndA) : f32[1, 6, 3, 2]
  %Bt = Transpose(%Bm) {perm = [0, 2, 1]} : f32[1, 3, 2]
  %B4 = Unsqueeze(%Bt, %one) : f32[1, 1, 3, 2]
  %du = Mul(%x, %dt) : f32[1, 6, 3]
  %du4 = Unsqueeze(%du, %last) : f32[1, 6, 3, 1]
  %inject = Mul(%B4, %du4) : f32[1, 6, 3, 2]
  %h, %h_last = LinearRecurrence(%decay, %inject, %h0) {axis = 2} : f32[1, 6, 3, 2], f32[1, 6, 2]
  %Ct = Transpose(%Cm) {perm = [0, 2, 1]} : f32[1, 3, 2]
  %C4 = Unsqueeze(%Ct, %one) : f32[1, 1, 3, 2]
  %hC = Mul(%C4, %h) : f32[1, 6, 3, 2]
  %y4 = ReduceSum(%hC, %last) {keepdims = 1} : f32[1, 6, 3, 1]
  %y = Squeeze(%y4, %last) : f32[1, 6, 3]
  return %y, %h_last
}
)";
}  // namespace

TEST_CASE("fuse-ssm-scan: channels-first chain with negated decay, h0, keepdims readout, batch 1") {
  auto g = run_pass(kChannelsFirst);
  CHECK(op_counts(*g) == "Exp=1 Neg=1 SelectiveScan=1 Squeeze=1 Unsqueeze=1");
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->get_int("delta_softplus", 1) == 0);
  CHECK(scan->num_inputs() == 9);  // h0 is the last input

  const auto original = parse(kChannelsFirst);
  const std::vector<Tensor> in = random_inputs(*original, 4);
  NaiveScan s;
  s.B = 1, s.D = 6, s.N = 2, s.L = 3;
  s.u = [&in](int64_t b, int64_t d, int64_t l) { return at(in[0], {b, d, l}); };
  s.dt = [&in](int64_t b, int64_t d, int64_t l) { return at(in[1], {b, d, l}); };
  s.A = [&in](int64_t d, int64_t n) { return -std::exp(at(in[2], {d, n})); };
  s.Bm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[3], {b, n, l}); };
  s.Cm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[4], {b, n, l}); };
  s.h0 = [&in](int64_t b, int64_t d, int64_t n) { return at(in[5], {b, d, n}); };
  const auto [y, h] = s.run();
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    CHECK(relative_error(y, 1, 6, 3, [&](int64_t b, int64_t d, int64_t l) {
            return at(out[0], {b, d, l});
          }) < 1e-5);
    CHECK(relative_error(h, 1, 6, 2, [&](int64_t b, int64_t d, int64_t n) {
            return at(out[1], {b, d, n});
          }) < 1e-5);
  }
}

// ---------------------------------------------------------------------------------------------
// Graphs the pass must leave alone.

TEST_CASE("fuse-ssm-scan: leaves alone a recurrence whose decay is not exp") {
  check_unchanged(replaced(kChannelsLast, "%decay = Exp(%dA)", "%decay = Sigmoid(%dA)"));
}

TEST_CASE("fuse-ssm-scan: leaves alone a readout that sums over D instead of N") {
  std::string text = replaced(kChannelsLast, "%y = ReduceSum(%hC, %last) {keepdims = 0} : f32[2, 5, 8]",
                              "%y = ReduceSum(%hC, %two) {keepdims = 0} : f32[2, 5, 4]");
  text = replaced(text, "%Dx = Mul(%x, %D) : f32[2, 5, 8]\n  %yD = Add(%y, %Dx) : f32[2, 5, 8]", "");
  text = replaced(text, "%out = Mul(%yD, %gate)", "%out = Mul(%y, %gate)");
  text = replaced(text, "%out = Mul(%y, %gate) : f32[2, 5, 8]", "%out = Mul(%y, %y) : f32[2, 5, 4]");
  check_unchanged(text);
}

TEST_CASE("fuse-ssm-scan: leaves alone a chain whose decay is used elsewhere") {
  check_unchanged(replaced(kChannelsLast, "return %out, %h_last", "return %out, %decay"));
}

TEST_CASE("fuse-ssm-scan: leaves alone an input term with a different delta than the decay") {
  check_unchanged(replaced(kChannelsLast, "%du = Mul(%delta, %x)", "%du = Mul(%dtb, %x)"));
}

TEST_CASE("fuse-ssm-scan: leaves alone a decay exp(delta * B) whose factor varies along batch") {
  // exp(Δ ⊗ B_t): the second factor has batch and sequence axes, so it is not A [D, N].
  check_unchanged(replaced(kChannelsLast, "%dA = Mul(%delta4, %A)", "%dA = Mul(%delta4, %B4)"));
}

// ---------------------------------------------------------------------------------------------
// ONNX Loop / Scan bodies.

namespace {

std::string zeros(int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s += i == 0 ? "0" : ", 0";
  return s;
}

// `text` with every "{Z<n>}" replaced by n zeros.
std::string with_zeros(std::string text) {
  for (size_t at = text.find("{Z"); at != std::string::npos; at = text.find("{Z")) {
    const size_t end = text.find('}', at);
    text.replace(at, end - at + 1, zeros(std::stoi(text.substr(at + 2, end - at - 2))));
  }
  return text;
}

// The torch.jit.script idiom: step slices by Gather at t, y[:, :, t] = Σ_N h·C_t written into a
// loop-carried buffer by ScatterND at indices (b, d, t) built from Expand/Unsqueeze/Concat; the D skip
// and SiLU gate after the loop; softplus before it.
const char* kScatterLoop = R"(
graph main(%x: f32[2, 8, 5], %dt: f32[2, 8, 5], %A: f32[8, 4], %Bm: f32[2, 5, 4], %Cm: f32[2, 5, 4], %D: f32[8], %z: f32[2, 8, 5]) {
  %trip = const i64[] [5]
  %true = const bool[] [1]
  %h_init = const f32[2, 8, 4] [{Z64}]
  %y_init = const f32[2, 8, 5] [{Z80}]
  %dax = const i64[1] [1]
  %delta = Softplus(%dt) : f32[2, 8, 5]
  %h_out, %y_buf = Loop(%trip, %true, %h_init, %y_init) captures(%delta, %A, %x, %Bm, %Cm) {body = graph scan_body(%t: i64[], %cond: bool[], %h_prev: f32[2, 8, 4], %buf: f32[2, 8, 5]) captures(%delta_c: f32[2, 8, 5], %A_c: f32[8, 4], %x_c: f32[2, 8, 5], %B_c: f32[2, 5, 4], %C_c: f32[2, 5, 4]) {
    %last = const i64[1] [-1]
    %one = const i64[1] [1]
    %zero = const i64[1] [0]
    %bidx = const i64[2, 1, 1] [0, 1]
    %didx = const i64[8, 1] [0, 1, 2, 3, 4, 5, 6, 7]
    %grid = const i64[3] [2, 8, 1]
    %delta_t = Gather(%delta_c, %t) {axis = 2} : f32[2, 8]
    %d3 = Unsqueeze(%delta_t, %last) : f32[2, 8, 1]
    %dA = Mul(%d3, %A_c) : f32[2, 8, 4]
    %decay = Exp(%dA) : f32[2, 8, 4]
    %x_t = Gather(%x_c, %t) {axis = 2} : f32[2, 8]
    %du = Mul(%delta_t, %x_t) : f32[2, 8]
    %du3 = Unsqueeze(%du, %last) : f32[2, 8, 1]
    %B_t = Gather(%B_c, %t) {axis = 1} : f32[2, 4]
    %B3 = Unsqueeze(%B_t, %one) : f32[2, 1, 4]
    %inject = Mul(%du3, %B3) : f32[2, 8, 4]
    %carry = Mul(%decay, %h_prev) : f32[2, 8, 4]
    %h_new = Add(%carry, %inject) : f32[2, 8, 4]
    %C_t = Gather(%C_c, %t) {axis = 1} : f32[2, 4]
    %C3 = Unsqueeze(%C_t, %one) : f32[2, 1, 4]
    %hC = Mul(%h_new, %C3) : f32[2, 8, 4]
    %y_t = ReduceSum(%hC, %last) {keepdims = 0} : f32[2, 8]
    %t1 = Unsqueeze(%t, %zero) : i64[1]
    %bi = Expand(%bidx, %grid) : i64[2, 8, 1]
    %di = Expand(%didx, %grid) : i64[2, 8, 1]
    %ti = Expand(%t1, %grid) : i64[2, 8, 1]
    %bi4 = Unsqueeze(%bi, %last) : i64[2, 8, 1, 1]
    %di4 = Unsqueeze(%di, %last) : i64[2, 8, 1, 1]
    %ti4 = Unsqueeze(%ti, %last) : i64[2, 8, 1, 1]
    %idx = Concat(%bi4, %di4, %ti4) {axis = -1} : i64[2, 8, 1, 3]
    %upd = Reshape(%y_t, %grid) : f32[2, 8, 1]
    %buf_new = ScatterND(%buf, %idx, %upd) : f32[2, 8, 5]
    return %cond, %h_new, %buf_new
  }} : f32[2, 8, 4], f32[2, 8, 5]
  %D3 = Unsqueeze(%D, %dax) : f32[8, 1]
  %Dx = Mul(%x, %D3) : f32[2, 8, 5]
  %yD = Add(%y_buf, %Dx) : f32[2, 8, 5]
  %gate = Silu(%z) : f32[2, 8, 5]
  %out = Mul(%yD, %gate) : f32[2, 8, 5]
  return %out
}
)";

NaiveScan scatter_loop_reference(const std::vector<Tensor>& in) {
  NaiveScan s;
  s.B = 2, s.D = 8, s.N = 4, s.L = 5;
  s.u = [&in](int64_t b, int64_t d, int64_t l) { return at(in[0], {b, d, l}); };
  s.dt = [&in](int64_t b, int64_t d, int64_t l) { return at(in[1], {b, d, l}); };
  s.A = [&in](int64_t d, int64_t n) { return at(in[2], {d, n}); };
  s.Bm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[3], {b, l, n}); };
  s.Cm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[4], {b, l, n}); };
  s.Dskip = [&in](int64_t d) { return at(in[5], {d}); };
  s.z = [&in](int64_t b, int64_t d, int64_t l) { return at(in[6], {b, d, l}); };
  s.softplus = true;
  return s;
}

}  // namespace

TEST_CASE("fuse-ssm-scan: Loop with the ScatterND buffer idiom, softplus before, D skip and gate after") {
  const std::string text = with_zeros(kScatterLoop);
  auto g = run_pass(text);
  CHECK(op_counts(*g) == "SelectiveScan=1 Transpose=2");
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->get_int("delta_softplus", 0) == 1);
  CHECK(scan->num_inputs() == 7);  // D and z, no bias, no h0 (the initial state is zero)
  CHECK(scan->input(0)->name() == "x");
  CHECK(scan->input(1)->name() == "dt");

  const auto original = parse(text);
  const std::vector<Tensor> in = random_inputs(*original, 5);
  const auto y = scatter_loop_reference(in).run().first;
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    CHECK(relative_error(y, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
            return at(out[0], {b, d, l});
          }) < 1e-5);
  }
}

TEST_CASE("fuse-ssm-scan: leaves alone a Loop whose trip count is not the sequence length") {
  // A trip count read from an input: the loop may stop early; it must run as written.
  std::string text = with_zeros(kScatterLoop);
  text = replaced(text, "%z: f32[2, 8, 5])", "%z: f32[2, 8, 5], %n: i64[])");
  text = replaced(text, "Loop(%trip,", "Loop(%n,");
  check_unchanged(text);
  // A constant trip count shorter than the sequence.
  check_unchanged(replaced(with_zeros(kScatterLoop), "%trip = const i64[] [5]", "%trip = const i64[] [4]"));
}

TEST_CASE("fuse-ssm-scan: leaves alone a Loop that writes step t somewhere else than slice t") {
  // y[:, :, t + 1] = ...
  std::string shifted = replaced(with_zeros(kScatterLoop), "%ti = Expand(%t1, %grid)",
                                 "%t2 = Add(%t1, %one) : i64[1]\n    %ti = Expand(%t2, %grid)");
  check_unchanged(shifted);
  // y[0, :, t] = ... (the batch index is constant)
  check_unchanged(replaced(with_zeros(kScatterLoop), "%bidx = const i64[2, 1, 1] [0, 1]",
                           "%bidx = const i64[2, 1, 1] [0, 0]"));
}

TEST_CASE("fuse-ssm-scan: leaves alone a Loop whose readout uses the previous state") {
  check_unchanged(replaced(with_zeros(kScatterLoop), "%hC = Mul(%h_new, %C3)", "%hC = Mul(%h_prev, %C3)"));
}

namespace {
// HF MambaMixer's slow path: exp(Δ A) and Δ B u for all steps before the loop, the body slices them,
// reads out with h @ C_t[..., None] and returns y_t as a scan output (stacked on axis 0).
const char* kHfLoop = R"(
graph main(%x: f32[2, 8, 5], %dt: f32[2, 8, 5], %A: f32[8, 4], %Bm: f32[2, 5, 4], %Cm: f32[2, 5, 4]) {
  %trip = const i64[] [5]
  %true = const bool[] [1]
  %h_init = const f32[2, 8, 4] [{Z64}]
  %ax02 = const i64[2] [0, 2]
  %ax1 = const i64[1] [1]
  %ax3 = const i64[1] [3]
  %A4 = Unsqueeze(%A, %ax02) : f32[1, 8, 1, 4]
  %delta4 = Unsqueeze(%dt, %ax3) : f32[2, 8, 5, 1]
  %dA = Mul(%A4, %delta4) : f32[2, 8, 5, 4]
  %discrete_A = Exp(%dA) : f32[2, 8, 5, 4]
  %B4 = Unsqueeze(%Bm, %ax1) : f32[2, 1, 5, 4]
  %dB = Mul(%delta4, %B4) : f32[2, 8, 5, 4]
  %x4 = Unsqueeze(%x, %ax3) : f32[2, 8, 5, 1]
  %dBu = Mul(%dB, %x4) : f32[2, 8, 5, 4]
  %h_out, %ys = Loop(%trip, %true, %h_init) captures(%discrete_A, %dBu, %Cm) {body = graph scan_body(%i: i64[], %cond: bool[], %h_prev: f32[2, 8, 4]) captures(%dA_c: f32[2, 8, 5, 4], %dBu_c: f32[2, 8, 5, 4], %C_c: f32[2, 5, 4]) {
    %last = const i64[1] [-1]
    %zero = const i64[] [0]
    %a_t = Gather(%dA_c, %i) {axis = 2} : f32[2, 8, 4]
    %carry = Mul(%a_t, %h_prev) : f32[2, 8, 4]
    %b_t = Gather(%dBu_c, %i) {axis = 2} : f32[2, 8, 4]
    %h_new = Add(%carry, %b_t) : f32[2, 8, 4]
    %C_t = Gather(%C_c, %i) {axis = 1} : f32[2, 4]
    %C3 = Unsqueeze(%C_t, %last) : f32[2, 4, 1]
    %y3 = MatMul(%h_new, %C3) : f32[2, 8, 1]
    %y_t = Gather(%y3, %zero) {axis = 2} : f32[2, 8]
    %cond_out = Identity(%cond) : bool[]
    return %cond_out, %h_new, %y_t
  }} : f32[2, 8, 4], f32[5, 2, 8]
  %y = Transpose(%ys) {perm = [1, 2, 0]} : f32[2, 8, 5]
  return %y, %h_out
}
)";
}  // namespace

TEST_CASE("fuse-ssm-scan: HF-style Loop (precomputed discretization, MatMul readout, scan output)") {
  const std::string text = with_zeros(kHfLoop);
  auto g = run_pass(text);
  CHECK(find_op(*g, "Loop") == nullptr);
  CHECK(find_op(*g, "Exp") == nullptr);
  CHECK(find_op(*g, "Mul") == nullptr);
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->get_int("delta_softplus", 1) == 0);
  CHECK(scan->num_outputs() == 2);

  const auto original = parse(text);
  const std::vector<Tensor> in = random_inputs(*original, 6);
  NaiveScan s;
  s.B = 2, s.D = 8, s.N = 4, s.L = 5;
  s.u = [&in](int64_t b, int64_t d, int64_t l) { return at(in[0], {b, d, l}); };
  s.dt = [&in](int64_t b, int64_t d, int64_t l) { return at(in[1], {b, d, l}); };
  s.A = [&in](int64_t d, int64_t n) { return at(in[2], {d, n}); };
  s.Bm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[3], {b, l, n}); };
  s.Cm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[4], {b, l, n}); };
  const auto [y, h] = s.run();
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    CHECK(relative_error(y, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
            return at(out[0], {b, d, l});
          }) < 1e-5);
    CHECK(relative_error(h, 2, 8, 4, [&](int64_t b, int64_t d, int64_t n) {
            return at(out[1], {b, d, n});
          }) < 1e-5);
  }
}

TEST_CASE("fuse-ssm-scan: leaves alone a Loop whose precomputed decay is also used elsewhere") {
  check_unchanged(replaced(with_zeros(kHfLoop), "return %y, %h_out", "return %y, %h_out, %discrete_A"));
}

namespace {
// An ONNX Scan over [B, L, D] inputs (scan axis 1), the state carried, y stacked on axis 1.
const char* kScan = R"(
graph main(%x: f32[2, 5, 8], %dt: f32[2, 5, 8], %A: f32[8, 4], %Bm: f32[2, 5, 4], %Cm: f32[2, 5, 4], %h0: f32[2, 8, 4]) {
  %h_last, %ys = Scan(%h0, %dt, %x, %Bm, %Cm) captures(%A) {body = graph step(%h_prev: f32[2, 8, 4], %dt_t: f32[2, 8], %x_t: f32[2, 8], %B_t: f32[2, 4], %C_t: f32[2, 4]) captures(%A_c: f32[8, 4]) {
    %last = const i64[1] [-1]
    %one = const i64[1] [1]
    %d3 = Unsqueeze(%dt_t, %last) : f32[2, 8, 1]
    %dA = Mul(%A_c, %d3) : f32[2, 8, 4]
    %decay = Exp(%dA) : f32[2, 8, 4]
    %du = Mul(%x_t, %dt_t) : f32[2, 8]
    %du3 = Unsqueeze(%du, %last) : f32[2, 8, 1]
    %B3 = Unsqueeze(%B_t, %one) : f32[2, 1, 4]
    %inject = Mul(%B3, %du3) : f32[2, 8, 4]
    %carry = Mul(%h_prev, %decay) : f32[2, 8, 4]
    %h_new = Add(%inject, %carry) : f32[2, 8, 4]
    %C3 = Unsqueeze(%C_t, %one) : f32[2, 1, 4]
    %hC = Mul(%C3, %h_new) : f32[2, 8, 4]
    %y_t = ReduceSum(%hC, %last) {keepdims = 0} : f32[2, 8]
    return %h_new, %y_t
  }, num_scan_inputs = 4, scan_input_axes = [1, 1, 1, 1], scan_output_axes = [1]} : f32[2, 8, 4], f32[2, 5, 8]
  return %ys, %h_last
}
)";
}  // namespace

TEST_CASE("fuse-ssm-scan: ONNX Scan whose body is the recurrence, with an initial state") {
  auto g = run_pass(kScan);
  CHECK(find_op(*g, "Scan") == nullptr);
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->num_inputs() == 9);
  CHECK(scan->input(8)->name() == "h0");

  const auto original = parse(kScan);
  const std::vector<Tensor> in = random_inputs(*original, 7);
  NaiveScan s;
  s.B = 2, s.D = 8, s.N = 4, s.L = 5;
  s.u = [&in](int64_t b, int64_t d, int64_t l) { return at(in[0], {b, l, d}); };
  s.dt = [&in](int64_t b, int64_t d, int64_t l) { return at(in[1], {b, l, d}); };
  s.A = [&in](int64_t d, int64_t n) { return at(in[2], {d, n}); };
  s.Bm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[3], {b, l, n}); };
  s.Cm = [&in](int64_t b, int64_t n, int64_t l) { return at(in[4], {b, l, n}); };
  s.h0 = [&in](int64_t b, int64_t d, int64_t n) { return at(in[5], {b, d, n}); };
  const auto [y, h] = s.run();
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    CHECK(relative_error(y, 2, 8, 5, [&](int64_t b, int64_t d, int64_t l) {
            return at(out[0], {b, l, d});
          }) < 1e-5);
    CHECK(relative_error(h, 2, 8, 4, [&](int64_t b, int64_t d, int64_t n) {
            return at(out[1], {b, d, n});
          }) < 1e-5);
  }
}

TEST_CASE("fuse-ssm-scan: leaves alone a Scan that runs backwards") {
  check_unchanged(replaced(kScan, "scan_input_axes = [1, 1, 1, 1]",
                           "scan_input_axes = [1, 1, 1, 1], scan_input_directions = [1, 1, 1, 1]"));
}

TEST_CASE("fuse-ssm-scan: a Loop that matches nothing still runs, generically and correctly") {
  // The scatter loop with a sigmoid decay: not a selective scan, so the Loop stays and the reference
  // executor runs it; compare with the same recurrence written as a naive loop.
  const std::string text = replaced(with_zeros(kScatterLoop), "%decay = Exp(%dA)", "%decay = Sigmoid(%dA)");
  auto g = run_pass(text);
  REQUIRE(find_op(*g, "Loop") != nullptr);
  const std::vector<Tensor> in = random_inputs(*g, 8);
  const std::vector<Tensor> out = execute(*g, in);
  double worst = 0.0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t d = 0; d < 8; ++d) {
      double h[4] = {0, 0, 0, 0};
      for (int64_t l = 0; l < 5; ++l) {
        const double delta = std::log1p(std::exp(at(in[1], {b, d, l})));
        const double x = at(in[0], {b, d, l});
        const double z = at(in[6], {b, d, l});
        double y = 0.0;
        for (int64_t n = 0; n < 4; ++n) {
          h[n] = h[n] / (1.0 + std::exp(-delta * at(in[2], {d, n}))) + delta * x * at(in[3], {b, l, n});
          y += h[n] * at(in[4], {b, l, n});
        }
        y = (y + at(in[5], {d}) * x) * z / (1.0 + std::exp(-z));
        worst = std::max(worst, std::fabs(y - at(out[0], {b, d, l})));
      }
    }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("fuse-ssm-scan: symbolic batch and sequence dims fuse the LinearRecurrence chain too") {
  std::string text = kChannelsLast;
  for (size_t at = text.find("[2, 5, "); at != std::string::npos; at = text.find("[2, 5, ")) {
    text.replace(at, 7, "[batch, seq, ");
  }
  for (size_t at = text.find("[2, 8, 4]"); at != std::string::npos; at = text.find("[2, 8, 4]")) {
    text.replace(at, 9, "[batch, 8, 4]");
  }
  auto g = run_pass(text);
  const Node* scan = find_op(*g, "SelectiveScan");
  REQUIRE(scan != nullptr);
  CHECK(find_op(*g, "LinearRecurrence") == nullptr);
  CHECK(scan->output(0)->type().to_string() == "f32[batch, 8, seq]");
  CHECK(scan->output(1)->type().to_string() == "f32[batch, 8, 4]");
  CHECK(g->outputs()[0]->type().to_string() == "f32[batch, seq, 8]");
}
