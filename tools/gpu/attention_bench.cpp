// seqrun-attention-bench: times seqrun's Attention kernel on a backend (the CUDA one by default) for a
// range of sequence lengths, the same shapes tools/gpu/bench_attention.py times PyTorch's
// scaled_dot_product_attention on, and spot-checks every timed result against a naive double-precision
// loop over a few query rows (and, up to --check-up-to, against the other CUDA attention kernel).
//
// One line per shape, and a machine-readable line for tools/gpu/check.sh (the tag is --tag):
//   RESULT seqrun causal=1 seq=1024 ms=0.123 tflops=123.4 kernel=cuda:attention-mma check=ok
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
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
  std::string dtype = "bf16";
  int64_t batch = 4, heads = 16, kv_heads = 16, head_size = 64;
  std::vector<int64_t> seqs = {1024, 2048, 4096, 8192, 16384};
  std::string causal = "both";
  int warmup = 2, repeat = 10;
  int64_t check_up_to = 4096;  // also compare with the other CUDA kernel up to this length
  std::string kernel;          // SEQRUN_CUDA_ATTENTION while the kernel is made ("": the default choice)
  std::string tag = "seqrun";  // the RESULT lines' tag
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

// One Attention node (4-D, causal or not) and its kernel on the backend.
struct Problem {
  std::unique_ptr<Graph> graph;
  Node* node = nullptr;
  backends::KernelInfo info;
};

Result<Problem> make_problem(const Args& a, DType dt, int64_t seq, bool causal) {
  Problem p;
  p.graph = std::make_unique<Graph>("attention_bench");
  Value* q = p.graph->add_input("q", TensorType::from_shape(dt, {a.batch, a.heads, seq, a.head_size}));
  Value* k = p.graph->add_input("k", TensorType::from_shape(dt, {a.batch, a.kv_heads, seq, a.head_size}));
  Value* v = p.graph->add_input("v", TensorType::from_shape(dt, {a.batch, a.kv_heads, seq, a.head_size}));
  std::map<std::string, Attribute> attrs;
  if (causal) attrs["is_causal"] = Attribute(int64_t{1});
  p.node = p.graph->add_node("Attention", {q, k, v}, 1, attrs);
  p.graph->set_outputs(p.node->outputs());
  SEQRUN_TRY(infer_graph_types(*p.graph));
  p.info.node = p.node;
  for (Value* in : {q, k, v}) p.info.inputs.push_back({dt, *in->type().static_shape(), nullptr});
  p.info.outputs.push_back({dt, *p.node->output(0)->type().static_shape(), nullptr});
  return p;
}

// Creates and prepares the backend's kernel; `variant` sets SEQRUN_CUDA_ATTENTION while the factory runs.
Result<std::unique_ptr<backends::Kernel>> make_kernel(backends::Backend& backend, const Problem& p,
                                                      const std::string& variant) {
  if (!variant.empty()) setenv("SEQRUN_CUDA_ATTENTION", variant.c_str(), 1);
  std::unique_ptr<backends::Kernel> kernel = backend.kernels().create(p.info);
  if (!variant.empty()) unsetenv("SEQRUN_CUDA_ATTENTION");
  if (!kernel) return make_error("backend {} has no kernel for {}", backend.name(), p.node->describe());
  SEQRUN_TRY(kernel->prepare(p.info));
  return kernel;
}

// The largest |got - want| / (max |want| over the row) over a few query rows, computed naively in double
// from the (rounded) inputs.
double spot_check(const Args& a, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& y,
                  int64_t seq, bool causal) {
  std::mt19937 rng(7);
  const int64_t D = a.head_size, group = a.heads / a.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  double worst = 0.0;
  for (int r = 0; r < 12; ++r) {
    const int64_t b = rng() % a.batch, h = rng() % a.heads;
    const int64_t i = r == 0 ? 0 : (r == 1 ? seq - 1 : static_cast<int64_t>(rng() % seq));
    const int64_t kvh = h / group, keys = causal ? i + 1 : seq;
    std::vector<double> s(keys);
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < keys; ++j) {
      double dot = 0.0;
      for (int64_t e = 0; e < D; ++e) {
        dot += q.get_f64(((b * a.heads + h) * seq + i) * D + e) *
               k.get_f64(((b * a.kv_heads + kvh) * seq + j) * D + e);
      }
      s[j] = dot * scale;
      mx = std::max(mx, s[j]);
    }
    double sum = 0.0;
    for (double& x : s) sum += (x = std::exp(x - mx));
    double row_max = 0.0, row_err = 0.0;
    for (int64_t e = 0; e < D; ++e) {
      double acc = 0.0;
      for (int64_t j = 0; j < keys; ++j)
        acc += s[j] / sum * v.get_f64(((b * a.kv_heads + kvh) * seq + j) * D + e);
      const double got = y.get_f64(((b * a.heads + h) * seq + i) * D + e);
      row_max = std::max(row_max, std::fabs(acc));
      row_err =
          std::max(row_err, std::isnan(got) ? std::numeric_limits<double>::infinity() : std::fabs(got - acc));
    }
    worst = std::max(worst, row_err / std::max(row_max, 1e-6));
  }
  return worst;
}

Status run_kernel(backends::Kernel& kernel, backends::Backend& backend,
                  const std::vector<backends::TensorArg>& in, const std::vector<backends::TensorArg>& out) {
  SEQRUN_TRY(kernel.run(in, out, nullptr));
  return backend.synchronize();
}

Status bench_one(const Args& a, backends::Backend& backend, DType dt, int64_t seq, bool causal) {
  SEQRUN_ASSIGN(Problem p, make_problem(a, dt, seq, causal));
  SEQRUN_ASSIGN(std::unique_ptr<backends::Kernel> kernel, make_kernel(backend, p, a.kernel));
  Buffers buffers{&backend, {}};
  std::vector<Tensor> host;
  std::vector<backends::TensorArg> in = p.info.inputs, out = p.info.outputs;
  uint32_t seed = static_cast<uint32_t>(seq * 2 + (causal ? 1 : 0));
  for (backends::TensorArg& arg : in) {
    // Uniform in [-2, 2) from a xorshift generator: fast enough for 16k-token inputs.
    uint64_t state = 0x9e3779b97f4a7c15ull * (seed++);
    std::vector<float> values(static_cast<size_t>(arg.numel()));
    for (float& x : values) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      x = static_cast<float>(state >> 40) / static_cast<float>(1ull << 24) * 4.0f - 2.0f;
    }
    Tensor t = Tensor::from_vector<float>(arg.shape, values).cast(dt);
    SEQRUN_ASSIGN(arg.data, buffers.allocate(t.nbytes()));
    SEQRUN_TRY(backend.copy_to_device(arg.data, t.raw(), t.nbytes()));
    host.push_back(t);
  }
  SEQRUN_ASSIGN(out[0].data, buffers.allocate(out[0].nbytes()));
  for (int i = 0; i < a.warmup; ++i) SEQRUN_TRY(run_kernel(*kernel, backend, in, out));
  std::vector<double> times_ms;
  for (int i = 0; i < a.repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    SEQRUN_TRY(run_kernel(*kernel, backend, in, out));
    times_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times_ms.begin(), times_ms.end());
  const double ms = times_ms[times_ms.size() / 2];
  const double flops = 4.0 * static_cast<double>(a.batch * a.heads) * static_cast<double>(seq) *
                       static_cast<double>(seq) * static_cast<double>(a.head_size) * (causal ? 0.5 : 1.0);

  Tensor y = Tensor::empty(dt, out[0].shape);
  SEQRUN_TRY(backend.copy_to_host(y.raw(), out[0].data, y.nbytes()));
  const double err = spot_check(a, host[0], host[1], host[2], y, seq, causal);
  const double bound = dt == DType::f32 ? 1e-4 : 3e-2;
  std::string check = err <= bound ? "ok" : "FAILED";
  // The other CUDA kernel on the same inputs.
  std::string other_note;
  if (backend.name() == "cuda" && seq <= a.check_up_to) {
    const std::string other = kernel->label().rfind("cuda:attention-mma", 0) == 0 ? "simple" : "mma";
    Result<std::unique_ptr<backends::Kernel>> k2 = make_kernel(backend, p, other);
    if (k2.is_ok()) {
      std::vector<backends::TensorArg> out2 = out;
      SEQRUN_ASSIGN(out2[0].data, buffers.allocate(out2[0].nbytes()));
      SEQRUN_TRY(run_kernel(*k2.value(), backend, in, out2));
      Tensor y2 = Tensor::empty(dt, out2[0].shape);
      SEQRUN_TRY(backend.copy_to_host(y2.raw(), out2[0].data, y2.nbytes()));
      double diff = 0.0, ref = 0.0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        const double d = y.get_f64(i) - y2.get_f64(i);
        diff += d * d;
        ref += y2.get_f64(i) * y2.get_f64(i);
      }
      const double nmse = ref > 0.0 ? diff / ref : diff;
      other_note = fmt::format(" vs {}: nmse {:.2e}", k2.value()->label(), nmse);
      if (!(nmse < (dt == DType::f32 ? 1e-10 : 1e-4))) check = "FAILED";
    }
  }
  std::printf(
      "attention %s B=%lld H=%lld/%lld D=%lld S=%lld causal=%d %s: median %.3f ms, %.1f TFLOP/s, "
      "spot-check max rel err %.2e%s -> %s\n",
      std::string(dtype_name(dt)).c_str(), static_cast<long long>(a.batch), static_cast<long long>(a.heads),
      static_cast<long long>(a.kv_heads), static_cast<long long>(a.head_size), static_cast<long long>(seq),
      causal ? 1 : 0, kernel->label().c_str(), ms, flops / (ms * 1e-3) / 1e12, err, other_note.c_str(),
      check.c_str());
  std::printf("RESULT %s causal=%d seq=%lld ms=%.4f tflops=%.2f kernel=%s check=%s\n", a.tag.c_str(),
              causal ? 1 : 0, static_cast<long long>(seq), ms, flops / (ms * 1e-3) / 1e12,
              kernel->label().c_str(), check.c_str());
  std::fflush(stdout);
  if (check != "ok")
    return make_error("attention S={} causal={}: results do not match the reference", seq, causal);
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app("seqrun-attention-bench: times seqrun's Attention kernel and spot-checks it",
               "seqrun-attention-bench");
  app.add_option("--backend", a.backend, "Backend (cuda, cpu)")->capture_default_str();
  app.add_option("--dtype", a.dtype, "f32, f16 or bf16")->capture_default_str();
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--heads", a.heads)->capture_default_str();
  app.add_option("--kv-heads", a.kv_heads)->capture_default_str();
  app.add_option("--head-size", a.head_size)->capture_default_str();
  app.add_option("--seqs", a.seqs, "Sequence lengths, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--causal", a.causal, "1, 0 or both")->capture_default_str();
  app.add_option("--warmup", a.warmup)->capture_default_str();
  app.add_option("--repeat", a.repeat)->capture_default_str();
  app.add_option("--check-up-to", a.check_up_to, "Compare with the other CUDA kernel up to this length")
      ->capture_default_str();
  app.add_option("--kernel", a.kernel,
                 "CUDA kernel to time: simple, mma or mma-v1 (default: the backend's choice)");
  app.add_option("--tag", a.tag, "Tag of the RESULT lines")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::optional<DType> dt = dtype_from_name(a.dtype);
  if (!dt || (*dt != DType::f32 && *dt != DType::f16 && *dt != DType::bf16)) {
    std::fprintf(stderr, "seqrun-attention-bench: error: --dtype must be f32, f16 or bf16\n");
    return 2;
  }
  Result<backends::Backend*> backend = backends::backend_by_name(a.backend);
  if (!backend.is_ok()) {
    std::fprintf(stderr, "seqrun-attention-bench: error: %s\n", backend.status().message().c_str());
    return 1;
  }
  int failed = 0;
  for (int64_t seq : a.seqs) {
    for (int c = 1; c >= 0; --c) {
      if ((a.causal == "1" && c == 0) || (a.causal == "0" && c == 1)) continue;
      Status st = bench_one(a, *backend.value(), *dt, seq, c == 1);
      if (!st.is_ok()) {
        std::printf("FAIL attention S=%lld causal=%d: %s\n", static_cast<long long>(seq), c,
                    st.message().c_str());
        std::printf("RESULT %s causal=%d seq=%lld ms=nan tflops=nan kernel=- check=FAILED\n", a.tag.c_str(),
                    c, static_cast<long long>(seq));
        std::fflush(stdout);
        ++failed;
      }
    }
  }
  return failed == 0 ? 0 : 1;
}
