// seqrun-bench-lti: LTIScan's two CPU paths side by side — the recurrence (O(L·N) per channel) and the FFT
// convolution (O(L log L)), with K's spectrum built at prepare time (constant dA, dB, C: what a plan of the
// S4D layer gets) and rebuilt every run (coefficients computed at run time) — for L = 16 .. 16384 (powers of
// two). The cost model in backends/cpu/lti_scan.h was fitted to its tables (tools/bench/ssm/README.md).
//
// Usage: seqrun-bench-lti [--channels H] [--modes N] [--batch B] [--threads T] [--repeat R]
//                         [--min-len L] [--max-len L]
// Defaults: the exported S4D layer of tests/data/ssm/s4d (H 32, N 32 complex modes), batch 1, 1 thread,
// median of 7 timed runs after 2 warm-ups. Each node is one LTIScan with `algorithm` forced; the kernel is
// created through the CPU backend's registry exactly as a plan creates it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/lti_scan.h"
#include "ir/graph.h"
#include "ir/infer.h"

using namespace seqrun;

namespace {

struct Options {
  int64_t channels = 32, modes = 32, batch = 1, min_len = 16, max_len = 16384;
  int threads = 1, repeat = 7;
};

// The S4D-Lin discretization (dt log-uniform in [1e-3, 1e-1], A = -1/2 + iπn, B = 1, C ~ N(0, 1/2)):
// dA_re, dA_im, dB_re, dB_im, C_re, C_im, each [H, N].
std::vector<Tensor> s4d_lin_system(int64_t H, int64_t N) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, std::sqrt(0.5));
  std::vector<Tensor> t;
  for (int i = 0; i < 6; ++i) t.push_back(Tensor::empty(DType::f32, {H, N}));
  for (int64_t h = 0; h < H; ++h) {
    const double dt = std::exp(std::log(1e-3) + unit(rng) * (std::log(1e-1) - std::log(1e-3)));
    for (int64_t n = 0; n < N; ++n) {
      const std::complex<double> A(-0.5, M_PI * static_cast<double>(n));
      const std::complex<double> dA = std::exp(dt * A), dB = (dA - 1.0) / A;
      const double values[6] = {dA.real(), dA.imag(), dB.real(), dB.imag(), normal(rng), normal(rng)};
      for (int i = 0; i < 6; ++i) t[i].data<float>()[h * N + n] = static_cast<float>(values[i]);
    }
  }
  return t;
}

struct Timed {
  double ms = 0.0;
  std::string label;
};

// Median ms of one LTIScan run with `algorithm`; the coefficients' bytes visible at prepare when
// `constant_coefficients`.
Timed time_kernel(const Options& o, int64_t L, const std::string& algorithm, bool constant_coefficients,
                  const std::vector<Tensor>& system) {
  Graph g("bench_lti");
  std::vector<Value*> ins = {g.add_input("u", TensorType::from_shape(DType::f32, {o.batch, o.channels, L}))};
  for (int i = 0; i < 6; ++i) {
    ins.push_back(
        g.add_input("coef" + std::to_string(i), TensorType::from_shape(DType::f32, system[i].shape())));
  }
  Node* node = g.add_node("LTIScan", ins, 1, {{"algorithm", Attribute(algorithm)}});
  if (!infer_node_types(*node).is_ok()) std::abort();
  Tensor u = Tensor::empty(DType::f32, {o.batch, o.channels, L});
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < u.numel(); ++i) u.data<float>()[i] = normal(rng);
  Tensor y = Tensor::empty(DType::f32, {o.batch, o.channels, L});

  backends::KernelInfo info;
  info.node = node;
  info.threads = o.threads;
  info.inputs.push_back({DType::f32, u.shape(), nullptr});
  for (int i = 0; i < 6; ++i) {
    info.inputs.push_back({DType::f32, system[i].shape(),
                           constant_coefficients ? const_cast<void*>(system[i].raw()) : nullptr});
  }
  info.outputs.push_back({DType::f32, y.shape(), nullptr});
  auto kernel = backends::cpu_backend().kernels().create(info);
  if (!kernel || !kernel->prepare(info).is_ok()) {
    std::fprintf(stderr, "no CPU kernel for LTIScan (needs AVX2 + FMA)\n");
    std::exit(1);
  }
  std::vector<backends::TensorArg> args = info.inputs;
  args[0].data = u.raw();
  for (int i = 0; i < 6; ++i) args[1 + i].data = const_cast<void*>(system[i].raw());
  std::vector<backends::TensorArg> outs = info.outputs;
  outs[0].data = y.raw();
  const size_t ws_bytes = (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64;
  void* workspace = std::aligned_alloc(64, ws_bytes);
  auto once = [&] {
    if (!kernel->run(args, outs, workspace).is_ok()) std::abort();
  };
  for (int i = 0; i < 2; ++i) once();
  std::vector<double> ms;
  for (int i = 0; i < o.repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    once();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::free(workspace);
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], kernel->label()};
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return false;
    const long long v = std::atoll(argv[++i]);
    if (v <= 0) return false;
    if (arg == "--channels") {
      o.channels = v;
    } else if (arg == "--modes") {
      o.modes = v;
    } else if (arg == "--batch") {
      o.batch = v;
    } else if (arg == "--threads") {
      o.threads = static_cast<int>(v);
    } else if (arg == "--repeat") {
      o.repeat = static_cast<int>(v);
    } else if (arg == "--min-len") {
      o.min_len = v;
    } else if (arg == "--max-len") {
      o.max_len = v;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: seqrun-bench-lti [--channels H] [--modes N] [--batch B] [--threads T] [--repeat R] "
                 "[--min-len L] [--max-len L]\n");
    return 2;
  }
  backends::set_cpu_threads(o.threads);
  const std::vector<Tensor> system = s4d_lin_system(o.channels, o.modes);
  std::printf("LTIScan, H %lld, N %lld complex modes, batch %lld, %d thread(s), median of %d runs\n",
              static_cast<long long>(o.channels), static_cast<long long>(o.modes),
              static_cast<long long>(o.batch), o.threads, o.repeat);
  std::printf("auto: the cost model of backends/cpu/lti_scan.h (recurrent: %.2f ns per channel and step)\n\n",
              backends::cpu::lti_recurrent_ns(o.modes));
  std::printf(
      "| L | recurrent ms | FFT ms, K at prepare | FFT ms, K every run | recurrent / FFT | "
      "ns per channel-step: recurrent, FFT | auto picks: K at prepare, K every run |\n");
  std::printf("|---:|---:|---:|---:|---:|---|---|\n");
  for (int64_t L = o.min_len; L <= o.max_len; L *= 2) {
    const Timed rec = time_kernel(o, L, "recurrent", true, system);
    const Timed fft = time_kernel(o, L, "fft", true, system);
    const Timed fft_runtime = time_kernel(o, L, "fft", false, system);
    const Timed picked = time_kernel(o, L, "auto", true, system);
    const Timed picked_runtime = time_kernel(o, L, "auto", false, system);
    const double steps = static_cast<double>(o.batch * o.channels * L) * 1e-6;  // ms / steps = ns per step
    auto path = [](const Timed& t) { return t.label.find("fft") != std::string::npos ? "fft" : "recurrent"; };
    std::printf("| %lld | %.3f | %.3f | %.3f | %.2f | %.2f, %.2f | %s, %s |\n", static_cast<long long>(L),
                rec.ms, fft.ms, fft_runtime.ms, rec.ms / fft.ms, rec.ms / steps, fft.ms / steps, path(picked),
                path(picked_runtime));
  }
  return 0;
}
