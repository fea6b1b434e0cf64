// Small-M matrix products (decode steps: M = batch x seq rows, usually 1) for Linear, FusedLinear, and
// MatMul/Gemm with a constant 2-D weight: y[M, N] = act(alpha · x[M, K] · W'[K, N] + bias).
//
// Layout: the weight is packed once, at prepare, into column groups of G = 64 output features (G = 16 when
// N < 256, so small N still splits over the threads): group g is a [K][G] row-major block (the last group
// only as wide as its features rounded up to 16, zero-padded), groups stored one after another, 64-byte
// aligned. A decode step then reads the whole weight as one sequential stream per thread, each k row of a
// group being 1..4 full cache lines, which the hardware prefetchers follow at full bandwidth (the in-place
// [N, K] dot-product form measured 15-25 % slower: 4-8 streams per thread and a horizontal sum per output).
// Parallel split: whole groups in contiguous ranges, one range per thread.
// Per group: for each x row (groups of up to 4 on AVX-512: 16 zmm accumulators; one at a time on AVX2, the
// group re-read from L2 for the next rows), acc[j] += x[k] · Wg[k][j] over k with x[k] broadcast: no
// horizontal sums. The epilogue (scale, bias, activation) runs on the thread's own output range.
// Bound: memory (the weight is read once per step: 2·M flops per 4 bytes); the bench is
// tools/bench/matmul/bench_gemv.cpp.
// Paths: AVX-512F, AVX2+FMA, and a portable scalar loop (double accumulation); SEQRUN_CPU_GEMV picks:
//   unset/auto: the best path the CPU has (SEQRUN_CPU_AVX512=0 turns AVX-512 off, as for the other kernels),
//               for M up to the measured crossover with oneDNN: 3 with AVX-512, 4 with AVX2;
//   0 / off: never (oneDNN takes every product);
//   avx512 / avx2 / scalar: that path (when the CPU has it) for every M <= kForcedMaxRows (tests, bench).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

#define SEQRUN_AVX512 __attribute__((target("avx512f")))
// GCC 12 reports the AVX-512 intrinsics' deliberately undefined pass-through operands as uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Above this many rows oneDNN wins (bench_gemv, 2 threads, Mamba/Llama decode shapes): with AVX-512 its
// brgemm matches the gemv kernel from M = 4 (within 3 %); with AVX2 only its jit GEMM is 25-45 % slower up
// to M = 4 at least.
constexpr int64_t kAutoMaxRowsAvx512 = 3;
constexpr int64_t kAutoMaxRowsAvx2 = 4;
constexpr int64_t kForcedMaxRows = 64;
// Weights smaller than this run on the calling thread: a fork/join costs more than streaming them.
constexpr int64_t kParallelMinWeightFloats = 1 << 14;
constexpr int64_t kLaneFloats = 16;  // one AVX-512 vector, two AVX2 vectors: packing granularity
constexpr int64_t kGroupCols = 64;   // output features per packed column group (4 cache lines per k row)

enum class Isa { scalar, avx2, avx512 };
enum class Activation { none, relu, gelu, gelu_tanh, silu, sigmoid, tanh };

const char* isa_name(Isa isa) {
  return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "scalar";
}

// The path SEQRUN_CPU_GEMV asks for (read when a kernel is created); false = decline.
bool choose_isa(int64_t rows, Isa& isa) {
  const char* env = std::getenv("SEQRUN_CPU_GEMV");
  const std::string mode = env != nullptr ? env : "auto";
  const bool has_avx512 = __builtin_cpu_supports("avx512f");
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (mode == "0" || mode == "off") return false;
  if (mode == "avx512" || mode == "avx2" || mode == "scalar") {
    if (rows > kForcedMaxRows) return false;
    if (mode == "avx512" && !has_avx512) return false;
    if (mode == "avx2" && !has_avx2) return false;
    isa = mode == "avx512" ? Isa::avx512 : mode == "avx2" ? Isa::avx2 : Isa::scalar;
    return true;
  }
  const char* avx512_env = std::getenv("SEQRUN_CPU_AVX512");
  const bool avx512_allowed = avx512_env == nullptr || std::string(avx512_env) != "0";
  isa = has_avx512 && avx512_allowed ? Isa::avx512 : has_avx2 ? Isa::avx2 : Isa::scalar;
  return rows <= (isa == Isa::avx512 ? kAutoMaxRowsAvx512 : kAutoMaxRowsAvx2);
}

// The packed weight (see the file comment): group g holds outputs [g·G, g·G + width(g)) as [K][width].
struct PackedLayout {
  int64_t k = 0, n = 0, group_cols = 0, groups = 0;
  int64_t offset(int64_t g) const { return g * group_cols * k; }
  int64_t width(int64_t g) const {
    return std::min(group_cols, (n - g * group_cols + kLaneFloats - 1) / kLaneFloats * kLaneFloats);
  }
  int64_t floats() const { return offset(groups - 1) + width(groups - 1) * k; }
};

// One product in the kernel's terms: y[rows, n] = x[rows, k] · W'[k, n], W' packed.
struct GemvArgs {
  const float* x;
  const float* w;
  float* y;
  int64_t rows;
  PackedLayout layout;
};

// ---- AVX-512F ----------------------------------------------------------------------------------------

// y[m, col0 + j] for MR x rows (row stride k) and one group of P · 16 columns (only n_valid stored).
template <int P, int MR>
SEQRUN_AVX512 void group_avx512(const float* x, const float* w, int64_t k, float* y, int64_t ldy,
                                int64_t n_valid) {
  __m512 acc[MR][P];
  for (int m = 0; m < MR; ++m) {
    for (int q = 0; q < P; ++q) acc[m][q] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < k; ++i) {
    __m512 wv[P];
    for (int q = 0; q < P; ++q) wv[q] = _mm512_load_ps(w + (i * P + q) * kLaneFloats);
    for (int m = 0; m < MR; ++m) {
      const __m512 xv = _mm512_set1_ps(x[m * k + i]);
      for (int q = 0; q < P; ++q) acc[m][q] = _mm512_fmadd_ps(xv, wv[q], acc[m][q]);
    }
  }
  for (int q = 0; q < P; ++q) {
    const int64_t lanes = std::min<int64_t>(kLaneFloats, n_valid - q * kLaneFloats);
    const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1u);
    for (int m = 0; m < MR; ++m) _mm512_mask_storeu_ps(y + m * ldy + q * kLaneFloats, mask, acc[m][q]);
  }
}

template <int P>
SEQRUN_AVX512 void rows_avx512(const GemvArgs& a, int64_t g) {
  const PackedLayout& l = a.layout;
  const float* w = a.w + l.offset(g);
  const int64_t col0 = g * l.group_cols, n_valid = std::min(l.group_cols, l.n - col0);
  int64_t m = 0;
  for (; m + 4 <= a.rows; m += 4)
    group_avx512<P, 4>(a.x + m * l.k, w, l.k, a.y + m * l.n + col0, l.n, n_valid);
  const float* x = a.x + m * l.k;
  float* y = a.y + m * l.n + col0;
  switch (a.rows - m) {
    case 3:
      return group_avx512<P, 3>(x, w, l.k, y, l.n, n_valid);
    case 2:
      return group_avx512<P, 2>(x, w, l.k, y, l.n, n_valid);
    case 1:
      return group_avx512<P, 1>(x, w, l.k, y, l.n, n_valid);
    default:
      return;
  }
}

SEQRUN_AVX512 void groups_avx512(const GemvArgs& a, int64_t g_begin, int64_t g_end) {
  for (int64_t g = g_begin; g < g_end; ++g) {
    switch (a.layout.width(g) / kLaneFloats) {
      case 4:
        rows_avx512<4>(a, g);
        break;
      case 3:
        rows_avx512<3>(a, g);
        break;
      case 2:
        rows_avx512<2>(a, g);
        break;
      default:
        rows_avx512<1>(a, g);
        break;
    }
  }
}

// ---- AVX2 + FMA ----------------------------------------------------------------------------------------

// y[col0 + j] for one x row and one group of P · 16 columns (two ymm each; only n_valid stored).
template <int P>
void group_avx2(const float* x, const float* w, int64_t k, float* y, int64_t n_valid) {
  __m256 acc[2 * P];
  for (int q = 0; q < 2 * P; ++q) acc[q] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; ++i) {
    const __m256 xv = _mm256_broadcast_ss(x + i);
    for (int q = 0; q < 2 * P; ++q)
      acc[q] = _mm256_fmadd_ps(xv, _mm256_load_ps(w + (i * 2 * P + q) * 8), acc[q]);
  }
  for (int q = 0; q < 2 * P; ++q) {
    const int64_t lanes = std::min<int64_t>(8, n_valid - q * 8);
    if (lanes > 0) _mm256_maskstore_ps(y + q * 8, vec::tail_mask(lanes), acc[q]);
  }
}

void groups_avx2(const GemvArgs& a, int64_t g_begin, int64_t g_end) {
  const PackedLayout& l = a.layout;
  for (int64_t g = g_begin; g < g_end; ++g) {
    const float* w = a.w + l.offset(g);
    const int64_t col0 = g * l.group_cols, n_valid = std::min(l.group_cols, l.n - col0);
    for (int64_t m = 0; m < a.rows; ++m) {
      const float* x = a.x + m * l.k;
      float* y = a.y + m * l.n + col0;
      switch (l.width(g) / kLaneFloats) {
        case 4:
          group_avx2<4>(x, w, l.k, y, n_valid);
          break;
        case 3:
          group_avx2<3>(x, w, l.k, y, n_valid);
          break;
        case 2:
          group_avx2<2>(x, w, l.k, y, n_valid);
          break;
        default:
          group_avx2<1>(x, w, l.k, y, n_valid);
          break;
      }
    }
  }
}

// ---- portable ----------------------------------------------------------------------------------------

void groups_scalar(const GemvArgs& a, int64_t g_begin, int64_t g_end) {
  const PackedLayout& l = a.layout;
  for (int64_t g = g_begin; g < g_end; ++g) {
    const float* w = a.w + l.offset(g);
    const int64_t width = l.width(g), col0 = g * l.group_cols, n_valid = std::min(l.group_cols, l.n - col0);
    for (int64_t m = 0; m < a.rows; ++m) {
      for (int64_t j = 0; j < n_valid; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < l.k; ++i) acc += static_cast<double>(a.x[m * l.k + i]) * w[i * width + j];
        a.y[m * l.n + col0 + j] = static_cast<float>(acc);
      }
    }
  }
}

// ---- epilogue ------------------------------------------------------------------------------------------

struct Epilogue {
  float alpha = 1.0f;
  const float* bias = nullptr;  // [n] or null
  Activation activation = Activation::none;
  bool trivial() const { return alpha == 1.0f && bias == nullptr && activation == Activation::none; }
};

double activate(Activation act, double v) {
  switch (act) {
    case Activation::relu:
      return v < 0 ? 0.0 : v;
    case Activation::gelu:
      return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    case Activation::gelu_tanh:
      return 0.5 * v * (1.0 + std::tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
    case Activation::silu:
      return v / (1.0 + std::exp(-v));
    case Activation::sigmoid:
      return 1.0 / (1.0 + std::exp(-v));
    case Activation::tanh:
      return std::tanh(v);
    case Activation::none:
      break;
  }
  return v;
}

__m256 activate(Activation act, __m256 v) {
  switch (act) {
    case Activation::relu:
      return _mm256_max_ps(v, _mm256_setzero_ps());
    case Activation::gelu:
      return vec::gelu_erf(v);
    case Activation::gelu_tanh:
      return vec::gelu_tanh(v);
    case Activation::silu:
      return vec::swish(v, _mm256_set1_ps(1.0f));
    case Activation::sigmoid:
      return vec::sigmoid(v);
    case Activation::tanh:
      return vec::tanh(v);
    case Activation::none:
      break;
  }
  return v;
}

// y[m, j] = act(alpha · y[m, j] + bias[j]) for j in [n_begin, n_end).
void apply_epilogue(const Epilogue& e, Isa isa, float* y, int64_t rows, int64_t n, int64_t n_begin,
                    int64_t n_end) {
  if (e.trivial()) return;
  for (int64_t m = 0; m < rows; ++m) {
    float* row = y + m * n;
    if (isa == Isa::scalar) {
      for (int64_t j = n_begin; j < n_end; ++j) {
        const double v = static_cast<double>(e.alpha) * row[j] + (e.bias != nullptr ? e.bias[j] : 0.0);
        row[j] = static_cast<float>(activate(e.activation, v));
      }
      continue;
    }
    const __m256 alpha = _mm256_set1_ps(e.alpha);
    for (int64_t j = n_begin; j < n_end; j += 8) {
      const __m256i mask = vec::tail_mask(std::min<int64_t>(8, n_end - j));
      __m256 v = _mm256_mul_ps(alpha, _mm256_maskload_ps(row + j, mask));
      if (e.bias != nullptr) v = _mm256_add_ps(v, _mm256_maskload_ps(e.bias + j, mask));
      _mm256_maskstore_ps(row + j, mask, activate(e.activation, v));
    }
  }
}

// ---- the kernel ----------------------------------------------------------------------------------------

// Packed weights shared between kernels: every plan of a session (one per input shape: prefill chunks, steps,
// each KV-cache capacity a decoder grows to) packs the same constant weights the same way, so the first
// kernel packs and the others share it — one packed copy per weight, not one per plan, and no repacking when
// a plan is rebuilt. Keyed by the weight's address and the packing; held weakly, so a packing lives exactly
// as long as some kernel uses it. The address is a sound key: a kernel's plan keeps its constants (and so
// their storage) alive, so no other weight can occupy that address while an entry is alive.
struct PackedKey {
  const float* w;
  int64_t k, n, group_cols;
  bool nk;
  bool operator<(const PackedKey& o) const {
    return std::tie(w, k, n, group_cols, nk) < std::tie(o.w, o.k, o.n, o.group_cols, o.nk);
  }
};

class PackedCache {
 public:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  // Call with mutex() held.
  static std::shared_ptr<float> find(const PackedKey& key) {
    auto& m = map();
    auto it = m.find(key);
    if (it == m.end()) return nullptr;
    std::shared_ptr<float> p = it->second.lock();
    if (p == nullptr) m.erase(it);
    return p;
  }
  static void insert(const PackedKey& key, const std::shared_ptr<float>& p) {
    auto& m = map();
    for (auto it = m.begin(); it != m.end();) it = it->second.expired() ? m.erase(it) : std::next(it);
    m[key] = p;
  }

 private:
  static std::map<PackedKey, std::weak_ptr<float>>& map() {
    static std::map<PackedKey, std::weak_ptr<float>> m;
    return m;
  }
};

// Which node inputs feed the product, and how.
struct GemvSpec {
  int64_t rows = 0, k = 0, n = 0;
  int w_input = 1;
  bool w_is_nk = false;  // weight stored [N, K] (Linear, transB = 1) rather than [K, N]
  int bias_input = -1;   // [N] (or Gemm's [1, N]) bias
  float alpha = 1.0f;
  Activation activation = Activation::none;
  std::string what;  // "linear", "fused_linear", "matmul", "gemm"
};

class GemvKernel : public Kernel {
 public:
  GemvKernel(const Node* node, GemvSpec spec, Isa isa, int threads)
      : node_(node), spec_(std::move(spec)), isa_(isa), threads_(std::max(1, threads)) {
    layout_.k = spec_.k;
    layout_.n = spec_.n;
    layout_.group_cols = spec_.n >= 4 * kGroupCols ? kGroupCols : kLaneFloats;
    layout_.groups = (spec_.n + layout_.group_cols - 1) / layout_.group_cols;
  }

  // Packs the constant weight into column groups (parallel over groups; zero padding past N), or shares the
  // packing another plan already made of the same weight (see PackedCache).
  Status prepare(const KernelInfo& info) override {
    if (packed_ != nullptr) return Status::ok();
    const float* w = info.inputs[spec_.w_input].as<const float>();
    if (w == nullptr) return node_error(node_, "gemv: the weight is not a constant");
    const PackedKey key{w, layout_.k, layout_.n, layout_.group_cols, spec_.w_is_nk};
    std::lock_guard<std::mutex> lock(PackedCache::mutex());
    if (std::shared_ptr<float> shared = PackedCache::find(key)) {
      packed_ = std::move(shared);
      return Status::ok();
    }
    const size_t bytes = (static_cast<size_t>(layout_.floats()) * sizeof(float) + 63) / 64 * 64;
    packed_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)), std::free);
    if (packed_ == nullptr)
      return node_error(node_, "gemv: cannot allocate {} bytes for the packed weight", bytes);
    const PackedLayout l = layout_;
    const bool nk = spec_.w_is_nk;
    float* out = packed_.get();
#pragma omp parallel for schedule(static) num_threads(threads_) if (l.floats() >= kParallelMinWeightFloats)
    for (int64_t g = 0; g < l.groups; ++g) {
      const int64_t width = l.width(g), col0 = g * l.group_cols;
      float* dst = out + l.offset(g);
      for (int64_t i = 0; i < l.k; ++i) {
        for (int64_t j = 0; j < width; ++j) {
          const int64_t col = col0 + j;
          dst[i * width + j] = col >= l.n ? 0.0f : nk ? w[col * l.k + i] : w[i * l.n + col];
        }
      }
    }
    PackedCache::insert(key, packed_);
    return Status::ok();
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    if (packed_ == nullptr) return node_error(node_, "kernel used before prepare");
    GemvArgs a;
    a.x = inputs[0].as<const float>();
    a.w = packed_.get();
    a.y = outputs[0].as<float>();
    a.rows = spec_.rows;
    a.layout = layout_;
    Epilogue e;
    e.alpha = spec_.alpha;
    e.activation = spec_.activation;
    if (spec_.bias_input >= 0) e.bias = inputs[spec_.bias_input].as<const float>();
    const int64_t groups = layout_.groups, n = layout_.n;
    const int threads =
        static_cast<int>(std::min<int64_t>(groups, std::max(1, std::min(threads_, omp_get_max_threads()))));
    const bool parallel = threads > 1 && layout_.floats() >= kParallelMinWeightFloats;
#pragma omp parallel num_threads(threads) if (parallel)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t g_begin = groups * t / nt, g_end = groups * (t + 1) / nt;
      if (g_begin < g_end) {
        if (isa_ == Isa::avx512) {
          groups_avx512(a, g_begin, g_end);
        } else if (isa_ == Isa::avx2) {
          groups_avx2(a, g_begin, g_end);
        } else {
          groups_scalar(a, g_begin, g_end);
        }
        apply_epilogue(e, isa_, a.y, a.rows, n, g_begin * layout_.group_cols,
                       std::min(n, g_end * layout_.group_cols));
      }
    }
    return Status::ok();
  }

  std::string label() const override {
    return std::string(isa_name(isa_)) + ":gemv_" + spec_.what;
  }

 private:
  const Node* node_;
  GemvSpec spec_;
  Isa isa_;
  int threads_;
  PackedLayout layout_;
  std::shared_ptr<float> packed_;
};

std::unique_ptr<Kernel> build(const KernelInfo& info, GemvSpec spec) {
  if (spec.rows <= 0 || spec.k <= 0 || spec.n <= 0) return nullptr;  // empty products: the reference
  if (info.outputs.size() != 1 || info.outputs[0].numel() != spec.rows * spec.n) return nullptr;
  if (!input_is_constant(info, spec.w_input)) return nullptr;  // nothing to pack: oneDNN reads it as it is
  if (spec.bias_input >= 0 && info.inputs[spec.bias_input].numel() != spec.n) return nullptr;
  Isa isa;
  if (!choose_isa(spec.rows, isa)) return nullptr;
  return std::make_unique<GemvKernel>(info.node, std::move(spec), isa, info.threads);
}

// x [..., K] times a 2-D weight: [N, K] (w_is_nk) or [K, N]; the output must be [..., N].
bool linear_shape(const KernelInfo& info, bool w_is_nk, GemvSpec& spec) {
  if (!all_f32(info) || info.inputs.size() < 2 || info.outputs.size() != 1) return false;
  const Shape& x = info.inputs[0].shape;
  const Shape& w = info.inputs[1].shape;
  if (x.empty() || w.size() != 2) return false;
  spec.k = w_is_nk ? w[1] : w[0];
  spec.n = w_is_nk ? w[0] : w[1];
  if (x.back() != spec.k) return false;
  Shape out(x.begin(), x.end() - 1);
  out.push_back(spec.n);
  if (info.outputs[0].shape != out) return false;
  spec.rows = product(x, 0, x.size() - 1);
  spec.w_is_nk = w_is_nk;
  return true;
}

bool parse_activation(const std::string& name, Activation& act) {
  static const std::pair<const char*, Activation> kNames[] = {
      {"none", Activation::none}, {"relu", Activation::relu},
      {"gelu", Activation::gelu}, {"gelu_tanh", Activation::gelu_tanh},
      {"silu", Activation::silu}, {"sigmoid", Activation::sigmoid},
      {"tanh", Activation::tanh}};
  for (const auto& [n, a] : kNames) {
    if (name == n) {
      act = a;
      return true;
    }
  }
  return false;
}

}  // namespace

std::unique_ptr<Kernel> make_gemv_linear_kernel(const KernelInfo& info) {
  GemvSpec spec;
  spec.what = "linear";
  if (!linear_shape(info, true, spec)) return nullptr;
  if (info.input_present(2)) spec.bias_input = 2;
  return build(info, std::move(spec));
}

std::unique_ptr<Kernel> make_gemv_fused_linear_kernel(const KernelInfo& info) {
  GemvSpec spec;
  spec.what = "fused_linear";
  if (!parse_activation(info.node->get_string("activation", "none"), spec.activation)) return nullptr;
  if (!linear_shape(info, info.node->get_int("transB", 0) != 0, spec)) return nullptr;
  if (info.input_present(2)) spec.bias_input = 2;
  return build(info, std::move(spec));
}

std::unique_ptr<Kernel> make_gemv_matmul_kernel(const KernelInfo& info) {
  if (info.inputs.size() != 2 || info.inputs[1].rank() != 2 || info.inputs[0].rank() < 1) return nullptr;
  GemvSpec spec;
  spec.what = "matmul";
  if (!linear_shape(info, false, spec)) return nullptr;
  return build(info, std::move(spec));
}

std::unique_ptr<Kernel> make_gemv_gemm_kernel(const KernelInfo& info) {
  const Node& node = *info.node;
  if (info.inputs.size() < 2 || info.inputs[0].rank() != 2 || node.get_int("transA", 0) != 0) return nullptr;
  GemvSpec spec;
  spec.what = "gemm";
  if (!linear_shape(info, node.get_int("transB", 0) != 0, spec)) return nullptr;
  spec.alpha = node.get_float("alpha", 1.0f);
  const float beta = node.get_float("beta", 1.0f);
  if (info.input_present(2) && beta != 0.0f) {
    // Only C as a bias row: [N] or [1, N] with beta = 1; anything else stays with oneDNN.
    const Shape& c = info.inputs[2].shape;
    if (beta != 1.0f || !(c == Shape{spec.n} || c == Shape{1, spec.n})) return nullptr;
    spec.bias_input = 2;
  }
  return build(info, std::move(spec));
}

#pragma GCC diagnostic pop

}  // namespace seqrun::backends::cpu
