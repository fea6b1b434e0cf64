// seqrun-scan-bench: times seqrun's SelectiveScan kernel on a backend (the CUDA one by default) on the shapes
// of one Mamba-130m layer (batch 1, D = 1536, N = 16, 2k..8k tokens; u, delta, Bmat, Cmat, D, z and
// delta_bias, as Mamba's forward passes them), the shapes tools/gpu/bench_scan.py times PyTorch's sequential
// reference scan on, and spot-checks every timed result against a naive double-precision loop over a few
// channels (and the final state of those channels).
//
// One line per shape, and a machine-readable line for tools/gpu/check.sh:
//   RESULT seqrun-scan seq=2048 ms=0.123 gbps=456.7 kernel=cuda:selective-scan check=ok
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backends/registry.h"
#include "ir/graph.h"
#include "ir/infer.h"

namespace {

using namespace seqrun;

struct Args {
  std::string backend = "cuda";
  std::string dtype = "f32";
  int64_t batch = 1, channels = 1536, state = 16;
  std::vector<int64_t> seqs = {2048, 4096, 8192};
  int warmup = 3, repeat = 10, inner = 10;
};

// Device buffers freed with the object.
struct Buffers {
  backends::Backend* backend;
  std::vector<void*> list;
  ~Buffers() {
    for (void* p : list) backend->deallocate(p);
  }
  Result<void*> allocate(size_t bytes) {
    SEQRUN_ASSIGN(void* p, backend->allocate(bytes));
    list.push_back(p);
    return p;
  }
};

// Uniform values in [lo, hi) from a xorshift generator (fast enough for 8k-token inputs).
std::vector<float> uniform(int64_t n, uint64_t seed, float lo, float hi) {
  uint64_t state = 0x9e3779b97f4a7c15ull * (seed + 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    x = lo + (hi - lo) * static_cast<float>(state >> 40) / static_cast<float>(1ull << 24);
  }
  return v;
}

Status bench_one(const Args& a, backends::Backend& backend, DType dt, int64_t L) {
  const int64_t B = a.batch, D = a.channels, N = a.state;
  // Inputs: u, delta, A, Bmat, Cmat, Dskip, z, delta_bias; A, Dskip and delta_bias in f32 (as Mamba keeps
  // them), the rest in `dt`.
  struct Spec {
    const char* name;
    Shape shape;
    bool param;
    float lo, hi;
  };
  const std::vector<Spec> specs = {
      {"u", {B, D, L}, false, -1.0f, 1.0f},    {"delta", {B, D, L}, false, -3.0f, 1.0f},
      {"A", {D, N}, true, -2.0f, -0.1f},       {"Bmat", {B, N, L}, false, -1.0f, 1.0f},
      {"Cmat", {B, N, L}, false, -1.0f, 1.0f}, {"Dskip", {D}, true, -1.0f, 1.0f},
      {"z", {B, D, L}, false, -3.0f, 3.0f},    {"delta_bias", {D}, true, -1.0f, 0.0f}};
  auto graph = std::make_unique<Graph>("scan_bench");
  std::vector<Value*> node_inputs;
  for (const Spec& s : specs)
    node_inputs.push_back(
        graph->add_input(s.name, TensorType::from_shape(s.param ? DType::f32 : dt, s.shape)));
  Node* node = graph->add_node("SelectiveScan", node_inputs, 1);
  graph->set_outputs(node->outputs());
  SEQRUN_TRY(infer_graph_types(*graph));
  backends::KernelInfo info;
  info.node = node;
  for (Value* v : node_inputs) info.inputs.push_back({v->type().dtype(), *v->type().static_shape(), nullptr});
  info.outputs.push_back({dt, *node->output(0)->type().static_shape(), nullptr});
  std::unique_ptr<backends::Kernel> kernel = backend.kernels().create(info);
  if (!kernel) return make_error("backend {} has no kernel for {}", backend.name(), node->describe());
  SEQRUN_TRY(kernel->prepare(info));

  Buffers buffers{&backend, {}};
  std::vector<Tensor> host;  // the inputs as the kernel sees them (rounded to dt)
  std::vector<backends::TensorArg> in = info.inputs, out = info.outputs;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& s = specs[i];
    Tensor t = Tensor::from_vector<float>(s.shape, uniform(num_elements(s.shape), i * 7919 + L, s.lo, s.hi));
    if (in[i].dtype != DType::f32) t = t.cast(in[i].dtype);
    SEQRUN_ASSIGN(in[i].data, buffers.allocate(t.nbytes()));
    SEQRUN_TRY(backend.copy_to_device(in[i].data, t.raw(), t.nbytes()));
    host.push_back(t);
  }
  SEQRUN_ASSIGN(out[0].data, buffers.allocate(out[0].nbytes()));
  void* workspace = nullptr;
  if (kernel->workspace_bytes() > 0) {
    SEQRUN_ASSIGN(workspace, buffers.allocate(kernel->workspace_bytes()));
  }

  for (int i = 0; i < a.warmup; ++i) SEQRUN_TRY(kernel->run(in, out, workspace));
  SEQRUN_TRY(backend.synchronize());
  // Each timed sample runs the kernel `inner` times back to back, so the synchronization cost is spread.
  std::vector<double> times_ms;
  for (int r = 0; r < a.repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < a.inner; ++i) SEQRUN_TRY(kernel->run(in, out, workspace));
    SEQRUN_TRY(backend.synchronize());
    times_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
        a.inner);
  }
  std::sort(times_ms.begin(), times_ms.end());
  const double ms = times_ms[times_ms.size() / 2];
  double bytes = static_cast<double>(out[0].nbytes());
  for (const backends::TensorArg& t : in) bytes += static_cast<double>(t.nbytes());

  // Spot check: a few channels through the whole sequence, naively in double.
  Tensor y = Tensor::empty(dt, out[0].shape);
  SEQRUN_TRY(backend.copy_to_host(y.raw(), out[0].data, y.nbytes()));
  std::mt19937 rng(static_cast<uint32_t>(L));
  double worst = 0.0;
  for (int k = 0; k < 8; ++k) {
    const int64_t b = rng() % B, d = k == 0 ? 0 : (k == 1 ? D - 1 : static_cast<int64_t>(rng() % D));
    std::vector<double> h(static_cast<size_t>(N), 0.0);
    double row_max = 0.0, row_err = 0.0;
    for (int64_t t = 0; t < L; ++t) {
      const int64_t at = (b * D + d) * L + t;
      double dtv = host[1].get_f64(at) + host[7].get_f64(d);
      dtv = dtv > 20.0 ? dtv : std::log1p(std::exp(dtv));
      const double x = host[0].get_f64(at);
      double acc = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t bc = (b * N + n) * L + t;
        h[n] = std::exp(dtv * host[2].get_f64(d * N + n)) * h[n] + dtv * host[3].get_f64(bc) * x;
        acc += host[4].get_f64(bc) * h[n];
      }
      acc += host[5].get_f64(d) * x;
      const double zv = host[6].get_f64(at);
      acc *= zv / (1.0 + std::exp(-zv));
      const double got = y.get_f64(at);
      row_max = std::max(row_max, std::fabs(acc));
      row_err =
          std::max(row_err, std::isnan(got) ? std::numeric_limits<double>::infinity() : std::fabs(got - acc));
    }
    worst = std::max(worst, row_err / std::max(row_max, 1e-6));
  }
  const double bound = dt == DType::f32 ? 1e-4 : 3e-2;
  const std::string check = worst <= bound ? "ok" : "FAILED";
  std::printf(
      "selective scan %s B=%lld D=%lld N=%lld L=%lld %s: median %.4f ms, %.1f GB/s, spot-check max rel err "
      "%.2e -> %s\n",
      std::string(dtype_name(dt)).c_str(), static_cast<long long>(B), static_cast<long long>(D),
      static_cast<long long>(N), static_cast<long long>(L), kernel->label().c_str(), ms,
      bytes / (ms * 1e-3) / 1e9, worst, check.c_str());
  std::printf("RESULT seqrun-scan seq=%lld ms=%.4f gbps=%.1f kernel=%s check=%s\n", static_cast<long long>(L),
              ms, bytes / (ms * 1e-3) / 1e9, kernel->label().c_str(), check.c_str());
  std::fflush(stdout);
  if (check != "ok") return make_error("selective scan L={}: results do not match the reference", L);
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app("seqrun-scan-bench: times seqrun's SelectiveScan kernel and spot-checks it",
               "seqrun-scan-bench");
  app.add_option("--backend", a.backend, "Backend (cuda, cpu)")->capture_default_str();
  app.add_option("--dtype", a.dtype, "f32, f16 or bf16 (u, delta, Bmat, Cmat, z, y)")->capture_default_str();
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--channels", a.channels, "D")->capture_default_str();
  app.add_option("--state", a.state, "N")->capture_default_str();
  app.add_option("--seqs", a.seqs, "Sequence lengths, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--warmup", a.warmup)->capture_default_str();
  app.add_option("--repeat", a.repeat)->capture_default_str();
  app.add_option("--inner", a.inner, "Kernel runs per timed sample")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::optional<DType> dt = dtype_from_name(a.dtype);
  if (!dt || (*dt != DType::f32 && *dt != DType::f16 && *dt != DType::bf16)) {
    std::fprintf(stderr, "seqrun-scan-bench: error: --dtype must be f32, f16 or bf16\n");
    return 2;
  }
  if (a.batch < 1 || a.channels < 1 || a.state < 1 || a.repeat < 1 || a.inner < 1) {
    std::fprintf(stderr, "seqrun-scan-bench: error: sizes and counts must be positive\n");
    return 2;
  }
  Result<backends::Backend*> backend = backends::backend_by_name(a.backend);
  if (!backend.is_ok()) {
    std::fprintf(stderr, "seqrun-scan-bench: error: %s\n", backend.status().message().c_str());
    return 1;
  }
  int failed = 0;
  for (int64_t seq : a.seqs) {
    Status st = bench_one(a, *backend.value(), *dt, seq);
    if (!st.is_ok()) {
      std::printf("FAIL selective scan L=%lld: %s\n", static_cast<long long>(seq), st.message().c_str());
      std::printf("RESULT seqrun-scan seq=%lld ms=nan gbps=nan kernel=- check=FAILED\n",
                  static_cast<long long>(seq));
      std::fflush(stdout);
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}
