// LTIScan (ir/ops/lti_scan.cpp), its kernels and the fuse-lti-scan pass, checked against values computed
// independently of the code under test:
//   - the reference kernel against a std::complex<double> loop written here, and against the convolution
//     form y = K ∗ u + D·u with K[l] = Re(Σ C dB dA^l) summed directly;
//   - the CPU kernel's recurrent and FFT paths against the reference kernel on random S4D-like systems for
//     L below and above the FFT crossover, with the FFT's kernel spectrum built at prepare time (constant
//     coefficients) and at run time;
//   - the step form (L = 1, state in and out, one token at a time) against the whole-sequence output;
//   - fuse-lti-scan on IR text: the complex recurrence in a Loop becomes one LTIScan, and look-alikes that
//     are not time-invariant (the decay read at step t) or not the complex product are left alone;
//   - the torch-exported S4D layer (tests/data/ssm/s4d, tests/reference/s4d_layer.py) at -O0 and -O1 against
//     PyTorch's float64 reference.
// Error measure for kernels: normalized error sum((a - b)^2) / sum(b^2); bounds next to each check.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/lti_scan.h"
#include "backends/reference/kernel.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/executor.h"
#include "runtime/session.h"
#include "tests/unit/test_util.h"
#include "tools/export/onnx_import.h"

using namespace seqrun;
using seqrun::backends::KernelInfo;
using seqrun::backends::TensorArg;

namespace {

constexpr int kThreads = 2;  // what run_cpu gives the kernel

std::mt19937& rng() {
  static std::mt19937 gen(5151);
  return gen;
}

Tensor random_f32(const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  return test::random_uniform(rng(), shape, lo, hi);
}

// A stable S4D-Lin-like system of H channels and N modes: dA = exp(dt·A) with A = -1/2 + iπn (times a random
// factor), dB = (dA - 1)/A · B, C ~ N(0, 1/2) per part. Returns dA_re, dA_im, dB_re, dB_im, C_re, C_im.
std::vector<Tensor> random_system(int64_t H, int64_t N) {
  std::vector<Tensor> t;
  for (int i = 0; i < 6; ++i) t.push_back(Tensor::empty(DType::f32, {H, N}));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, std::sqrt(0.5));
  for (int64_t h = 0; h < H; ++h) {
    const double dt = std::exp(std::log(1e-3) + unit(rng()) * (std::log(1e-1) - std::log(1e-3)));
    for (int64_t n = 0; n < N; ++n) {
      const std::complex<double> A(-0.5 * (0.5 + unit(rng())), M_PI * static_cast<double>(n));
      const std::complex<double> dA = std::exp(dt * A);
      const std::complex<double> B(1.0 + 0.1 * normal(rng()), 0.1 * normal(rng()));
      const std::complex<double> dB = (dA - 1.0) / A * B;
      const std::complex<double> C(normal(rng()), normal(rng()));
      const int64_t k = h * N + n;
      t[0].data<float>()[k] = static_cast<float>(dA.real());
      t[1].data<float>()[k] = static_cast<float>(dA.imag());
      t[2].data<float>()[k] = static_cast<float>(dB.real());
      t[3].data<float>()[k] = static_cast<float>(dB.imag());
      t[4].data<float>()[k] = static_cast<float>(C.real());
      t[5].data<float>()[k] = static_cast<float>(C.imag());
    }
  }
  return t;
}

struct Case {
  std::vector<Tensor> inputs;  // LTIScan's 10 inputs; undefined = absent
  std::string algorithm = "auto";
  int num_outputs = 1;
};

// u [B, H, L] and a random system; optional inputs by flag.
Case make_case(int64_t B, int64_t H, int64_t L, int64_t N, bool imaginary, bool skip, bool h0, int outputs) {
  Case c;
  std::vector<Tensor> sys = random_system(H, N);
  c.inputs.resize(10);
  c.inputs[0] = random_f32({B, H, L});
  c.inputs[1] = sys[0];
  c.inputs[3] = sys[2];
  c.inputs[5] = sys[4];
  if (imaginary) {
    c.inputs[2] = sys[1];
    c.inputs[4] = sys[3];
    c.inputs[6] = sys[5];
  }
  if (skip) c.inputs[7] = random_f32({H});
  if (h0) {
    c.inputs[8] = random_f32({B, H, N});
    if (imaginary) c.inputs[9] = random_f32({B, H, N});
  }
  c.num_outputs = outputs;
  return c;
}

using Built = test::OneNode;

Built build(const Case& c) {
  return test::build_one_node("LTIScan", c.inputs, c.num_outputs, {{"algorithm", Attribute(c.algorithm)}},
                              "lti");
}

std::vector<Tensor> run_reference(const Case& c) {
  Built b = build(c);
  const reference::KernelEntry* entry = reference::KernelRegistry::global().find("LTIScan");
  REQUIRE(entry != nullptr);
  reference::KernelContext ctx{*b.node, {}, {}, nullptr};
  for (int i = 0; i < b.node->num_inputs(); ++i)
    ctx.inputs.push_back(b.node->has_input(i) ? &c.inputs[i] : nullptr);
  Status st = entry->fn(ctx);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return ctx.outputs;
}

// Runs the case on the CPU backend's kernel and returns its outputs and label. With constant_coefficients
// the coefficient inputs' bytes are visible at prepare time (as for weights).
std::vector<Tensor> run_cpu(const Case& c, bool constant_coefficients, std::string* label) {
  Built b = build(c);
  KernelInfo info;
  info.node = b.node;
  info.threads = kThreads;
  std::vector<Tensor> held;
  for (int i = 0; i < b.node->num_inputs(); ++i) {
    TensorArg a;
    if (b.node->has_input(i)) {
      a.dtype = DType::f32;
      a.shape = c.inputs[i].shape();
      if (constant_coefficients && i >= 1 && i <= 6) {
        held.push_back(c.inputs[i].clone());
        a.data = held.back().raw();
      }
    }
    info.inputs.push_back(a);
  }
  for (int i = 0; i < b.node->num_outputs(); ++i) {
    info.outputs.push_back({DType::f32, *b.node->output(i)->type().static_shape(), nullptr});
  }
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  *label = kernel->label();
  REQUIRE(kernel->prepare(info).is_ok());
  std::vector<TensorArg> ins = info.inputs;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (ins[i].dtype == DType::undefined) continue;
    held.push_back(c.inputs[i].clone());
    ins[i].data = held.back().raw();
  }
  std::vector<Tensor> outs;
  std::vector<TensorArg> out_args = info.outputs;
  for (TensorArg& a : out_args) {
    Tensor t = Tensor::empty(DType::f32, a.shape);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = std::nanf("");  // skipped elements fail
    a.data = t.raw();
    outs.push_back(t);
  }
  const size_t ws_bytes = (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64;
  void* workspace = std::aligned_alloc(64, ws_bytes);
  Status st = kernel->run(ins, out_args, workspace);
  std::free(workspace);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return outs;
}

// The label auto should pick: the cost model of backends/cpu/lti_scan.h.
std::string expected_auto(int64_t B, int64_t H, int64_t L, int64_t N, bool constant) {
  return backends::cpu::lti_fft_is_faster(B, H, L, N, constant, kThreads) ? "avx2:lti_scan_fft"
                                                                          : "avx2:lti_scan_recurrent";
}

using test::normalized_error;

void check_outputs(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double bound) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = normalized_error(got[i], want[i]);
    INFO("output " << i << " shape " << shape_to_string(want[i].shape()) << " error " << err);
    CHECK(err <= bound);
  }
}

float at(const Tensor& t, int64_t i) {
  return t.data<float>()[i];
}
std::complex<double> coef(const Case& c, int re, int im, int64_t k) {
  return {at(c.inputs[re], k), c.inputs[im].defined() ? at(c.inputs[im], k) : 0.0};
}

// The op's definition as a std::complex<double> loop (ir/ops/lti_scan.cpp).
std::vector<Tensor> naive_complex(const Case& c) {
  const Tensor& u = c.inputs[0];
  const int64_t B = u.dim(0), H = u.dim(1), L = u.dim(2), N = c.inputs[1].dim(1);
  Tensor y = Tensor::empty(DType::f32, {B, H, L}), hr = Tensor::empty(DType::f32, {B, H, N}),
         hi = Tensor::empty(DType::f32, {B, H, N});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      std::vector<std::complex<double>> s(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) {
        const int64_t k = (b * H + h) * N + n;
        s[n] = {c.inputs[8].defined() ? at(c.inputs[8], k) : 0.0,
                c.inputs[9].defined() ? at(c.inputs[9], k) : 0.0};
      }
      for (int64_t t = 0; t < L; ++t) {
        const double x = at(u, (b * H + h) * L + t);
        std::complex<double> acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          s[n] = coef(c, 1, 2, h * N + n) * s[n] + coef(c, 3, 4, h * N + n) * x;
          acc += coef(c, 5, 6, h * N + n) * s[n];
        }
        const double skip = c.inputs[7].defined() ? at(c.inputs[7], h) : 0.0;
        y.data<float>()[(b * H + h) * L + t] = static_cast<float>(acc.real() + skip * x);
      }
      for (int64_t n = 0; n < N; ++n) {
        hr.data<float>()[(b * H + h) * N + n] = static_cast<float>(s[n].real());
        hi.data<float>()[(b * H + h) * N + n] = static_cast<float>(s[n].imag());
      }
    }
  }
  std::vector<Tensor> out = {y, hr, hi};
  out.resize(static_cast<size_t>(c.num_outputs));
  return out;
}

// y = K ∗ u + D·u with K[h, l] = Re(Σ_n C dB dA^l), the powers from std::pow (zero initial state).
Tensor naive_convolution(const Case& c) {
  const Tensor& u = c.inputs[0];
  const int64_t B = u.dim(0), H = u.dim(1), L = u.dim(2), N = c.inputs[1].dim(1);
  Tensor y = Tensor::empty(DType::f32, {B, H, L});
  for (int64_t h = 0; h < H; ++h) {
    std::vector<double> K(static_cast<size_t>(L), 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const std::complex<double> w = coef(c, 5, 6, h * N + n) * coef(c, 3, 4, h * N + n);
      for (int64_t l = 0; l < L; ++l)
        K[l] += (w * std::pow(coef(c, 1, 2, h * N + n), static_cast<double>(l))).real();
    }
    for (int64_t b = 0; b < B; ++b) {
      const float* x = u.data<float>() + (b * H + h) * L;
      for (int64_t t = 0; t < L; ++t) {
        double acc = c.inputs[7].defined() ? at(c.inputs[7], h) * x[t] : 0.0;
        for (int64_t l = 0; l <= t; ++l) acc += K[l] * x[t - l];
        y.data<float>()[(b * H + h) * L + t] = static_cast<float>(acc);
      }
    }
  }
  return y;
}

}  // namespace

TEST_CASE("LTIScan reference kernel is the complex recurrence and the causal convolution",
          "[lti][reference]") {
  for (bool imaginary : {true, false}) {
    for (bool h0 : {false, true}) {
      Case c = make_case(2, 5, 37, 6, imaginary, /*skip=*/true, h0, 3);
      INFO("imaginary " << imaginary << " h0 " << h0);
      const std::vector<Tensor> ref = run_reference(c);
      // Both in double, f32 output rounding only.
      check_outputs(ref, naive_complex(c), 1e-12);
      if (!h0) check_outputs({ref[0]}, {naive_convolution(c)}, 1e-10);  // std::pow vs products: 1e-10
    }
  }
}

TEST_CASE("LTIScan CPU kernel: recurrent and FFT paths match the reference kernel", "[lti][cpu]") {
  struct Shape4 {
    int64_t B, H, L, N;
  };
  // Odd H (a partial 8-channel FFT group), N not a multiple of 8 and N > 32 (two register passes), L from 1
  // to 4100 with block tails; auto's crossover (lti_scan.h) on both sides: N <= 8 takes the FFT at L 7 and
  // the recurrence at L 4100, N 32 the FFT at L 3000.
  const std::vector<Shape4> shapes = {{1, 3, 1, 4},     {2, 11, 7, 5},     {2, 8, 100, 32}, {1, 5, 300, 37},
                                      {2, 9, 1500, 16}, {1, 16, 3000, 32}, {2, 8, 4100, 8}};
  std::map<std::string, int> auto_picks;
  for (const Shape4& s : shapes) {
    for (bool imaginary : {true, false}) {
      Case c = make_case(s.B, s.H, s.L, s.N, imaginary, /*skip=*/imaginary, /*h0=*/false, 1);
      const std::vector<Tensor> ref = run_reference(c);
      INFO("B " << s.B << " H " << s.H << " L " << s.L << " N " << s.N << " imaginary " << imaginary);
      std::string label;
      c.algorithm = "recurrent";
      // f32 state and readout vs the reference's double: 1e-11 [largest seen: 3e-13].
      check_outputs(run_cpu(c, false, &label), ref, 1e-11);
      CHECK(label == "avx2:lti_scan_recurrent");
      c.algorithm = "fft";
      for (bool constant : {true, false}) {
        INFO("kernel spectrum built " << (constant ? "at prepare" : "per run"));
        // f32 FFTs of size n >= 2L, K's powers in double: 1e-11 [largest seen: 3e-13].
        check_outputs(run_cpu(c, constant, &label), ref, 1e-11);
        CHECK(label == "avx2:lti_scan_fft");
      }
      c.algorithm = "auto";
      check_outputs(run_cpu(c, true, &label), ref, 1e-11);
      CHECK(label == expected_auto(s.B, s.H, s.L, s.N, true));
      ++auto_picks[label];
      run_cpu(c, false, &label);
      CHECK(label == expected_auto(s.B, s.H, s.L, s.N, false));
    }
  }
  CHECK(auto_picks["avx2:lti_scan_fft"] > 0);
  CHECK(auto_picks["avx2:lti_scan_recurrent"] > 0);
}

TEST_CASE("LTIScan CPU kernel: state in and out, every optional input", "[lti][cpu]") {
  for (int outputs : {1, 2, 3}) {
    for (bool h0 : {false, true}) {
      Case c = make_case(2, 6, 45, 12, true, true, h0, outputs);
      c.algorithm = "fft";  // with a state in or out the convolution cannot run: the recurrence does
      std::string label;
      INFO("outputs " << outputs << " h0 " << h0);
      std::vector<Tensor> got = run_cpu(c, true, &label);
      CHECK(label == (outputs == 1 && !h0 ? "avx2:lti_scan_fft" : "avx2:lti_scan_recurrent"));
      check_outputs(got, naive_complex(c), 1e-11);  // f32 vs double: 1e-11 [largest seen: 3e-13]
    }
  }
}

TEST_CASE("LTIScan step form: one token at a time with the state carried equals the sequence",
          "[lti][step]") {
  const int64_t B = 2, H = 5, L = 40, N = 9;
  Case whole = make_case(B, H, L, N, true, true, /*h0=*/true, 3);
  const std::vector<Tensor> want = run_reference(whole);
  for (bool cpu : {false, true}) {
    INFO((cpu ? "cpu kernel" : "reference kernel"));
    Case step = whole;
    Tensor y = Tensor::empty(DType::f32, {B, H, L});
    for (int64_t t = 0; t < L; ++t) {
      Tensor u = Tensor::empty(DType::f32, {B, H, 1});
      for (int64_t r = 0; r < B * H; ++r) u.data<float>()[r] = at(whole.inputs[0], r * L + t);
      step.inputs[0] = u;
      std::string label;
      std::vector<Tensor> out = cpu ? run_cpu(step, true, &label) : run_reference(step);
      REQUIRE(out.size() == 3);
      for (int64_t r = 0; r < B * H; ++r) y.data<float>()[r * L + t] = at(out[0], r);
      step.inputs[8] = out[1];
      step.inputs[9] = out[2];
    }
    // The state round-trips through f32 between steps; the whole sequence keeps it in double: 1e-12.
    check_outputs({y, step.inputs[8], step.inputs[9]}, want, 1e-12);
  }
}

TEST_CASE("LTIScan rejects bad inputs with an error naming the node", "[lti][errors]") {
  Case c = make_case(1, 4, 8, 3, true, true, false, 1);
  c.inputs[7] = random_f32({5});  // Dskip of the wrong size
  {
    Graph g("bad");
    std::vector<Value*> ins;
    for (size_t i = 0; i < 8; ++i)
      ins.push_back(
          g.add_input("in" + std::to_string(i), TensorType::from_shape(DType::f32, c.inputs[i].shape())));
    Node* n = g.add_node("LTIScan", ins, 1);
    n->set_name("lti");
    Status st = infer_node_types(*n);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.message().find("Dskip") != std::string::npos);
  }
  // The reference kernel checks the runtime shapes itself.
  Built b;
  std::vector<Value*> ins;
  for (size_t i = 0; i < 8; ++i)
    ins.push_back(b.graph->add_input("in" + std::to_string(i),
                                     TensorType(DType::f32, {Dim::unknown(), Dim::unknown()})));
  ins[0] = b.graph->add_input("u", TensorType::from_shape(DType::f32, {1, 4, 8}));
  b.node = b.graph->add_node("LTIScan", ins, 1);
  b.node->set_name("lti");
  reference::KernelContext ctx{*b.node, {}, {}, nullptr};
  for (size_t i = 0; i < 8; ++i) ctx.inputs.push_back(&c.inputs[i]);
  Status st = reference::KernelRegistry::global().find("LTIScan")->fn(ctx);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find("lti") != std::string::npos);
  CHECK(st.message().find("Dskip must be [4]") != std::string::npos);
  // An unknown algorithm.
  Case d = make_case(1, 4, 8, 3, true, false, false, 1);
  d.algorithm = "winograd";
  Graph g("bad_attr");
  std::vector<Value*> dins;
  for (size_t i = 0; i < 7; ++i)
    dins.push_back(
        g.add_input("in" + std::to_string(i), TensorType::from_shape(DType::f32, d.inputs[i].shape())));
  Node* n = g.add_node("LTIScan", dins, 1, {{"algorithm", Attribute("winograd")}});
  Status ast = infer_node_types(*n);
  REQUIRE_FALSE(ast.is_ok());
  CHECK(ast.message().find("winograd") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// fuse-lti-scan on IR text.

namespace {

using test::find_op;
using test::op_counts;
using test::parse;

std::unique_ptr<Graph> run_fuse(const std::string& text) {
  auto g = parse(text);
  auto reports = passes::run_passes(*g, {"fuse-lti-scan"});
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  return g;
}

void check_unchanged(const std::string& text) {
  auto g = run_fuse(text);
  CHECK(print_graph(*g) == print_graph(*parse(text)));
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  INFO(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::vector<Tensor> random_inputs(const Graph& g) {
  std::vector<Tensor> inputs;
  for (const Value* v : g.inputs()) inputs.push_back(random_f32(*v->type().static_shape(), -0.9f, 0.9f));
  return inputs;
}

std::vector<Tensor> execute(const Graph& g, const std::vector<Tensor>& inputs) {
  auto out = runtime::ReferenceExecutor().run(g, inputs);
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  return *out;
}

// max |a - b| / max |b|
double max_relative_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0.0, scale = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(a.get_f64(i) - b.get_f64(i)));
    scale = std::max(scale, std::fabs(b.get_f64(i)));
  }
  return diff / scale;
}

// The torch.jit.script S4D scan as torch.onnx writes it, by hand: a complex state as two carried slots
// (re, im) starting from h0, 2·Re(Σ C h) written into y[:, :, t] by ScatterND, u·D added after the loop;
// B 2, H 3, N 4, L 5. The final states are outputs too.
const char* kComplexLoop = R"(
graph main(%u: f32[2, 3, 5], %ar: f32[3, 4], %ai: f32[3, 4], %br: f32[3, 4], %bi: f32[3, 4], %cr: f32[3, 4], %ci: f32[3, 4], %D: f32[3], %h0r: f32[2, 3, 4], %h0i: f32[2, 3, 4]) {
  %trip = const i64[] [5]
  %true = const bool[] [1]
  %y_init = const f32[2, 3, 5] [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
  %dax = const i64[1] [1]
  %h_re, %h_im, %y_buf = Loop(%trip, %true, %h0r, %h0i, %y_init) captures(%u, %ar, %ai, %br, %bi, %cr, %ci) {body = graph lti_body(%t: i64[], %cond: bool[], %re: f32[2, 3, 4], %im: f32[2, 3, 4], %buf: f32[2, 3, 5]) captures(%u_c: f32[2, 3, 5], %ar_c: f32[3, 4], %ai_c: f32[3, 4], %br_c: f32[3, 4], %bi_c: f32[3, 4], %cr_c: f32[3, 4], %ci_c: f32[3, 4]) {
    %last = const i64[1] [-1]
    %zero = const i64[1] [0]
    %two = const f32[] [2.0]
    %bidx = const i64[2, 1, 1] [0, 1]
    %hidx = const i64[3, 1] [0, 1, 2]
    %grid = const i64[3] [2, 3, 1]
    %u2 = Gather(%u_c, %t) {axis = 2} : f32[2, 3]
    %u_t = Unsqueeze(%u2, %last) : f32[2, 3, 1]
    %p1 = Mul(%ar_c, %re) : f32[2, 3, 4]
    %p2 = Mul(%ai_c, %im) : f32[2, 3, 4]
    %p3 = Sub(%p1, %p2) : f32[2, 3, 4]
    %p4 = Mul(%br_c, %u_t) : f32[2, 3, 4]
    %re_new = Add(%p3, %p4) : f32[2, 3, 4]
    %q1 = Mul(%ar_c, %im) : f32[2, 3, 4]
    %q2 = Mul(%ai_c, %re) : f32[2, 3, 4]
    %q3 = Add(%q1, %q2) : f32[2, 3, 4]
    %q4 = Mul(%bi_c, %u_t) : f32[2, 3, 4]
    %im_new = Add(%q3, %q4) : f32[2, 3, 4]
    %r1 = Mul(%cr_c, %re_new) : f32[2, 3, 4]
    %r2 = Mul(%ci_c, %im_new) : f32[2, 3, 4]
    %r3 = Sub(%r1, %r2) : f32[2, 3, 4]
    %r4 = ReduceSum(%r3, %last) {keepdims = 0} : f32[2, 3]
    %y_t = Mul(%r4, %two) : f32[2, 3]
    %t1 = Unsqueeze(%t, %zero) : i64[1]
    %bx = Expand(%bidx, %grid) : i64[2, 3, 1]
    %hx = Expand(%hidx, %grid) : i64[2, 3, 1]
    %tx = Expand(%t1, %grid) : i64[2, 3, 1]
    %bx4 = Unsqueeze(%bx, %last) : i64[2, 3, 1, 1]
    %hx4 = Unsqueeze(%hx, %last) : i64[2, 3, 1, 1]
    %tx4 = Unsqueeze(%tx, %last) : i64[2, 3, 1, 1]
    %idx = Concat(%bx4, %hx4, %tx4) {axis = -1} : i64[2, 3, 1, 3]
    %upd = Reshape(%y_t, %grid) : f32[2, 3, 1]
    %buf_new = ScatterND(%buf, %idx, %upd) : f32[2, 3, 5]
    return %cond, %re_new, %im_new, %buf_new
  }} : f32[2, 3, 4], f32[2, 3, 4], f32[2, 3, 5]
  %D3 = Unsqueeze(%D, %dax) : f32[3, 1]
  %Du = Mul(%u, %D3) : f32[2, 3, 5]
  %y = Add(%y_buf, %Du) : f32[2, 3, 5]
  return %y, %h_re, %h_im
}
)";

// kComplexLoop's function as a std::complex<double> loop: y, final re, final im.
std::vector<Tensor> complex_loop_reference(const std::vector<Tensor>& in) {
  const int64_t B = 2, H = 3, N = 4, L = 5;
  Tensor y = Tensor::empty(DType::f32, {B, H, L}), hr = Tensor::empty(DType::f32, {B, H, N}),
         hi = Tensor::empty(DType::f32, {B, H, N});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      std::vector<std::complex<double>> s;
      for (int64_t n = 0; n < N; ++n)
        s.emplace_back(at(in[8], (b * H + h) * N + n), at(in[9], (b * H + h) * N + n));
      for (int64_t t = 0; t < L; ++t) {
        const double x = at(in[0], (b * H + h) * L + t);
        std::complex<double> acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t k = h * N + n;
          s[n] = std::complex<double>(at(in[1], k), at(in[2], k)) * s[n] +
                 std::complex<double>(at(in[3], k), at(in[4], k)) * x;
          acc += std::complex<double>(at(in[5], k), at(in[6], k)) * s[n];
        }
        y.data<float>()[(b * H + h) * L + t] = static_cast<float>(2.0 * acc.real() + at(in[7], h) * x);
      }
      for (int64_t n = 0; n < N; ++n) {
        hr.data<float>()[(b * H + h) * N + n] = static_cast<float>(s[n].real());
        hi.data<float>()[(b * H + h) * N + n] = static_cast<float>(s[n].imag());
      }
    }
  }
  return {y, hr, hi};
}

// A real state, u laid out [L, B, H], the decay written as -(Neg(a)) inside the body (hoisted out), the
// readout a scan output (stacked as [L, B, H]); h0 given, the final state used.
const char* kRealLoop = R"(
graph main(%u: f32[5, 2, 3], %a: f32[3, 4], %b: f32[3, 4], %c: f32[3, 4], %h0: f32[2, 3, 4]) {
  %trip = const i64[] [5]
  %true = const bool[] [1]
  %h_out, %ys = Loop(%trip, %true, %h0) captures(%u, %a, %b, %c) {body = graph real_body(%t: i64[], %cond: bool[], %h: f32[2, 3, 4]) captures(%u_c: f32[5, 2, 3], %a_c: f32[3, 4], %b_c: f32[3, 4], %c_c: f32[3, 4]) {
    %last = const i64[1] [-1]
    %u2 = Gather(%u_c, %t) {axis = 0} : f32[2, 3]
    %u_t = Unsqueeze(%u2, %last) : f32[2, 3, 1]
    %neg_a = Neg(%a_c) : f32[3, 4]
    %k1 = Mul(%neg_a, %h) : f32[2, 3, 4]
    %k2 = Mul(%u_t, %b_c) : f32[2, 3, 4]
    %h_new = Sub(%k2, %k1) : f32[2, 3, 4]
    %r = Mul(%h_new, %c_c) : f32[2, 3, 4]
    %y_t = ReduceSum(%r, %last) {keepdims = 0} : f32[2, 3]
    return %cond, %h_new, %y_t
  }} : f32[2, 3, 4], f32[5, 2, 3]
  return %ys, %h_out
}
)";

}  // namespace

TEST_CASE("fuse-lti-scan: the complex S4D recurrence in a Loop becomes one LTIScan", "[lti][pass]") {
  auto g = run_fuse(kComplexLoop);
  CHECK(op_counts(*g) == "LTIScan=1 Mul=2");  // C scaled by 2; D taken from before its Unsqueeze
  const Node* scan = find_op(*g, "LTIScan");
  REQUIRE(scan != nullptr);
  CHECK(scan->num_inputs() == 10);  // every input: D skip taken in, h0 given
  CHECK(scan->num_outputs() == 3);
  CHECK(scan->input(0)->name() == "u");
  CHECK(scan->input(1)->name() == "ar");
  CHECK(scan->input(2)->name() == "ai");
  CHECK(scan->input(3)->name() == "br");
  CHECK(scan->input(4)->name() == "bi");
  CHECK(scan->input(7)->name() == "D");
  CHECK(scan->input(8)->name() == "h0r");
  CHECK(scan->input(9)->name() == "h0i");

  const auto original = parse(kComplexLoop);
  const std::vector<Tensor> in = random_inputs(*original);
  const std::vector<Tensor> want = complex_loop_reference(in);
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    REQUIRE(out.size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(max_relative_error(out[i], want[i]) < 1e-5);  // f32 vs double
  }
}

TEST_CASE("fuse-lti-scan: a real state, [L, B, H] input, scan output, hoisted coefficient", "[lti][pass]") {
  auto g = run_fuse(kRealLoop);
  CHECK(find_op(*g, "Loop") == nullptr);
  const Node* scan = find_op(*g, "LTIScan");
  REQUIRE(scan != nullptr);
  CHECK_FALSE(scan->has_input(2));  // no imaginary parts
  CHECK(scan->num_outputs() == 2);
  const auto original = parse(kRealLoop);
  const std::vector<Tensor> in = random_inputs(*original);
  // h = a·h + b·u, y = Σ c·h, in double.
  Tensor y = Tensor::empty(DType::f32, {5, 2, 3}), h_last = Tensor::empty(DType::f32, {2, 3, 4});
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t h = 0; h < 3; ++h) {
      double s[4];
      for (int64_t n = 0; n < 4; ++n) s[n] = at(in[4], (b * 3 + h) * 4 + n);
      for (int64_t t = 0; t < 5; ++t) {
        double acc = 0.0;
        for (int64_t n = 0; n < 4; ++n) {
          s[n] = at(in[1], h * 4 + n) * s[n] + at(in[2], h * 4 + n) * at(in[0], (t * 2 + b) * 3 + h);
          acc += at(in[3], h * 4 + n) * s[n];
        }
        y.data<float>()[(t * 2 + b) * 3 + h] = static_cast<float>(acc);
      }
      for (int64_t n = 0; n < 4; ++n) h_last.data<float>()[(b * 3 + h) * 4 + n] = static_cast<float>(s[n]);
    }
  }
  for (const Graph* graph : {original.get(), g.get()}) {
    const std::vector<Tensor> out = execute(*graph, in);
    REQUIRE(out.size() == 2);
    CHECK(max_relative_error(out[0], y) < 1e-5);
    CHECK(max_relative_error(out[1], h_last) < 1e-5);
  }
}

TEST_CASE("fuse-lti-scan: leaves alone recurrences that are not time-invariant", "[lti][pass]") {
  // The decay read at step t from a [L, H, N] tensor: a varies with time.
  std::string sliced = replaced(kComplexLoop, "%ar: f32[3, 4],", "%ar: f32[5, 3, 4],");
  sliced = replaced(sliced, "%ar_c: f32[3, 4],", "%ar_c: f32[5, 3, 4],");
  sliced = replaced(sliced, "%p1 = Mul(%ar_c, %re)",
                    "%ar_t = Gather(%ar_c, %t) {axis = 0} : f32[3, 4]\n    %p1 = Mul(%ar_t, %re)");
  sliced = replaced(sliced, "%q1 = Mul(%ar_c, %im)", "%q1 = Mul(%ar_t, %im)");
  check_unchanged(sliced);
  // The decay gated by the input at step t (a selective scan).
  check_unchanged(
      replaced(kComplexLoop, "%p1 = Mul(%ar_c, %re)",
               "%gate = Sigmoid(%u_t) : f32[2, 3, 1]\n    %ga = Mul(%ar_c, %gate) : f32[2, 3, 4]\n"
               "    %p1 = Mul(%ga, %re)"));
  // The decay depending on the state.
  check_unchanged(replaced(kComplexLoop, "%p4 = Mul(%br_c, %u_t)", "%p4 = Mul(%re, %re)"));
}

TEST_CASE("fuse-lti-scan: leaves alone look-alikes that are not the complex product", "[lti][pass]") {
  // im' = a·re + b·im: the real and imaginary coefficients do not pair up as a complex product.
  check_unchanged(replaced(kComplexLoop, "%q2 = Mul(%ai_c, %re)", "%q2 = Mul(%ar_c, %re)"));
  // re' = a·re + b·im (the sign of the cross term is not the opposite of im's).
  check_unchanged(replaced(kComplexLoop, "%p3 = Sub(%p1, %p2)", "%p3 = Add(%p1, %p2)"));
  // The readout of the previous state.
  check_unchanged(replaced(kComplexLoop, "%r1 = Mul(%cr_c, %re_new)", "%r1 = Mul(%cr_c, %re)"));
  // A trip count shorter than the sequence.
  check_unchanged(replaced(kComplexLoop, "%trip = const i64[] [5]", "%trip = const i64[] [4]"));
  // y[:, :, t + 1] = ...
  check_unchanged(
      replaced(kComplexLoop, "%tx = Expand(%t1, %grid)",
               "%one = const i64[1] [1]\n    %t2 = Add(%t1, %one) : i64[1]\n    %tx = Expand(%t2, %grid)"));
  // Two input sequences.
  std::string two_inputs = replaced(kComplexLoop, "%D: f32[3],", "%D: f32[3], %v: f32[2, 3, 5],");
  two_inputs = replaced(two_inputs, "captures(%u, %ar,", "captures(%u, %v, %ar,");
  two_inputs = replaced(two_inputs, "captures(%u_c: f32[2, 3, 5],",
                        "captures(%u_c: f32[2, 3, 5], %v_c: f32[2, 3, 5],");
  two_inputs = replaced(
      two_inputs, "%q4 = Mul(%bi_c, %u_t)",
      "%v2 = Gather(%v_c, %t) {axis = 2} : f32[2, 3]\n    %v_t = Unsqueeze(%v2, %last) : f32[2, 3, 1]\n"
      "    %q4 = Mul(%bi_c, %v_t)");
  check_unchanged(two_inputs);
}

// ---------------------------------------------------------------------------------------------
// The torch-exported S4D layer (tests/reference/s4d_layer.py) against PyTorch's float64 reference.

namespace {

const std::string kS4dDir = std::string(SEQRUN_TEST_DATA) + "/ssm/s4d/";

Tensor read_pb(const std::string& path) {
  auto t = onnx_import::read_tensor_proto_file(path);
  INFO(path << ": " << t.status().message());
  REQUIRE(t.is_ok());
  return *t;
}

// The model's graph after `passes`, with every LTIScan's algorithm set to `algorithm` (unless empty).
std::unique_ptr<Graph> load_model(const std::string& name, const std::vector<std::string>& pass_list,
                                  const std::string& algorithm) {
  auto g = onnx_import::import_onnx_file(kS4dDir + name + "/model.onnx");
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  auto reports = passes::run_passes(**g, pass_list);
  INFO(reports.status().message());
  REQUIRE(reports.is_ok());
  for (Node* n : (*g)->nodes()) {
    if (n->op() == "LTIScan" && !algorithm.empty()) n->set_attr("algorithm", Attribute(algorithm));
  }
  return std::move(*g);
}

// Runs every data set of `name` on the CPU backend and returns the largest max|y - ref| / max|ref| against
// reference_f64_0.pb.
double worst_error_against_f64(std::unique_ptr<Graph> graph, const std::string& name) {
  runtime::SessionOptions options;
  options.passes = std::vector<std::string>{};  // the caller ran them
  auto session = runtime::Session::from_graph(std::move(graph), options);
  INFO(session.status().message());
  REQUIRE(session.is_ok());
  double worst = 0.0;
  for (int set = 0;; ++set) {
    const std::string dir = kS4dDir + name + "/test_data_set_" + std::to_string(set) + "/";
    if (!std::ifstream(dir + "input_0.pb").good()) {
      REQUIRE(set > 0);
      break;
    }
    auto out = (*session)->run({read_pb(dir + "input_0.pb")});
    INFO(out.status().message());
    REQUIRE(out.is_ok());
    const Tensor want = read_pb(dir + "reference_f64_0.pb");
    REQUIRE(want.dtype() == DType::f64);
    worst = std::max(worst, max_relative_error((*out)[0], want));
  }
  return worst;
}

}  // namespace

// Tolerance: max|y - y_f64| / max|y_f64| <= 2e-5. The float32 PyTorch model itself is 7e-7 (L 64) and
// 2.4e-6 (L 1024) away from its float64 reference (tests/data/ssm/s4d/README.md): the scan accumulates
// float32 rounding over L steps. 2e-5 leaves room for a different but equally float32 summation order (the
// FFT's) while an error in any coefficient, a sign or a one-step shift gives 1e-2 or more.
TEST_CASE("S4D layer exported from PyTorch: -O0 and -O1 match the float64 reference", "[lti][model]") {
  const std::vector<std::string> o1 = passes::pipeline_for_level(1);
  for (const std::string name : {"s4d_layer_loop", "s4d_layer_loop_long"}) {
    INFO(name);
    CHECK(worst_error_against_f64(load_model(name, {}, ""), name) < 2e-5);
    auto fused = load_model(name, o1, "");
    int lti = 0, loops = 0;
    for (const Node* n : fused->nodes()) {
      lti += n->op() == "LTIScan";
      loops += n->op() == "Loop" || n->op() == "Scan";
    }
    CHECK(lti == 1);
    CHECK(loops == 0);
    CHECK(worst_error_against_f64(std::move(fused), name) < 2e-5);
    for (const char* algorithm : {"recurrent", "fft"}) {
      INFO(algorithm);
      CHECK(worst_error_against_f64(load_model(name, o1, algorithm), name) < 2e-5);
    }
  }
}

TEST_CASE("S4D look-alike with a time-varying decay: -O1 keeps the Loop and matches float64",
          "[lti][model]") {
  auto fused = load_model("s4d_gated_loop", passes::pipeline_for_level(1), "");
  CHECK(find_op(*fused, "LTIScan") == nullptr);
  CHECK(find_op(*fused, "Loop") != nullptr);
  CHECK(worst_error_against_f64(std::move(fused), "s4d_gated_loop") < 2e-5);
}
