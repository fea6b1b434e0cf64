// MixedChunkAttention step form (explicit chunk state, causal): a sequence fed in pieces — and one token at a
// time — with each call's state outputs carried into the next call's state inputs must give exactly the rows
// of the full-sequence op, checked against an independent naive double loop over every (query, key) pair.
// Also the schema's types for the state outputs, and the errors of a malformed step form.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/text.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

// Sizes of the sequences under test: B rows of n tokens, chunk C, quad width Sq, linear width Sl, value E.
struct Sizes {
  int64_t B = 2, n = 23, C = 8, sq = 3, sl = 5, E = 4;
};

Tensor random_tensor(const Shape& shape, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

// The whole sequence: one [B, n, D] tensor per op input, and the [C, C] bias.
struct Sequence {
  Tensor qq, qk, lq, lk, v, bias;
};

Sequence random_sequence(const Sizes& s, std::mt19937& gen) {
  return {random_tensor({s.B, s.n, s.sq}, gen), random_tensor({s.B, s.n, s.sq}, gen),
          random_tensor({s.B, s.n, s.sl}, gen), random_tensor({s.B, s.n, s.sl}, gen),
          random_tensor({s.B, s.n, s.E}, gen),  random_tensor({s.C, s.C}, gen)};
}

double at(const Tensor& t, int64_t b, int64_t s, int64_t c) {
  return t.data<float>()[(b * t.dim(1) + s) * t.dim(2) + c];
}

// The causal full-sequence definition, one (query t, key j) pair at a time, in double, no chunk state:
// quad weight relu(qs·q_t·k_j + bias[t % C, j % C])² for j <= t in t's chunk, linear weight ls·(lq_t·lk_j)
// for j in an earlier chunk. Returns [B][n][E] flattened.
std::vector<double> naive_full_sequence(const Sequence& x, const Sizes& s, double qs, double ls) {
  std::vector<double> out(s.B * s.n * s.E, 0.0);
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t t = 0; t < s.n; ++t) {
      for (int64_t j = 0; j <= t; ++j) {
        double weight = 0.0;
        if (j / s.C == t / s.C) {
          double score = 0.0;
          for (int64_t r = 0; r < s.sq; ++r) score += at(x.qq, b, t, r) * at(x.qk, b, j, r);
          score = qs * score + x.bias.data<float>()[(t % s.C) * s.C + j % s.C];
          weight = score > 0.0 ? score * score : 0.0;
        } else {
          double dot = 0.0;
          for (int64_t r = 0; r < s.sl; ++r) dot += at(x.lq, b, t, r) * at(x.lk, b, j, r);
          weight = ls * dot;
        }
        for (int64_t e = 0; e < s.E; ++e) out[(b * s.n + t) * s.E + e] += weight * at(x.v, b, j, e);
      }
    }
  }
  return out;
}

// Tokens [begin, begin + T) of a [B, n, D] tensor.
Tensor token_slice(const Tensor& t, int64_t begin, int64_t count) {
  const int64_t B = t.dim(0), n = t.dim(1), D = t.dim(2);
  Tensor out = Tensor::empty(DType::f32, {B, count, D});
  for (int64_t b = 0; b < B; ++b) {
    const float* src = t.data<float>() + (b * n + begin) * D;
    std::copy(src, src + count * D, out.data<float>() + b * count * D);
  }
  return out;
}

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

std::string f32(const std::vector<int64_t>& dims) {
  std::string s = "f32[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// One MixedChunkAttention over T tokens with bias and every state output; with `state_inputs` the node takes
// the step-form inputs 6..10 (position typed `position_type`), without them it starts from the empty state.
std::string step_graph(const Sizes& s, int64_t T, const std::string& attrs, bool state_inputs,
                       const std::string& position_type = "i64[]") {
  std::string text = "graph main(%qq: " + f32({s.B, T, s.sq}) + ", %qk: " + f32({s.B, T, s.sq}) +
                     ", %lq: " + f32({s.B, T, s.sl}) + ", %lk: " + f32({s.B, T, s.sl}) +
                     ", %v: " + f32({s.B, T, s.E}) + ", %bias: " + f32({s.C, s.C});
  if (state_inputs) {
    text += ", %ls: " + f32({s.B, s.sl, s.E}) + ", %cq: " + f32({s.B, s.C, s.sq}) +
            ", %cl: " + f32({s.B, s.C, s.sl}) + ", %cv: " + f32({s.B, s.C, s.E}) + ", %pos: " + position_type;
  }
  text += ") {\n  %y, %nls, %ncq, %ncl, %ncv = MixedChunkAttention(%qq, %qk, %lq, %lk, %v, %bias";
  if (state_inputs) text += ", %ls, %cq, %cl, %cv, %pos";
  text += ") {" + attrs + "} : " + f32({s.B, T, s.E}) + ", " + f32({s.B, s.sl, s.E}) + ", " +
          f32({s.B, s.C, s.sq}) + ", " + f32({s.B, s.C, s.sl}) + ", " + f32({s.B, s.C, s.E}) +
          "\n  return %y, %nls, %ncq, %ncl, %ncv\n}\n";
  return text;
}

// Feeds the sequence in `pieces` (token counts summing to n), carrying the state; the first piece starts
// from zero state at P = 0 through the state inputs, or (with `prefill`) through the no-state form. Checks
// every piece's rows against the naive full-sequence rows.
void check_pieces(const Sequence& x, const Sizes& s, const std::vector<int64_t>& pieces,
                  const std::string& attrs, double qs, double ls, bool prefill, bool position_as_vector) {
  const std::vector<double> expected = naive_full_sequence(x, s, qs, ls);
  Tensor lin_state = Tensor::zeros(DType::f32, {s.B, s.sl, s.E});
  Tensor chunk_qk = Tensor::zeros(DType::f32, {s.B, s.C, s.sq});
  Tensor chunk_lk = Tensor::zeros(DType::f32, {s.B, s.C, s.sl});
  Tensor chunk_v = Tensor::zeros(DType::f32, {s.B, s.C, s.E});
  int64_t position = 0;
  for (size_t k = 0; k < pieces.size(); ++k) {
    const int64_t T = pieces[k];
    const bool state_inputs = !(prefill && k == 0);
    auto g = parse(step_graph(s, T, attrs, state_inputs, position_as_vector ? "i64[1]" : "i64[]"));
    std::vector<Tensor> in = {token_slice(x.qq, position, T), token_slice(x.qk, position, T),
                              token_slice(x.lq, position, T), token_slice(x.lk, position, T),
                              token_slice(x.v, position, T),  x.bias};
    if (state_inputs) {
      in.insert(in.end(), {lin_state, chunk_qk, chunk_lk, chunk_v});
      in.push_back(position_as_vector ? Tensor::from_vector<int64_t>({1}, {position})
                                      : Tensor::scalar<int64_t>(position));
    }
    auto y = runtime::ReferenceExecutor().run(*g, in);
    INFO("piece " << k << " (tokens " << position << ".." << position + T - 1
                  << "): " << y.status().message());
    REQUIRE(y.is_ok());
    REQUIRE(y->size() == 5);
    const Tensor& out = (*y)[0];
    REQUIRE(out.shape() == Shape{s.B, T, s.E});
    // Tolerance 1e-5 relative to max(1, |y|): the kernel accumulates in double like the naive loop, but its
    // inputs, outputs and the carried lin_state are f32, so each call adds a few f32 roundings (~6e-8
    // relative) of O(1) terms; a wrong token, chunk position or bias entry moves rows by O(0.1).
    double worst = 0.0;
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t i = 0; i < T; ++i) {
        for (int64_t e = 0; e < s.E; ++e) {
          const double want = expected[(b * s.n + position + i) * s.E + e];
          const double got = out.data<float>()[(b * T + i) * s.E + e];
          worst = std::max(worst, std::fabs(got - want) / std::max(1.0, std::fabs(want)));
        }
      }
    }
    CHECK(worst < 1e-5);
    lin_state = (*y)[1];
    chunk_qk = (*y)[2];
    chunk_lk = (*y)[3];
    chunk_v = (*y)[4];
    position += T;
  }
  REQUIRE(position == s.n);
}

}  // namespace

TEST_CASE("MixedChunkAttention step form: pieces [5, 1, 1, 7, 1, 8] equal the full-sequence rows") {
  Sizes s;
  std::mt19937 gen(31);
  const Sequence x = random_sequence(s, gen);
  // Default scales 1 / C; position as an i64 scalar, then as [1].
  check_pieces(x, s, {5, 1, 1, 7, 1, 8}, "chunk_size = 8", 0.125, 0.125, false, false);
  check_pieces(x, s, {5, 1, 1, 7, 1, 8}, "chunk_size = 8", 0.125, 0.125, false, true);
  // Explicit scales.
  check_pieces(x, s, {5, 1, 1, 7, 1, 8}, "chunk_size = 8, quad_scale = 0.7, lin_scale = 0.3", 0.7, 0.3, false,
               false);
}

TEST_CASE("MixedChunkAttention step form: one token at a time equals the full-sequence rows") {
  Sizes s;
  std::mt19937 gen(32);
  const Sequence x = random_sequence(s, gen);
  check_pieces(x, s, std::vector<int64_t>(s.n, 1), "chunk_size = 8", 0.125, 0.125, false, false);
}

TEST_CASE("MixedChunkAttention step form: a prefill without state inputs, then steps") {
  Sizes s;
  std::mt19937 gen(33);
  const Sequence x = random_sequence(s, gen);
  // 13 tokens end inside chunk 1; 16 end exactly on a chunk boundary (empty chunk buffer handed on).
  check_pieces(x, s, {13, 1, 1, 1, 7}, "chunk_size = 8, causal = 1", 0.125, 0.125, true, false);
  check_pieces(x, s, {16, 1, 6}, "chunk_size = 8", 0.125, 0.125, true, false);
  check_pieces(x, s, {23}, "chunk_size = 8", 0.125, 0.125, true, false);
}

TEST_CASE("MixedChunkAttention step form: shape inference of the state outputs") {
  auto g = parse(R"(
graph main(%qq: f32[b, t, 3], %qk: f32[b, t, 3], %lq: f32[b, t, 5], %lk: f32[b, t, 5], %v: f32[b, t, 4],
           %ls: f32[?, ?, ?], %cq: f32[?, 8, ?], %cl: f32[?, ?, ?], %cv: f32[?, ?, ?], %pos: i64[]) {
  %y, %nls, %ncq, %ncl, %ncv = MixedChunkAttention(%qq, %qk, %lq, %lk, %v, _, %ls, %cq, %cl, %cv, %pos) {chunk_size = 8} : ?[*], ?[*], ?[*], ?[*], ?[*]
  return %y, %nls, %ncq, %ncl, %ncv
}
)");
  Status st = infer_graph_types(*g);
  INFO(st.message());
  REQUIRE(st.is_ok());
  const std::string text = print_graph(*g);
  CHECK(text.find(": f32[b, t, 4], f32[b, 5, 4], f32[b, 8, 3], f32[b, 8, 5], f32[b, 8, 4]") !=
        std::string::npos);
}

namespace {

// Runs `text` on `inputs` and expects an error naming the node and containing `what`; also expects the
// schema to reject it when `schema_rejects`.
void expect_error(const std::string& text, const std::vector<Tensor>& inputs, const std::string& what,
                  bool schema_rejects) {
  auto g = parse(text);
  auto y = runtime::ReferenceExecutor().run(*g, inputs);
  REQUIRE_FALSE(y.is_ok());
  INFO(y.status().message());
  CHECK(y.status().message().find("MixedChunkAttention") != std::string::npos);
  CHECK(y.status().message().find(what) != std::string::npos);
  if (schema_rejects) {
    Status st = infer_graph_types(*g);
    REQUIRE_FALSE(st.is_ok());
    INFO(st.message());
    CHECK(st.message().find("MixedChunkAttention") != std::string::npos);
    CHECK(st.message().find(what) != std::string::npos);
  }
}

// A step-form node whose state inputs %ls, %cq, %cl, %cv, %pos have `state_types`: ?[*] (so only the kernel
// sees their dtypes and sizes; the executor checks graph inputs against declared types) or static types.
// `args` are the node's inputs after %v.
std::string error_graph(const std::string& args, const std::string& attrs, const std::string& state_types) {
  return "graph main(%a: f32[1, 2, 4], %bias: f32[4, 4], " + state_types +
         ") {\n  %y, %nls = MixedChunkAttention(%a, %a, %a, %a, %a" + args + ") {" + attrs +
         "} : f32[1, 2, 4], f32[1, 4, 4]\n  return %y, %nls\n}\n";
}

const char* kLooseStates = "%ls: ?[*], %cq: ?[*], %cl: ?[*], %cv: ?[*], %pos: ?[*]";

}  // namespace

TEST_CASE("MixedChunkAttention step form: malformed state is an error naming the node") {
  std::mt19937 gen(34);
  Tensor a = random_tensor({1, 2, 4}, gen), bias = random_tensor({4, 4}, gen);
  Tensor state = random_tensor({1, 4, 4}, gen);  // Sl = Sq = E = C = 4: every state input is [1, 4, 4]
  Tensor pos = Tensor::scalar<int64_t>(3);
  const std::vector<Tensor> good = {a, bias, state, state, state, state, pos};
  SECTION("partial state inputs") {
    expect_error(error_graph(", %bias, %ls, _, _, _, %pos", "chunk_size = 4", kLooseStates), good,
                 "past_chunk_quad_k, past_chunk_lin_k, past_chunk_v", true);
    expect_error(error_graph(", _, %ls, %cq, %cl, %cv", "chunk_size = 4", kLooseStates), good,
                 "missing position", true);
  }
  SECTION("causal = 0 with state inputs, or with only state outputs") {
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4, causal = 0", kLooseStates),
                 good, "causal = 1", true);
    expect_error(error_graph(", %bias", "chunk_size = 4, causal = 0", kLooseStates), good, "causal = 1",
                 true);
  }
  SECTION("wrong state shapes") {
    // Kernel: a chunk buffer one row short, a lin state of the wrong width.
    std::vector<Tensor> in = good;
    in[5] = random_tensor({1, 3, 4}, gen);
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4", kLooseStates), in,
                 "past_chunk_v must be [B, chunk_size, E] = [1, 4, 4], is [1, 3, 4]", false);
    in = good;
    in[2] = random_tensor({1, 4, 5}, gen);
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4", kLooseStates), in,
                 "past_lin_state", false);
    in = good;
    in[3] = random_tensor({4, 4}, gen);
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4", kLooseStates), in,
                 "past_chunk_quad_k", false);
    // Schema and kernel: statically wrong sizes.
    in = good;
    in[5] = random_tensor({1, 3, 4}, gen);
    expect_error(
        error_graph(
            ", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4",
            "%ls: f32[1, 4, 4], %cq: f32[1, 4, 4], %cl: f32[1, 4, 4], %cv: f32[1, 3, 4], %pos: i64[]"),
        in, "past_chunk_v", true);
    in = good;
    in[4] = random_tensor({1, 4, 6}, gen);
    expect_error(
        error_graph(
            ", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4",
            "%ls: f32[1, 4, 4], %cq: f32[1, 4, 4], %cl: f32[1, 4, 6], %cv: f32[1, 4, 4], %pos: i64[]"),
        in, "past_chunk_lin_k", true);
  }
  SECTION("position: not i64, not one element, negative") {
    std::vector<Tensor> in = good;
    in[6] = Tensor::from_vector<int64_t>({2}, {3, 4});
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4", kLooseStates), in,
                 "position must be an i64 scalar or [1]", false);
    in[6] = Tensor::scalar<int32_t>(3);
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4", kLooseStates), in,
                 "position must be an i64 scalar or [1]", false);
    in[6] = Tensor::scalar<int64_t>(-1);
    expect_error(error_graph(", %bias, %ls, %cq, %cl, %cv, %pos", "chunk_size = 4", kLooseStates), in,
                 "position must be >= 0", false);
    // The schema sees a wrongly typed position.
    auto g = parse(R"(
graph main(%a: f32[1, 2, 4], %s: f32[1, 4, 4], %pos: f32[]) {
  %y = MixedChunkAttention(%a, %a, %a, %a, %a, _, %s, %s, %s, %s, %pos) {chunk_size = 4} : f32[1, 2, 4]
  return %y
}
)");
    Status st = infer_graph_types(*g);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.message().find("position must be an i64") != std::string::npos);
    CHECK(st.message().find("MixedChunkAttention") != std::string::npos);
  }
}
