// The ops RWKV needs, against naive loops written here: TokenShift, RWKV4WKV (the plain sums, without the
// max trick) and LinearAttention's seqrun extensions (the bonus u, decay broadcast over batch and time,
// update_rule generalized_delta), including the step form (state carried between calls) and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "nn_case_file.h"

using namespace seqrun;
using namespace nn_test;

namespace {

Tensor random_f32(std::mt19937& rng, Shape shape, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::empty(DType::f32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

double max_abs_diff(const Tensor& got, const std::vector<double>& want) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  double worst = 0.0;
  for (int64_t i = 0; i < got.numel(); ++i) worst = std::max(worst, std::fabs(got.get_f64(i) - want[i]));
  return worst;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a.get_f64(i) - b.get_f64(i)));
  return worst;
}

// Slice [:, t0:t1, :] of a [B, T, C] tensor.
Tensor time_slice(const Tensor& x, int64_t t0, int64_t t1) {
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  Tensor out = Tensor::empty(DType::f32, {B, t1 - t0, C});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t c = 0; c < C; ++c) {
        out.data<float>()[(b * (t1 - t0) + t - t0) * C + c] = x.data<float>()[(b * T + t) * C + c];
      }
    }
  }
  return out;
}

Result<std::vector<Tensor>> run_op(const std::string& op, const std::vector<Tensor>& inputs,
                                   std::map<std::string, Attribute> attrs, int outputs) {
  OneNode n(op, inputs, std::move(attrs), outputs);
  return n.run();
}

std::vector<Tensor> run_ok(const std::string& op, const std::vector<Tensor>& inputs,
                           std::map<std::string, Attribute> attrs = {}, int outputs = 2) {
  auto out = run_op(op, inputs, std::move(attrs), outputs);
  INFO((out ? std::string("ran") : out.status().message()));
  REQUIRE(out.is_ok());
  return std::move(out).value();
}

}  // namespace

// ---- TokenShift ----

TEST_CASE("TokenShift: previous token, state first, last token out") {
  std::mt19937 rng(1);
  const int64_t B = 2, T = 3, C = 4;
  Tensor x = random_f32(rng, {B, T, C}, -1, 1);
  Tensor state = random_f32(rng, {B, C}, -1, 1);
  for (bool with_state : {true, false}) {
    INFO("with state: " << with_state);
    std::vector<Tensor> out = run_ok("TokenShift", {x, with_state ? state : Tensor()});
    std::vector<double> want_shifted, want_last;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t c = 0; c < C; ++c) {
          const double prev = t > 0 ? x.data<float>()[(b * T + t - 1) * C + c]
                                    : (with_state ? state.data<float>()[b * C + c] : 0.0);
          want_shifted.push_back(prev);
        }
      }
      for (int64_t c = 0; c < C; ++c) want_last.push_back(x.data<float>()[(b * T + T - 1) * C + c]);
    }
    CHECK(out[0].shape() == Shape{B, T, C});
    CHECK(out[1].shape() == Shape{B, C});
    CHECK(max_abs_diff(out[0], want_shifted) == 0.0);
    CHECK(max_abs_diff(out[1], want_last) == 0.0);
  }
}

TEST_CASE("TokenShift: token by token equals the whole sequence; empty sequence keeps the state") {
  std::mt19937 rng(2);
  Tensor x = random_f32(rng, {1, 4, 3}, -1, 1);
  std::vector<Tensor> whole = run_ok("TokenShift", {x, Tensor::zeros(DType::f32, {1, 3})});
  Tensor state = Tensor::zeros(DType::f32, {1, 3});
  for (int64_t t = 0; t < 4; ++t) {
    std::vector<Tensor> step = run_ok("TokenShift", {time_slice(x, t, t + 1), state});
    CHECK(max_abs_diff(step[0], time_slice(whole[0], t, t + 1)) == 0.0);
    state = step[1];
  }
  CHECK(max_abs_diff(state, whole[1]) == 0.0);
  std::vector<Tensor> empty = run_ok("TokenShift", {Tensor::zeros(DType::f32, {1, 0, 3}), state});
  CHECK(empty[0].shape() == Shape{1, 0, 3});
  CHECK(max_abs_diff(empty[1], state) == 0.0);
}

TEST_CASE("TokenShift: shape inference and errors") {
  OneNode n("TokenShift", {Tensor::zeros(DType::f32, {2, 5, 3}), Tensor::zeros(DType::f32, {2, 3})}, {}, 2);
  REQUIRE(n.infer().is_ok());
  CHECK(n.out_type(0).static_shape() == Shape{2, 5, 3});
  CHECK(n.out_type(1).static_shape() == Shape{2, 3});
  OneNode bad("TokenShift", {Tensor::zeros(DType::f32, {2, 5, 3}), Tensor::zeros(DType::f32, {2, 4})}, {}, 2);
  Status st = bad.infer();
  REQUIRE_FALSE(st.is_ok());
  CHECK(mentions(st.message(), {"state", "[2, 3]"}));
  auto run = bad.run_uninferred();
  REQUIRE_FALSE(run.is_ok());
  CHECK(mentions(run.status().message(), {"TokenShift", "state must be [B=2, C=3]"}));
  OneNode rank2("TokenShift", {Tensor::zeros(DType::f32, {2, 3})}, {}, 1);
  CHECK_FALSE(rank2.infer().is_ok());
}

// ---- RWKV4WKV ----

namespace {

// wkv_t = (Σ_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (same with v = 1), from the start of the
// sequence.
std::vector<double> naive_rwkv4(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u) {
  const int64_t B = k.dim(0), T = k.dim(1), C = k.dim(2);
  std::vector<double> out(static_cast<size_t>(B * T * C));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t t = 0; t < T; ++t) {
        double num = 0.0, den = 0.0;
        for (int64_t i = 0; i < t; ++i) {
          const double e = std::exp((t - 1 - i) * static_cast<double>(w.data<float>()[c]) +
                                    k.data<float>()[(b * T + i) * C + c]);
          num += e * v.data<float>()[(b * T + i) * C + c];
          den += e;
        }
        const double e =
            std::exp(static_cast<double>(u.data<float>()[c]) + k.data<float>()[(b * T + t) * C + c]);
        num += e * v.data<float>()[(b * T + t) * C + c];
        den += e;
        out[(b * T + t) * C + c] = num / den;
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("RWKV4WKV: matches the plain weighted sums, whole or split with carried state") {
  std::mt19937 rng(3);
  const int64_t B = 2, T = 6, C = 3;
  Tensor k = random_f32(rng, {B, T, C}, -3, 3);
  Tensor v = random_f32(rng, {B, T, C}, -2, 2);
  Tensor w = random_f32(rng, {C}, -2.0f, -0.1f);
  Tensor u = random_f32(rng, {C}, -1, 1);
  const std::vector<double> want = naive_rwkv4(k, v, w, u);

  std::vector<Tensor> whole = run_ok("RWKV4WKV", {k, v, w, u});
  CHECK(max_abs_diff(whole[0], want) <= 1e-5);
  CHECK(whole[1].shape() == Shape{B, 3, C});
  // A zero state is the empty history.
  std::vector<Tensor> zero = run_ok("RWKV4WKV", {k, v, w, u, Tensor::zeros(DType::f32, {B, 3, C})});
  CHECK(max_abs_diff(zero[0], whole[0]) == 0.0);
  // Step form: 2 tokens, then 1, then 3, feeding the state back.
  Tensor state = Tensor::zeros(DType::f32, {B, 3, C});
  const int64_t cuts[] = {0, 2, 3, 6};
  for (int i = 0; i < 3; ++i) {
    std::vector<Tensor> part = run_ok(
        "RWKV4WKV", {time_slice(k, cuts[i], cuts[i + 1]), time_slice(v, cuts[i], cuts[i + 1]), w, u, state});
    CHECK(max_abs_diff(part[0], time_slice(whole[0], cuts[i], cuts[i + 1])) <= 1e-6);
    state = part[1];
  }
  CHECK(max_abs_diff(state, whole[1]) <= 1e-5);
}

TEST_CASE("RWKV4WKV: large keys do not overflow (max trick)") {
  // k = 200 overflows e^k in float; the sums in double (the naive loop) still hold it.
  Tensor k = f32({1, 4, 2}, {0.5f, -1.0f, 200.0f, 150.0f, -3.0f, 0.0f, 1.0f, 210.0f});
  Tensor v = f32({1, 4, 2}, {1.0f, 2.0f, -3.0f, 4.0f, 5.0f, -6.0f, 7.0f, 8.0f});
  Tensor w = f32({2}, {-0.5f, -0.01f});
  Tensor u = f32({2}, {0.3f, -0.2f});
  std::vector<Tensor> out = run_ok("RWKV4WKV", {k, v, w, u});
  CHECK(max_abs_diff(out[0], naive_rwkv4(k, v, w, u)) <= 1e-5);
  for (int64_t i = 0; i < out[1].numel(); ++i) CHECK(std::isfinite(out[1].data<float>()[i]));
}

TEST_CASE("RWKV4WKV: shape errors name the node") {
  Tensor k = Tensor::zeros(DType::f32, {1, 2, 3});
  auto bad_decay =
      run_op("RWKV4WKV", {k, k, Tensor::zeros(DType::f32, {4}), Tensor::zeros(DType::f32, {3})}, {}, 2);
  REQUIRE_FALSE(bad_decay.is_ok());
  CHECK(mentions(bad_decay.status().message(), {"time_decay"}));
  OneNode bad_state("RWKV4WKV",
                    {k, k, Tensor::zeros(DType::f32, {3}), Tensor::zeros(DType::f32, {3}),
                     Tensor::zeros(DType::f32, {1, 2, 3})},
                    {}, 2);
  auto run = bad_state.run_uninferred();
  REQUIRE_FALSE(run.is_ok());
  CHECK(mentions(run.status().message(), {"RWKV4WKV", "state must be [B=1, 3, C=3]"}));
}

// ---- LinearAttention: bonus, broadcast decay, generalized_delta ----

namespace {

struct LinearAttentionCase {
  int64_t B = 2, T = 5, H = 2, dk = 3, dv = 4;
  Tensor q, k, v, past, decay, bonus, a, b;
};

// Naive recurrence per (batch, head); decay is [Bd, Td, W] with Bd in {1, B}, Td in {1, T}, W in {H, H*dk}.
// bonus: o = scale (qᵀS_{t-1} + ((q⊙u)·k) v), S = diag(e^g) S + k vᵀ.
// generalized: S = diag(e^g) S + b (aᵀS) + k vᵀ, o = scale qᵀS.
void naive_linear_attention(const LinearAttentionCase& c, bool generalized, double scale,
                            std::vector<double>& out, std::vector<double>& final_state) {
  out.assign(static_cast<size_t>(c.B * c.T * c.H * c.dv), 0.0);
  final_state.assign(static_cast<size_t>(c.B * c.H * c.dk * c.dv), 0.0);
  const int64_t Bd = c.decay.dim(0), Td = c.decay.dim(1), W = c.decay.dim(2);
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t h = 0; h < c.H; ++h) {
      std::vector<double> S(static_cast<size_t>(c.dk * c.dv));
      for (int64_t i = 0; i < c.dk * c.dv; ++i) S[i] = c.past.data<float>()[(b * c.H + h) * c.dk * c.dv + i];
      for (int64_t t = 0; t < c.T; ++t) {
        auto at = [&](const Tensor& x, int64_t r) {
          return static_cast<double>(x.data<float>()[(b * c.T + t) * c.H * c.dk + h * c.dk + r]);
        };
        auto val = [&](int64_t col) {
          return static_cast<double>(c.v.data<float>()[(b * c.T + t) * c.H * c.dv + h * c.dv + col]);
        };
        const float* g = c.decay.data<float>() + ((Bd == 1 ? 0 : b) * Td + (Td == 1 ? 0 : t)) * W;
        std::vector<double> next(S.size());
        std::vector<double> aS(static_cast<size_t>(c.dv), 0.0);
        for (int64_t col = 0; col < c.dv; ++col) {
          for (int64_t r = 0; generalized && r < c.dk; ++r) aS[col] += at(c.a, r) * S[r * c.dv + col];
        }
        for (int64_t r = 0; r < c.dk; ++r) {
          const double factor = std::exp(static_cast<double>(W == c.H ? g[h] : g[h * c.dk + r]));
          for (int64_t col = 0; col < c.dv; ++col) {
            next[r * c.dv + col] = factor * S[r * c.dv + col] + at(c.k, r) * val(col) +
                                   (generalized ? at(c.b, r) * aS[col] : 0.0);
          }
        }
        double weight = 0.0;
        for (int64_t r = 0; !generalized && r < c.dk; ++r)
          weight += at(c.q, r) * c.bonus.data<float>()[h * c.dk + r] * at(c.k, r);
        const std::vector<double>& read = generalized ? next : S;
        for (int64_t col = 0; col < c.dv; ++col) {
          double acc = generalized ? 0.0 : weight * val(col);
          for (int64_t r = 0; r < c.dk; ++r) acc += at(c.q, r) * read[r * c.dv + col];
          out[(b * c.T + t) * c.H * c.dv + h * c.dv + col] = scale * acc;
        }
        S = next;
      }
      for (int64_t i = 0; i < c.dk * c.dv; ++i) final_state[(b * c.H + h) * c.dk * c.dv + i] = S[i];
    }
  }
}

LinearAttentionCase random_case(std::mt19937& rng, Shape decay_shape) {
  LinearAttentionCase c;
  c.q = random_f32(rng, {c.B, c.T, c.H * c.dk}, -1, 1);
  c.k = random_f32(rng, {c.B, c.T, c.H * c.dk}, -1, 1);
  c.v = random_f32(rng, {c.B, c.T, c.H * c.dv}, -1, 1);
  c.past = random_f32(rng, {c.B, c.H, c.dk, c.dv}, -0.5f, 0.5f);
  c.decay = random_f32(rng, std::move(decay_shape), -1.0f, -0.01f);
  c.bonus = random_f32(rng, {c.H * c.dk}, -1, 1);
  c.a = random_f32(rng, {c.B, c.T, c.H * c.dk}, -0.5f, 0.5f);
  c.b = random_f32(rng, {c.B, c.T, c.H * c.dk}, -0.5f, 0.5f);
  return c;
}

std::map<std::string, Attribute> la_attrs(const char* rule, float scale) {
  return {{"q_num_heads", int64_t{2}}, {"kv_num_heads", int64_t{2}}, {"update_rule", rule}, {"scale", scale}};
}

}  // namespace

TEST_CASE("LinearAttention: RWKV bonus u reads the state before the update") {
  std::mt19937 rng(4);
  const Shape decay_shapes[] = {{1, 1, 6}, {1, 1, 2}, {2, 5, 6}, {2, 1, 2}};
  for (const Shape& shape : decay_shapes) {
    INFO("decay " << shape_to_string(shape));
    LinearAttentionCase c = random_case(rng, shape);
    std::vector<double> want_out, want_state;
    naive_linear_attention(c, false, 0.7, want_out, want_state);
    std::vector<Tensor> got = run_ok("LinearAttention", {c.q, c.k, c.v, c.past, c.decay, Tensor(), c.bonus},
                                     la_attrs("gated", 0.7f));
    CHECK(max_abs_diff(got[0], want_out) <= 1e-5);
    CHECK(max_abs_diff(got[1], want_state) <= 1e-5);
  }
}

TEST_CASE("LinearAttention: generalized_delta (RWKV-7) against the naive recurrence, and step form") {
  std::mt19937 rng(5);
  LinearAttentionCase c = random_case(rng, {2, 5, 6});
  std::vector<double> want_out, want_state;
  naive_linear_attention(c, true, 1.0, want_out, want_state);
  std::vector<Tensor> got =
      run_ok("LinearAttention", {c.q, c.k, c.v, c.past, c.decay, Tensor(), Tensor(), c.a, c.b},
             la_attrs("generalized_delta", 1.0f));
  CHECK(max_abs_diff(got[0], want_out) <= 1e-5);
  CHECK(max_abs_diff(got[1], want_state) <= 1e-5);
  // Token by token with the state fed back.
  Tensor state = c.past;
  for (int64_t t = 0; t < c.T; ++t) {
    auto sl = [&](const Tensor& x) { return time_slice(x, t, t + 1); };
    std::vector<Tensor> step =
        run_ok("LinearAttention",
               {sl(c.q), sl(c.k), sl(c.v), state, sl(c.decay), Tensor(), Tensor(), sl(c.a), sl(c.b)},
               la_attrs("generalized_delta", 1.0f));
    CHECK(max_abs_diff(step[0], sl(got[0])) <= 1e-5);
    state = step[1];
  }
  CHECK(max_abs_diff(state, got[1]) <= 1e-5);
}

TEST_CASE("LinearAttention: generalized_delta contains ONNX gated_delta (a = e^g k, b = -βk, key βk)") {
  std::mt19937 rng(6);
  LinearAttentionCase c = random_case(rng, {2, 5, 6});
  Tensor beta = random_f32(rng, {c.B, c.T, c.H}, 0.1f, 0.9f);
  std::vector<Tensor> onnx =
      run_ok("LinearAttention", {c.q, c.k, c.v, c.past, c.decay, beta}, la_attrs("gated_delta", 0.5f));
  Tensor a = Tensor::empty(DType::f32, c.k.shape()), b = Tensor::empty(DType::f32, c.k.shape());
  Tensor key = Tensor::empty(DType::f32, c.k.shape());
  for (int64_t i = 0; i < c.k.numel(); ++i) {
    const int64_t bt = i / (c.H * c.dk), h = (i / c.dk) % c.H;
    const double bet = beta.data<float>()[bt * c.H + h];
    a.data<float>()[i] =
        static_cast<float>(std::exp(static_cast<double>(c.decay.data<float>()[i])) * c.k.data<float>()[i]);
    b.data<float>()[i] = static_cast<float>(-bet * c.k.data<float>()[i]);
    key.data<float>()[i] = static_cast<float>(bet * c.k.data<float>()[i]);
  }
  std::vector<Tensor> general =
      run_ok("LinearAttention", {c.q, key, c.v, c.past, c.decay, Tensor(), Tensor(), a, b},
             la_attrs("generalized_delta", 0.5f));
  CHECK(max_abs_diff(general[0], onnx[0]) <= 1e-5);
  CHECK(max_abs_diff(general[1], onnx[1]) <= 1e-5);
}

TEST_CASE("LinearAttention: RWKV extensions reject bad combinations") {
  std::mt19937 rng(7);
  LinearAttentionCase c = random_case(rng, {2, 5, 6});
  Tensor beta = random_f32(rng, {c.B, c.T, c.H}, 0.1f, 0.9f);
  auto bonus_delta = run_op("LinearAttention", {c.q, c.k, c.v, c.past, c.decay, beta, c.bonus},
                            la_attrs("gated_delta", 1.0f), 2);
  REQUIRE_FALSE(bonus_delta.is_ok());
  CHECK(mentions(bonus_delta.status().message(), {"LinearAttention", "bonus"}));
  auto no_ab =
      run_op("LinearAttention", {c.q, c.k, c.v, c.past, c.decay}, la_attrs("generalized_delta", 1.0f), 2);
  REQUIRE_FALSE(no_ab.is_ok());
  CHECK(mentions(no_ab.status().message(), {"generalized_delta", "delta_a"}));
  auto bad_bonus =
      run_op("LinearAttention", {c.q, c.k, c.v, c.past, c.decay, Tensor(), Tensor::zeros(DType::f32, {5})},
             la_attrs("gated", 1.0f), 2);
  REQUIRE_FALSE(bad_bonus.is_ok());
  CHECK(mentions(bad_bonus.status().message(), {"bonus must be [kv_num_heads*dk = 6]"}));
  auto bad_decay = run_op("LinearAttention", {c.q, c.k, c.v, c.past, Tensor::zeros(DType::f32, {3, 5, 6})},
                          la_attrs("gated", 1.0f), 2);
  REQUIRE_FALSE(bad_decay.is_ok());
  CHECK(mentions(bad_decay.status().message(), {"decay must be"}));
}
