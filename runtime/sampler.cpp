// Sampler: greedy / temperature / top-k / top-p token selection with a seeded generator (see sampler.h).
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace seqrun::runtime {

namespace {

// Argmax (lowest id among equal maxima); logits were checked for NaN / +inf.
int32_t argmax(const float* logits, int64_t count) {
  int64_t best = 0;
  for (int64_t i = 1; i < count; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

}  // namespace

Status validate_sampling_options(const SamplingOptions& options) {
  if (!std::isfinite(options.temperature) || options.temperature < 0) {
    return make_error("temperature {} must be a finite number >= 0 (0 = greedy)", options.temperature);
  }
  if (options.top_k < 0) return make_error("top_k {} must be >= 0 (0 = no limit)", options.top_k);
  if (!(options.top_p > 0 && options.top_p <= 1)) {
    return make_error("top_p {} must be in (0, 1] (1 = no limit)", options.top_p);
  }
  return Status::ok();
}

Result<Sampler> Sampler::create(const SamplingOptions& options) {
  SEQRUN_TRY(validate_sampling_options(options));
  return Sampler(options);
}

Result<double> Sampler::prepare(const float* logits, int64_t count) {
  if (count <= 0) return make_error("sampling needs at least one logit, got {}", count);
  if (count > std::numeric_limits<int32_t>::max()) return make_error("{} logits exceed the id range", count);
  float max_logit = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < count; ++i) {
    if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<float>::infinity()) {
      return make_error("logit {} (token {}) is not a finite number", logits[i], i);
    }
    max_logit = std::max(max_logit, logits[i]);
  }
  if (max_logit == -std::numeric_limits<float>::infinity()) {
    return make_error("every one of the {} logits is -inf: no token can be sampled", count);
  }
  candidates_.clear();
  if (options_.temperature == 0) {
    candidates_.push_back(argmax(logits, count));
    weights_.assign(1, 1.0);
    return 1.0;
  }

  // Candidates: all ids in id order, or sorted by descending logit when top-k / top-p must cut them.
  const bool limit_k = options_.top_k > 0 && options_.top_k < count;
  const bool limit_p = options_.top_p < 1;
  for (int64_t i = 0; i < count; ++i) candidates_.push_back(static_cast<int32_t>(i));
  auto by_logit = [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  if (limit_k) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + options_.top_k, candidates_.end(), by_logit);
    candidates_.resize(static_cast<size_t>(options_.top_k));
  } else if (limit_p) {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }

  weights_.resize(candidates_.size());
  double total = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    weights_[i] = std::exp((static_cast<double>(logits[candidates_[i]]) - max_logit) / options_.temperature);
    total += weights_[i];
  }
  if (limit_p) {
    // The smallest prefix (most probable first) holding at least top_p of the mass.
    double kept = 0;
    size_t keep = 0;
    while (keep < candidates_.size()) {
      kept += weights_[keep++];
      if (kept >= options_.top_p * total) break;
    }
    candidates_.resize(keep);
    weights_.resize(keep);
    total = kept;
  }
  return total;
}

Result<int32_t> Sampler::sample(const float* logits, int64_t count) {
  SEQRUN_ASSIGN(double total, prepare(logits, count));
  if (candidates_.size() == 1) return candidates_[0];
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // [0, 1), 53 random bits
  const double target = u * total;
  double cumulative = 0;
  int32_t last_possible = candidates_[0];
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (weights_[i] <= 0) continue;
    last_possible = candidates_[i];
    cumulative += weights_[i];
    if (cumulative > target) return candidates_[i];
  }
  return last_possible;  // rounding left target at the very end of the mass
}

Result<int32_t> Sampler::sample(const Tensor& logits) {
  if (logits.dtype() != DType::f32) {
    return make_error("sampling takes f32 logits, got {}", dtype_name(logits.dtype()));
  }
  return sample(logits.data<float>(), logits.numel());
}

Result<std::vector<double>> Sampler::distribution(const float* logits, int64_t count) {
  SEQRUN_ASSIGN(double total, prepare(logits, count));
  std::vector<double> probs(static_cast<size_t>(count), 0.0);
  for (size_t i = 0; i < candidates_.size(); ++i) probs[candidates_[i]] = weights_[i] / total;
  return probs;
}

}  // namespace seqrun::runtime
