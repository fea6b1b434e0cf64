// SelectiveScan, Mamba's selective scan in one pass (semantics: ir/ops/ssm.cpp): the kernel and its AVX2
// path; the AVX-512F path (taken where the CPU has it, unless SEQRUN_CPU_AVX512=0) is in
// selective_scan_avx512.cpp. OpenMP.
//
// Layout: u, delta, z, y [B, D, L]; A [D, N]; Bmat, Cmat [B, N, L] or grouped [B, G, N, L]; h0, h [B, D, N].
// First Bmat and Cmat are transposed into the workspace as [B·G, L, Npad] (pad lanes zero), so that a step
// reads its N values contiguously; every channel of a group shares them (256 KiB for L = 2048, N = 16: L2).
// Parallel split: work items over the (batch, channel) rows, statically over the threads: one row each on
// the AVX2 path, blocks of 16 channels of one (batch, group) on the AVX-512 path.
// AVX2 path, one row = one sequential scan over L whose state (N floats padded to a multiple of 8 with lanes
// that stay 0: A = B = C = 0 there) lives in registers, 32 states at a time (larger N runs the steps once
// per group of 32 states). Time runs in blocks of kScanBlockSteps steps:
//   1. vectors over 8 steps: dt = softplus(delta + delta_bias) (or without softplus), dtu = dt · u;
//   2. the scan, per step and 8 states: e = 2^(dt · A · log2 e), h = e · h + dtu · B, acc += C · h;
//   3. vectors over 8 steps: y = Σ_n acc (a transposing reduction) + D · u, then · z · sigmoid(z).
// u, delta and z are read once and y written once, streaming; nothing of size L·D·N (nor L·D) exists.
// Bound: compute, the B·L·D·N exponentials (~17 vector operations per 8 states and step), not memory
// (tools/bench/mamba measures the GB/s against the machine's bandwidth).
// 2^x as 2^(y/8), y = 8x (the 8 folded into A): k = round(y), 2^(y/8) = 2^floor(k/8) · 2^((k mod 8)/8) ·
// 2^((y - k)/8), the middle factor from an 8-entry table in a register (one permute), the last a degree-3
// fit on |y - k| <= 1/2 (numpy least squares for relative error on Chebyshev nodes), the first added to the
// exponent field; three FMAs instead of a degree-6 polynomial's six, which matters as the FMA units bound
// the loop. Max relative error 1.7e-7 (float rounding included). y is clamped to [-125·8, 127·8]: exp(dt·A)
// below 2^-125 comes out as 2^-125 instead of 0, which only matters next to states above ~1e30. The readout
// sums in f32 (the reference in double).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/selective_scan.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kGroupStates = 32;  // states kept in registers at once (4 vectors)
constexpr int kAvx512Channels = 16;   // channels per work item on the AVX-512 path

constexpr float kExp2Table[8] = {1.0f,
                                 1.0905077457427979f,
                                 1.1892070770263672f,
                                 1.2968395948410034f,
                                 1.4142135381698608f,
                                 1.5422108173370361f,
                                 1.6817928552627563f,
                                 1.8340080976486206f};  // 2^(j/8)
constexpr float kExp2Fine[4] = {1.0f, 0.08664340525865555f, 0.003754126140847802f, 0.00010839374590432271f};

// One row's buffers for one block of steps, its A (times 8 log2 e) and its state.
struct RowBuffers {
  alignas(32) float dt[kScanBlockSteps];
  alignas(32) float dtu[kScanBlockSteps];
  alignas(32) float acc[kScanBlockSteps * 8];  // 8 partial readout sums per step
  alignas(32) float a_scaled[kScanMaxStateSize];
  alignas(32) float state[kScanMaxStateSize];
};

// 2^(y/8) for y clamped to [-125·8, 127·8]: the result stays a normal float.
inline __m256 exp2_eighths(__m256 y, __m256 table) {
  y = _mm256_min_ps(_mm256_set1_ps(127.0f * 8), _mm256_max_ps(_mm256_set1_ps(-125.0f * 8), y));
  const __m256 k = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i ki = _mm256_cvttps_epi32(k);
  const __m256 q =
      _mm256_mul_ps(vec::poly(_mm256_sub_ps(y, k), kExp2Fine), _mm256_permutevar8x32_ps(table, ki));
  const __m256i scale = _mm256_slli_epi32(_mm256_srai_epi32(ki, 3), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(q), scale));
}

// PyTorch's softplus (beta 1, threshold 20) as max(x, 0) + log1p(e^-|x|): above 20 the second term is
// below half an ulp of x, so x passes through as the threshold rule says. log1p(e) = 2 atanh(s) with
// s = e / (2 + e) in [0, 1/3], relative-accurate for small e.
inline __m256 softplus(__m256 x) {
  const __m256 e = vec::exp(_mm256_xor_ps(vec::abs(x), _mm256_set1_ps(-0.0f)));
  const __m256 s = _mm256_div_ps(e, _mm256_add_ps(_mm256_set1_ps(2.0f), e));
  const __m256 log1p = _mm256_mul_ps(_mm256_add_ps(s, s), vec::poly(_mm256_mul_ps(s, s), kScanAtanhPoly));
  return _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), log1p);
}

// Loads up to 8 floats, lanes past n zero.
inline __m256 load_head(const float* p, int64_t n) {
  if (n >= 8) return _mm256_loadu_ps(p);
  return _mm256_maskload_ps(p, vec::tail_mask(n));
}

inline void store_head(float* p, int64_t n, __m256 v) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, vec::tail_mask(n), v);
  }
}

// Lane j of the result is the sum of the 8 floats v[8j .. 8j+7].
inline __m256 transpose_sum8(const float* v) {
  const __m256 s01 = _mm256_hadd_ps(_mm256_load_ps(v), _mm256_load_ps(v + 8));
  const __m256 s23 = _mm256_hadd_ps(_mm256_load_ps(v + 16), _mm256_load_ps(v + 24));
  const __m256 s45 = _mm256_hadd_ps(_mm256_load_ps(v + 32), _mm256_load_ps(v + 40));
  const __m256 s67 = _mm256_hadd_ps(_mm256_load_ps(v + 48), _mm256_load_ps(v + 56));
  const __m256 s0123 = _mm256_hadd_ps(s01, s23);  // [0, 1, 2, 3 | 0, 1, 2, 3]: the halves' sums
  const __m256 s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                       _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

// Step 2, kVectors (1..4) state vectors of 8 from state `first` on: b_steps / c_steps point at the block's
// first row of the transposed Bmat / Cmat (stride `stride`, already offset by `first`); acc receives (or,
// with kAccumulate, adds) 8 partial sums per step.
template <int kVectors, bool kAccumulate>
void scan_steps(int64_t steps, const float* b_steps, const float* c_steps, int64_t stride, int64_t first,
                RowBuffers& r) {
  const __m256 table = _mm256_loadu_ps(kExp2Table);
  __m256 a[kVectors], h[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    a[v] = _mm256_load_ps(r.a_scaled + first + 8 * v);
    h[v] = _mm256_load_ps(r.state + first + 8 * v);
  }
  for (int64_t t = 0; t < steps; ++t) {
    const __m256 vdt = _mm256_broadcast_ss(r.dt + t);
    const __m256 vdtu = _mm256_broadcast_ss(r.dtu + t);
    const float* bt = b_steps + t * stride;
    const float* ct = c_steps + t * stride;
    __m256 sum = kAccumulate ? _mm256_load_ps(r.acc + 8 * t) : _mm256_setzero_ps();
    for (int v = 0; v < kVectors; ++v) {
      const __m256 decay = exp2_eighths(_mm256_mul_ps(vdt, a[v]), table);
      h[v] = _mm256_fmadd_ps(decay, h[v], _mm256_mul_ps(vdtu, _mm256_loadu_ps(bt + 8 * v)));
      sum = _mm256_fmadd_ps(_mm256_loadu_ps(ct + 8 * v), h[v], sum);
    }
    _mm256_store_ps(r.acc + 8 * t, sum);
  }
  for (int v = 0; v < kVectors; ++v) _mm256_store_ps(r.state + first + 8 * v, h[v]);
}

template <bool kAccumulate>
void scan_group(int64_t states, int64_t steps, const float* b_steps, const float* c_steps, int64_t stride,
                int64_t first, RowBuffers& r) {
  switch (states / 8) {
    case 1:
      return scan_steps<1, kAccumulate>(steps, b_steps, c_steps, stride, first, r);
    case 2:
      return scan_steps<2, kAccumulate>(steps, b_steps, c_steps, stride, first, r);
    case 3:
      return scan_steps<3, kAccumulate>(steps, b_steps, c_steps, stride, first, r);
    default:
      return scan_steps<4, kAccumulate>(steps, b_steps, c_steps, stride, first, r);
  }
}

// The AVX2 path for row `row` (= b·D + d), whose tables are number `table`.
void scan_row_avx2(const SelectiveScanArgs& args, int64_t table, int64_t row) {
  const int64_t L = args.steps, N = args.state, npad = args.padded_state, d = row % args.channels;
  const float* b_rows = args.b_table + table * L * npad;
  const float* c_rows = args.c_table + table * L * npad;
  const float* u = args.u + row * L;
  const float* delta = args.delta + row * L;
  const float* z = args.z != nullptr ? args.z + row * L : nullptr;
  float* y = args.y + row * L;
  RowBuffers r;
  for (int64_t n = 0; n < npad; ++n) {
    r.a_scaled[n] = n < N ? args.a[d * N + n] * (8.0f * 1.44269504088896341f) : 0.0f;
    r.state[n] = n < N && args.h0 != nullptr ? args.h0[row * N + n] : 0.0f;
  }
  const __m256 bias = _mm256_set1_ps(args.bias != nullptr ? args.bias[d] : 0.0f);
  const __m256 skip = _mm256_set1_ps(args.skip != nullptr ? args.skip[d] : 0.0f);
  for (int64_t t0 = 0; t0 < L; t0 += kScanBlockSteps) {
    const int64_t steps = std::min(kScanBlockSteps, L - t0);
    // 1. Step sizes (lanes past `steps` are computed on zeros and never used).
    for (int64_t j = 0; j < steps; j += 8) {
      __m256 v = _mm256_add_ps(load_head(delta + t0 + j, steps - j), bias);
      if (args.softplus) v = softplus(v);
      _mm256_store_ps(r.dt + j, v);
      _mm256_store_ps(r.dtu + j, _mm256_mul_ps(v, load_head(u + t0 + j, steps - j)));
    }
    // 2. The scan, 32 states at a time.
    const float* bt = b_rows + t0 * npad;
    const float* ct = c_rows + t0 * npad;
    for (int64_t first = 0; first < npad; first += kGroupStates) {
      const int64_t states = std::min(kGroupStates, npad - first);
      if (first == 0) {
        scan_group<false>(states, steps, bt, ct, npad, first, r);
      } else {
        scan_group<true>(states, steps, bt + first, ct + first, npad, first, r);
      }
    }
    // 3. Readout, skip, gate.
    std::fill(r.acc + 8 * steps, r.acc + 8 * ((steps + 7) / 8 * 8), 0.0f);
    for (int64_t j = 0; j < steps; j += 8) {
      __m256 out = _mm256_fmadd_ps(skip, load_head(u + t0 + j, steps - j), transpose_sum8(r.acc + 8 * j));
      if (z != nullptr) {
        const __m256 gate = load_head(z + t0 + j, steps - j);
        out = _mm256_mul_ps(out, _mm256_mul_ps(gate, vec::sigmoid(gate)));
      }
      store_head(y + t0 + j, steps - j, out);
    }
  }
  if (args.h != nullptr) std::memcpy(args.h + row * N, r.state, sizeof(float) * N);
}

struct ScanShape {
  int64_t batch = 0, channels = 0, steps = 0, state = 0, groups = 1;
  bool avx512 = false;
  int64_t padded_state() const {
    const int64_t lanes = avx512 ? 16 : 8;
    return (state + lanes - 1) / lanes * lanes;
  }
};

// A work item: `count` consecutive rows from first_row, all of table `table` (one (batch, group)).
struct WorkItem {
  int64_t table, first_row;
  int count;
};

class SelectiveScanKernel : public Kernel {
 public:
  SelectiveScanKernel(const ScanShape& s, bool softplus, bool has_skip, bool has_gate, bool has_bias,
                      bool has_h0, bool has_state_out)
      : s_(s),
        softplus_(softplus),
        has_skip_(has_skip),
        has_gate_(has_gate),
        has_bias_(has_bias),
        has_h0_(has_h0),
        has_state_out_(has_state_out) {
    const size_t table_bytes =
        sizeof(float) * static_cast<size_t>(s.batch * s.groups * s.steps * s.padded_state());
    b_offset_ = layout_.add(table_bytes);
    c_offset_ = layout_.add(table_bytes);
    const int64_t per_group = s.channels / s.groups;
    const int64_t width = s.avx512 ? kAvx512Channels : 1;
    for (int64_t table = 0; table < s.batch * s.groups; ++table) {
      const int64_t first = table / s.groups * s.channels + table % s.groups * per_group;
      for (int64_t k = 0; k < per_group; k += width)
        items_.push_back({table, first + k, static_cast<int>(std::min(width, per_group - k))});
    }
  }
  size_t workspace_bytes() const override { return layout_.total(); }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    SelectiveScanArgs args;
    args.u = inputs[0].as<const float>();
    args.delta = inputs[1].as<const float>();
    args.a = inputs[2].as<const float>();
    args.skip = has_skip_ ? inputs[5].as<const float>() : nullptr;
    args.z = has_gate_ ? inputs[6].as<const float>() : nullptr;
    args.bias = has_bias_ ? inputs[7].as<const float>() : nullptr;
    args.h0 = has_h0_ ? inputs[8].as<const float>() : nullptr;
    args.y = outputs[0].as<float>();
    args.h = has_state_out_ ? outputs[1].as<float>() : nullptr;
    float* b_table = workspace_floats(workspace, b_offset_);
    float* c_table = workspace_floats(workspace, c_offset_);
    args.b_table = b_table;
    args.c_table = c_table;
    args.channels = s_.channels;
    args.steps = s_.steps;
    args.state = s_.state;
    args.padded_state = s_.padded_state();
    args.softplus = softplus_;
    const float* bmat = inputs[3].as<const float>();
    const float* cmat = inputs[4].as<const float>();
    const int64_t tables = s_.batch * s_.groups, stride = s_.steps * s_.padded_state();
    const int64_t items = static_cast<int64_t>(items_.size());
    const bool parallel = s_.batch * s_.channels * s_.steps * s_.padded_state() >= kParallelMinElements;
#pragma omp parallel if (parallel)
    {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < tables; ++i) {
        transpose_table(bmat + i * s_.state * s_.steps, b_table + i * stride);
        transpose_table(cmat + i * s_.state * s_.steps, c_table + i * stride);
      }
#pragma omp for schedule(static)
      for (int64_t i = 0; i < items; ++i) {
        const WorkItem& w = items_[i];
        if (s_.avx512) {
          selective_scan_channels_avx512(args, w.table, w.first_row, w.count);
        } else {
          scan_row_avx2(args, w.table, w.first_row);
        }
      }
    }
    return Status::ok();
  }
  std::string label() const override {
    return s_.avx512 ? "avx512:selective_scan" : "avx2:selective_scan";
  }

 private:
  // [N, L] -> [L, Npad], pad lanes zero.
  void transpose_table(const float* src, float* dst) const {
    const int64_t npad = s_.padded_state();
    for (int64_t t = 0; t < s_.steps; ++t) {
      float* out = dst + t * npad;
      for (int64_t n = 0; n < s_.state; ++n) out[n] = src[n * s_.steps + t];
      for (int64_t n = s_.state; n < npad; ++n) out[n] = 0.0f;
    }
  }

  ScanShape s_;
  bool softplus_, has_skip_, has_gate_, has_bias_, has_h0_, has_state_out_;
  WorkspaceLayout layout_;
  size_t b_offset_ = 0, c_offset_ = 0;
  std::vector<WorkItem> items_;
};

// AVX-512F where the CPU has it, unless SEQRUN_CPU_AVX512=0 (read when a kernel is created).
bool use_avx512() {
  const char* env = std::getenv("SEQRUN_CPU_AVX512");
  if (env != nullptr && std::string(env) == "0") return false;
  return __builtin_cpu_supports("avx512f");
}

bool optional_shape(const KernelInfo& info, int i, const Shape& expected) {
  return !info.input_present(i) || info.inputs[i].shape == expected;
}

}  // namespace

std::unique_ptr<Kernel> make_selective_scan_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() < 5 || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  for (int i = 0; i < 5; ++i) {
    if (!info.input_present(i)) return nullptr;
  }
  const int64_t softplus = info.node->get_int("delta_softplus", 1);
  if (softplus != 0 && softplus != 1) return nullptr;
  const Shape& u = info.inputs[0].shape;
  const Shape& a = info.inputs[2].shape;
  const Shape& bm = info.inputs[3].shape;
  if (u.size() != 3 || a.size() != 2 || (bm.size() != 3 && bm.size() != 4)) return nullptr;
  ScanShape s;
  s.batch = u[0], s.channels = u[1], s.steps = u[2], s.state = a[1];
  s.groups = bm.size() == 4 ? bm[1] : 1;
  s.avx512 = use_avx512();
  if (s.channels <= 0 || s.state <= 0 || s.state > kScanMaxStateSize || s.groups <= 0 ||
      s.channels % s.groups != 0)
    return nullptr;
  const Shape bc =
      bm.size() == 4 ? Shape{s.batch, s.groups, s.state, s.steps} : Shape{s.batch, s.state, s.steps};
  const Shape bdl = {s.batch, s.channels, s.steps};
  const Shape bdn = {s.batch, s.channels, s.state};
  if (info.inputs[1].shape != bdl || a != Shape{s.channels, s.state} || bm != bc ||
      info.inputs[4].shape != bc)
    return nullptr;
  if (!optional_shape(info, 5, {s.channels}) || !optional_shape(info, 6, bdl) ||
      !optional_shape(info, 7, {s.channels}) || !optional_shape(info, 8, bdn))
    return nullptr;
  if (info.outputs[0].shape != bdl || (info.outputs.size() == 2 && info.outputs[1].shape != bdn))
    return nullptr;
  return std::make_unique<SelectiveScanKernel>(s, softplus == 1, info.input_present(5), info.input_present(6),
                                               info.input_present(7), info.input_present(8),
                                               info.outputs.size() == 2);
}

}  // namespace seqrun::backends::cpu
