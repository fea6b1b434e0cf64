// Sampler (runtime/sampler.h): greedy, temperature, top-k and top-p against probabilities computed here,
// draws against the documented procedure replayed with the test's own std::mt19937_64, frequencies over many
// seeded draws, and the errors for bad logits and options.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "runtime/sampler.h"

using namespace seqrun;
using namespace seqrun::runtime;

namespace {

Sampler make_sampler(double temperature, int64_t top_k, double top_p, uint64_t seed) {
  SamplingOptions options;
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  options.seed = seed;
  auto s = Sampler::create(options);
  INFO((s ? std::string("created") : s.status().message()));
  REQUIRE(s.is_ok());
  return s.value();
}

// Softmax of logits / T over `keep` (other ids 0), in double.
std::vector<double> softmax_over(const std::vector<float>& logits, double T, const std::vector<int>& keep) {
  double max_logit = -INFINITY;
  for (int i : keep) max_logit = std::max(max_logit, static_cast<double>(logits[i]));
  std::vector<double> p(logits.size(), 0.0);
  double total = 0;
  for (int i : keep) total += p[i] = std::exp((logits[i] - max_logit) / T);
  for (double& v : p) v /= total;
  return p;
}

// Frequencies of `draws` samples.
std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    auto t = sampler.sample(logits.data(), static_cast<int64_t>(logits.size()));
    REQUIRE(t.is_ok());
    REQUIRE(t.value() >= 0);
    REQUIRE(t.value() < static_cast<int32_t>(logits.size()));
    freq[t.value()] += 1.0 / draws;
  }
  return freq;
}

const std::vector<float> kLogits = {0.3f, -1.2f, 2.5f, 0.9f, 2.1f, -0.4f, 1.7f, 0.0f, -2.0f, 1.1f};

}  // namespace

TEST_CASE("sampler: temperature 0 is argmax (lowest id among ties) whatever top-k, top-p and seed say") {
  Sampler s = make_sampler(0, 3, 0.5, 99);
  CHECK(s.sample(kLogits.data(), 10).value() == 2);
  const std::vector<float> ties = {1.0f, 4.0f, -3.0f, 4.0f};
  for (int i = 0; i < 5; ++i) CHECK(s.sample(ties.data(), 4).value() == 1);
  auto p = s.distribution(ties.data(), 4);
  REQUIRE(p.is_ok());
  CHECK(p.value() == std::vector<double>{0, 1, 0, 0});
  const Tensor t = Tensor::from_vector<float>({2, 2}, ties);
  CHECK(s.sample(t).value() == 1);
}

TEST_CASE("sampler: the distribution matches softmax with temperature, top-k and top-p computed here") {
  // Sorted by logit: ids 2 (2.5), 4 (2.1), 6 (1.7), 9 (1.1), 3 (0.9), 0, 7, 5, 1, 8.
  struct Case {
    double temperature;
    int64_t top_k;
    double top_p;
    std::vector<int> keep;  // expected candidates (empty: every id)
  };
  std::vector<int> all(10);
  std::iota(all.begin(), all.end(), 0);
  const Case cases[] = {
      {1.0, 0, 1.0, all},       {2.0, 0, 1.0, all},  {0.5, 0, 1.0, all},
      {1.0, 3, 1.0, {2, 4, 6}}, {1.0, 10, 1.0, all}, {1.0, 50, 1.0, all},
  };
  for (const Case& c : cases) {
    INFO("T " << c.temperature << " k " << c.top_k << " p " << c.top_p);
    Sampler s = make_sampler(c.temperature, c.top_k, c.top_p, 1);
    auto p = s.distribution(kLogits.data(), 10);
    REQUIRE(p.is_ok());
    const std::vector<double> want = softmax_over(kLogits, c.temperature, c.keep);
    for (int i = 0; i < 10; ++i) CHECK(p.value()[i] == Approx(want[i]).margin(1e-12));
  }

  // top-p: keep the most probable ids until their mass reaches p. At T = 1 the sorted probabilities are
  // computed here; p just below a prefix's mass keeps that prefix, just above it keeps one more.
  const std::vector<double> full = softmax_over(kLogits, 1.0, all);
  const std::vector<int> order = {2, 4, 6, 9, 3, 0, 7, 5, 1, 8};
  double mass = 0;
  for (size_t n = 1; n < order.size(); ++n) {
    mass += full[order[n - 1]];
    for (double top_p : {mass - 1e-6, mass + 1e-6}) {
      const size_t keep_n = top_p < mass ? n : n + 1;
      INFO("top_p " << top_p << " keeps " << keep_n);
      Sampler s = make_sampler(1.0, 0, top_p, 1);
      auto p = s.distribution(kLogits.data(), 10);
      REQUIRE(p.is_ok());
      const std::vector<double> want =
          softmax_over(kLogits, 1.0, std::vector<int>(order.begin(), order.begin() + keep_n));
      for (int i = 0; i < 10; ++i) CHECK(p.value()[i] == Approx(want[i]).margin(1e-12));
    }
  }
  // top-k then top-p: k = 4 keeps {2, 4, 6, 9}; their renormalized masses at T = 1 are computed here.
  const std::vector<double> k4 = softmax_over(kLogits, 1.0, {2, 4, 6, 9});
  Sampler s = make_sampler(1.0, 4, k4[2] + k4[4] + 1e-6, 1);  // needs a third id
  auto p = s.distribution(kLogits.data(), 10);
  REQUIRE(p.is_ok());
  const std::vector<double> want = softmax_over(kLogits, 1.0, {2, 4, 6});
  for (int i = 0; i < 10; ++i) CHECK(p.value()[i] == Approx(want[i]).margin(1e-12));
}

TEST_CASE("sampler: top-k never samples outside the k best; frequencies follow the probabilities") {
  Sampler s = make_sampler(1.0, 3, 1.0, 2024);
  const std::vector<double> freq = frequencies(s, kLogits, 20000);
  const std::vector<double> want = softmax_over(kLogits, 1.0, {2, 4, 6});
  for (int i = 0; i < 10; ++i) {
    INFO("token " << i);
    if (want[i] == 0) {
      CHECK(freq[i] == 0);
    } else {
      CHECK(std::fabs(freq[i] - want[i]) < 0.015);
    }
  }
}

TEST_CASE("sampler: top-p keeps the smallest most-probable set holding p of the mass") {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (as log-probabilities, shuffled): p = 0.75 keeps {0.5, 0.3} ->
  // 0.625 / 0.375; p = 0.9 keeps three -> 0.5/0.95, 0.3/0.95, 0.15/0.95.
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  Sampler s75 = make_sampler(1.0, 0, 0.75, 11);
  std::vector<double> freq = frequencies(s75, logits, 20000);
  CHECK(freq[0] == 0);
  CHECK(freq[2] == 0);
  CHECK(std::fabs(freq[1] - 0.625) < 0.015);
  CHECK(std::fabs(freq[3] - 0.375) < 0.015);
  Sampler s90 = make_sampler(1.0, 0, 0.9, 12);
  freq = frequencies(s90, logits, 20000);
  CHECK(freq[2] == 0);
  CHECK(std::fabs(freq[1] - 0.5 / 0.95) < 0.015);
  CHECK(std::fabs(freq[3] - 0.3 / 0.95) < 0.015);
  CHECK(std::fabs(freq[0] - 0.15 / 0.95) < 0.015);
}

TEST_CASE("sampler: temperature reshapes the frequencies") {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  for (double T : {0.5, 1.0, 3.0}) {
    INFO("T " << T);
    Sampler s = make_sampler(T, 0, 1.0, 5);
    const std::vector<double> freq = frequencies(s, logits, 20000);
    const std::vector<double> want = softmax_over(logits, T, {0, 1, 2});
    for (int i = 0; i < 3; ++i) CHECK(std::fabs(freq[i] - want[i]) < 0.015);
  }
}

TEST_CASE("sampler: draws follow the documented procedure with std::mt19937_64 (replayed here)") {
  // No filtering: candidates in id order; u = (next 64-bit output >> 11) * 2^-53; the first id whose
  // cumulative probability exceeds u.
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xdeadbeefull}) {
    INFO("seed " << seed);
    Sampler s = make_sampler(0.8, 0, 1.0, seed);
    std::mt19937_64 rng(seed);
    const std::vector<double> p = softmax_over(kLogits, 0.8, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    for (int draw = 0; draw < 200; ++draw) {
      const double u = static_cast<double>(rng() >> 11) * std::ldexp(1.0, -53);
      int want = 9;
      double cumulative = 0;
      for (int i = 0; i < 10; ++i) {
        cumulative += p[i];
        if (cumulative > u) {
          want = i;
          break;
        }
      }
      CHECK(s.sample(kLogits.data(), 10).value() == want);
    }
  }
}

TEST_CASE("sampler: the same seed repeats, another seed differs") {
  auto draws = [](uint64_t seed) {
    Sampler s = make_sampler(1.0, 5, 0.95, seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 100; ++i) out.push_back(s.sample(kLogits.data(), 10).value());
    return out;
  };
  CHECK(draws(3) == draws(3));
  CHECK(draws(3) != draws(4));
}

TEST_CASE("sampler: -inf logits are never drawn; NaN, +inf, empty logits and bad options are errors") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> masked = {-inf, 0.0f, -inf, 0.5f};
  Sampler s = make_sampler(1.0, 0, 1.0, 9);
  const std::vector<double> freq = frequencies(s, masked, 2000);
  CHECK(freq[0] == 0);
  CHECK(freq[2] == 0);

  const std::vector<float> nan = {0.0f, std::nanf(""), 1.0f};
  auto r = s.sample(nan.data(), 3);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "logit nan (token 1) is not a finite number");
  const std::vector<float> plus_inf = {0.0f, inf};
  CHECK_FALSE(s.sample(plus_inf.data(), 2).is_ok());
  const std::vector<float> all_masked = {-inf, -inf};
  r = s.sample(all_masked.data(), 2);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "every one of the 2 logits is -inf: no token can be sampled");
  CHECK_FALSE(s.sample(kLogits.data(), 0).is_ok());
  CHECK_FALSE(s.sample(Tensor::zeros(DType::f64, {3})).is_ok());

  SamplingOptions bad;
  bad.temperature = -0.5;
  auto b = Sampler::create(bad);
  REQUIRE_FALSE(b.is_ok());
  CHECK(b.status().message() == "temperature -0.5 must be a finite number >= 0 (0 = greedy)");
  bad = SamplingOptions{};
  bad.temperature = std::nan("");
  CHECK_FALSE(Sampler::create(bad).is_ok());
  bad = SamplingOptions{};
  bad.top_k = -1;
  CHECK(Sampler::create(bad).status().message() == "top_k -1 must be >= 0 (0 = no limit)");
  bad = SamplingOptions{};
  bad.top_p = 1.5;
  CHECK(Sampler::create(bad).status().message() == "top_p 1.5 must be in (0, 1] (1 = no limit)");
}
