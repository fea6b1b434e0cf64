// The CPU backend's small-M product kernel (backends/cpu/gemv.cpp: Linear, FusedLinear, MatMul and Gemm with
// a 2-D weight) against naive double-precision loops written here, and its CPU Expand kernel against the
// reference Expand.
//
// Products run on every path (AVX-512F where the CPU has it, AVX2, scalar: SEQRUN_CPU_GEMV forces each) with
// 1 and 2 threads, M = 1, 2, 3, 5 and K, N not multiples of 16 (K < 16, N < 4 included), every activation,
// bias present or absent, weights [N, K] and [K, N] (both packed at prepare). Bound, per
// element: |y - ref| <= 1e-5 (|alpha| sum_k |x_k w_k| + |b| + |ref|), the float rounding of a K-term sum
// scaled to its terms; and max |y - ref| / max |ref| <= 1e-5 per case (largest observed when the bounds were
// set: 6.7e-8 and 3.3e-7). The factory tests check which kernel the CPU backend picks (gemv up to the
// measured crossover, oneDNN above it, for SEQRUN_CPU_GEMV=0, and for layouts the gemv kernel declines).
// Expand must match the reference byte for byte, over broadcast patterns in front, inside and at the end,
// 1/2/4/8-byte dtypes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/reference/kernel.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "tests/unit/test_util.h"

using namespace seqrun;
using seqrun::backends::KernelInfo;
using seqrun::backends::TensorArg;

namespace {

std::mt19937& rng() {
  static std::mt19937 gen(1234);
  return gen;
}

Tensor random_f32(const Shape& shape) {
  return test::random_uniform(rng(), shape);
}

// Sets SEQRUN_CPU_GEMV for the scope (unset when `mode` is empty), restoring "unset" after.
struct GemvMode {
  explicit GemvMode(const std::string& mode) {
    if (mode.empty()) {
      unsetenv("SEQRUN_CPU_GEMV");
    } else {
      setenv("SEQRUN_CPU_GEMV", mode.c_str(), 1);
    }
  }
  ~GemvMode() { unsetenv("SEQRUN_CPU_GEMV"); }
};

std::vector<std::string> gemv_paths() {
  std::vector<std::string> paths = {"scalar", "avx2"};
  if (__builtin_cpu_supports("avx512f")) paths.push_back("avx512");
  return paths;
}

// One product node: x, W (a constant when w_constant) and an optional bias/C.
struct Product {
  std::string op;
  Tensor x, w, bias;  // bias undefined = absent
  bool w_constant = true;
  std::map<std::string, Attribute> attrs;
};

struct Built {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
  KernelInfo info;
};

std::unique_ptr<Built> build(const Product& p, int threads) {
  auto b = std::make_unique<Built>();
  std::vector<Tensor> ins = {p.x, p.w};
  if (p.bias.defined()) ins.push_back(p.bias);
  std::vector<Value*> values;
  for (size_t i = 0; i < ins.size(); ++i) {
    values.push_back(
        b->graph->add_input("in" + std::to_string(i), TensorType::from_shape(DType::f32, ins[i].shape())));
  }
  b->node = b->graph->add_node(p.op, values, 1, p.attrs);
  b->node->set_name("n");
  Status st = infer_node_types(*b->node);
  INFO(st.message());
  REQUIRE(st.is_ok());
  b->info.node = b->node;
  b->info.threads = threads;
  for (size_t i = 0; i < ins.size(); ++i) {
    TensorArg a{DType::f32, ins[i].shape(), nullptr};
    if (i == 1 && p.w_constant) a.data = const_cast<void*>(ins[i].raw());
    b->info.inputs.push_back(a);
  }
  auto shape = b->node->output(0)->type().static_shape();
  REQUIRE(shape.has_value());
  b->info.outputs.push_back({DType::f32, *shape, nullptr});
  return b;
}

// The label of the kernel the CPU backend picks for the product.
std::string picked(const Product& p, int threads = 2) {
  auto b = build(p, threads);
  auto kernel = backends::cpu_backend().kernels().create(b->info);
  REQUIRE(kernel != nullptr);
  return kernel->label();
}

// Runs the product on the CPU backend's kernel (which must be a gemv kernel) into a NaN-poisoned output.
Tensor run_gemv(const Product& p, int threads) {
  auto b = build(p, threads);
  auto kernel = backends::cpu_backend().kernels().create(b->info);
  REQUIRE(kernel != nullptr);
  INFO("kernel " << kernel->label());
  REQUIRE(kernel->label().find(":gemv_") != std::string::npos);
  REQUIRE(kernel->prepare(b->info).is_ok());
  std::vector<TensorArg> ins = b->info.inputs;
  ins[0].data = const_cast<void*>(p.x.raw());
  ins[1].data = const_cast<void*>(p.w.raw());
  if (p.bias.defined()) ins[2].data = const_cast<void*>(p.bias.raw());
  Tensor y = Tensor::empty(DType::f32, b->info.outputs[0].shape);
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = std::nanf("");
  std::vector<TensorArg> outs = b->info.outputs;
  outs[0].data = y.raw();
  REQUIRE(kernel->workspace_bytes() == 0);
  Status st = kernel->run(ins, outs, nullptr);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return y;
}

double activate(const std::string& act, double v) {
  if (act == "relu") return v < 0 ? 0.0 : v;
  if (act == "gelu") return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  if (act == "gelu_tanh")
    return 0.5 * v * (1.0 + std::tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
  if (act == "silu") return v / (1.0 + std::exp(-v));
  if (act == "sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (act == "tanh") return std::tanh(v);
  return v;
}

// The naive product in double: y[r, j] = act(alpha sum_i x[r, i] W'[i, j] + b[j]); W' = W^T when w_is_nk.
// `scale` gets alpha sum_i |x w| + |b| per element, the size of the terms the kernel rounds.
std::vector<double> naive(const Tensor& x, const Tensor& w, bool w_is_nk, const Tensor& bias, double alpha,
                          const std::string& act, std::vector<double>& scale) {
  const int64_t k = x.shape().back();
  const int64_t n = w_is_nk ? w.dim(0) : w.dim(1);
  const int64_t rows = x.numel() / k;
  std::vector<double> y(static_cast<size_t>(rows * n));
  scale.assign(y.size(), 0.0);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0, mag = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        const double term = static_cast<double>(xd[r * k + i]) * (w_is_nk ? wd[j * k + i] : wd[i * n + j]);
        acc += term;
        mag += std::fabs(term);
      }
      const double b = bias.defined() ? bias.data<float>()[j] : 0.0;
      y[r * n + j] = activate(act, alpha * acc + b);
      scale[r * n + j] = std::fabs(alpha) * mag + std::fabs(b);
    }
  }
  return y;
}

void check_close(const Tensor& y, const std::vector<double>& ref, const std::vector<double>& scale) {
  REQUIRE(static_cast<size_t>(y.numel()) == ref.size());
  double worst = 0.0, max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double v = y.data<float>()[i];
    const double diff = std::fabs(v - ref[i]);
    REQUIRE(std::isfinite(v));
    worst = std::max(worst, diff / (scale[i] + std::fabs(ref[i]) + 1e-30));
    max_diff = std::max(max_diff, diff);
    max_ref = std::max(max_ref, std::fabs(ref[i]));
  }
  INFO("worst element ratio " << worst << ", max diff " << max_diff << ", max |ref| " << max_ref);
  CHECK(worst <= 1e-5);
  CHECK(max_diff <= 1e-5 * max_ref + 1e-30);
}

// Every path x threads: the kernel's output against the naive loop.
void check_all_paths(const Product& p, bool w_is_nk, double alpha, const std::string& act) {
  std::vector<double> scale;
  const std::vector<double> ref = naive(p.x, p.w, w_is_nk, p.bias, alpha, act, scale);
  for (const std::string& path : gemv_paths()) {
    GemvMode mode(path);
    for (int threads : {1, 2}) {
      INFO(p.op << " x " << shape_to_string(p.x.shape()) << " W " << shape_to_string(p.w.shape()) << " path "
                << path << " threads " << threads << " activation " << act
                << (p.bias.defined() ? " with bias" : ""));
      check_close(run_gemv(p, threads), ref, scale);
    }
  }
}

const int64_t kRows[] = {1, 2, 3, 5};
// (K, N): below one vector, odd, above the parallel threshold (N K >= 16384), Mamba's dt_proj/x_proj-like.
const std::pair<int64_t, int64_t> kSizes[] = {{1, 1},    {7, 3},    {17, 5},   {48, 37},
                                              {33, 129}, {769, 13}, {129, 257}};

}  // namespace

TEST_CASE("gemv Linear matches a naive double loop on every path", "[cpu][gemv]") {
  backends::set_cpu_threads(2);
  for (int64_t m : kRows) {
    for (const auto& [k, n] : kSizes) {
      Product p;
      p.op = "Linear";
      p.x = random_f32({m, k});
      p.w = random_f32({n, k});
      if ((k + n) % 2 == 1) p.bias = random_f32({n});
      check_all_paths(p, true, 1.0, "none");
    }
  }
}

TEST_CASE("gemv Linear on decode-shaped x [1, 1, K], group widths 16 and 64 with tails", "[cpu][gemv]") {
  backends::set_cpu_threads(2);
  for (int64_t n : {255, 256, 276, 300, 1000}) {  // last group 15, 64, 20, 44 and 40 wide
    Product p;
    p.op = "Linear";
    p.x = random_f32({1, 1, 100});
    p.w = random_f32({n, 100});
    p.bias = random_f32({n});
    check_all_paths(p, true, 1.0, "none");
  }
}

TEST_CASE("gemv FusedLinear: every activation, bias, both weight layouts", "[cpu][gemv]") {
  backends::set_cpu_threads(2);
  for (const char* act : {"none", "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh"}) {
    for (int trans_b : {0, 1}) {
      for (int64_t m : {1, 3, 5}) {
        const int64_t k = 45, n = 70;
        Product p;
        p.op = "FusedLinear";
        p.attrs = {{"activation", Attribute(std::string(act))}, {"transB", Attribute(int64_t{trans_b})}};
        p.x = random_f32({m, k});
        p.w = trans_b ? random_f32({n, k}) : random_f32({k, n});
        if (m != 3) p.bias = random_f32({n});
        check_all_paths(p, trans_b == 1, 1.0, act);
      }
    }
  }
}

TEST_CASE("gemv MatMul with a constant [K, N] weight: 1-D, 2-D and batched x", "[cpu][gemv]") {
  backends::set_cpu_threads(2);
  const std::vector<Shape> xs = {{19}, {1, 19}, {2, 19}, {1, 3, 19}, {5, 1, 19}};
  for (const Shape& xs_shape : xs) {
    for (int64_t n : {1, 6, 300}) {
      Product p;
      p.op = "MatMul";
      p.x = random_f32(xs_shape);
      p.w = random_f32({19, n});
      check_all_paths(p, false, 1.0, "none");
    }
  }
}

TEST_CASE("gemv Gemm: alpha, C as a bias row, beta = 0, transB", "[cpu][gemv]") {
  backends::set_cpu_threads(2);
  for (int trans_b : {0, 1}) {
    for (int64_t m : {1, 2, 5}) {
      const int64_t k = 23, n = 41;
      Product p;
      p.op = "Gemm";
      p.x = random_f32({m, k});
      p.w = trans_b ? random_f32({n, k}) : random_f32({k, n});
      p.bias = m == 5 ? random_f32({1, n}) : random_f32({n});
      p.attrs = {{"alpha", Attribute(0.75f)}, {"transB", Attribute(int64_t{trans_b})}};
      const Tensor bias_flat =
          Tensor::from_vector<float>({n}, std::vector<float>(p.bias.data<float>(), p.bias.data<float>() + n));
      std::vector<double> scale;
      const std::vector<double> ref = naive(p.x, p.w, trans_b == 1, bias_flat, 0.75, "none", scale);
      for (const std::string& path : gemv_paths()) {
        GemvMode mode(path);
        INFO("Gemm transB " << trans_b << " M " << m << " path " << path);
        check_close(run_gemv(p, 2), ref, scale);
      }
      // beta = 0 ignores C.
      p.attrs["beta"] = Attribute(0.0f);
      const std::vector<double> ref0 = naive(p.x, p.w, trans_b == 1, Tensor(), 0.75, "none", scale);
      GemvMode mode("avx2");
      check_close(run_gemv(p, 2), ref0, scale);
    }
  }
}

TEST_CASE("the CPU backend picks gemv for small M and oneDNN otherwise", "[cpu][gemv]") {
  backends::set_cpu_threads(2);
  const char* avx512_env = std::getenv("SEQRUN_CPU_AVX512");  // "0" turns AVX-512 off for every kernel
  const bool avx512 =
      __builtin_cpu_supports("avx512f") && (avx512_env == nullptr || std::string(avx512_env) != "0");
  const std::string best = avx512 ? "avx512:gemv_" : "avx2:gemv_";
  auto linear = [](int64_t m) {
    Product p;
    p.op = "Linear";
    p.x = random_f32({m, 64});
    p.w = random_f32({96, 64});
    return p;
  };
  GemvMode automatic("");
  CHECK(picked(linear(1)) == best + "linear");
  CHECK(picked(linear(3)) == best + "linear");
  if (avx512) {
    CHECK(picked(linear(4)).find("gemv") == std::string::npos);  // oneDNN's brgemm matches it from M = 4
  } else {
    CHECK(picked(linear(4)) == best + "linear");
  }
  CHECK(picked(linear(5)).find("gemv") == std::string::npos);
  {
    GemvMode off("0");
    CHECK(picked(linear(1)).find("gemv") == std::string::npos);
  }
  {
    GemvMode forced("scalar");
    CHECK(picked(linear(5)) == "scalar:gemv_linear");
  }
  // A weight that is not a constant cannot be packed at prepare: oneDNN reads it as it is.
  Product mm;
  mm.op = "MatMul";
  mm.x = random_f32({1, 64});
  mm.w = random_f32({64, 96});
  CHECK(picked(mm) == best + "matmul");
  mm.w_constant = false;
  CHECK(picked(mm).find("gemv") == std::string::npos);
  Product runtime_w = linear(1);
  runtime_w.w_constant = false;
  CHECK(picked(runtime_w).find("gemv") == std::string::npos);
  // Gemm with transA or a general C stays with oneDNN.
  Product gemm;
  gemm.op = "Gemm";
  gemm.x = random_f32({64, 1});
  gemm.w = random_f32({64, 96});
  gemm.attrs = {{"transA", Attribute(int64_t{1})}};
  CHECK(picked(gemm).find("gemv") == std::string::npos);
  gemm.x = random_f32({2, 64});
  gemm.attrs = {};
  gemm.bias = random_f32({2, 96});
  CHECK(picked(gemm).find("gemv") == std::string::npos);
  gemm.bias = random_f32({96});
  CHECK(picked(gemm) == best + "gemm");
  gemm.attrs = {{"beta", Attribute(0.5f)}};
  CHECK(picked(gemm).find("gemv") == std::string::npos);
}

namespace {

// Expand(x, shape) on the CPU backend against the reference kernel, byte for byte.
void check_expand(DType dtype, const Shape& x_shape, const std::vector<int64_t>& target, int threads) {
  INFO("Expand " << dtype_name(dtype) << " " << shape_to_string(x_shape) << " to "
                 << shape_to_string(Shape(target.begin(), target.end())) << " threads " << threads);
  Tensor x = Tensor::empty(dtype, x_shape);
  auto* bytes = static_cast<uint8_t*>(x.raw());
  for (size_t i = 0; i < x.numel() * dtype_size(dtype); ++i) bytes[i] = static_cast<uint8_t>(rng()());
  const Tensor shape = Tensor::from_vector<int64_t>({static_cast<int64_t>(target.size())}, target);
  Graph g("expand");
  Value* xv = g.add_input("x", TensorType::from_shape(dtype, x_shape));
  Value* sv = g.add_constant("shape", shape);
  Node* node = g.add_node("Expand", {xv, sv}, 1, {});
  node->set_name("e");
  REQUIRE(infer_node_types(*node).is_ok());
  auto out_shape = node->output(0)->type().static_shape();
  REQUIRE(out_shape.has_value());

  KernelInfo info;
  info.node = node;
  info.threads = threads;
  info.inputs = {{dtype, x_shape, nullptr}, {DType::i64, shape.shape(), const_cast<void*>(shape.raw())}};
  info.outputs = {{dtype, *out_shape, nullptr}};
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  REQUIRE(kernel->label() == "cpu:expand");
  REQUIRE(kernel->prepare(info).is_ok());
  Tensor y = Tensor::empty(dtype, *out_shape);
  if (y.numel() > 0) std::memset(y.raw(), 0xA5, y.numel() * dtype_size(dtype));
  std::vector<TensorArg> ins = info.inputs, outs = info.outputs;
  ins[0].data = x.raw();
  outs[0].data = y.raw();
  REQUIRE(kernel->run(ins, outs, nullptr).is_ok());

  const reference::KernelEntry* entry = reference::KernelRegistry::global().find("Expand");
  REQUIRE(entry != nullptr);
  reference::KernelContext ctx{*node, {&x, &shape}, {}, nullptr};
  REQUIRE(entry->fn(ctx).is_ok());
  REQUIRE(ctx.outputs.size() == 1);
  REQUIRE(ctx.outputs[0].shape() == y.shape());
  if (y.numel() > 0) CHECK(std::memcmp(ctx.outputs[0].raw(), y.raw(), y.numel() * dtype_size(dtype)) == 0);
}

}  // namespace

TEST_CASE("CPU Expand matches the reference for broadcast patterns and dtypes", "[cpu][expand]") {
  backends::set_cpu_threads(2);
  struct Pattern {
    Shape x;
    std::vector<int64_t> target;
  };
  const std::vector<Pattern> patterns = {
      {{3, 1}, {3, 4}},               // broadcast last dim: a fill per row
      {{1, 5}, {4, 5}},               // broadcast first dim: a memcpy per row
      {{2, 1, 3}, {2, 4, 3}},         // inner broadcast between contiguous dims
      {{1}, {2, 3, 4}},               // scalar-like to everything
      {{4}, {3, 4}},                  // new leading dims
      {{1, 7, 1}, {2, 7, 3}},         // Mamba's [1, D, 1] -> [B, D, L]
      {{3, 1}, {1, 1, 5}},            // bidirectional: the shape broadcasts too
      {{2, 3}, {1}},                  // shape smaller than x: a plain copy
      {{2, 1, 1, 3}, {2, 2, 5, 3}},   // two broadcast dims merged
      {{1, 1536, 1}, {2, 1536, 64}},  // large enough to run in parallel
      {{1, 1, 3000}, {1, 40, 3000}},  // large, contiguous rows
      {{0, 1}, {0, 4}},               // empty
  };
  for (DType dtype : {DType::f32, DType::i64, DType::i32, DType::f16, DType::u8}) {
    for (const Pattern& p : patterns) {
      for (int threads : {1, 2}) check_expand(dtype, p.x, p.target, threads);
    }
  }
}
