// The CPU backend's MixedChunkAttention kernel (backends/cpu/mixed_chunk_attention.cpp) against the reference
// kernel (backends/reference/mixed_chunk_attention.cpp: per-token double-precision loops) and, for one
// small case, a naive loop over every (query, key) pair written here.
//
// Every case is a one-node graph run by runtime::Session on the cpu backend (checking that the fast kernel,
// not the reference fallback, took the node) and by the ReferenceExecutor. Sequence form: causal and
// non-causal, partial last chunk, chunk longer than the sequence, bias present/absent, default and explicit
// scales, with and without the state outputs. Step form: a sequence fed in pieces and one token at a time,
// each call checked against the reference on the same state inputs, and all rows against the reference's
// full-sequence run; also the kernel called directly with its state outputs over its state inputs (in
// place). Both vector paths (AVX-512 and AVX2 block products) run where the CPU has AVX-512.
//
// Bound: max |cpu - ref| <= 1e-5 · max |ref| over each tensor (chunk buffers: their valid rows only). The
// kernel accumulates in f32 (chains of at most a few hundred products here: ~sqrt(n)·6e-8 ≈ 1e-6 relative),
// the reference in double; a wrong key, chunk position, bias entry or scale moves outputs by >= 1e-2.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_factories.h"
#include "ir/infer.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "runtime/session.h"
#include "tests/unit/test_util.h"

using namespace seqrun;

namespace {

constexpr double kBound = 1e-5;
const char* const kCpuLabel = "avx2:mixed_chunk_attention";

std::mt19937& rng() {
  static std::mt19937 gen(8642);
  return gen;
}

Tensor random_tensor(const Shape& shape) {
  return test::random_uniform(rng(), shape);
}

struct Spec {
  int64_t B = 1, T = 8, sq = 4, sl = 4, E = 4, C = 4;
  bool causal = true, bias = false;
  float quad_scale = 0.0f, lin_scale = 0.0f;  // 0: the default 1 / C
  bool state_outputs = false;                 // outputs 1..4 (causal)
};

std::string describe(const Spec& s) {
  return "B " + std::to_string(s.B) + " T " + std::to_string(s.T) + " Sq " + std::to_string(s.sq) + " Sl " +
         std::to_string(s.sl) + " E " + std::to_string(s.E) + " C " + std::to_string(s.C) + " causal " +
         std::to_string(s.causal) + " bias " + std::to_string(s.bias) + " qs " +
         std::to_string(s.quad_scale) + " ls " + std::to_string(s.lin_scale) + " state outputs " +
         std::to_string(s.state_outputs);
}

std::string f32(const std::vector<std::string>& dims) {
  std::string s = "f32[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + dims[i];
  return s + "]";
}

std::string attrs_of(const Spec& s) {
  std::string a = "chunk_size = " + std::to_string(s.C) + ", causal = " + std::to_string(s.causal ? 1 : 0);
  if (s.quad_scale != 0.0f) a += ", quad_scale = " + std::to_string(s.quad_scale);
  if (s.lin_scale != 0.0f) a += ", lin_scale = " + std::to_string(s.lin_scale);
  return a;
}

// One MixedChunkAttention node over `t` tokens (a number, or the symbol "t" so one session runs every piece
// length); `state_inputs` adds inputs 6..10, s.state_outputs (or state_inputs) outputs 1..4.
std::string graph_text(const Spec& s, const std::string& t, bool state_inputs) {
  const std::string B = std::to_string(s.B), C = std::to_string(s.C), sq = std::to_string(s.sq),
                    sl = std::to_string(s.sl), E = std::to_string(s.E);
  const bool outs = s.state_outputs || state_inputs;
  std::string text = "graph main(%qq: " + f32({B, t, sq}) + ", %qk: " + f32({B, t, sq}) +
                     ", %lq: " + f32({B, t, sl}) + ", %lk: " + f32({B, t, sl}) + ", %v: " + f32({B, t, E});
  if (s.bias) text += ", %bias: " + f32({C, C});
  if (state_inputs) {
    text += ", %ls: " + f32({B, sl, E}) + ", %cq: " + f32({B, C, sq}) + ", %cl: " + f32({B, C, sl}) +
            ", %cv: " + f32({B, C, E}) + ", %pos: i64[]";
  }
  text += ") {\n  %y";
  if (outs) text += ", %nls, %ncq, %ncl, %ncv";
  text += " = MixedChunkAttention(%qq, %qk, %lq, %lk, %v" + std::string(s.bias ? ", %bias" : ", _");
  if (state_inputs) text += ", %ls, %cq, %cl, %cv, %pos";
  text += ") {" + attrs_of(s) + "} : " + f32({B, t, E});
  if (outs)
    text += ", " + f32({B, sl, E}) + ", " + f32({B, C, sq}) + ", " + f32({B, C, sl}) + ", " + f32({B, C, E});
  text += "\n  return %y";
  if (outs) text += ", %nls, %ncq, %ncl, %ncv";
  return text + "\n}\n";
}

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(text << "\n" << g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

std::unique_ptr<runtime::Session> cpu_session(const std::string& text) {
  runtime::SessionOptions options;
  options.passes = std::vector<std::string>{};
  options.threads = 2;
  auto session = runtime::Session::from_graph(parse(text), options);
  INFO((session.is_ok() ? std::string("ok") : session.status().message()));
  REQUIRE(session.is_ok());
  return std::move(session).value();
}

// The kernel label the session picked for the node.
std::string session_kernel(const runtime::Session& session, const std::vector<Tensor>& inputs) {
  auto placement = session.placement(runtime::input_specs_of(inputs));
  INFO((placement.is_ok() ? std::string("ok") : placement.status().message()));
  REQUIRE(placement.is_ok());
  for (const auto& p : *placement) {
    if (p.op == "MixedChunkAttention") return p.kernel;
  }
  return "";
}

std::vector<Tensor> run_cpu(const runtime::Session& session, const std::vector<Tensor>& inputs) {
  CHECK(session_kernel(session, inputs) == kCpuLabel);
  auto out = session.run(inputs);
  INFO((out.is_ok() ? std::string("ok") : out.status().message()));
  REQUIRE(out.is_ok());
  return std::move(out).value();
}

std::vector<Tensor> run_reference(const std::string& text, const std::vector<Tensor>& inputs) {
  auto g = parse(text);
  auto out = runtime::ReferenceExecutor().run(*g, inputs);
  INFO((out.is_ok() ? std::string("ok") : out.status().message()));
  REQUIRE(out.is_ok());
  return std::move(out).value();
}

// max |a - b| / max |b| over the first `rows` rows of dim 1 of two [B, N, D] tensors (all rows: -1).
double relative_error(const Tensor& a, const Tensor& b, int64_t rows = -1) {
  REQUIRE(a.shape() == b.shape());
  const int64_t B = b.dim(0), N = b.dim(1), D = b.dim(2);
  if (rows < 0) rows = N;
  double worst = 0.0, scale = 0.0;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t d = 0; d < D; ++d) {
        const int64_t k = (i * N + r) * D + d;
        const double x = a.get_f64(k), y = b.get_f64(k);
        worst = std::max(worst, std::isnan(x) ? INFINITY : std::fabs(x - y));
        scale = std::max(scale, std::fabs(y));
      }
    }
  }
  return scale == 0.0 ? worst : worst / scale;
}

// Checks a call's outputs: y, and when present the state after `end` tokens (chunk buffers: valid rows).
void check_outputs(const std::vector<Tensor>& cpu, const std::vector<Tensor>& ref, int64_t end, int64_t C) {
  REQUIRE(cpu.size() == ref.size());
  const int64_t valid_rows = end % C;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = relative_error(cpu[i], ref[i], i >= 2 ? valid_rows : -1);
    INFO("output " << i << " " << shape_to_string(ref[i].shape()) << ": error " << err);
    CHECK(err <= kBound);
  }
}

struct Sequence {
  Tensor qq, qk, lq, lk, v, bias;
};

Sequence random_sequence(const Spec& s) {
  return {random_tensor({s.B, s.T, s.sq}), random_tensor({s.B, s.T, s.sq}), random_tensor({s.B, s.T, s.sl}),
          random_tensor({s.B, s.T, s.sl}), random_tensor({s.B, s.T, s.E}),  random_tensor({s.C, s.C})};
}

using test::token_slice;

std::vector<Tensor> sequence_inputs(const Sequence& x, const Spec& s, int64_t begin, int64_t count) {
  std::vector<Tensor> in = {token_slice(x.qq, begin, count), token_slice(x.qk, begin, count),
                            token_slice(x.lq, begin, count), token_slice(x.lk, begin, count),
                            token_slice(x.v, begin, count)};
  if (s.bias) in.push_back(x.bias);
  return in;
}

void check_sequence_form(const Spec& s) {
  INFO(describe(s));
  const Sequence x = random_sequence(s);
  const std::string text = graph_text(s, std::to_string(s.T), false);
  const std::vector<Tensor> in = sequence_inputs(x, s, 0, s.T);
  const std::vector<Tensor> ref = run_reference(text, in);
  auto session = cpu_session(text);
  for (bool avx512 : {true, false}) {
    INFO("avx512 " << avx512);
    backends::cpu::set_attention_avx512(avx512);
    check_outputs(run_cpu(*session, in), ref, s.T, s.C);
  }
  backends::cpu::set_attention_avx512(true);
}

// Feeds the sequence in `pieces` through the step form (state inputs from zero at P = 0), carrying the CPU
// kernel's own state; each call is checked against the reference on the same inputs, and all rows at the end
// against the reference's full-sequence run.
void check_pieces(const Spec& s, const std::vector<int64_t>& pieces) {
  INFO(describe(s) << ", " << pieces.size() << " pieces");
  const Sequence x = random_sequence(s);
  Spec full = s;
  full.state_outputs = false;
  const std::vector<Tensor> whole =
      run_reference(graph_text(full, std::to_string(s.T), false), sequence_inputs(x, s, 0, s.T));
  const std::string text = graph_text(s, "t", true);
  auto session = cpu_session(text);
  std::vector<Tensor> state = {
      Tensor::zeros(DType::f32, {s.B, s.sl, s.E}), Tensor::zeros(DType::f32, {s.B, s.C, s.sq}),
      Tensor::zeros(DType::f32, {s.B, s.C, s.sl}), Tensor::zeros(DType::f32, {s.B, s.C, s.E})};
  int64_t position = 0;
  for (int64_t T : pieces) {
    INFO("tokens " << position << ".." << position + T - 1);
    std::vector<Tensor> in = sequence_inputs(x, s, position, T);
    in.insert(in.end(), state.begin(), state.end());
    in.push_back(Tensor::scalar<int64_t>(position));
    const std::vector<Tensor> cpu = run_cpu(*session, in);
    check_outputs(cpu, run_reference(graph_text(s, std::to_string(T), true), in), position + T, s.C);
    CHECK(relative_error(cpu[0], token_slice(whole[0], position, T)) <= kBound);
    state.assign(cpu.begin() + 1, cpu.end());
    position += T;
  }
  REQUIRE(position == s.T);
}

}  // namespace

TEST_CASE("cpu MixedChunkAttention: sequence form against the reference on random shapes") {
  for (int i = 0; i < 24; ++i) {
    Spec s;
    s.B = std::uniform_int_distribution<int64_t>(1, 3)(rng());
    s.C = std::vector<int64_t>{1, 4, 7, 16, 25, 64, 80}[i % 7];
    s.T = std::vector<int64_t>{1, 5, 33, 64, 97, 160, 300}[(i * 3) % 7];
    s.sq = std::vector<int64_t>{1, 3, 16, 40}[i % 4];
    s.sl = std::vector<int64_t>{2, 5, 16, 33}[(i / 2) % 4];
    s.E = std::vector<int64_t>{1, 7, 32, 130, 300}[i % 5];
    s.causal = i % 3 != 2;
    s.bias = i % 2 == 0;
    if (i % 4 == 1) {
      s.quad_scale = 0.6f;
      s.lin_scale = 0.03f;
    }
    s.state_outputs = s.causal && i % 4 == 3;
    check_sequence_form(s);
  }
}

TEST_CASE("cpu MixedChunkAttention: FLASH-like sizes, several chunks, multi-block columns") {
  Spec s;
  s.B = 2, s.T = 200, s.sq = 32, s.sl = 24, s.E = 520, s.C = 64, s.bias = true;
  check_sequence_form(s);
  s.causal = false;
  check_sequence_form(s);
  s.causal = true, s.bias = false, s.state_outputs = true, s.T = 192;  // ends on a chunk boundary
  check_sequence_form(s);
  // One chunk, batch 1: the value columns split between the threads.
  s.B = 1, s.T = 100, s.C = 128, s.E = 600, s.state_outputs = false, s.bias = true;
  check_sequence_form(s);
}

TEST_CASE("cpu MixedChunkAttention: step form in pieces equals the reference") {
  Spec s;
  s.B = 2, s.T = 61, s.sq = 5, s.sl = 7, s.E = 150, s.C = 8, s.bias = true;
  check_pieces(s, {5, 1, 1, 7, 1, 8, 20, 3, 15});  // mid-chunk starts, several chunks in one call
  s.bias = false, s.quad_scale = 0.4f, s.lin_scale = 0.2f;
  check_pieces(s, {8, 16, 3, 5, 29});  // boundary-aligned pieces
  s.T = 100, s.C = 40, s.E = 33;
  check_pieces(s, {1, 38, 2, 59});  // keys of one chunk from the buffer (up to 39) and the input
}

TEST_CASE("cpu MixedChunkAttention: one token at a time equals the reference") {
  Spec s;
  s.B = 2, s.T = 30, s.sq = 6, s.sl = 4, s.E = 140, s.C = 8, s.bias = true;
  check_pieces(s, std::vector<int64_t>(s.T, 1));
}

TEST_CASE("cpu MixedChunkAttention: naive loop over every (query, key) pair") {
  // B 1, T 7, C 3 (last chunk partial), Sq 2, Sl 3, E 2, bias, qs 0.5, ls 0.25; causal and not.
  Spec s;
  s.T = 7, s.C = 3, s.sq = 2, s.sl = 3, s.E = 2, s.bias = true, s.quad_scale = 0.5f, s.lin_scale = 0.25f;
  const Sequence x = random_sequence(s);
  auto at = [](const Tensor& t, int64_t i, int64_t c) { return double(t.data<float>()[i * t.dim(2) + c]); };
  for (bool causal : {true, false}) {
    s.causal = causal;
    INFO("causal " << causal);
    Tensor want = Tensor::empty(DType::f32, {1, s.T, s.E});
    for (int64_t t = 0; t < s.T; ++t) {
      for (int64_t e = 0; e < s.E; ++e) {
        double acc = 0.0;
        for (int64_t j = 0; j < s.T; ++j) {
          double weight = 0.0;
          if (t / s.C == j / s.C && (!causal || j <= t)) {
            double dot = 0.0;
            for (int64_t r = 0; r < s.sq; ++r) dot += at(x.qq, t, r) * at(x.qk, j, r);
            const double score = 0.5 * dot + x.bias.data<float>()[(t % s.C) * s.C + j % s.C];
            weight += score > 0.0 ? score * score : 0.0;
          }
          if (!causal || j / s.C < t / s.C) {
            double dot = 0.0;
            for (int64_t r = 0; r < s.sl; ++r) dot += at(x.lq, t, r) * at(x.lk, j, r);
            weight += 0.25 * dot;
          }
          acc += weight * at(x.v, j, e);
        }
        want.data<float>()[t * s.E + e] = static_cast<float>(acc);
      }
    }
    const std::string text = graph_text(s, std::to_string(s.T), false);
    const std::vector<Tensor> in = sequence_inputs(x, s, 0, s.T);
    auto session = cpu_session(text);
    const std::vector<Tensor> got = run_cpu(*session, in);
    CHECK(relative_error(got[0], want) <= kBound);
  }
}

TEST_CASE("cpu MixedChunkAttention: state outputs written over the state inputs (in place)") {
  Spec s;
  s.B = 2, s.T = 29, s.sq = 5, s.sl = 6, s.E = 70, s.C = 8, s.bias = true;
  const Sequence x = random_sequence(s);
  const std::vector<int64_t> pieces = {3, 1, 9, 4, 12};
  const std::vector<Tensor> whole =
      run_reference(graph_text(s, std::to_string(s.T), false), sequence_inputs(x, s, 0, s.T));
  std::vector<Tensor> state = {
      Tensor::zeros(DType::f32, {s.B, s.sl, s.E}), Tensor::zeros(DType::f32, {s.B, s.C, s.sq}),
      Tensor::zeros(DType::f32, {s.B, s.C, s.sl}), Tensor::zeros(DType::f32, {s.B, s.C, s.E})};
  int64_t position = 0;
  for (int64_t T : pieces) {
    INFO("tokens " << position << ".." << position + T - 1);
    auto g = parse(graph_text(s, std::to_string(T), true));
    REQUIRE(infer_graph_types(*g).is_ok());
    std::vector<Tensor> in = sequence_inputs(x, s, position, T);
    in.insert(in.end(), state.begin(), state.end());
    in.push_back(Tensor::scalar<int64_t>(position));
    const std::vector<Tensor> ref = runtime::ReferenceExecutor().run(*g, in).value();
    backends::KernelInfo info;
    info.node = g->nodes()[0];
    info.threads = 2;
    for (const Tensor& t : in) info.inputs.push_back({t.dtype(), t.shape(), nullptr});  // no constants
    for (int i = 0; i < 5; ++i)
      info.outputs.push_back({DType::f32, *info.node->output(i)->type().static_shape(), nullptr});
    auto kernel = backends::cpu_backend().kernels().create(info);
    REQUIRE(kernel != nullptr);
    CHECK(kernel->label() == kCpuLabel);
    for (int o = 1; o <= 4; ++o) CHECK(kernel->can_run_in_place(o, o + 5));
    CHECK_FALSE(kernel->can_run_in_place(0, 4));
    CHECK_FALSE(kernel->can_run_in_place(1, 7));
    REQUIRE(kernel->prepare(info).is_ok());
    void* workspace =
        std::aligned_alloc(64, (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64);
    Tensor y = Tensor::empty(DType::f32, {s.B, T, s.E});
    std::vector<backends::TensorArg> ins = info.inputs, outs = info.outputs;
    for (size_t i = 0; i < in.size(); ++i) ins[i].data = const_cast<void*>(in[i].raw());
    outs[0].data = y.raw();
    for (int o = 1; o <= 4; ++o) outs[o].data = ins[o + 5].data;  // the carried state, updated in place
    Status st = kernel->run(ins, outs, workspace);
    std::free(workspace);
    INFO(st.message());
    REQUIRE(st.is_ok());
    check_outputs({y, state[0], state[1], state[2], state[3]}, ref, position + T, s.C);
    CHECK(relative_error(y, token_slice(whole[0], position, T)) <= kBound);
    position += T;
  }
}

TEST_CASE("cpu MixedChunkAttention: errors name the node") {
  Spec s;
  s.B = 1, s.T = 2, s.C = 4, s.bias = true;
  const Sequence x = random_sequence(s);
  SECTION("a negative position (checked at run time by the fast kernel)") {
    auto session = cpu_session(graph_text(s, "t", true));
    std::vector<Tensor> in = sequence_inputs(x, s, 0, s.T);
    in.insert(in.end(), {Tensor::zeros(DType::f32, {1, 4, 4}), Tensor::zeros(DType::f32, {1, 4, 4}),
                         Tensor::zeros(DType::f32, {1, 4, 4}), Tensor::zeros(DType::f32, {1, 4, 4}),
                         Tensor::scalar<int64_t>(-1)});
    CHECK(session_kernel(*session, in) == kCpuLabel);
    auto y = session->run(in);
    REQUIRE_FALSE(y.is_ok());
    INFO(y.status().message());
    CHECK(y.status().message().find("MixedChunkAttention") != std::string::npos);
    CHECK(y.status().message().find("position") != std::string::npos);
  }
  SECTION("a bias of the wrong size") {
    std::string text = graph_text(s, std::to_string(s.T), false);
    text.replace(text.find("%bias: f32[4, 4]"), 16, "%bias: f32[?, ?]");
    auto session = cpu_session(text);
    std::vector<Tensor> in = sequence_inputs(x, s, 0, s.T);
    in.back() = random_tensor({3, 3});
    auto y = session->run(in);  // the schema rejects it when the plan binds the shapes
    REQUIRE_FALSE(y.is_ok());
    INFO(y.status().message());
    CHECK(y.status().message().find("MixedChunkAttention") != std::string::npos);
    CHECK(y.status().message().find("bias") != std::string::npos);
  }
}
