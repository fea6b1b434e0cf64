// CUDA backend: device memory and copies, and every CUDA kernel family run through a Session placed on
// {cuda, cpu}, checked against naive loops written here (matrix products, elementwise, softmax, norms,
// reductions, Gather/Transpose, RoPE, Attention in f32/f16/bf16 on both kernels, LinearAttention,
// CausalConvWithState and its one-token step, SelectiveScan, TokenShift), plus the CPU fallback for ops
// without a CUDA kernel and the device-side error report. Without a GPU (or in a build without CUDA) every
// test prints one "SKIP: no CUDA device (...)" warning and passes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/registry.h"
#if SEQRUN_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif
#include "ir/graph.h"
#include "runtime/session.h"

using namespace seqrun;

namespace {

// The CUDA backend, or null (no GPU here, or no CUDA in this build): the first test to ask prints the
// one "SKIP: no CUDA device (...)" warning, the others return quietly.
backends::Backend* cuda_or_skip() {
  static bool warned = false;
  Result<backends::Backend*> b = backends::backend_by_name("cuda");
  if (!b.is_ok()) {
    if (!warned) WARN("SKIP: " << b.status().message());
    warned = true;
    return nullptr;
  }
  return b.value();
}

std::vector<float> random_values(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// A tensor of `dtype` holding `values` (rounded to f16/bf16 when asked).
Tensor make_tensor(DType dtype, const Shape& shape, const std::vector<float>& values) {
  Tensor t = Tensor::from_vector<float>(shape, values);
  return dtype == DType::f32 ? t : t.cast(dtype);
}
Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return make_tensor(dtype, shape, random_values(num_elements(shape), seed, lo, hi));
}
// The values a tensor holds, as doubles (after any f16/bf16 rounding).
std::vector<double> values_of(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_f64(i);
  return v;
}

// sum((a - b)^2) / sum(b^2); infinity on a size mismatch or a NaN.
double nmse(const Tensor& got, const std::vector<double>& want) {
  if (got.numel() != static_cast<int64_t>(want.size())) return std::numeric_limits<double>::infinity();
  double err = 0.0, ref = 0.0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = got.get_f64(i), b = want[i];
    if (std::isnan(a)) return std::numeric_limits<double>::infinity();
    err += (a - b) * (a - b);
    ref += b * b;
  }
  return ref > 0.0 ? err / ref : err;
}

// One graph run through a Session on {cuda, cpu} (no passes).
struct CudaRun {
  std::vector<Tensor> outputs;
  std::vector<runtime::PlacementEntry> placement;
};

CudaRun run_graph(std::unique_ptr<Graph> g, const std::vector<Tensor>& inputs) {
  Result<std::vector<backends::Backend*>> list = backends::backend_list_by_name("cuda");
  REQUIRE(list.is_ok());
  runtime::SessionOptions options;
  options.opt_level = 0;
  options.backends = list.value();
  auto session = runtime::Session::from_graph(std::move(g), options);
  INFO((session.is_ok() ? std::string() : session.status().message()));
  REQUIRE(session.is_ok());
  std::vector<runtime::InputSpec> specs;
  for (const Tensor& t : inputs) specs.push_back({t.dtype(), t.shape()});
  auto placement = session.value()->placement(specs);
  INFO((placement.is_ok() ? std::string() : placement.status().message()));
  REQUIRE(placement.is_ok());
  auto outputs = session.value()->run(inputs);
  INFO((outputs.is_ok() ? std::string() : outputs.status().message()));
  REQUIRE(outputs.is_ok());
  return {std::move(outputs).value(), placement.value()};
}

// The backend that ran the first node of `op` ("" when none did).
std::string backend_of(const CudaRun& run, const std::string& op) {
  for (const runtime::PlacementEntry& p : run.placement) {
    if (p.op == op) return p.backend;
  }
  return "";
}
std::string kernel_of(const CudaRun& run, const std::string& op) {
  for (const runtime::PlacementEntry& p : run.placement) {
    if (p.op == op) return p.kernel;
  }
  return "";
}

// A graph of one node whose inputs are graph inputs (null = absent optional input).
struct OneNode {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  std::vector<Tensor> inputs;
  std::vector<Value*> node_inputs;

  void input(const Tensor& t) {
    Value* v = graph->add_input("in" + std::to_string(node_inputs.size()),
                                TensorType::from_shape(t.dtype(), t.shape()));
    node_inputs.push_back(v);
    inputs.push_back(t);
  }
  void absent() { node_inputs.push_back(nullptr); }
  void constant(const Tensor& t) {
    node_inputs.push_back(graph->add_constant("c" + std::to_string(node_inputs.size()), t));
  }
  CudaRun run(const std::string& op, int outputs, std::map<std::string, Attribute> attrs = {}) {
    Node* node = graph->add_node(op, node_inputs, outputs, std::move(attrs));
    graph->set_outputs(node->outputs());
    return run_graph(std::move(graph), inputs);
  }
};

// ---- naive references -------------------------------------------------------------------------------

// y[b, m, n] = sum_k x[b, m, k] * w[b, k, n]; batch strides in elements (0 = broadcast).
std::vector<double> naive_matmul(const std::vector<double>& x, const std::vector<double>& w, int64_t batch,
                                 int64_t m, int64_t k, int64_t n, int64_t sx, int64_t sw) {
  std::vector<double> y(static_cast<size_t>(batch * m * n));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0.0;
        for (int64_t c = 0; c < k; ++c) acc += x[b * sx + i * k + c] * w[b * sw + c * n + j];
        y[(b * m + i) * n + j] = acc;
      }
  return y;
}

struct AttentionCase {
  int64_t batch = 1, q_heads = 2, kv_heads = 1, q_len = 5, kv_len = 5, past_len = 0, d = 16, dv = 16;
  bool packed = false, causal = false;
  double scale = 0.0;  // 0: 1/sqrt(d)
  double softcap = 0.0;
  std::vector<int64_t> nonpad;  // per batch, empty: none
};

// Naive attention in double. q/k/v in the case's layout (packed or 4-D); past [B, Hkv, P, D]; mask
// either empty or a function (b, h, i, j) -> bias (-inf masks).
std::vector<double> naive_attention(const AttentionCase& c, const std::vector<double>& q,
                                    const std::vector<double>& k, const std::vector<double>& v,
                                    const std::vector<double>& past_k, const std::vector<double>& past_v,
                                    const std::function<double(int64_t, int64_t, int64_t, int64_t)>& mask) {
  const int64_t T = c.past_len + c.kv_len, group = c.q_heads / c.kv_heads;
  const double scale = c.scale > 0.0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.d));
  const double inf = std::numeric_limits<double>::infinity();
  auto q_at = [&](int64_t b, int64_t h, int64_t i, int64_t e) {
    return c.packed ? q[(b * c.q_len + i) * c.q_heads * c.d + h * c.d + e]
                    : q[((b * c.q_heads + h) * c.q_len + i) * c.d + e];
  };
  auto kv_at = [&](const std::vector<double>& past, const std::vector<double>& fresh, int64_t size, int64_t b,
                   int64_t h, int64_t j, int64_t e) {
    if (j < c.past_len) return past[((b * c.kv_heads + h) * c.past_len + j) * size + e];
    const int64_t s = j - c.past_len;
    return c.packed ? fresh[(b * c.kv_len + s) * c.kv_heads * size + h * size + e]
                    : fresh[((b * c.kv_heads + h) * c.kv_len + s) * size + e];
  };
  std::vector<double> y(static_cast<size_t>(c.batch * c.q_heads * c.q_len * c.dv));
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.q_heads; ++h)
      for (int64_t i = 0; i < c.q_len; ++i) {
        const int64_t kvh = h / group;
        const int64_t offset = (c.causal && !c.nonpad.empty()) ? c.nonpad[b] - c.q_len : c.past_len;
        std::vector<double> s(T);
        bool all_masked = true;
        for (int64_t j = 0; j < T; ++j) {
          double bias = mask ? mask(b, h, i, j) : 0.0;
          if (c.causal && j > i + offset) bias = -inf;
          if (!c.nonpad.empty() && j >= c.nonpad[b]) bias = -inf;
          if (bias != -inf) all_masked = false;
          double dot = 0.0;
          for (int64_t e = 0; e < c.d; ++e) dot += q_at(b, h, i, e) * kv_at(past_k, k, c.d, b, kvh, j, e);
          double x = dot * scale;
          if (c.softcap > 0.0) x = c.softcap * std::tanh(x / c.softcap);
          s[j] = x + bias;
        }
        double mx = -inf;
        for (double x : s) mx = std::max(mx, x);
        double sum = 0.0;
        for (double& x : s) {
          x = std::exp(x - mx);
          sum += x;
        }
        for (int64_t e = 0; e < c.dv; ++e) {
          double acc = 0.0;
          if (!all_masked) {
            for (int64_t j = 0; j < T; ++j) acc += s[j] / sum * kv_at(past_v, v, c.dv, b, kvh, j, e);
          }
          const int64_t off = c.packed ? (b * c.q_len + i) * c.q_heads * c.dv + h * c.dv + e
                                       : ((b * c.q_heads + h) * c.q_len + i) * c.dv + e;
          y[off] = acc;
        }
      }
  return y;
}

Shape qkv_shape(const AttentionCase& c, int64_t heads, int64_t len, int64_t size) {
  return c.packed ? Shape{c.batch, len, heads * size} : Shape{c.batch, heads, len, size};
}

std::map<std::string, Attribute> attention_attrs(const AttentionCase& c) {
  std::map<std::string, Attribute> attrs;
  if (c.causal) attrs["is_causal"] = Attribute(int64_t{1});
  if (c.packed) {
    attrs["q_num_heads"] = Attribute(c.q_heads);
    attrs["kv_num_heads"] = Attribute(c.kv_heads);
  }
  if (c.scale > 0.0) attrs["scale"] = Attribute(static_cast<float>(c.scale));
  if (c.softcap > 0.0) attrs["softcap"] = Attribute(static_cast<float>(c.softcap));
  return attrs;
}

// Runs one attention case (optionally a mask tensor and its bias function) and checks Y (and the
// present outputs with a past) against the naive loops.
void check_attention(const AttentionCase& c, DType dtype, double bound, const std::string& want_kernel,
                     const Tensor* mask = nullptr,
                     std::function<double(int64_t, int64_t, int64_t, int64_t)> mask_bias = nullptr) {
  const Tensor q = random_tensor(dtype, qkv_shape(c, c.q_heads, c.q_len, c.d), 11, -2.0f, 2.0f);
  const Tensor k = random_tensor(dtype, qkv_shape(c, c.kv_heads, c.kv_len, c.d), 12, -2.0f, 2.0f);
  const Tensor v = random_tensor(dtype, qkv_shape(c, c.kv_heads, c.kv_len, c.dv), 13);
  Tensor past_k, past_v;
  OneNode one;
  one.input(q);
  one.input(k);
  one.input(v);
  if (mask != nullptr) {
    one.input(*mask);
  } else {
    one.absent();
  }
  int outputs = 1;
  if (c.past_len > 0) {
    past_k = random_tensor(dtype, {c.batch, c.kv_heads, c.past_len, c.d}, 14, -2.0f, 2.0f);
    past_v = random_tensor(dtype, {c.batch, c.kv_heads, c.past_len, c.dv}, 15);
    one.input(past_k);
    one.input(past_v);
    outputs = 3;
  }
  if (!c.nonpad.empty()) {
    one.absent();
    one.absent();
    one.input(Tensor::from_vector<int64_t>({c.batch}, c.nonpad));
  }
  const std::vector<double> pk = past_k.defined() ? values_of(past_k) : std::vector<double>{};
  const std::vector<double> pv = past_v.defined() ? values_of(past_v) : std::vector<double>{};
  const std::vector<double> want =
      naive_attention(c, values_of(q), values_of(k), values_of(v), pk, pv, mask_bias);
  CudaRun run = one.run("Attention", outputs, attention_attrs(c));
  CHECK(backend_of(run, "Attention") == "cuda");
  CHECK(kernel_of(run, "Attention") == want_kernel);
  REQUIRE(run.outputs.size() == static_cast<size_t>(outputs));
  INFO("Y: nmse bound " << bound);
  CHECK(nmse(run.outputs[0], want) < bound);
  if (outputs == 3) {
    // present = concat(past, new) along the sequence, [B, Hkv, T, D]: exact copies.
    const int64_t T = c.past_len + c.kv_len;
    std::vector<double> want_k, want_v;
    const std::vector<double> kk = values_of(k), vv = values_of(v);
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t j = 0; j < T; ++j) {
          for (int64_t e = 0; e < c.d; ++e) {
            want_k.push_back(j < c.past_len
                                 ? pk[((b * c.kv_heads + h) * c.past_len + j) * c.d + e]
                                 : kk[((b * c.kv_heads + h) * c.kv_len + j - c.past_len) * c.d + e]);
          }
          for (int64_t e = 0; e < c.dv; ++e) {
            want_v.push_back(j < c.past_len
                                 ? pv[((b * c.kv_heads + h) * c.past_len + j) * c.dv + e]
                                 : vv[((b * c.kv_heads + h) * c.kv_len + j - c.past_len) * c.dv + e]);
          }
        }
    CHECK(nmse(run.outputs[1], want_k) == 0.0);
    CHECK(nmse(run.outputs[2], want_v) == 0.0);
  }
}

// Sets an environment variable for the life of the object (the attention kernel choice).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

// SelectiveScan in double, as ir/ops/ssm.cpp defines it: u, delta, z [B, D, L]; A [D, N]; Bmat, Cmat
// [B, G, N, L]; Dskip, bias [D]; h0 [B, D, N] (empty vectors: absent). Returns y [B, D, L] and fills
// *h_last [B, D, N].
struct ScanShape {
  int64_t batch = 1, channels = 1, length = 1, state = 1, groups = 1;
};
std::vector<double> naive_selective_scan(const ScanShape& s, const std::vector<double>& u,
                                         const std::vector<double>& delta, const std::vector<double>& a,
                                         const std::vector<double>& bm, const std::vector<double>& cm,
                                         const std::vector<double>& skip, const std::vector<double>& z,
                                         const std::vector<double>& bias, const std::vector<double>& h0,
                                         bool softplus, std::vector<double>* h_last) {
  const int64_t B = s.batch, D = s.channels, L = s.length, N = s.state, G = s.groups;
  std::vector<double> y(static_cast<size_t>(B * D * L));
  h_last->assign(static_cast<size_t>(B * D * N), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t g = d / (D / G);
      std::vector<double> h(static_cast<size_t>(N), 0.0);
      if (!h0.empty())
        for (int64_t n = 0; n < N; ++n) h[n] = h0[(b * D + d) * N + n];
      for (int64_t t = 0; t < L; ++t) {
        const int64_t at = (b * D + d) * L + t;
        double dt = delta[at] + (bias.empty() ? 0.0 : bias[d]);
        if (softplus) dt = dt > 20.0 ? dt : std::log1p(std::exp(dt));
        double out = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t bc = ((b * G + g) * N + n) * L + t;
          h[n] = std::exp(dt * a[d * N + n]) * h[n] + dt * bm[bc] * u[at];
          out += cm[bc] * h[n];
        }
        if (!skip.empty()) out += skip[d] * u[at];
        if (!z.empty()) out *= z[at] / (1.0 + std::exp(-z[at]));
        y[at] = out;
      }
      for (int64_t n = 0; n < N; ++n) (*h_last)[(b * D + d) * N + n] = h[n];
    }
  return y;
}

// Runs one SelectiveScan case on {cuda, cpu} and checks y (and the final state) against the naive loop.
// `dtype` is the activations' type; A, Dskip, delta_bias and h0 are `param_dtype`.
void check_selective_scan(const ScanShape& s, DType dtype, DType param_dtype, bool with_skip, bool with_z,
                          bool with_bias, bool with_h0, bool softplus, int outputs, double bound,
                          uint32_t seed) {
  const Shape row{s.batch, s.channels, s.length};
  const Shape bc =
      s.groups == 1 ? Shape{s.batch, s.state, s.length} : Shape{s.batch, s.groups, s.state, s.length};
  const Tensor u = random_tensor(dtype, row, seed);
  const Tensor delta = softplus ? random_tensor(dtype, row, seed + 1, -3.0f, 1.0f)
                                : random_tensor(dtype, row, seed + 1, 0.01f, 0.5f);
  const Tensor a = random_tensor(param_dtype, {s.channels, s.state}, seed + 2, -2.0f, -0.1f);
  const Tensor bm = random_tensor(dtype, bc, seed + 3), cm = random_tensor(dtype, bc, seed + 4);
  const Tensor skip = random_tensor(param_dtype, {s.channels}, seed + 5);
  const Tensor z = random_tensor(dtype, row, seed + 6, -3.0f, 3.0f);
  const Tensor bias = random_tensor(param_dtype, {s.channels}, seed + 7, -1.0f, 0.0f);
  const Tensor h0 = random_tensor(param_dtype, {s.batch, s.channels, s.state}, seed + 8);
  OneNode one;
  one.input(u);
  one.input(delta);
  one.constant(a);
  one.input(bm);
  one.input(cm);
  const std::vector<double> none;
  // Trailing absent inputs are left off the node.
  const int last = with_h0 ? 8 : with_bias ? 7 : with_z ? 6 : with_skip ? 5 : 4;
  if (last >= 5) {
    if (with_skip) {
      one.constant(skip);
    } else {
      one.absent();
    }
  }
  if (last >= 6) {
    if (with_z) {
      one.input(z);
    } else {
      one.absent();
    }
  }
  if (last >= 7) {
    if (with_bias) {
      one.constant(bias);
    } else {
      one.absent();
    }
  }
  if (last >= 8) one.input(h0);
  std::map<std::string, Attribute> attrs;
  if (!softplus) attrs["delta_softplus"] = Attribute(int64_t{0});
  std::vector<double> want_h;
  const std::vector<double> want = naive_selective_scan(
      s, values_of(u), values_of(delta), values_of(a), values_of(bm), values_of(cm),
      with_skip ? values_of(skip) : none, with_z ? values_of(z) : none, with_bias ? values_of(bias) : none,
      with_h0 ? values_of(h0) : none, softplus, &want_h);
  CudaRun run = one.run("SelectiveScan", outputs, attrs);
  CHECK(backend_of(run, "SelectiveScan") == "cuda");
  CHECK(kernel_of(run, "SelectiveScan") == "cuda:selective-scan");
  REQUIRE(run.outputs.size() == static_cast<size_t>(outputs));
  INFO("nmse bound " << bound);
  CHECK(nmse(run.outputs[0], want) < bound);
  if (outputs == 2) CHECK(nmse(run.outputs[1], want_h) < bound);
}

}  // namespace

TEST_CASE("cuda backend: memory, copies and synchronization", "[cuda]") {
  backends::Backend* cuda = cuda_or_skip();
  if (cuda == nullptr) return;
  CHECK(cuda->name() == "cuda");
  CHECK(cuda->device() == backends::DeviceKind::CUDA);
  std::vector<float> host = random_values(1000, 1), back(1000, 0.0f);
  Result<void*> buffer = cuda->allocate(host.size() * sizeof(float));
  REQUIRE(buffer.is_ok());
  REQUIRE(cuda->copy_to_device(buffer.value(), host.data(), host.size() * sizeof(float)).is_ok());
  REQUIRE(cuda->copy_to_host(back.data(), buffer.value(), back.size() * sizeof(float)).is_ok());
  CHECK(back == host);
  CHECK(cuda->synchronize().is_ok());
  cuda->deallocate(buffer.value());
#if SEQRUN_HAVE_CUDA
  // A second backend with its own stream works side by side with the process-wide one.
  Result<std::unique_ptr<backends::Backend>> own = backends::make_cuda_backend();
  REQUIRE(own.is_ok());
  Result<void*> other = own.value()->allocate(host.size() * sizeof(float));
  REQUIRE(other.is_ok());
  std::vector<float> back2(1000, 0.0f);
  REQUIRE(own.value()->copy_to_device(other.value(), host.data(), host.size() * sizeof(float)).is_ok());
  REQUIRE(own.value()->copy_to_host(back2.data(), other.value(), back2.size() * sizeof(float)).is_ok());
  CHECK(back2 == host);
  own.value()->deallocate(other.value());
#endif
  // The placement list puts the CPU after CUDA, for the fallback.
  Result<std::vector<backends::Backend*>> list = backends::backend_list_by_name("cuda");
  REQUIRE(list.is_ok());
  REQUIRE(list.value().size() == 2);
  CHECK(list.value()[1]->name() == "cpu");
}

TEST_CASE("cuda backend: MatMul, Linear, FusedLinear and Gemm through cuBLASLt", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("MatMul with a 2-D right operand folds the batch") {
    const Tensor a = random_tensor(DType::f32, {2, 3, 5, 7}, 1), w = random_tensor(DType::f32, {7, 4}, 2);
    OneNode one;
    one.input(a);
    one.input(w);
    CudaRun run = one.run("MatMul", 1);
    CHECK(backend_of(run, "MatMul") == "cuda");
    CHECK(nmse(run.outputs[0], naive_matmul(values_of(a), values_of(w), 1, 30, 7, 4, 0, 0)) < 1e-10);
  }
  SECTION("batched MatMul and a broadcast left operand") {
    const Tensor a = random_tensor(DType::f32, {2, 5, 7}, 3), b = random_tensor(DType::f32, {2, 7, 6}, 4);
    OneNode one;
    one.input(a);
    one.input(b);
    CudaRun run = one.run("MatMul", 1);
    CHECK(nmse(run.outputs[0], naive_matmul(values_of(a), values_of(b), 2, 5, 7, 6, 35, 42)) < 1e-10);
    const Tensor a2 = random_tensor(DType::f32, {5, 7}, 5);
    OneNode two;
    two.input(a2);
    two.input(b);
    CudaRun run2 = two.run("MatMul", 1);
    CHECK(nmse(run2.outputs[0], naive_matmul(values_of(a2), values_of(b), 2, 5, 7, 6, 0, 42)) < 1e-10);
  }
  SECTION("MatMul of vectors") {
    const Tensor x = random_tensor(DType::f32, {7}, 6), w = random_tensor(DType::f32, {7, 3}, 7);
    OneNode one;
    one.input(x);
    one.input(w);
    CudaRun run = one.run("MatMul", 1);
    CHECK(run.outputs[0].shape() == Shape{3});
    CHECK(nmse(run.outputs[0], naive_matmul(values_of(x), values_of(w), 1, 1, 7, 3, 0, 0)) < 1e-10);
  }
  SECTION("Linear with bias, weight a constant") {
    const Tensor x = random_tensor(DType::f32, {2, 3, 8}, 8), w = random_tensor(DType::f32, {5, 8}, 9),
                 bias = random_tensor(DType::f32, {5}, 10);
    OneNode one;
    one.input(x);
    one.constant(w);
    one.constant(bias);
    CudaRun run = one.run("Linear", 1);
    CHECK(backend_of(run, "Linear") == "cuda");
    const std::vector<double> xv = values_of(x), wv = values_of(w), bv = values_of(bias);
    std::vector<double> want;
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t o = 0; o < 5; ++o) {
        double acc = bv[o];
        for (int64_t i = 0; i < 8; ++i) acc += xv[r * 8 + i] * wv[o * 8 + i];
        want.push_back(acc);
      }
    CHECK(nmse(run.outputs[0], want) < 1e-10);
  }
  SECTION("FusedLinear epilogues: relu with bias, gelu, silu") {
    for (const char* act : {"relu", "gelu", "silu", "none"}) {
      const Tensor x = random_tensor(DType::f32, {6, 16}, 20), w = random_tensor(DType::f32, {16, 24}, 21),
                   bias = random_tensor(DType::f32, {24}, 22);
      OneNode one;
      one.input(x);
      one.constant(w);
      one.constant(bias);
      CudaRun run = one.run("FusedLinear", 1, {{"activation", Attribute(std::string(act))}});
      CHECK(backend_of(run, "FusedLinear") == "cuda");
      std::vector<double> want = naive_matmul(values_of(x), values_of(w), 1, 6, 16, 24, 0, 0);
      const std::vector<double> bv = values_of(bias);
      for (size_t i = 0; i < want.size(); ++i) {
        double z = want[i] + bv[i % 24];
        if (std::string(act) == "relu") z = z < 0 ? 0 : z;
        if (std::string(act) == "gelu") z = 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
        if (std::string(act) == "silu") z = z / (1.0 + std::exp(-z));
        want[i] = z;
      }
      INFO(act);
      CHECK(nmse(run.outputs[0], want) < 1e-10);
    }
  }
  SECTION("Gemm with transA, alpha and a bias row") {
    const Tensor a = random_tensor(DType::f32, {7, 5}, 30), b = random_tensor(DType::f32, {7, 3}, 31),
                 c = random_tensor(DType::f32, {3}, 32);
    OneNode one;
    one.input(a);
    one.input(b);
    one.input(c);
    CudaRun run = one.run("Gemm", 1, {{"transA", Attribute(int64_t{1})}, {"alpha", Attribute(0.5f)}});
    CHECK(backend_of(run, "Gemm") == "cuda");
    const std::vector<double> av = values_of(a), bv = values_of(b), cv = values_of(c);
    std::vector<double> want;
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        double acc = 0.0;
        for (int64_t k = 0; k < 7; ++k) acc += av[k * 5 + i] * bv[k * 3 + j];
        want.push_back(0.5 * acc + cv[j]);
      }
    CHECK(nmse(run.outputs[0], want) < 1e-10);
  }
  SECTION("bf16 and f16 MatMul accumulate in f32") {
    for (DType dt : {DType::bf16, DType::f16}) {
      const Tensor a = random_tensor(dt, {64, 96}, 40), b = random_tensor(dt, {96, 80}, 41);
      OneNode one;
      one.input(a);
      one.input(b);
      CudaRun run = one.run("MatMul", 1);
      CHECK(run.outputs[0].dtype() == dt);
      CHECK(nmse(run.outputs[0], naive_matmul(values_of(a), values_of(b), 1, 64, 96, 80, 0, 0)) < 1e-4);
    }
  }
}

TEST_CASE("cuda backend: elementwise, Where, Cast", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  const Tensor a = random_tensor(DType::f32, {3, 1, 5}, 50),
               b = random_tensor(DType::f32, {4, 1}, 51, 0.5f, 2.0f);
  SECTION("broadcast Add, Div and Max") {
    for (const char* op : {"Add", "Div", "Max"}) {
      OneNode one;
      one.input(a);
      one.input(b);
      CudaRun run = one.run(op, 1);
      CHECK(backend_of(run, op) == "cuda");
      REQUIRE(run.outputs[0].shape() == Shape{3, 4, 5});
      const std::vector<double> av = values_of(a), bv = values_of(b);
      std::vector<double> want;
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j)
          for (int64_t k = 0; k < 5; ++k) {
            const double x = av[i * 5 + k], y = bv[j];
            want.push_back(std::string(op) == "Add"   ? x + y
                           : std::string(op) == "Div" ? x / y
                                                      : std::max(x, y));
          }
      INFO(op);
      CHECK(nmse(run.outputs[0], want) < 1e-12);
    }
  }
  SECTION("unary activations in f32 and bf16") {
    for (DType dt : {DType::f32, DType::bf16}) {
      const Tensor x = random_tensor(dt, {7, 33}, 52, -4.0f, 4.0f);
      for (const char* op : {"Gelu", "Sigmoid", "Tanh", "Exp", "Silu", "Neg"}) {
        OneNode one;
        one.input(x);
        CudaRun run = one.run(op, 1);
        CHECK(backend_of(run, op) == "cuda");
        std::vector<double> want;
        for (double v : values_of(x)) {
          const std::string o = op;
          want.push_back(o == "Gelu"      ? 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)))
                         : o == "Sigmoid" ? 1.0 / (1.0 + std::exp(-v))
                         : o == "Tanh"    ? std::tanh(v)
                         : o == "Exp"     ? std::exp(v)
                         : o == "Silu"    ? v / (1.0 + std::exp(-v))
                                          : -v);
        }
        INFO(op << " " << dtype_name(dt));
        CHECK(nmse(run.outputs[0], want) < (dt == DType::f32 ? 1e-12 : 1e-4));
      }
    }
  }
  SECTION("Where with a broadcast condition, and Cast f32 -> bf16") {
    std::vector<bool> cond_values = {true, false, true, true, false};
    const Tensor cond = Tensor::from_vector<bool>({5}, cond_values);
    const Tensor x = random_tensor(DType::f32, {3, 5}, 53), y = random_tensor(DType::f32, {3, 1}, 54);
    OneNode one;
    one.input(cond);
    one.input(x);
    one.input(y);
    CudaRun run = one.run("Where", 1);
    CHECK(backend_of(run, "Where") == "cuda");
    const std::vector<double> xv = values_of(x), yv = values_of(y);
    std::vector<double> want;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) want.push_back(cond_values[j] ? xv[i * 5 + j] : yv[i]);
    CHECK(nmse(run.outputs[0], want) == 0.0);

    OneNode cast;
    cast.input(x);
    CudaRun run2 = cast.run("Cast", 1, {{"to", Attribute(int64_t{16})}});  // 16 = BFLOAT16
    CHECK(backend_of(run2, "Cast") == "cuda");
    REQUIRE(run2.outputs[0].dtype() == DType::bf16);
    CHECK(nmse(run2.outputs[0], values_of(x.cast(DType::bf16))) == 0.0);
  }
}

TEST_CASE("cuda backend: Softmax, LayerNormalization, RMSNormalization and reductions", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  const Tensor x = random_tensor(DType::f32, {3, 5, 7}, 60, -3.0f, 3.0f);
  const std::vector<double> xv = values_of(x);
  SECTION("Softmax over a middle axis and LogSoftmax over the last") {
    OneNode one;
    one.input(x);
    CudaRun run = one.run("Softmax", 1, {{"axis", Attribute(int64_t{1})}});
    CHECK(backend_of(run, "Softmax") == "cuda");
    std::vector<double> want(xv.size());
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 7; ++k) {
        double mx = -1e300, sum = 0.0;
        for (int64_t j = 0; j < 5; ++j) mx = std::max(mx, xv[(i * 5 + j) * 7 + k]);
        for (int64_t j = 0; j < 5; ++j) sum += std::exp(xv[(i * 5 + j) * 7 + k] - mx);
        for (int64_t j = 0; j < 5; ++j)
          want[(i * 5 + j) * 7 + k] = std::exp(xv[(i * 5 + j) * 7 + k] - mx) / sum;
      }
    CHECK(nmse(run.outputs[0], want) < 1e-12);

    OneNode two;
    two.input(x);
    CudaRun run2 = two.run("LogSoftmax", 1);
    for (int64_t r = 0; r < 15; ++r) {
      double mx = -1e300, sum = 0.0;
      for (int64_t j = 0; j < 7; ++j) mx = std::max(mx, xv[r * 7 + j]);
      for (int64_t j = 0; j < 7; ++j) sum += std::exp(xv[r * 7 + j] - mx);
      for (int64_t j = 0; j < 7; ++j) want[r * 7 + j] = xv[r * 7 + j] - mx - std::log(sum);
    }
    CHECK(nmse(run2.outputs[0], want) < 1e-12);
  }
  SECTION("LayerNormalization with Mean and InvStdDev, RMSNormalization") {
    const Tensor scale = random_tensor(DType::f32, {7}, 61), bias = random_tensor(DType::f32, {7}, 62);
    OneNode one;
    one.input(x);
    one.constant(scale);
    one.constant(bias);
    CudaRun run = one.run("LayerNormalization", 3, {{"epsilon", Attribute(1e-3f)}});
    CHECK(backend_of(run, "LayerNormalization") == "cuda");
    const std::vector<double> sv = values_of(scale), bv = values_of(bias);
    std::vector<double> want, means, inv_stds, want_rms;
    for (int64_t r = 0; r < 15; ++r) {
      double mean = 0.0, var = 0.0, sq = 0.0;
      for (int64_t j = 0; j < 7; ++j) mean += xv[r * 7 + j] / 7.0;
      for (int64_t j = 0; j < 7; ++j) var += (xv[r * 7 + j] - mean) * (xv[r * 7 + j] - mean) / 7.0;
      for (int64_t j = 0; j < 7; ++j) sq += xv[r * 7 + j] * xv[r * 7 + j] / 7.0;
      const double inv = 1.0 / std::sqrt(var + 1e-3), inv_rms = 1.0 / std::sqrt(sq + 1e-3);
      means.push_back(mean);
      inv_stds.push_back(inv);
      for (int64_t j = 0; j < 7; ++j) want.push_back((xv[r * 7 + j] - mean) * inv * sv[j] + bv[j]);
      for (int64_t j = 0; j < 7; ++j) want_rms.push_back(xv[r * 7 + j] * inv_rms * sv[j]);
    }
    CHECK(nmse(run.outputs[0], want) < 1e-12);
    CHECK(nmse(run.outputs[1], means) < 1e-12);
    CHECK(nmse(run.outputs[2], inv_stds) < 1e-12);

    OneNode two;
    two.input(x);
    two.constant(scale);
    CudaRun run2 = two.run("RMSNormalization", 1, {{"epsilon", Attribute(1e-3f)}});
    CHECK(backend_of(run2, "RMSNormalization") == "cuda");
    CHECK(nmse(run2.outputs[0], want_rms) < 1e-12);
  }
  SECTION("ReduceSum over a middle axis, ReduceMax over the last, ReduceMean over two") {
    struct R {
      const char* op;
      std::vector<int64_t> axes;
    };
    for (const R& r : {R{"ReduceSum", {1}}, R{"ReduceMax", {-1}}, R{"ReduceMean", {0, 1}}}) {
      OneNode one;
      one.input(x);
      one.constant(Tensor::from_vector<int64_t>({static_cast<int64_t>(r.axes.size())}, r.axes));
      CudaRun run = one.run(r.op, 1);
      CHECK(backend_of(run, r.op) == "cuda");
      std::vector<double> want;
      const std::string op = r.op;
      if (op == "ReduceSum") {
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t k = 0; k < 7; ++k) {
            double s = 0.0;
            for (int64_t j = 0; j < 5; ++j) s += xv[(i * 5 + j) * 7 + k];
            want.push_back(s);
          }
      } else if (op == "ReduceMax") {
        for (int64_t rr = 0; rr < 15; ++rr) {
          double m = -1e300;
          for (int64_t j = 0; j < 7; ++j) m = std::max(m, xv[rr * 7 + j]);
          want.push_back(m);
        }
      } else {
        for (int64_t k = 0; k < 7; ++k) {
          double s = 0.0;
          for (int64_t rr = 0; rr < 15; ++rr) s += xv[rr * 7 + k];
          want.push_back(s / 15.0);
        }
      }
      INFO(op);
      CHECK(nmse(run.outputs[0], want) < 1e-12);
    }
  }
}

TEST_CASE("cuda backend: Gather, Transpose and RotaryEmbedding", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("Gather with negative indices; an index out of range is an error naming the node") {
    const Tensor data = random_tensor(DType::f32, {5, 3}, 70);
    OneNode one;
    one.input(data);
    one.input(Tensor::from_vector<int64_t>({2, 2}, {0, -1, 4, 2}));
    CudaRun run = one.run("Gather", 1);
    CHECK(backend_of(run, "Gather") == "cuda");
    const std::vector<double> dv = values_of(data);
    std::vector<double> want;
    for (int64_t idx : {0, 4, 4, 2})
      for (int64_t j = 0; j < 3; ++j) want.push_back(dv[idx * 3 + j]);
    CHECK(nmse(run.outputs[0], want) == 0.0);

    auto g = std::make_unique<Graph>("bad_gather");
    Value* d = g->add_input("data", TensorType::from_shape(DType::f32, {5, 3}));
    Value* i = g->add_input("indices", TensorType::from_shape(DType::i64, {2}));
    Node* node = g->add_node("Gather", {d, i}, 1);
    node->set_name("the_gather");
    g->set_outputs(node->outputs());
    runtime::SessionOptions options;
    options.opt_level = 0;
    options.backends = backends::backend_list_by_name("cuda").value();
    auto session = runtime::Session::from_graph(std::move(g), options);
    REQUIRE(session.is_ok());
    auto bad = session.value()->run(std::vector<Tensor>{data, Tensor::from_vector<int64_t>({2}, {1, 7})});
    REQUIRE_FALSE(bad.is_ok());
    CHECK_THAT(bad.status().message(), Catch::Contains("the_gather") && Catch::Contains("out of range"));
    // The next run works again.
    auto good = session.value()->run(std::vector<Tensor>{data, Tensor::from_vector<int64_t>({2}, {1, 3})});
    CHECK(good.is_ok());
  }
  SECTION("Transpose in f32 and f16") {
    for (DType dt : {DType::f32, DType::f16}) {
      const Tensor x = random_tensor(dt, {2, 3, 4}, 71);
      OneNode one;
      one.input(x);
      CudaRun run = one.run("Transpose", 1, {{"perm", Attribute(std::vector<int64_t>{2, 0, 1})}});
      CHECK(backend_of(run, "Transpose") == "cuda");
      REQUIRE(run.outputs[0].shape() == Shape{4, 2, 3});
      const std::vector<double> xv = values_of(x);
      std::vector<double> want;
      for (int64_t k = 0; k < 4; ++k)
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < 3; ++j) want.push_back(xv[(i * 3 + j) * 4 + k]);
      CHECK(nmse(run.outputs[0], want) == 0.0);
    }
  }
  SECTION("RotaryEmbedding with positions and a partial rotary dim; packed interleaved") {
    const int64_t B = 2, H = 3, S = 4, D = 8;
    const Tensor x = random_tensor(DType::f32, {B, H, S, D}, 72);
    const Tensor cos_cache = random_tensor(DType::f32, {10, 2}, 73),
                 sin_cache = random_tensor(DType::f32, {10, 2}, 74);
    const std::vector<int64_t> pos = {3, 1, 0, 9, 2, 2, 5, 7};
    OneNode one;
    one.input(x);
    one.constant(cos_cache);
    one.constant(sin_cache);
    one.input(Tensor::from_vector<int64_t>({B, S}, pos));
    CudaRun run = one.run("RotaryEmbedding", 1, {{"rotary_embedding_dim", Attribute(int64_t{4})}});
    CHECK(backend_of(run, "RotaryEmbedding") == "cuda");
    const std::vector<double> xv = values_of(x), cv = values_of(cos_cache), sv = values_of(sin_cache);
    std::vector<double> want = xv;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t off = ((b * H + h) * S + s) * D, p = pos[b * S + s];
          for (int64_t i = 0; i < 2; ++i) {
            const double x1 = xv[off + i], x2 = xv[off + i + 2];
            want[off + i] = cv[p * 2 + i] * x1 - sv[p * 2 + i] * x2;
            want[off + i + 2] = sv[p * 2 + i] * x1 + cv[p * 2 + i] * x2;
          }
        }
    CHECK(nmse(run.outputs[0], want) < 1e-12);

    const Tensor xp = random_tensor(DType::f32, {B, S, H * D}, 75);
    const Tensor cp = random_tensor(DType::f32, {B, S, D / 2}, 76),
                 sp = random_tensor(DType::f32, {B, S, D / 2}, 77);
    OneNode two;
    two.input(xp);
    two.input(cp);
    two.input(sp);
    CudaRun run2 =
        two.run("RotaryEmbedding", 1, {{"num_heads", Attribute(H)}, {"interleaved", Attribute(int64_t{1})}});
    const std::vector<double> xpv = values_of(xp), cpv = values_of(cp), spv = values_of(sp);
    std::vector<double> want2 = xpv;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t h = 0; h < H; ++h) {
          const int64_t off = (b * S + s) * H * D + h * D, row = (b * S + s) * (D / 2);
          for (int64_t i = 0; i < D / 2; ++i) {
            const double x1 = xpv[off + 2 * i], x2 = xpv[off + 2 * i + 1];
            want2[off + 2 * i] = cpv[row + i] * x1 - spv[row + i] * x2;
            want2[off + 2 * i + 1] = spv[row + i] * x1 + cpv[row + i] * x2;
          }
        }
    CHECK(nmse(run2.outputs[0], want2) < 1e-12);
  }
}

TEST_CASE("cuda backend: Attention in f32 (CUDA-core kernel)", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("4-D, GQA, causal, a past cache, head sizes 40/24 (present outputs exact)") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 4, c.kv_heads = 2, c.q_len = 37, c.kv_len = 37, c.past_len = 5, c.d = 40,
    c.dv = 24;
    c.causal = true;
    check_attention(c, DType::f32, 1e-10, "cuda:attention");
  }
  SECTION("packed 3-D with a bool mask, softcap and scale") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 4, c.kv_heads = 4, c.q_len = 9, c.kv_len = 45, c.d = 16, c.dv = 16;
    c.packed = true;
    c.scale = 0.3;
    c.softcap = 5.0;
    std::vector<bool> bits;
    for (int64_t i = 0; i < 2 * 9 * 45; ++i) bits.push_back((i * 7 + 3) % 5 != 0 && i % 45 != 44);
    for (int64_t j = 0; j < 45; ++j) bits[2 * 45 + j] = false;  // batch 0, row 2: fully masked -> zeros
    const Tensor mask = Tensor::from_vector<bool>({2, 1, 9, 45}, bits);
    check_attention(c, DType::f32, 1e-10, "cuda:attention", &mask,
                    [&](int64_t b, int64_t, int64_t i, int64_t j) {
                      return bits[(b * 9 + i) * 45 + j] ? 0.0 : -std::numeric_limits<double>::infinity();
                    });
  }
  SECTION("a float mask shorter than the keys (the rest is masked)") {
    AttentionCase c;
    c.q_heads = 2, c.kv_heads = 1, c.q_len = 6, c.kv_len = 70, c.d = 8, c.dv = 72;
    const std::vector<float> mv = random_values(6 * 64, 80, -2.0f, 0.0f);
    const Tensor mask = Tensor::from_vector<float>({6, 64}, mv);
    check_attention(
        c, DType::f32, 1e-10, "cuda:attention", &mask, [&](int64_t, int64_t, int64_t i, int64_t j) {
          return j < 64 ? static_cast<double>(mv[i * 64 + j]) : -std::numeric_limits<double>::infinity();
        });
  }
  SECTION("nonpad_kv_seqlen with is_causal (an external cache)") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 2, c.kv_heads = 2, c.q_len = 3, c.kv_len = 20, c.d = 32, c.dv = 32;
    c.causal = true;
    c.nonpad = {7, 20};
    check_attention(c, DType::f32, 1e-10, "cuda:attention");
  }
}

TEST_CASE("cuda backend: Attention in bf16/f16 on tensor cores and on the CUDA-core kernel", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("bf16, D = 64, GQA, causal, a partial last query block") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 4, c.kv_heads = 2, c.q_len = 130, c.kv_len = 130, c.d = 64, c.dv = 64;
    c.causal = true;
    check_attention(c, DType::bf16, 1e-4, "cuda:attention-mma");
    {
      ScopedEnv v1("SEQRUN_CUDA_ATTENTION", "mma-v1");
      check_attention(c, DType::bf16, 1e-4, "cuda:attention-mma-v1");
    }
    ScopedEnv simple("SEQRUN_CUDA_ATTENTION", "simple");
    check_attention(c, DType::bf16, 1e-4, "cuda:attention");
  }
  SECTION("f16, D = 128, packed, a float mask, a past cache") {
    AttentionCase c;
    c.batch = 1, c.q_heads = 2, c.kv_heads = 1, c.q_len = 70, c.kv_len = 70, c.past_len = 33, c.d = 128,
    c.dv = 128;
    c.packed = false;
    const int64_t T = c.past_len + c.kv_len;
    const Tensor mask = random_tensor(DType::f16, {c.q_len, T}, 81, -3.0f, 0.0f);
    const std::vector<double> mv = values_of(mask);
    auto bias = [&](int64_t, int64_t, int64_t i, int64_t j) { return mv[i * T + j]; };
    check_attention(c, DType::f16, 1e-5, "cuda:attention-mma", &mask, bias);
    {
      ScopedEnv v1("SEQRUN_CUDA_ATTENTION", "mma-v1");
      check_attention(c, DType::f16, 1e-5, "cuda:attention-mma-v1", &mask, bias);
    }
    ScopedEnv simple("SEQRUN_CUDA_ATTENTION", "simple");
    check_attention(c, DType::f16, 1e-5, "cuda:attention", &mask, bias);
  }
  SECTION("bf16 packed, softcap, non-causal, D = 128") {
    AttentionCase c;
    c.batch = 1, c.q_heads = 4, c.kv_heads = 1, c.q_len = 64, c.kv_len = 200, c.d = 128, c.dv = 128;
    c.packed = true;
    c.softcap = 8.0;
    check_attention(c, DType::bf16, 1e-4, "cuda:attention-mma");
  }
  SECTION("several query blocks and key tiles: bf16 D = 64 non-causal; f16 D = 128 causal after a past") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 2, c.kv_heads = 2, c.q_len = 300, c.kv_len = 300, c.d = 64, c.dv = 64;
    check_attention(c, DType::bf16, 1e-4, "cuda:attention-mma");
    AttentionCase c2;
    c2.batch = 1, c2.q_heads = 2, c2.kv_heads = 1, c2.q_len = 257, c2.kv_len = 257, c2.past_len = 5,
    c2.d = 128, c2.dv = 128;
    c2.causal = true;
    check_attention(c2, DType::f16, 1e-5, "cuda:attention-mma");
  }
  SECTION("bf16 D = 64, a bool mask and nonpad_kv_seqlen with is_causal (external cache)") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 2, c.kv_heads = 1, c.q_len = 40, c.kv_len = 150, c.d = 64, c.dv = 64;
    c.causal = true;
    c.nonpad = {97, 150};
    std::vector<bool> bits;
    for (int64_t i = 0; i < 2 * 40 * 150; ++i) bits.push_back((i * 13 + 5) % 7 != 0);
    const Tensor mask = Tensor::from_vector<bool>({2, 1, 40, 150}, bits);
    auto bias = [&](int64_t b, int64_t, int64_t i, int64_t j) {
      return bits[(b * 40 + i) * 150 + j] ? 0.0 : -std::numeric_limits<double>::infinity();
    };
    check_attention(c, DType::bf16, 1e-4, "cuda:attention-mma", &mask, bias);
    ScopedEnv simple("SEQRUN_CUDA_ATTENTION", "simple");
    check_attention(c, DType::bf16, 1e-4, "cuda:attention", &mask, bias);
  }
  SECTION("bf16 decode: one query against a 300-token cache") {
    AttentionCase c;
    c.batch = 2, c.q_heads = 8, c.kv_heads = 2, c.q_len = 1, c.kv_len = 1, c.past_len = 300, c.d = 64,
    c.dv = 64;
    c.causal = true;
    check_attention(c, DType::bf16, 1e-4, "cuda:attention");
  }
}

TEST_CASE("cuda backend: LinearAttention (recurrent) and CausalConvWithState", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("gated_delta with per-key decay, past state and GQA") {
    const int64_t B = 2, T = 9, hq = 4, hkv = 2, dk = 16, dv = 40;
    const Tensor q = random_tensor(DType::f32, {B, T, hq * dk}, 90),
                 k = random_tensor(DType::f32, {B, T, hkv * dk}, 91, -0.25f, 0.25f),
                 v = random_tensor(DType::f32, {B, T, hkv * dv}, 92),
                 state = random_tensor(DType::f32, {B, hkv, dk, dv}, 93),
                 decay = random_tensor(DType::f32, {B, T, hkv * dk}, 94, -1.0f, -0.01f),
                 beta = random_tensor(DType::f32, {B, T, hkv}, 95, 0.05f, 1.0f);
    OneNode one;
    for (const Tensor* t : {&q, &k, &v, &state, &decay, &beta}) one.input(*t);
    CudaRun run = one.run("LinearAttention", 2,
                          {{"q_num_heads", Attribute(hq)},
                           {"kv_num_heads", Attribute(hkv)},
                           {"update_rule", Attribute(std::string("gated_delta"))}});
    CHECK(backend_of(run, "LinearAttention") == "cuda");
    const std::vector<double> qv = values_of(q), kv = values_of(k), vv = values_of(v), sv = values_of(state),
                              gv = values_of(decay), bv = values_of(beta);
    std::vector<double> want_y(static_cast<size_t>(B * T * hq * dv)), want_s(sv.size());
    const double scale = 1.0 / std::sqrt(static_cast<double>(dk));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < hkv; ++h) {
        std::vector<double> S(sv.begin() + (b * hkv + h) * dk * dv, sv.begin() + (b * hkv + h + 1) * dk * dv);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t tok = b * T + t;
          for (int64_t r = 0; r < dk; ++r)
            for (int64_t c = 0; c < dv; ++c) S[r * dv + c] *= std::exp(gv[tok * hkv * dk + h * dk + r]);
          for (int64_t c = 0; c < dv; ++c) {
            double ret = 0.0;
            for (int64_t r = 0; r < dk; ++r) ret += S[r * dv + c] * kv[(tok * hkv + h) * dk + r];
            const double u = bv[tok * hkv + h] * (vv[(tok * hkv + h) * dv + c] - ret);
            for (int64_t r = 0; r < dk; ++r) S[r * dv + c] += kv[(tok * hkv + h) * dk + r] * u;
          }
          for (int64_t g = 0; g < hq / hkv; ++g) {
            const int64_t qh = h * (hq / hkv) + g;
            for (int64_t c = 0; c < dv; ++c) {
              double acc = 0.0;
              for (int64_t r = 0; r < dk; ++r) acc += qv[(tok * hq + qh) * dk + r] * S[r * dv + c];
              want_y[(tok * hq + qh) * dv + c] = scale * acc;
            }
          }
        }
        std::copy(S.begin(), S.end(), want_s.begin() + (b * hkv + h) * dk * dv);
      }
    CHECK(nmse(run.outputs[0], want_y) < 1e-10);
    CHECK(nmse(run.outputs[1], want_s) < 1e-10);
  }
  SECTION("CausalConvWithState with bias, past state and SiLU") {
    const int64_t B = 2, C = 5, L = 7, K = 4;
    const Tensor x = random_tensor(DType::f32, {B, C, L}, 100), w = random_tensor(DType::f32, {C, 1, K}, 101),
                 bias = random_tensor(DType::f32, {C}, 102),
                 past = random_tensor(DType::f32, {B, C, K - 1}, 103);
    OneNode one;
    one.input(x);
    one.constant(w);
    one.constant(bias);
    one.input(past);
    CudaRun run = one.run("CausalConvWithState", 2, {{"activation", Attribute(std::string("silu"))}});
    CHECK(backend_of(run, "CausalConvWithState") == "cuda");
    const std::vector<double> xv = values_of(x), wv = values_of(w), bv = values_of(bias),
                              pv = values_of(past);
    std::vector<double> want_y, want_s;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) {
        std::vector<double> seq;
        for (int64_t i = 0; i < K - 1; ++i) seq.push_back(pv[(b * C + c) * (K - 1) + i]);
        for (int64_t i = 0; i < L; ++i) seq.push_back(xv[(b * C + c) * L + i]);
        for (int64_t t = 0; t < L; ++t) {
          double acc = bv[c];
          for (int64_t j = 0; j < K; ++j) acc += wv[c * K + j] * seq[t + j];
          want_y.push_back(acc / (1.0 + std::exp(-acc)));
        }
        for (int64_t i = 0; i < K - 1; ++i) want_s.push_back(seq[L + i]);
      }
    CHECK(nmse(run.outputs[0], want_y) < 1e-12);
    CHECK(nmse(run.outputs[1], want_s) == 0.0);
  }
}

TEST_CASE("cuda backend: SelectiveScan against a naive double loop", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("f32, N = 16, D, z, delta_bias and h0; a partial channel block and a partial time round") {
    ScanShape s;
    s.batch = 2, s.channels = 20, s.length = 45, s.state = 16;
    check_selective_scan(s, DType::f32, DType::f32, true, true, true, true, true, 2, 1e-9, 200);
  }
  SECTION("f32, grouped Bmat/Cmat (G = 2), N = 40, no softplus, no optional inputs, one output") {
    ScanShape s;
    s.batch = 1, s.channels = 12, s.length = 70, s.state = 40, s.groups = 2;
    check_selective_scan(s, DType::f32, DType::f32, false, false, false, false, false, 1, 1e-9, 210);
  }
  SECTION("f32, N = 64 and N = 5 (the smallest lane split), z without D") {
    ScanShape s;
    s.batch = 1, s.channels = 9, s.length = 33, s.state = 64;
    check_selective_scan(s, DType::f32, DType::f32, false, true, true, false, true, 2, 1e-9, 220);
    s.batch = 3, s.channels = 17, s.length = 64, s.state = 5;
    check_selective_scan(s, DType::f32, DType::f32, true, false, false, true, true, 2, 1e-9, 230);
  }
  SECTION("bf16 activations with f32 A/D/bias/h0; f16 everywhere") {
    ScanShape s;
    s.batch = 2, s.channels = 24, s.length = 100, s.state = 16;
    check_selective_scan(s, DType::bf16, DType::f32, true, true, true, true, true, 2, 1e-4, 240);
    s.groups = 4;
    check_selective_scan(s, DType::f16, DType::f16, true, true, true, true, true, 2, 1e-5, 250);
  }
  SECTION("decode step: L = 1 with h0 in and the state out (N = 16 and N = 8)") {
    ScanShape s;
    s.batch = 2, s.channels = 40, s.length = 1, s.state = 16;
    check_selective_scan(s, DType::f32, DType::f32, true, true, true, true, true, 2, 1e-9, 260);
    s.state = 8;
    check_selective_scan(s, DType::f32, DType::f32, true, false, true, true, true, 2, 1e-9, 270);
  }
}

TEST_CASE("cuda backend: TokenShift and the one-token steps of CausalConvWithState", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  SECTION("TokenShift with a state (f32, bf16) and without one (f16, one token)") {
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const int64_t B = 2, T = dt == DType::f16 ? 1 : 7, C = 13;
      const Tensor x = random_tensor(dt, {B, T, C}, 300), state = random_tensor(dt, {B, C}, 301);
      const bool with_state = dt != DType::f16;
      OneNode one;
      one.input(x);
      if (with_state) one.input(state);
      CudaRun run = one.run("TokenShift", 2);
      INFO(dtype_name(dt));
      CHECK(backend_of(run, "TokenShift") == "cuda");
      CHECK(kernel_of(run, "TokenShift") == "cuda:token-shift");
      const std::vector<double> xv = values_of(x), sv = values_of(state);
      std::vector<double> want_y, want_s;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t c = 0; c < C; ++c) {
            if (t > 0) {
              want_y.push_back(xv[(b * T + t - 1) * C + c]);
            } else {
              want_y.push_back(with_state ? sv[b * C + c] : 0.0);
            }
          }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c) want_s.push_back(xv[(b * T + T - 1) * C + c]);
      CHECK(nmse(run.outputs[0], want_y) == 0.0);
      CHECK(nmse(run.outputs[1], want_s) == 0.0);
    }
  }
  SECTION("CausalConvWithState, one token at a time, reproduces the whole sequence") {
    const int64_t B = 2, C = 6, L = 5, K = 4;
    const Tensor x = random_tensor(DType::f32, {B, C, L}, 310), w = random_tensor(DType::f32, {C, 1, K}, 311),
                 bias = random_tensor(DType::f32, {C}, 312);
    const std::vector<double> xv = values_of(x), wv = values_of(w), bv = values_of(bias);
    // The whole sequence with zero history, naively.
    std::vector<double> want(static_cast<size_t>(B * C * L));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < L; ++t) {
          double acc = bv[c];
          for (int64_t j = 0; j < K; ++j) {
            const int64_t src = t + j - (K - 1);
            if (src >= 0) acc += wv[c * K + j] * xv[(b * C + c) * L + src];
          }
          want[(b * C + c) * L + t] = acc / (1.0 + std::exp(-acc));
        }
    Tensor state = Tensor::from_vector<float>({B, C, K - 1}, std::vector<float>(B * C * (K - 1), 0.0f));
    for (int64_t t = 0; t < L; ++t) {
      std::vector<float> step(static_cast<size_t>(B * C));
      for (int64_t i = 0; i < B * C; ++i) step[i] = static_cast<float>(xv[i * L + t]);
      OneNode one;
      one.input(Tensor::from_vector<float>({B, C, 1}, step));
      one.constant(w);
      one.constant(bias);
      one.input(state);
      CudaRun run = one.run("CausalConvWithState", 2, {{"activation", Attribute(std::string("silu"))}});
      CHECK(backend_of(run, "CausalConvWithState") == "cuda");
      std::vector<double> want_t;
      for (int64_t i = 0; i < B * C; ++i) want_t.push_back(want[i * L + t]);
      INFO("step " << t);
      CHECK(nmse(run.outputs[0], want_t) < 1e-12);
      // The new state holds the last K - 1 inputs (zeros before the first).
      std::vector<double> want_state;
      for (int64_t i = 0; i < B * C; ++i)
        for (int64_t k = 0; k < K - 1; ++k) {
          const int64_t src = t - (K - 2) + k;
          want_state.push_back(src >= 0 ? xv[i * L + src] : 0.0);
        }
      CHECK(nmse(run.outputs[1], want_state) == 0.0);
      state = run.outputs[1];
    }
  }
}

TEST_CASE("cuda backend: ops without a CUDA kernel fall back to the CPU with copies", "[cuda]") {
  if (cuda_or_skip() == nullptr) return;
  auto g = std::make_unique<Graph>("fallback");
  Value* x = g->add_input("x", TensorType::from_shape(DType::f32, {4, 6}));
  Node* e = g->add_node("Exp", {x}, 1);
  Node* cs = g->add_node("CumSum", {e->output(0), g->add_constant("axis", Tensor::scalar<int64_t>(1))}, 1);
  Node* n = g->add_node("Neg", {cs->output(0)}, 1);
  g->set_outputs(n->outputs());
  const Tensor xt = random_tensor(DType::f32, {4, 6}, 110);
  CudaRun run = run_graph(std::move(g), {xt});
  CHECK(backend_of(run, "Exp") == "cuda");
  CHECK(backend_of(run, "CumSum") == "cpu");
  CHECK(backend_of(run, "Neg") == "cuda");
  int copies = 0;
  for (const runtime::PlacementEntry& p : run.placement) copies += p.op == "Copy" ? 1 : 0;
  CHECK(copies >= 2);  // cuda -> cpu before CumSum, cpu -> cuda after it
  const std::vector<double> xv = values_of(xt);
  std::vector<double> want;
  for (int64_t i = 0; i < 4; ++i) {
    double acc = 0.0;
    for (int64_t j = 0; j < 6; ++j) {
      acc += std::exp(xv[i * 6 + j]);
      want.push_back(-acc);
    }
  }
  CHECK(nmse(run.outputs[0], want) < 1e-12);
}
