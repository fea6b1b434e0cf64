// This machine's main-memory bandwidth, STREAM-style: the triad a[i] = b[i] + s * c[i] over three arrays of
// doubles far larger than the last-level cache, split statically over the OpenMP threads (each thread
// touches its own slice first, so pages are local to it). Bytes per element counted as STREAM does: 24
// (read b and c, write a; the write-allocate read of a is not counted). Also a read-only pass (sum of b),
// 8 bytes per element. Prints one JSON object with the best and the median of --repeat passes, in GB/s.
//
// Standalone (no seqrun code); compare_mamba.py builds and runs it:
//   g++ -O3 -march=native -fopenmp tools/bench/mamba/bench_memory_bandwidth.cpp -o
//   build/bench/mamba/bandwidth OMP_NUM_THREADS=2 OMP_PROC_BIND=close build/bench/mamba/bandwidth [--mib 256]
//   [--repeat 20]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  long mib = 256;  // per array: 3 arrays of 256 MiB, far beyond a 32 MiB L3
  int repeat = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      mib = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--mib MiB per array] [--repeat N]\n", argv[0]);
      return 2;
    }
  }
  if (mib < 1 || repeat < 1) {
    std::fprintf(stderr, "--mib and --repeat must be positive\n");
    return 2;
  }
  const long n = mib * 1024 * 1024 / static_cast<long>(sizeof(double));
  double* a = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  double* b = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  double* c = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  if (a == nullptr || b == nullptr || c == nullptr) {
    std::fprintf(stderr, "cannot allocate 3 x %ld MiB\n", mib);
    return 1;
  }
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) {
    a[i] = 0.0;
    b[i] = 1.0;
    c[i] = 2.0;
  }
  const double scalar = 3.0;
  std::vector<double> triad_gbs, read_gbs;
  double checksum = 0.0;
  for (int r = 0; r < repeat + 1; ++r) {  // the first pass is a warmup
    double start = seconds_now();
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
    const double triad_s = seconds_now() - start;
    start = seconds_now();
    double sum = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum)
    for (long i = 0; i < n; ++i) sum += b[i];
    const double read_s = seconds_now() - start;
    checksum += sum + a[n / 2];
    if (r == 0) continue;
    triad_gbs.push_back(24.0 * n / triad_s / 1e9);
    read_gbs.push_back(8.0 * n / read_s / 1e9);
  }
  std::printf(
      "{\"threads\": %d, \"array_mib\": %ld, \"repeat\": %d, \"triad_best_gbs\": %.2f, \"triad_median_gbs\": "
      "%.2f, "
      "\"read_best_gbs\": %.2f, \"read_median_gbs\": %.2f, \"checksum\": %.1f}\n",
      omp_get_max_threads(), mib, repeat, *std::max_element(triad_gbs.begin(), triad_gbs.end()),
      median(triad_gbs), *std::max_element(read_gbs.begin(), read_gbs.end()), median(read_gbs), checksum);
  std::free(a);
  std::free(b);
  std::free(c);
  return 0;
}
