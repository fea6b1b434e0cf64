// Decode-step (small-M) Linear products: oneDNN's primitive vs seqrun's gemv kernel (backends/cpu/gemv.cpp)
// on the Mamba-130M and Llama-134M layer shapes, in GB/s of weight read and % of this machine's read
// bandwidth, measured here (median at the start and at the end; between the passes of every row, whose best
// the % columns compare with, so a change of the shared machine's load moves both): a read-only pass over 256
// MiB like the one in tools/bench/mamba/bench_memory_bandwidth.cpp, with four vector accumulators per thread.
//
// Cold weights, as in a real decode step (the whole model is far larger than the L3): each measurement
// builds enough kernels, each with its own copy of W, to cover --cold-mib, and one timed pass runs all of
// them once; the time per product is the pass time / copies, the reported figure the median of --repeat
// passes. Every kernel comes from the CPU backend's Linear factory, with SEQRUN_CPU_GEMV choosing the
// path (0: oneDNN; avx512 / avx2: the gemv kernel's paths). The last lines estimate the matmul part of one
// decode token per model (sum over layers of the median times).
// Usage: seqrun-bench-gemv [--threads N] [--repeat N] [--rows 1,2,4] [--cold-mib MiB] [--paths
// onednn,avx512,avx2]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_factories.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "tools/bench/bench_util.h"

using namespace seqrun;
using namespace seqrun::bench;
using backends::KernelInfo;
using backends::TensorArg;

namespace {

struct LayerShape {
  const char* model;
  const char* what;
  int64_t k, n;
  int per_token;  // how many of these one decode token runs
};

// Mamba-130M: 24 layers, d_model 768, d_inner 1536, dt_rank 48, d_state 16, vocab 50280 (tied head).
// Llama-134M: 12 layers, hidden 768, intermediate 2048, vocab 32000 (q, k, v, o all 768 -> 768).
const LayerShape kShapes[] = {
    {"mamba", "in_proj", 768, 3072, 24}, {"mamba", "out_proj", 1536, 768, 24},
    {"mamba", "x_proj", 1536, 80, 24},   {"mamba", "dt_proj", 48, 1536, 24},
    {"mamba", "lm_head", 768, 50280, 1}, {"llama", "q/k/v/o", 768, 768, 48},
    {"llama", "gate/up", 768, 2048, 24}, {"llama", "down", 2048, 768, 12},
    {"llama", "lm_head", 768, 32000, 1},
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void fill(std::vector<float>& v, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
  }
}

// The machine's read bandwidth, probed between the products' passes: `threads` threads each summing its own
// slice of a 256 MiB buffer of floats.
class ReadProbe {
 public:
  explicit ReadProbe(int threads)
      : threads_(threads), a_(static_cast<float*>(std::aligned_alloc(64, kBytes))) {
    const long n = kFloats;
    float* a = a_;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < n; ++i) a[i] = static_cast<float>((static_cast<uint32_t>(i) * 2654435761u) >> 8);
  }
  ~ReadProbe() {
    std::free(a_);
  }

  // GB/s of one pass.
  double pass_gbs() {
    const double t0 = now_s();
    double sum = 0.0;
    const float* a = a_;
#pragma omp parallel num_threads(threads_) reduction(+ : sum)
    {
      const long t = omp_get_thread_num(), nt = omp_get_num_threads(), chunks = kFloats / 32;
      const long begin = chunks * t / nt * 32, end = chunks * (t + 1) / nt * 32;
      sum += sum_floats_avx2(a + begin, end - begin);
    }
    const double dt = now_s() - t0;
    checksum_ += sum;
    return static_cast<double>(kBytes) / dt / 1e9;
  }

  // Median GB/s of `repeat` passes after one warmup pass.
  double median_gbs(int repeat) {
    pass_gbs();
    std::vector<double> gbs;
    for (int r = 0; r < repeat; ++r) gbs.push_back(pass_gbs());
    return median(gbs);
  }

 private:
  static constexpr long kFloats = 256L << 20 >> 2;
  static constexpr size_t kBytes = static_cast<size_t>(kFloats) * 4;
  int threads_;
  float* a_;
  double checksum_ = 0.0;
};

struct Measurement {
  double seconds = 0;  // median per product
  std::string label;
  std::vector<float> y;  // output of copy 0, to compare paths
};

// One shape and M on every path: `copies` Linear kernels per path through the CPU factory (SEQRUN_CPU_GEMV
// = the path's mode), all paths sharing the same weight copies; the timed passes alternate between the paths,
// so a load change on the shared machine hits them alike.
std::vector<Measurement> measure(const LayerShape& s, int64_t rows, const std::vector<std::string>& modes,
                                 int threads, int repeat, long cold_mib, ReadProbe& probe,
                                 double& bandwidth_gbs) {
  const int64_t wfloats = s.k * s.n;
  const double wbytes = 4.0 * static_cast<double>(wfloats);
  const int copies =
      static_cast<int>(std::clamp<double>(std::ceil(cold_mib * 1048576.0 / wbytes), 1.0, 4096.0));
  Graph g("bench");
  Value* x = g.add_input("x", TensorType::from_shape(DType::f32, {rows, s.k}));
  Value* w = g.add_input("w", TensorType::from_shape(DType::f32, {s.n, s.k}));
  Node* node = g.add_node("Linear", {x, w}, 1, {});
  node->set_name(std::string(s.model) + "." + s.what);
  if (!infer_node_types(*node)) std::abort();
  std::vector<float> xv(static_cast<size_t>(rows * s.k));
  fill(xv, 7);
  std::vector<std::vector<float>> weights(static_cast<size_t>(copies));
  for (int c = 0; c < copies; ++c) {
    weights[c].resize(static_cast<size_t>(wfloats));
    fill(weights[c], 11 + c);  // distinct pages, so no layer of the machine can share them
  }
  const size_t paths = modes.size();
  std::vector<std::vector<std::unique_ptr<backends::Kernel>>> kernels(paths);
  size_t workspace_bytes = 0;
  for (size_t p = 0; p < paths; ++p) {
    setenv("SEQRUN_CPU_GEMV", modes[p].c_str(), 1);
    for (int c = 0; c < copies; ++c) {
      KernelInfo info;
      info.node = node;
      info.threads = threads;
      info.inputs = {{DType::f32, {rows, s.k}, nullptr}, {DType::f32, {s.n, s.k}, weights[c].data()}};
      info.outputs = {{DType::f32, {rows, s.n}, nullptr}};
      auto kernel = backends::cpu::make_linear_kernel(info);
      if (kernel == nullptr || !kernel->prepare(info)) {
        std::fprintf(stderr, "bench_gemv: no Linear kernel for %s (SEQRUN_CPU_GEMV=%s)\n", s.what,
                     modes[p].c_str());
        std::exit(1);
      }
      workspace_bytes = std::max(workspace_bytes, kernel->workspace_bytes());
      kernels[p].push_back(std::move(kernel));
    }
  }
  unsetenv("SEQRUN_CPU_GEMV");
  void* workspace = workspace_bytes > 0 ? std::aligned_alloc(64, (workspace_bytes + 63) / 64 * 64) : nullptr;
  std::vector<Measurement> result(paths);
  std::vector<std::vector<double>> per_product(paths);
  std::vector<TensorArg> ins(2), outs(1);
  std::vector<double> probe_gbs;
  for (int r = 0; r <= repeat; ++r) {
    if (r > 0) probe_gbs.push_back(probe.pass_gbs());
    for (size_t p = 0; p < paths; ++p) {
      std::vector<float> y(static_cast<size_t>(rows * s.n), 0.0f);
      const double t0 = now_s();
      for (int c = 0; c < copies; ++c) {
        ins[0] = {DType::f32, {rows, s.k}, xv.data()};
        ins[1] = {DType::f32, {s.n, s.k}, weights[c].data()};
        outs[0] = {DType::f32, {rows, s.n}, y.data()};
        if (!kernels[p][c]->run(ins, outs, workspace)) std::abort();
      }
      if (r > 0) per_product[p].push_back((now_s() - t0) / copies);  // pass 0 warms up
      result[p].y = std::move(y);  // the last copy's product, the same copy on every path
    }
  }
  std::free(workspace);
  bandwidth_gbs = *std::max_element(probe_gbs.begin(), probe_gbs.end());  // what the machine gave at best
  for (size_t p = 0; p < paths; ++p) {
    result[p].seconds = median(per_product[p]);
    result[p].label = kernels[p][0]->label();
  }
  return result;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, repeat = 9;
  long cold_mib = 256;
  std::string rows_list = "1", paths_list = "onednn,avx512,avx2";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--threads") {
      threads = std::max(1, std::atoi(value.c_str()));
    } else if (flag == "--repeat") {
      repeat = std::max(1, std::atoi(value.c_str()));
    } else if (flag == "--rows") {
      rows_list = value;
    } else if (flag == "--cold-mib") {
      cold_mib = std::max(1L, std::atol(value.c_str()));
    } else if (flag == "--paths") {
      paths_list = value;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--repeat N] [--rows 1,2,4] [--cold-mib MiB] [--paths ...]\n",
                   argv[0]);
      return 2;
    }
  }
  backends::set_cpu_threads(threads);
  const std::vector<std::string> paths = split(paths_list);
  ReadProbe probe(threads);
  std::printf("threads %d, median of %d passes, >= %ld MiB of weights per pass; read bandwidth %.1f GB/s\n",
              threads, repeat, cold_mib, probe.median_gbs(repeat));
  std::printf(
      "(bw: the best read bandwidth probed between the passes of that row, the %% columns' reference)\n");
  std::printf("| model | layer | M | K -> N | MB | bw GB/s |");
  for (const std::string& p : paths) std::printf(" %s GB/s (%% bw) |", p.c_str());
  std::printf(" max rel diff | kernels |\n|---|---|---|---|---|---|");
  for (size_t i = 0; i < paths.size(); ++i) std::printf("---|");
  std::printf("---|---|\n");
  // ms per token of matmuls, per (model, rows, path)
  std::map<std::string, double> token_ms;
  for (const std::string& rows_text : split(rows_list)) {
    const int64_t rows = std::max<int64_t>(1, std::atoll(rows_text.c_str()));
    for (const LayerShape& s : kShapes) {
      const double mb = 4.0 * s.k * s.n / 1e6;
      std::printf("| %s | %s | %lld | %lld -> %lld | %.2f |", s.model, s.what, static_cast<long long>(rows),
                  static_cast<long long>(s.k), static_cast<long long>(s.n), mb);
      std::vector<std::string> modes;
      for (const std::string& p : paths) modes.push_back(p == "onednn" ? "0" : p);
      double bandwidth = 0.0;
      const std::vector<Measurement> ms =
          measure(s, rows, modes, threads, repeat, cold_mib, probe, bandwidth);
      std::printf(" %.1f |", bandwidth);
      for (size_t p = 0; p < paths.size(); ++p) {
        const double gbs = mb / 1e3 / ms[p].seconds;
        std::printf(" %.1f (%.0f%%) |", gbs, 100.0 * gbs / bandwidth);
        token_ms[std::string(s.model) + " M=" + rows_text + " " + paths[p]] +=
            s.per_token * ms[p].seconds * 1e3;
      }
      double diff = 0.0, ref = 0.0;
      for (size_t i = 0; i < ms[0].y.size(); ++i) {
        ref = std::max(ref, static_cast<double>(std::fabs(ms[0].y[i])));
        for (const Measurement& m : ms)
          diff = std::max(diff, static_cast<double>(std::fabs(m.y[i] - ms[0].y[i])));
      }
      std::printf(" %.1e |", ref > 0 ? diff / ref : diff);
      for (const Measurement& m : ms) std::printf(" %s", m.label.c_str());
      std::printf(" |\n");
    }
  }
  std::printf("\nread bandwidth at the end: %.1f GB/s\n", probe.median_gbs(repeat));
  std::printf("matmuls of one decode token (sum over layers of the medians):\n");
  for (const auto& [key, ms] : token_ms) {
    std::printf("  %-32s %7.2f ms  (%.0f tokens/s if nothing else ran)\n", key.c_str(), ms, 1e3 / ms);
  }
  return 0;
}
