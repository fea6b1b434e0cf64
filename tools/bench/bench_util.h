// Timing, median and input helpers shared by the micro-benchmarks under tools/bench (header-only).
//
// Conventions the benches keep: times are wall-clock milliseconds on std::chrono::steady_clock;
// `median_ms` and `upper_median` report the upper middle element (element size / 2 after sorting), as the
// benches always have; `median` averages the two middle elements of an even count (0 for none).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace seqrun::bench {

// Milliseconds from `start` to now.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Element size / 2 of the sorted values (the upper median); `values` must not be empty.
inline double upper_median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  if (n == 0) return 0;
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Runs `fn` `warmup` times untimed, then `repeat` (>= 1) timed times: the upper median time in ms.
template <typename Fn>
double median_ms(Fn&& fn, int repeat, int warmup) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(ms_since(t0));
  }
  return upper_median(std::move(ms));
}

// p[0, n) uniform in [-amplitude, amplitude) from std::mt19937(seed).
inline void fill_uniform(float* p, size_t n, unsigned seed, float amplitude = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-amplitude, amplitude);
  for (size_t i = 0; i < n; ++i) p[i] = u(rng);
}

#if defined(__x86_64__) || defined(__i386__)
// Sum of p[0, n) with four independent 8-lane accumulators: a read at memory speed, not at the latency of
// one add chain (the benches' roof for a read-bound kernel). Memory-bound; any alignment.
__attribute__((target("avx2"))) inline float sum_floats_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float total = 0.0f;
  for (float x : lanes) total += x;
  for (; i < n; ++i) total += p[i];
  return total;
}
#endif

}  // namespace seqrun::bench
