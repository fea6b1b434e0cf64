// Sampler: picks the next token from a vector of logits — greedy (temperature 0) or random with
// temperature, top-k and top-p (nucleus) filtering, from a seeded std::mt19937_64.
//
// The distribution, for temperature T > 0: the candidates are every token (top_k = 0) or the top_k tokens
// with the largest logits (ties broken by the lower id); p_i ∝ exp((l_i - max l) / T) over the candidates;
// top_p < 1 then keeps the smallest set of most probable candidates whose probability sums to at least
// top_p (always at least one), and renormalizes. Temperature 0 is argmax (the lowest id among equal
// maxima) and ignores top_k / top_p. A draw is one 53-bit uniform number u from the generator (its next
// 64-bit output >> 11, times 2^-53): the token is the first candidate (by descending probability, or by id
// when no filtering sorts them) whose cumulative probability exceeds u. So the same seed and the same logits
// give the same tokens on every platform. Logits may be -inf (never sampled); NaN or +inf is an error.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::runtime {

struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = no limit
  double top_p = 1.0;        // (0, 1]; 1 = no limit
  uint64_t seed = 0;
};

// Errors name the option: temperature must be finite and >= 0, top_k >= 0, top_p in (0, 1].
Status validate_sampling_options(const SamplingOptions& options);

class Sampler {
 public:
  static Result<Sampler> create(const SamplingOptions& options);

  // The next token for `logits` (count = vocabulary size).
  Result<int32_t> sample(const float* logits, int64_t count);
  // logits: f32, any shape; its elements are the vocabulary.
  Result<int32_t> sample(const Tensor& logits);
  // The probability of every token under the options (temperature 0: 1 for the argmax), without drawing.
  Result<std::vector<double>> distribution(const float* logits, int64_t count);

  const SamplingOptions& options() const { return options_; }

 private:
  explicit Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}
  // Fills candidates_ (ids, in draw order) and weights_ (their unnormalized probabilities); returns the sum.
  Result<double> prepare(const float* logits, int64_t count);

  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> candidates_;
  std::vector<double> weights_;
};

}  // namespace seqrun::runtime
