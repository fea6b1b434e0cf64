// The CPU backend's scan kernels (SelectiveScan, CausalConvWithState, LinearRecurrence, TokenShift)
// against the reference kernels, and SelectiveScan also against a naive double-precision loop written here.
//
// Every case builds a one-node graph, asks cpu_backend() for the kernel (checking that the fast kernel,
// not the reference fallback, took the node), runs it on poisoned output buffers and compares each
// output with the reference kernel's by the normalized error sum((a - b)^2) / sum(b^2). Shapes and
// values come from a fixed-seed generator: odd sizes, N not a multiple of 8 and N > 32 (several register
// groups), grouped B/C, every optional input present or absent, one or two outputs, L = 1 and L = 0.
// SelectiveScan runs every case on both of its paths (AVX-512F where the CPU has it, and AVX2 forced with
// SEQRUN_CPU_AVX512=0). The step forms run the fast kernel one token at a time, feeding the state output
// back, and must match the reference's whole-sequence outputs. Bounds (largest value observed over every case
// when they were set in brackets):
//   TokenShift: exact (a copy);
//   LinearRecurrence: 1e-12 (FMA vs the reference's mul + add) [1.1e-13];
//   CausalConvWithState: 1e-12 (f32 vs the reference's double accumulation, vector sigmoid) [2.2e-14];
//   SelectiveScan: 1e-11 (table + polynomial 2^x, polynomial softplus, f32 readout vs double) [5.2e-13],
//   the same bound against the naive loop and for the step form.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/reference/kernel.h"
#include "ir/graph.h"
#include "ir/infer.h"

using namespace seqrun;
using seqrun::backends::KernelInfo;
using seqrun::backends::TensorArg;

namespace {

std::mt19937& rng() {
  static std::mt19937 gen(4242);
  return gen;
}

Tensor random_f32(const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng());
  return t;
}

int64_t random_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}
bool coin() {
  return random_int(0, 1) == 1;
}

struct Case {
  std::string op;
  std::vector<Tensor> inputs;  // undefined = absent optional input
  std::map<std::string, Attribute> attrs;
  int num_outputs = 1;
};

struct Built {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
};

Built build(const Case& c) {
  Built b;
  std::vector<Value*> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].defined()) {
      ins.push_back(nullptr);
      continue;
    }
    ins.push_back(b.graph->add_input("in" + std::to_string(i),
                                     TensorType::from_shape(c.inputs[i].dtype(), c.inputs[i].shape())));
  }
  b.node = b.graph->add_node(c.op, ins, c.num_outputs, c.attrs);
  b.node->set_name("n");
  Status st = infer_node_types(*b.node);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return b;
}

KernelInfo info_for(const Built& b, const Case& c) {
  KernelInfo info;
  info.node = b.node;
  for (const Tensor& t : c.inputs) {
    TensorArg a;
    if (t.defined()) {
      a.dtype = t.dtype();
      a.shape = t.shape();
    }
    info.inputs.push_back(a);
  }
  for (int i = 0; i < b.node->num_outputs(); ++i) {
    const TensorType& t = b.node->output(i)->type();
    auto shape = t.static_shape();
    REQUIRE(shape.has_value());
    info.outputs.push_back({t.dtype(), *shape, nullptr});
  }
  return info;
}

// The label of the kernel the CPU backend picks ("reference" for the fallback).
std::string picked(const Case& c) {
  Built b = build(c);
  KernelInfo info = info_for(b, c);
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  return kernel->label();
}

// Runs the case on the CPU backend's kernel; `in_place_input` >= 0 aliases output 0 to that input.
std::vector<Tensor> run_fast(const Case& c, int in_place_input = -1) {
  Built b = build(c);
  KernelInfo info = info_for(b, c);
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  INFO("kernel " << kernel->label());
  CHECK(kernel->label() != "reference");
  Status st = kernel->prepare(info);
  REQUIRE(st.is_ok());
  std::vector<TensorArg> ins = info.inputs;
  std::vector<Tensor> held;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].defined()) continue;
    held.push_back(c.inputs[i].clone());
    ins[i].data = held.back().raw();
  }
  std::vector<Tensor> outs;
  std::vector<TensorArg> out_args = info.outputs;
  for (size_t i = 0; i < out_args.size(); ++i) {
    if (i == 0 && in_place_input >= 0) {
      REQUIRE(kernel->can_run_in_place(0, in_place_input));
      out_args[0].data = ins[in_place_input].data;
      outs.push_back(Tensor::view(DType::f32, out_args[0].shape, out_args[0].data, nullptr));
      continue;
    }
    Tensor t = Tensor::empty(out_args[i].dtype, out_args[i].shape);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = std::nanf("");  // skipped elements fail
    out_args[i].data = t.raw();
    outs.push_back(t);
  }
  const size_t ws_bytes = (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64;
  void* workspace = std::aligned_alloc(64, ws_bytes);
  st = kernel->run(ins, out_args, workspace);
  std::free(workspace);
  INFO(st.message());
  REQUIRE(st.is_ok());
  std::vector<Tensor> result;
  for (const Tensor& t : outs) result.push_back(t.clone());  // the in-place view dies with `held`
  return result;
}

std::vector<Tensor> run_reference(const Case& c) {
  Built b = build(c);
  const reference::KernelEntry* entry = reference::KernelRegistry::global().find(c.op);
  REQUIRE(entry != nullptr);
  reference::KernelContext ctx{*b.node, {}, {}, nullptr};
  for (const Tensor& t : c.inputs) ctx.inputs.push_back(t.defined() ? &t : nullptr);
  Status st = entry->fn(ctx);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return ctx.outputs;
}

double normalized_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get_f64(i), y = b.get_f64(i);
    if (x == y) continue;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return den == 0.0 ? num : num / den;
}

void check_outputs(const std::vector<Tensor>& fast, const std::vector<Tensor>& expected, double bound) {
  REQUIRE(fast.size() == expected.size());
  for (size_t i = 0; i < fast.size(); ++i) {
    const double err = normalized_error(fast[i], expected[i]);
    INFO("output " << i << " shape " << shape_to_string(expected[i].shape()) << " error " << err);
    CHECK(err <= bound);
  }
}

void check_against_reference(const Case& c, double bound, int in_place_input = -1) {
  INFO(c.op);
  check_outputs(run_fast(c, in_place_input), run_reference(c), bound);
}

// Elements [begin, end) of axis `axis` of t.
Tensor slice_axis(const Tensor& t, int axis, int64_t begin, int64_t end) {
  Shape shape = t.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= shape[i];
  for (int i = axis + 1; i < t.rank(); ++i) inner *= shape[i];
  const int64_t len = shape[axis];
  shape[axis] = end - begin;
  Tensor out = Tensor::empty(DType::f32, shape);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = begin; k < end; ++k) {
      for (int64_t i = 0; i < inner; ++i)
        out.data<float>()[(o * (end - begin) + k - begin) * inner + i] =
            t.data<float>()[(o * len + k) * inner + i];
    }
  }
  return out;
}

// Writes `part` (axis length 1) into position k of `whole` along `axis`.
void put_axis(Tensor& whole, int axis, int64_t k, const Tensor& part) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= whole.shape()[i];
  for (int i = axis + 1; i < whole.rank(); ++i) inner *= whole.shape()[i];
  const int64_t len = whole.shape()[axis];
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i)
      whole.data<float>()[(o * len + k) * inner + i] = part.data<float>()[o * inner + i];
  }
}

constexpr double kScanBound = 1e-11;
constexpr double kConvBound = 1e-12;
constexpr double kRecurrenceBound = 1e-12;

// ------------------------------------------------------------------------------------------------
// SelectiveScan

struct ScanSpec {
  int64_t batch = 1, channels = 4, steps = 5, state = 16, groups = 0;  // groups 0: Bmat [B, N, L]
  bool skip = true, gate = true, bias = true, h0 = false, softplus = true;
  int outputs = 2;
};

Case scan_case(const ScanSpec& s) {
  const Shape bdl = {s.batch, s.channels, s.steps};
  const Shape bc =
      s.groups > 0 ? Shape{s.batch, s.groups, s.state, s.steps} : Shape{s.batch, s.state, s.steps};
  Tensor A = random_f32({s.channels, s.state}, -1.0f, 1.5f);
  for (int64_t i = 0; i < A.numel(); ++i) A.data<float>()[i] = -std::exp(A.data<float>()[i]);  // A < 0
  Case c;
  c.op = "SelectiveScan";
  c.inputs = {
      random_f32(bdl),
      s.softplus ? random_f32(bdl, -4.0f, 1.0f) : random_f32(bdl, 0.001f, 0.3f),
      A,
      random_f32(bc),
      random_f32(bc),
      s.skip ? random_f32({s.channels}, 0.5f, 1.5f) : Tensor(),
      s.gate ? random_f32(bdl, -3.0f, 3.0f) : Tensor(),
      s.bias ? (s.softplus ? random_f32({s.channels}, -3.0f, 0.0f) : random_f32({s.channels}, 0.0f, 0.1f))
             : Tensor(),
      s.h0 ? random_f32({s.batch, s.channels, s.state}) : Tensor()};
  c.attrs = {{"delta_softplus", Attribute(int64_t{s.softplus ? 1 : 0})}};
  c.num_outputs = s.outputs;
  return c;
}

// The scan as the op's documentation states it, in double.
std::vector<Tensor> naive_scan(const Case& c) {
  const Tensor& u = c.inputs[0];
  const int64_t B = u.shape()[0], D = u.shape()[1], L = u.shape()[2], N = c.inputs[2].shape()[1];
  const bool grouped = c.inputs[3].rank() == 4;
  const int64_t G = grouped ? c.inputs[3].shape()[1] : 1;
  const bool softplus = c.attrs.at("delta_softplus").i() == 1;
  auto in = [&](int i, int64_t k) { return static_cast<double>(c.inputs[i].data<float>()[k]); };
  Tensor y = Tensor::empty(DType::f32, {B, D, L}), h_out = Tensor::empty(DType::f32, {B, D, N});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t d = 0; d < D; ++d) {
      const int64_t g = d / (D / G);
      std::vector<double> h(N, 0.0);
      if (c.inputs[8].defined()) {
        for (int64_t n = 0; n < N; ++n) h[n] = in(8, (b * D + d) * N + n);
      }
      for (int64_t t = 0; t < L; ++t) {
        const int64_t at = (b * D + d) * L + t;
        double dt = in(1, at) + (c.inputs[7].defined() ? in(7, d) : 0.0);
        if (softplus) dt = dt > 20.0 ? dt : std::log1p(std::exp(dt));
        double out = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t bc = ((b * G + g) * N + n) * L + t;
          h[n] = std::exp(dt * in(2, d * N + n)) * h[n] + dt * in(3, bc) * in(0, at);
          out += in(4, bc) * h[n];
        }
        if (c.inputs[5].defined()) out += in(5, d) * in(0, at);
        if (c.inputs[6].defined()) out *= in(6, at) / (1.0 + std::exp(-in(6, at)));
        y.data<float>()[at] = static_cast<float>(out);
      }
      for (int64_t n = 0; n < N; ++n) h_out.data<float>()[(b * D + d) * N + n] = static_cast<float>(h[n]);
    }
  }
  if (c.num_outputs == 1) return {y};
  return {y, h_out};
}

}  // namespace

namespace {

// SelectiveScan has an AVX2 and an AVX-512F path (taken where the CPU has it); each SelectiveScan case runs
// once per path this CPU can run: the default, then AVX2 forced by SEQRUN_CPU_AVX512=0.
class ForceAvx2 {
 public:
  explicit ForceAvx2(bool on) : on_(on) {
    if (on_) setenv("SEQRUN_CPU_AVX512", "0", 1);
  }
  ~ForceAvx2() {
    if (on_) unsetenv("SEQRUN_CPU_AVX512");
  }

 private:
  bool on_;
};

}  // namespace

TEST_CASE("cpu SelectiveScan matches the reference on random shapes, groups and optional inputs") {
  for (bool avx2 : {false, true}) {
    ForceAvx2 force(avx2);
    INFO("AVX2 forced: " << avx2);
    for (int trial = 0; trial < 40; ++trial) {
      ScanSpec s;
      s.batch = random_int(1, 3);
      s.state = std::vector<int64_t>{1, 3, 8, 16, 17, 24, 33, 40, 64}[random_int(0, 8)];
      s.steps = std::vector<int64_t>{1, 2, 7, 63, 64, 65, 130}[random_int(0, 6)];
      s.groups = std::vector<int64_t>{0, 0, 1, 2, 3}[random_int(0, 4)];
      s.channels = (s.groups > 0 ? s.groups : 1) * random_int(1, 9);
      s.skip = coin(), s.gate = coin(), s.bias = coin(), s.h0 = coin(), s.softplus = trial % 4 != 3;
      s.outputs = static_cast<int>(random_int(1, 2));
      {
        INFO("B " << s.batch << " D " << s.channels << " L " << s.steps << " N " << s.state << " G "
                  << s.groups << " skip " << s.skip << " gate " << s.gate << " bias " << s.bias << " h0 "
                  << s.h0 << " softplus " << s.softplus << " outputs " << s.outputs);
        check_against_reference(scan_case(s), kScanBound);
      }
    }
  }
}

TEST_CASE("cpu SelectiveScan matches a naive double-precision loop, in parallel and with every input") {
  for (bool avx2 : {false, true}) {
    ForceAvx2 force(avx2);
    INFO("AVX2 forced: " << avx2);
    ScanSpec s;
    s.batch = 2, s.channels = 37, s.steps = 300, s.state = 16, s.h0 = true;  // > kParallelMinElements
    const Case c = scan_case(s);
    check_outputs(run_fast(c), naive_scan(c), kScanBound);
    s.state = 5, s.groups = 37, s.steps = 9;
    const Case grouped = scan_case(s);
    check_outputs(run_fast(grouped), naive_scan(grouped), kScanBound);
  }
}

TEST_CASE("cpu SelectiveScan step form: L = 1 with the state fed back equals the whole sequence") {
  for (bool avx2 : {false, true}) {
    ForceAvx2 force(avx2);
    INFO("AVX2 forced: " << avx2);
    for (int64_t N : {16, 13, 40}) {
      ScanSpec s;
      s.batch = 2, s.channels = 6, s.steps = 11, s.state = N, s.h0 = true, s.groups = N == 13 ? 2 : 0;
      const Case whole = scan_case(s);
      const std::vector<Tensor> expected = run_reference(whole);
      Tensor y = Tensor::empty(DType::f32, {s.batch, s.channels, s.steps});
      Tensor h = whole.inputs[8];
      const int bc_axis = whole.inputs[3].rank() - 1;
      for (int64_t t = 0; t < s.steps; ++t) {
        Case step = whole;
        for (int i : {0, 1, 6}) step.inputs[i] = slice_axis(whole.inputs[i], 2, t, t + 1);
        for (int i : {3, 4}) step.inputs[i] = slice_axis(whole.inputs[i], bc_axis, t, t + 1);
        step.inputs[8] = h;
        std::vector<Tensor> out = run_fast(step);
        put_axis(y, 2, t, out[0]);
        h = out[1];
      }
      INFO("N " << N);
      check_outputs({y, h}, expected, kScanBound);
    }
  }
}

TEST_CASE("cpu SelectiveScan with L = 0 returns h0 as the state") {
  for (bool avx2 : {false, true}) {
    ForceAvx2 force(avx2);
    INFO("AVX2 forced: " << avx2);
    ScanSpec s;
    s.steps = 0, s.h0 = true;
    check_against_reference(scan_case(s), 0.0);
  }
}

TEST_CASE("cpu SelectiveScan declines what it does not cover, so the reference runs (and reports) it") {
  ScanSpec s;
  const std::string label = picked(scan_case(s));
  CHECK((label == "avx2:selective_scan" || label == "avx512:selective_scan"));
  {
    ForceAvx2 force(true);
    CHECK(picked(scan_case(s)) == "avx2:selective_scan");
  }
  s.state = 300;  // above the register-group limit
  CHECK(picked(scan_case(s)) == "reference");
  Case f16 = scan_case(ScanSpec{});
  for (Tensor& t : f16.inputs) {
    if (t.defined()) t = Tensor::empty(DType::f16, t.shape());
  }
  CHECK(picked(f16) == "reference");
}

// ------------------------------------------------------------------------------------------------
// CausalConvWithState

namespace {

Case conv_case(int64_t B, int64_t C, int64_t L, int64_t K, bool bias, bool past, bool silu, int outputs) {
  Case c;
  c.op = "CausalConvWithState";
  c.inputs = {random_f32({B, C, L}, -2.0f, 2.0f), random_f32({C, 1, K}), bias ? random_f32({C}) : Tensor(),
              past ? random_f32({B, C, K - 1}, -2.0f, 2.0f) : Tensor()};
  c.attrs = {{"activation", Attribute(std::string(silu ? "silu" : "none"))}};
  c.num_outputs = outputs;
  return c;
}

}  // namespace

TEST_CASE("cpu CausalConvWithState matches the reference: kernel sizes, state, bias, SiLU, short rows") {
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t B = random_int(1, 3), C = random_int(1, 20), K = random_int(1, 5);
    const int64_t L = std::vector<int64_t>{1, 2, 3, 8, 9, 17, 100, 700}[random_int(0, 7)];
    const bool bias = coin(), past = coin(), silu = coin();
    const int outputs = static_cast<int>(random_int(1, 2));
    {
      INFO("B " << B << " C " << C << " L " << L << " K " << K << " bias " << bias << " past " << past
                << " silu " << silu << " outputs " << outputs);
      check_against_reference(conv_case(B, C, L, K, bias, past, silu, outputs), kConvBound);
    }
  }
  // "swish" is SiLU's other name; the parallel path.
  Case swish = conv_case(2, 64, 600, 4, true, true, true, 2);
  swish.attrs["activation"] = Attribute(std::string("swish"));
  check_against_reference(swish, kConvBound);
}

TEST_CASE("cpu CausalConvWithState step form: L = 1 with the state fed back equals the whole sequence") {
  const Case whole = conv_case(2, 11, 9, 4, true, true, true, 2);
  const std::vector<Tensor> expected = run_reference(whole);
  Tensor y = Tensor::empty(DType::f32, {2, 11, 9});
  Tensor state = whole.inputs[3];
  for (int64_t t = 0; t < 9; ++t) {
    Case step = whole;
    step.inputs[0] = slice_axis(whole.inputs[0], 2, t, t + 1);
    step.inputs[3] = state;
    std::vector<Tensor> out = run_fast(step);
    put_axis(y, 2, t, out[0]);
    state = out[1];
  }
  check_outputs({y, state}, expected, kConvBound);
}

TEST_CASE("cpu CausalConvWithState declines unknown activations and bad shapes") {
  Case c = conv_case(1, 4, 6, 3, true, true, false, 2);
  CHECK(picked(c) == "avx2:causal_conv");
  c.attrs["activation"] = Attribute(std::string("relu"));
  CHECK(picked(c) == "reference");
}

// ------------------------------------------------------------------------------------------------
// LinearRecurrence

TEST_CASE("cpu LinearRecurrence matches the reference along every axis, with and without h0") {
  for (int trial = 0; trial < 40; ++trial) {
    Shape shape;
    const int random_rank = static_cast<int>(random_int(2, 4));
    for (int i = 0; i < random_rank; ++i) shape.push_back(random_int(1, i == 1 ? 40 : 12));
    if (trial == 5) shape = {2, 0, 3};                // L = 0: the state is h0
    const int rank = static_cast<int>(shape.size());  // after the override: the axis must index this shape
    const int axis = static_cast<int>(random_int(0, rank - 1));
    Shape state = shape;
    state.erase(state.begin() + axis);
    const bool h0 = coin() || trial == 5;
    const int outputs = trial == 5 ? 2 : static_cast<int>(random_int(1, 2));
    Case c;
    c.op = "LinearRecurrence";
    c.inputs = {random_f32(shape, 0.5f, 1.0f), random_f32(shape), h0 ? random_f32(state) : Tensor()};
    c.attrs = {{"axis", Attribute(int64_t{coin() ? axis : axis - rank})}};
    c.num_outputs = outputs;
    {
      INFO(shape_to_string(shape) << " axis " << axis << " h0 " << h0 << " outputs " << outputs);
      check_against_reference(c, kRecurrenceBound);
    }
  }
}

TEST_CASE("cpu LinearRecurrence: the Mamba layout in parallel, in place over a or b, and the step form") {
  const Shape shape = {2, 50, 24, 17};  // [B, L, D, N]; inner 408 is not a multiple of 8
  Case c;
  c.op = "LinearRecurrence";
  c.inputs = {random_f32(shape, 0.5f, 1.0f), random_f32(shape), random_f32({2, 24, 17})};
  c.attrs = {{"axis", Attribute(int64_t{1})}};
  c.num_outputs = 2;
  check_against_reference(c, kRecurrenceBound);
  check_against_reference(c, kRecurrenceBound, /*in_place_input=*/0);
  check_against_reference(c, kRecurrenceBound, /*in_place_input=*/1);
  // Wide inner (several slices per batch) and the scan axis last (rows side by side, 8 + 3 rows).
  Case wide = c;
  wide.inputs = {random_f32({1, 5, 3000}, 0.5f, 1.0f), random_f32({1, 5, 3000}), Tensor()};
  check_against_reference(wide, kRecurrenceBound);
  Case last_axis = c;
  last_axis.inputs = {random_f32({11, 300}, 0.5f, 1.0f), random_f32({11, 300}), random_f32({11})};
  last_axis.attrs = {{"axis", Attribute(int64_t{-1})}};
  check_against_reference(last_axis, kRecurrenceBound, 1);

  const std::vector<Tensor> expected = run_reference(c);
  Tensor h_all = Tensor::empty(DType::f32, shape);
  Tensor h = c.inputs[2];
  for (int64_t t = 0; t < shape[1]; ++t) {
    Case step = c;
    step.inputs = {slice_axis(c.inputs[0], 1, t, t + 1), slice_axis(c.inputs[1], 1, t, t + 1), h};
    std::vector<Tensor> out = run_fast(step);
    put_axis(h_all, 1, t, out[0]);
    h = out[1];
  }
  check_outputs({h_all, h}, expected, kRecurrenceBound);
}

// ------------------------------------------------------------------------------------------------
// TokenShift

TEST_CASE("cpu TokenShift is an exact copy with and without state, T = 0 and T = 1 included") {
  for (int64_t T : {0, 1, 2, 7, 3000}) {
    for (bool state : {false, true}) {
      for (int outputs : {1, 2}) {
        const int64_t B = random_int(1, 3), C = random_int(1, 40);
        Case c;
        c.op = "TokenShift";
        c.inputs = {random_f32({B, T, C}), state ? random_f32({B, C}) : Tensor()};
        c.num_outputs = outputs;
        {
          INFO("B " << B << " T " << T << " C " << C << " state " << state << " outputs " << outputs);
          check_against_reference(c, 0.0);
        }
      }
    }
  }
}
