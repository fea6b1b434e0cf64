// Reference kernels of the attention family (Attention, FlexAttention, LinearAttention,
// CausalConvWithState, RotaryEmbedding, SwiGLU) against naive double-precision loops written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/infer.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Deterministic pseudo-random values in [lo, hi).
Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  uint32_t s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data<float>()[i] = lo + (hi - lo) * static_cast<float>((s >> 8) & 0xffff) / 65536.f;
  }
  return t;
}

Value* input_like(Graph& g, const std::string& name, const Tensor& t) {
  return g.add_input(name, TensorType::from_shape(t.dtype(), t.shape()));
}

Result<std::vector<Tensor>> run_graph(Graph& g, const std::vector<Tensor>& inputs) {
  SEQRUN_TRY(infer_graph_types(g));
  runtime::ReferenceExecutor ex;
  return ex.run(g, inputs);
}

std::vector<Tensor> run_ok(Graph& g, const std::vector<Tensor>& inputs) {
  auto r = run_graph(g, inputs);
  INFO((r.is_ok() ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return r.value();
}

void check_close(const Tensor& got, const std::vector<double>& want, double tol = 1e-5) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i);
    CHECK(got.get_f64(static_cast<int64_t>(i)) == Approx(want[i]).margin(tol));
  }
}

// ---- naive softmax attention on [B, H, S, D] arrays --------------------------------------------
struct NaiveAttention {
  NaiveAttention(int64_t b, int64_t hq, int64_t hkv, int64_t sq, int64_t t, int64_t dk, int64_t dv)
      : B(b), Hq(hq), Hkv(hkv), Sq(sq), T(t), Dk(dk), Dv(dv) {}
  int64_t B, Hq, Hkv, Sq, T, Dk, Dv;
  double scale = 0, softcap = 0;
  std::function<double(int64_t b, int64_t h, int64_t i, int64_t j)> bias;  // null: no bias
  std::vector<double> y, qk_raw, qk_biased, probs;  // y [B,Hq,Sq,Dv]; others [B,Hq,Sq,T]

  // q(b,h,i,c), k(b,kvh,j,c), v(b,kvh,j,c) give elements; keys already include any past.
  void run(const std::function<double(int64_t, int64_t, int64_t, int64_t)>& q,
           const std::function<double(int64_t, int64_t, int64_t, int64_t)>& k,
           const std::function<double(int64_t, int64_t, int64_t, int64_t)>& v) {
    y.assign(B * Hq * Sq * Dv, 0.0);
    qk_raw.assign(B * Hq * Sq * T, 0.0);
    qk_biased = probs = qk_raw;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hq; ++h)
        for (int64_t i = 0; i < Sq; ++i) {
          const int64_t kvh = h / (Hq / Hkv);
          std::vector<double> s(T);
          bool all_masked = bias != nullptr;
          for (int64_t j = 0; j < T; ++j) {
            double dot = 0;
            for (int64_t c = 0; c < Dk; ++c) dot += q(b, h, i, c) * k(b, kvh, j, c);
            double raw = dot * scale;
            qk_raw[((b * Hq + h) * Sq + i) * T + j] = raw;
            double capped = softcap != 0 ? softcap * std::tanh(raw / softcap) : raw;
            double bj = bias ? bias(b, h, i, j) : 0.0;
            if (bj != -kInf) all_masked = false;
            s[j] = capped + bj;
            qk_biased[((b * Hq + h) * Sq + i) * T + j] = s[j];
          }
          double mx = -kInf, sum = 0;
          for (double x : s) mx = std::max(mx, x);
          for (double& x : s) sum += (x = std::exp(x - mx));
          for (int64_t j = 0; j < T; ++j) {
            double p = all_masked ? 0.0 : s[j] / sum;
            probs[((b * Hq + h) * Sq + i) * T + j] = p;
            for (int64_t c = 0; c < Dv; ++c) y[((b * Hq + h) * Sq + i) * Dv + c] += p * v(b, kvh, j, c);
          }
        }
  }
};

// Element accessors for [B, H, S, D] and packed [B, S, H*D] float tensors.
std::function<double(int64_t, int64_t, int64_t, int64_t)> bhsd(const Tensor& t) {
  return [&t](int64_t b, int64_t h, int64_t s, int64_t c) {
    return static_cast<double>(t.data<float>()[((b * t.dim(1) + h) * t.dim(2) + s) * t.dim(3) + c]);
  };
}
std::function<double(int64_t, int64_t, int64_t, int64_t)> packed(const Tensor& t, int64_t heads) {
  return [&t, heads](int64_t b, int64_t h, int64_t s, int64_t c) {
    const int64_t d = t.dim(2) / heads;
    return static_cast<double>(t.data<float>()[(b * t.dim(1) + s) * t.dim(2) + h * d + c]);
  };
}

}  // namespace

TEST_CASE("Attention: 4-D multi-head attention matches a naive softmax") {
  Tensor q = random_tensor({2, 3, 4, 8}, 1), k = random_tensor({2, 3, 5, 8}, 2),
         v = random_tensor({2, 3, 5, 6}, 3);
  Graph g;
  Node* n = g.add_node("Attention", {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v)}, 1);
  g.set_outputs({n->output(0)});
  auto out = run_ok(g, {q, k, v});
  NaiveAttention ref{2, 3, 3, 4, 5, 8, 6};
  ref.scale = 1.0 / std::sqrt(8.0);
  ref.run(bhsd(q), bhsd(k), bhsd(v));
  CHECK(out[0].shape() == Shape{2, 3, 4, 6});
  check_close(out[0], ref.y);
}

TEST_CASE("Attention: 3-D GQA, causal, past KV cache, short float mask padded with -inf") {
  // Q [B=1, Sq=3, 4 heads * 4], K/V [1, 3, 2 heads * 4 / *5], past length 2 -> total 5.
  Tensor q = random_tensor({1, 3, 16}, 4), k = random_tensor({1, 3, 8}, 5), v = random_tensor({1, 3, 10}, 6);
  Tensor pk = random_tensor({1, 2, 2, 4}, 7), pv = random_tensor({1, 2, 2, 5}, 8);
  Tensor mask = random_tensor({3, 4}, 9, -0.5f, 0.5f);  // last dim 4 < total 5: key 4 is padded out
  Graph g;
  Node* n = g.add_node("Attention",
                       {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v),
                        input_like(g, "m", mask), input_like(g, "pk", pk), input_like(g, "pv", pv)},
                       4,
                       {{"q_num_heads", 4},
                        {"kv_num_heads", 2},
                        {"is_causal", 1},
                        {"scale", 0.3f},
                        {"qk_matmul_output_mode", 2}});
  g.set_outputs(n->outputs());
  auto out = run_ok(g, {q, k, v, mask, pk, pv});

  // Present = concat(past, new) along the sequence axis.
  auto kfull = [&](int64_t b, int64_t h, int64_t j, int64_t c) {
    return j < 2 ? bhsd(pk)(b, h, j, c) : packed(k, 2)(b, h, j - 2, c);
  };
  auto vfull = [&](int64_t b, int64_t h, int64_t j, int64_t c) {
    return j < 2 ? bhsd(pv)(b, h, j, c) : packed(v, 2)(b, h, j - 2, c);
  };
  NaiveAttention ref{1, 4, 2, 3, 5, 4, 5};
  ref.scale = 0.3;
  ref.bias = [&](int64_t, int64_t, int64_t i, int64_t j) {
    double m = j < 4 ? mask.data<float>()[i * 4 + j] : -kInf;
    return j > i + 2 ? -kInf : m;  // causal frontier offset by the past length
  };
  ref.run(packed(q, 4), kfull, vfull);
  // Y back to packed [B, Sq, Hq*Dv].
  std::vector<double> y_packed(1 * 3 * 4 * 5);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t c = 0; c < 5; ++c) y_packed[i * 20 + h * 5 + c] = ref.y[(h * 3 + i) * 5 + c];
  check_close(out[0], y_packed);
  std::vector<double> pk_want, pv_want;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t j = 0; j < 5; ++j) {
      for (int64_t c = 0; c < 4; ++c) pk_want.push_back(kfull(0, h, j, c));
      for (int64_t c = 0; c < 5; ++c) pv_want.push_back(vfull(0, h, j, c));
    }
  check_close(out[1], pk_want);
  check_close(out[2], pv_want);
  CHECK(out[3].shape() == Shape{1, 4, 3, 5});
  for (int64_t e = 0; e < out[3].numel(); ++e) {
    if (std::isinf(ref.qk_biased[e])) {
      CHECK(out[3].get_f64(e) == -kInf);
    } else {
      CHECK(out[3].get_f64(e) == Approx(ref.qk_biased[e]).margin(1e-5));
    }
  }
}

TEST_CASE("Attention: fully masked bool rows give zeros; qk_matmul_output modes and softcap") {
  Tensor q = random_tensor({1, 2, 3, 4}, 10, -2, 2), k = random_tensor({1, 2, 3, 4}, 11, -2, 2);
  Tensor v = random_tensor({1, 2, 3, 4}, 12);
  Tensor mask = Tensor::from_vector<bool>({3, 3}, {true, false, true, false, false, false, true, true, true});
  for (int mode = 0; mode <= 3; ++mode) {
    DYNAMIC_SECTION("mode " << mode) {
      Graph g;
      Node* n = g.add_node(
          "Attention",
          {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v), input_like(g, "m", mask)}, 4,
          {{"softcap", 1.5f}, {"qk_matmul_output_mode", mode}});
      g.set_outputs({n->output(0), n->output(3)});
      auto out = run_ok(g, {q, k, v, mask});
      NaiveAttention ref{1, 2, 2, 3, 3, 4, 4};
      ref.scale = 0.5;
      ref.softcap = 1.5;
      ref.bias = [&](int64_t, int64_t, int64_t i, int64_t j) {
        return mask.data<bool>()[i * 3 + j] ? 0.0 : -kInf;
      };
      ref.run(bhsd(q), bhsd(k), bhsd(v));
      check_close(out[0], ref.y);
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t c = 0; c < 4; ++c) CHECK(out[0].get_f64((h * 3 + 1) * 4 + c) == 0.0);  // row 1 masked
      std::vector<double> want;
      for (int64_t e = 0; e < 18; ++e) {
        double raw = ref.qk_raw[e];
        want.push_back(mode == 0   ? raw
                       : mode == 1 ? 1.5 * std::tanh(raw / 1.5)
                       : mode == 2 ? ref.qk_biased[e]
                                   : ref.probs[e]);
      }
      for (int64_t e = 0; e < 18; ++e) {
        if (std::isinf(want[e])) {
          CHECK(out[1].get_f64(e) == -kInf);
        } else {
          CHECK(out[1].get_f64(e) == Approx(want[e]).margin(1e-5));
        }
      }
    }
  }
}

TEST_CASE("Attention: nonpad_kv_seqlen with is_causal aligns the frontier to the valid keys") {
  Tensor q = random_tensor({2, 2, 2, 4}, 13), k = random_tensor({2, 1, 5, 4}, 14),
         v = random_tensor({2, 1, 5, 4}, 15);
  Tensor nonpad =
      Tensor::from_vector<int64_t>({2}, {4, 1});  // batch 1: offset 1-2 = -1, query 0 sees nothing
  Graph g;
  Node* n = g.add_node("Attention",
                       {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v), nullptr, nullptr,
                        nullptr, input_like(g, "np", nonpad)},
                       1, {{"is_causal", 1}});
  g.set_outputs({n->output(0)});
  auto out = run_ok(g, {q, k, v, nonpad});
  NaiveAttention ref{2, 2, 1, 2, 5, 4, 4};
  ref.scale = 0.5;
  ref.bias = [&](int64_t b, int64_t, int64_t i, int64_t j) {
    const int64_t valid = b == 0 ? 4 : 1;
    return (j >= valid || j > i + valid - 2) ? -kInf : 0.0;
  };
  ref.run(bhsd(q), bhsd(k), bhsd(v));
  check_close(out[0], ref.y);
  for (int64_t c = 0; c < 4; ++c) CHECK(out[0].get_f64(((1 * 2 + 0) * 2 + 0) * 4 + c) == 0.0);
}

TEST_CASE("Attention: f16 inputs compute in f32 and return f16") {
  Tensor q = random_tensor({1, 1, 2, 4}, 16), k = random_tensor({1, 1, 3, 4}, 17),
         v = random_tensor({1, 1, 3, 4}, 18);
  Graph g;
  Node* n = g.add_node("Attention",
                       {input_like(g, "q", q.cast(DType::f16)), input_like(g, "k", k.cast(DType::f16)),
                        input_like(g, "v", v.cast(DType::f16))},
                       1);
  g.set_outputs({n->output(0)});
  auto out = run_ok(g, {q.cast(DType::f16), k.cast(DType::f16), v.cast(DType::f16)});
  CHECK(out[0].dtype() == DType::f16);
  Tensor q16 = q.cast(DType::f16).cast(DType::f32), k16 = k.cast(DType::f16).cast(DType::f32);
  Tensor v16 = v.cast(DType::f16).cast(DType::f32);
  NaiveAttention ref{1, 1, 1, 2, 3, 4, 4};
  ref.scale = 0.5;
  ref.run(bhsd(q16), bhsd(k16), bhsd(v16));
  check_close(out[0], ref.y, 2e-3);
}

TEST_CASE("Attention: bad inputs are errors naming the node") {
  Tensor q = random_tensor({1, 3, 2, 4}, 19), k = random_tensor({1, 2, 3, 4}, 20),
         v = random_tensor({1, 2, 3, 4}, 21);
  SECTION("q heads not a multiple of kv heads") {
    Graph g;
    Node* n =
        g.add_node("Attention", {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v)}, 1);
    n->set_name("attn0");
    g.set_outputs({n->output(0)});
    auto r = run_graph(g, {q, k, v});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("attn0") != std::string::npos);
  }
  SECTION("mask that does not broadcast") {
    Tensor q2 = random_tensor({1, 2, 2, 4}, 22);
    Tensor mask = random_tensor({3, 3}, 23);
    Graph g;
    Node* n = g.add_node(
        "Attention",
        {input_like(g, "q", q2), input_like(g, "k", k), input_like(g, "v", v), input_like(g, "m", mask)}, 1);
    n->set_name("attn1");
    g.set_outputs({n->output(0)});
    auto r = run_graph(g, {q2, k, v, mask});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("attn1") != std::string::npos);
    CHECK(r.status().message().find("attn_mask") != std::string::npos);
  }
  SECTION("3-D inputs without head counts") {
    Tensor q3 = random_tensor({1, 2, 8}, 24);
    Graph g;
    Node* n =
        g.add_node("Attention", {input_like(g, "q", q3), input_like(g, "k", q3), input_like(g, "v", q3)}, 1);
    g.set_outputs({n->output(0)});
    CHECK_FALSE(run_graph(g, {q3, q3, q3}).is_ok());
  }
}

// ---- LinearAttention ---------------------------------------------------------------------------

namespace {
// Naive recurrence on packed [B, T, H*D] arrays; returns output [B,T,Hq*dv] then state [B,Hkv,dk,dv].
std::pair<std::vector<double>, std::vector<double>> naive_linear_attention(
    const std::string& rule, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* past,
    const Tensor* decay, const Tensor* beta, int64_t hq, int64_t hkv, double scale) {
  const int64_t B = q.dim(0), T = q.dim(1), dk = q.dim(2) / hq, dv = v.dim(2) / hkv;
  std::vector<double> out(B * T * hq * dv), states(B * hkv * dk * dv);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < hkv; ++h) {
      std::vector<std::vector<double>> S(dk, std::vector<double>(dv, 0.0));
      if (past)
        for (int64_t r = 0; r < dk; ++r)
          for (int64_t c = 0; c < dv; ++c) S[r][c] = past->data<float>()[((b * hkv + h) * dk + r) * dv + c];
      for (int64_t t = 0; t < T; ++t) {
        auto kv = [&](const Tensor& x, int64_t d, int64_t i) {
          return x.data<float>()[(b * T + t) * hkv * d + h * d + i];
        };
        if (rule == "gated" || rule == "gated_delta") {
          for (int64_t r = 0; r < dk; ++r) {
            double g = decay->dim(2) == hkv ? decay->data<float>()[(b * T + t) * hkv + h] : kv(*decay, dk, r);
            for (int64_t c = 0; c < dv; ++c) S[r][c] *= std::exp(g);
          }
        }
        if (rule == "delta" || rule == "gated_delta") {
          double bt =
              beta->dim(2) == 1 ? beta->data<float>()[b * T + t] : beta->data<float>()[(b * T + t) * hkv + h];
          std::vector<double> old_v(dv, 0.0);
          for (int64_t c = 0; c < dv; ++c)
            for (int64_t r = 0; r < dk; ++r) old_v[c] += S[r][c] * kv(k, dk, r);
          for (int64_t r = 0; r < dk; ++r)
            for (int64_t c = 0; c < dv; ++c) S[r][c] += bt * kv(k, dk, r) * (kv(v, dv, c) - old_v[c]);
        } else {
          for (int64_t r = 0; r < dk; ++r)
            for (int64_t c = 0; c < dv; ++c) S[r][c] += kv(k, dk, r) * kv(v, dv, c);
        }
        for (int64_t qh = h * (hq / hkv); qh < (h + 1) * (hq / hkv); ++qh)
          for (int64_t c = 0; c < dv; ++c) {
            double acc = 0;
            for (int64_t r = 0; r < dk; ++r)
              acc += q.data<float>()[(b * T + t) * hq * dk + qh * dk + r] * S[r][c];
            out[(b * T + t) * hq * dv + qh * dv + c] = scale * acc;
          }
      }
      for (int64_t r = 0; r < dk; ++r)
        for (int64_t c = 0; c < dv; ++c) states[((b * hkv + h) * dk + r) * dv + c] = S[r][c];
    }
  return {out, states};
}
}  // namespace

TEST_CASE("LinearAttention: every update rule, GQA, past state") {
  const int64_t B = 2, T = 3, hq = 4, hkv = 2, dk = 3, dv = 2;
  Tensor q = random_tensor({B, T, hq * dk}, 30), k = random_tensor({B, T, hkv * dk}, 31);
  Tensor v = random_tensor({B, T, hkv * dv}, 32), past = random_tensor({B, hkv, dk, dv}, 33);
  Tensor decay = random_tensor({B, T, hkv * dk}, 34, -0.5f, 0.f),
         decay_head = random_tensor({B, T, hkv}, 35, -0.5f, 0.f);
  Tensor beta = random_tensor({B, T, hkv}, 36, 0.f, 1.f);
  for (std::string rule : {"linear", "gated", "delta", "gated_delta"}) {
    for (bool per_head_decay : {false, true}) {
      DYNAMIC_SECTION(rule << (per_head_decay ? " per-head decay" : "")) {
        const Tensor& dec = per_head_decay ? decay_head : decay;
        Graph g;
        Node* n = g.add_node(
            "LinearAttention",
            {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v), input_like(g, "past", past),
             input_like(g, "decay", dec), input_like(g, "beta", beta)},
            2, {{"q_num_heads", hq}, {"kv_num_heads", hkv}, {"update_rule", rule}});
        g.set_outputs(n->outputs());
        auto out = run_ok(g, {q, k, v, past, dec, beta});
        auto [want_out, want_state] =
            naive_linear_attention(rule, q, k, v, &past, &dec, &beta, hq, hkv, 1.0 / std::sqrt(3.0));
        check_close(out[0], want_out);
        check_close(out[1], want_state);
      }
    }
  }
}

TEST_CASE("LinearAttention: explicit scale, no past state, shared beta; missing decay is an error") {
  Tensor q = random_tensor({1, 2, 4}, 40), k = random_tensor({1, 2, 4}, 41), v = random_tensor({1, 2, 6}, 42);
  Tensor beta = random_tensor({1, 2, 1}, 43, 0.f, 1.f);
  Graph g;
  Node* n =
      g.add_node("LinearAttention",
                 {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v), nullptr, nullptr,
                  input_like(g, "beta", beta)},
                 2, {{"q_num_heads", 2}, {"kv_num_heads", 2}, {"update_rule", "delta"}, {"scale", 0.25f}});
  g.set_outputs(n->outputs());
  auto out = run_ok(g, {q, k, v, beta});
  auto [want_out, want_state] = naive_linear_attention("delta", q, k, v, nullptr, nullptr, &beta, 2, 2, 0.25);
  check_close(out[0], want_out);
  check_close(out[1], want_state);

  Graph bad;
  Node* m = bad.add_node("LinearAttention",
                         {input_like(bad, "q", q), input_like(bad, "k", k), input_like(bad, "v", v)}, 2,
                         {{"q_num_heads", 2}, {"kv_num_heads", 2}, {"update_rule", "gated"}});
  m->set_name("la");
  bad.set_outputs(m->outputs());
  auto r = run_graph(bad, {q, k, v});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("la") != std::string::npos);
  CHECK(r.status().message().find("decay") != std::string::npos);
}

// ---- CausalConvWithState -----------------------------------------------------------------------

TEST_CASE("CausalConvWithState: causal depthwise conv, state carry, silu, bias") {
  const int64_t B = 2, C = 3, L = 5, K = 3;
  Tensor x = random_tensor({B, C, L}, 50), w = random_tensor({C, 1, K}, 51), bias = random_tensor({C}, 52);
  Tensor past = random_tensor({B, C, K - 1}, 53);
  for (bool silu : {false, true}) {
    DYNAMIC_SECTION((silu ? "silu" : "none")) {
      Graph g;
      Node* n = g.add_node(
          "CausalConvWithState",
          {input_like(g, "x", x), input_like(g, "w", w), input_like(g, "b", bias), input_like(g, "p", past)},
          2, {{"activation", silu ? "silu" : "none"}});
      g.set_outputs(n->outputs());
      auto out = run_ok(g, {x, w, bias, past});
      std::vector<double> want_y, want_state;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c) {
          // Position p < 0 reads past_state[p + K - 1].
          auto at = [&](int64_t p) {
            return p < 0 ? past.data<float>()[(b * C + c) * (K - 1) + p + K - 1]
                         : x.data<float>()[(b * C + c) * L + p];
          };
          for (int64_t t = 0; t < L; ++t) {
            double acc = bias.data<float>()[c];
            for (int64_t j = 0; j < K; ++j) acc += w.data<float>()[c * K + j] * at(t - (K - 1) + j);
            want_y.push_back(silu ? acc / (1 + std::exp(-acc)) : acc);
          }
        }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < K - 1; ++i)
            want_state.push_back(x.data<float>()[(b * C + c) * L + L - (K - 1) + i]);
      check_close(out[0], want_y);
      check_close(out[1], want_state);
    }
  }
  SECTION("decode in two chunks equals one prefill") {
    auto conv = [&](const Tensor& in, const Tensor* state) {
      Graph g;
      Node* n = g.add_node("CausalConvWithState",
                           {input_like(g, "x", in), input_like(g, "w", w), nullptr,
                            state ? input_like(g, "p", *state) : nullptr},
                           2);
      g.set_outputs(n->outputs());
      std::vector<Tensor> ins{in, w};
      if (state) ins.push_back(*state);
      return run_ok(g, ins);
    };
    auto full = conv(x, nullptr);
    Tensor first = Tensor::empty(DType::f32, {B, C, 2}), rest = Tensor::empty(DType::f32, {B, C, 3});
    for (int64_t r = 0; r < B * C; ++r) {
      for (int64_t i = 0; i < 2; ++i) first.data<float>()[r * 2 + i] = x.data<float>()[r * L + i];
      for (int64_t i = 0; i < 3; ++i) rest.data<float>()[r * 3 + i] = x.data<float>()[r * L + 2 + i];
    }
    auto a = conv(first, nullptr);
    auto b = conv(rest, &a[1]);
    for (int64_t r = 0; r < B * C; ++r)
      for (int64_t i = 0; i < 3; ++i)
        CHECK(b[0].data<float>()[r * 3 + i] == Approx(full[0].data<float>()[r * L + 2 + i]));
    const std::vector<float> full_state = full[1].to_f32_vector();
    check_close(b[1], std::vector<double>(full_state.begin(), full_state.end()));
  }
  SECTION("weight with the wrong channel count is an error") {
    Tensor w2 = random_tensor({C + 1, 1, K}, 54);
    Graph g;
    Node* n = g.add_node("CausalConvWithState", {input_like(g, "x", x), input_like(g, "w", w2)}, 2);
    g.set_outputs(n->outputs());
    CHECK_FALSE(run_graph(g, {x, w2}).is_ok());
  }
}

// ---- RotaryEmbedding ---------------------------------------------------------------------------

TEST_CASE("RotaryEmbedding: half-split and interleaved rotation, partial dim, 3-D input") {
  const int64_t B = 1, H = 2, S = 3, D = 8, max_pos = 6;
  Tensor x = random_tensor({B, H, S, D}, 60);
  Tensor pos = Tensor::from_vector<int64_t>({B, S}, {4, 0, 2});
  for (int64_t rd : {int64_t{8}, int64_t{4}}) {
    for (bool interleaved : {false, true}) {
      DYNAMIC_SECTION("rd " << rd << (interleaved ? " interleaved" : "")) {
        // cos/sin of angle pos * 10000^(-2i/rd), as a model would build its caches.
        Tensor cosc = Tensor::empty(DType::f32, {max_pos, rd / 2}),
               sinc = Tensor::empty(DType::f32, {max_pos, rd / 2});
        for (int64_t p = 0; p < max_pos; ++p)
          for (int64_t i = 0; i < rd / 2; ++i) {
            double theta = p * std::pow(10000.0, -2.0 * i / rd);
            cosc.data<float>()[p * rd / 2 + i] = static_cast<float>(std::cos(theta));
            sinc.data<float>()[p * rd / 2 + i] = static_cast<float>(std::sin(theta));
          }
        Graph g;
        Node* n =
            g.add_node("RotaryEmbedding",
                       {input_like(g, "x", x), input_like(g, "c", cosc), input_like(g, "s", sinc),
                        input_like(g, "p", pos)},
                       1, {{"interleaved", interleaved ? 1 : 0}, {"rotary_embedding_dim", rd == D ? 0 : rd}});
        g.set_outputs({n->output(0)});
        auto out = run_ok(g, {x, cosc, sinc, pos});
        std::vector<double> want(x.numel());
        for (int64_t h = 0; h < H; ++h)
          for (int64_t s = 0; s < S; ++s) {
            const float* xi = x.data<float>() + (h * S + s) * D;
            double* yo = want.data() + (h * S + s) * D;
            for (int64_t c = 0; c < D; ++c) yo[c] = xi[c];
            for (int64_t i = 0; i < rd / 2; ++i) {
              // Rotating the pair (a, b) by theta is multiplying a + ib by e^{i theta}.
              const int64_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + rd / 2;
              double theta = pos.data<int64_t>()[s] * std::pow(10000.0, -2.0 * i / rd);
              double a = xi[ia], b = xi[ib];
              yo[ia] = a * std::cos(theta) - b * std::sin(theta);
              yo[ib] = a * std::sin(theta) + b * std::cos(theta);
            }
          }
        check_close(out[0], want);

        // The same data packed as [B, S, H*D] with num_heads gives the same rotation.
        Tensor x3 = Tensor::empty(DType::f32, {B, S, H * D});
        for (int64_t h = 0; h < H; ++h)
          for (int64_t s = 0; s < S; ++s)
            for (int64_t c = 0; c < D; ++c)
              x3.data<float>()[s * H * D + h * D + c] = x.data<float>()[(h * S + s) * D + c];
        Graph g3;
        Node* n3 = g3.add_node(
            "RotaryEmbedding",
            {input_like(g3, "x", x3), input_like(g3, "c", cosc), input_like(g3, "s", sinc),
             input_like(g3, "p", pos)},
            1, {{"interleaved", interleaved ? 1 : 0}, {"rotary_embedding_dim", rd}, {"num_heads", H}});
        g3.set_outputs({n3->output(0)});
        auto out3 = run_ok(g3, {x3, cosc, sinc, pos});
        for (int64_t h = 0; h < H; ++h)
          for (int64_t s = 0; s < S; ++s)
            for (int64_t c = 0; c < D; ++c)
              CHECK(out3[0].data<float>()[s * H * D + h * D + c] ==
                    Approx(want[(h * S + s) * D + c]).margin(1e-5));
      }
    }
  }
  SECTION("position id beyond the cache is an error") {
    Tensor cosc = random_tensor({2, 4}, 61), sinc = random_tensor({2, 4}, 62);
    Graph g;
    Node* n = g.add_node(
        "RotaryEmbedding",
        {input_like(g, "x", x), input_like(g, "c", cosc), input_like(g, "s", sinc), input_like(g, "p", pos)},
        1);
    g.set_outputs({n->output(0)});
    auto r = run_graph(g, {x, cosc, sinc, pos});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("position") != std::string::npos);
  }
}

// ---- SwiGLU ------------------------------------------------------------------------------------

TEST_CASE("SwiGLU: a * sigmoid(alpha * a) * b") {
  Tensor a = random_tensor({2, 3}, 70, -3, 3), b = random_tensor({2, 3}, 71);
  Graph g;
  Node* n = g.add_node("SwiGLU", {input_like(g, "a", a), input_like(g, "b", b)}, 1, {{"alpha", 0.5f}});
  g.set_outputs({n->output(0)});
  auto out = run_ok(g, {a, b});
  std::vector<double> want;
  for (int64_t i = 0; i < 6; ++i) {
    double x = a.data<float>()[i];
    want.push_back(x / (1 + std::exp(-0.5 * x)) * b.data<float>()[i]);
  }
  check_close(out[0], want);
  Tensor c = random_tensor({3, 2}, 72);
  Graph bad;
  Node* m = bad.add_node("SwiGLU", {input_like(bad, "a", a), input_like(bad, "c", c)}, 1);
  bad.set_outputs({m->output(0)});
  CHECK_FALSE(run_graph(bad, {a, c}).is_ok());
}

// ---- FlexAttention -----------------------------------------------------------------------------

TEST_CASE("FlexAttention: GQA with score_mod and prob_mod bodies") {
  Tensor q = random_tensor({1, 4, 3, 4}, 80), k = random_tensor({1, 2, 5, 4}, 81),
         v = random_tensor({1, 2, 5, 3}, 82);
  // score_mod: scores + bias_const; prob_mod: probs * 0.5.
  auto score_mod = std::make_shared<Graph>("score_mod");
  {
    Value* s = score_mod->add_input("scores", TensorType::unknown_rank(DType::f32));
    Value* c = score_mod->add_constant("c", Tensor::scalar<float>(0.25f));
    Node* add = score_mod->add_node("Add", {s, c}, 1);
    score_mod->set_outputs({add->output(0)});
  }
  auto prob_mod = std::make_shared<Graph>("prob_mod");
  {
    Value* p = prob_mod->add_input("probs", TensorType::unknown_rank(DType::f32));
    Value* c = prob_mod->add_constant("half", Tensor::scalar<float>(0.5f));
    Node* mul = prob_mod->add_node("Mul", {p, c}, 1);
    prob_mod->set_outputs({mul->output(0)});
  }
  Graph g;
  Node* n =
      g.add_node("FlexAttention", {input_like(g, "q", q), input_like(g, "k", k), input_like(g, "v", v)}, 1,
                 {{"score_mod", Attribute(score_mod)}, {"prob_mod", Attribute(prob_mod)}, {"scale", 0.7f}});
  g.set_outputs({n->output(0)});
  auto out = run_ok(g, {q, k, v});
  // A constant added to every score cancels in the softmax; prob_mod halves the output.
  NaiveAttention ref{1, 4, 2, 3, 5, 4, 3};
  ref.scale = 0.7;
  ref.run(bhsd(q), bhsd(k), bhsd(v));
  for (double& y : ref.y) y *= 0.5;
  check_close(out[0], ref.y);
}
