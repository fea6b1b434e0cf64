// LinearAttention (ONNX 27 + seqrun's RWKV bonus) on the CPU for the linear and gated update rules:
// chunkwise for prefill (intra-chunk quadratic + inter-chunk state), recurrent for decode and short tails
// (AVX2 + FMA, AVX-512 block products where the CPU has them, OpenMP). The delta rules decline: the
// reference kernel runs them.
//
// Layout: q [B, T, Hq·dk], k [B, T, Hkv·dk], v [B, T, Hkv·dv], out [B, T, Hq·dv], state [B, Hkv, dk, dv];
// query head h reads the state of kv head h / (Hq / Hkv). Recurrence (per kv head, S [dk x dv]):
//   S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ       (linear: g = 0; gated: g per head or per key channel)
//   o_t = scale · q_tᵀ S_t,  or with the bonus u:  o_t = scale · (q_tᵀ S_{t-1} + ((q_t ⊙ u)·k_t) v_t)
// Chunkwise, for a chunk of L tokens starting from state S0, with G_t = Σ_{τ<=t} g_τ inside the chunk:
//   q̃_t = scale · q_t ⊙ exp(G_t)  (G_{t-1} with the bonus),   k̃_j = k_j ⊙ exp(-G_j)
//   O   = q̃ S0 + mask(q̃ k̃ᵀ) V      (mask: j <= t; j < t plus the bonus diagonal with u)
//   S_L = diag(exp(G_L)) S0 + Σ_j (k_j ⊙ exp(G_L - G_j)) v_jᵀ
// The factors stay finite while |G| <= kMaxLogDecay inside the chunk; a chunk with a stronger decay (or
// fewer than kMinChunkTokens tokens) runs token by token instead, so the result never depends on luck.
// Products go through block_gemm.h (register-tiled, AVX-512 or AVX2); the intra-chunk product only
// computes the lower triangle's 16-row bands, and the next chunk's rows are prefetched (they sit a page
// apart: one token's row holds every head). Parallel split: one OpenMP task per (batch, kv head); chunks run
// in order (each needs the previous state). Per-thread scratch from the workspace: dk·dv + 5·L·dk + L²
// floats. Cost per token and kv head: ~2·dk·dv + L·(dk + dv) flops per query head (compute-bound), so a
// decode step costs O(dk·dv) whatever the context length; f32 throughout.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/block_gemm.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kChunkTokens = 64;  // 16k tokens, 8 heads x 64, one thread: 32 ≈ 64, 128 is 15% slower
constexpr int64_t kMinChunkTokens = 8;
constexpr float kMaxLogDecay = 60.0f;          // exp(±60) is far inside the f32 range
constexpr double kParallelMinFlops = 1 << 20;  // below this an OpenMP fork/join costs more than it saves
constexpr int64_t kBandRows = 16;              // intra-chunk row band: key counts stay multiples of 16

struct LinearAttentionShape {
  int64_t batch = 0, tokens = 0, q_heads = 0, kv_heads = 0, dk = 0, dv = 0;
  bool gated = false, bonus = false, has_past = false, has_present = false;
  int64_t decay_width = 0, decay_batch = 0, decay_steps = 0;  // decay [B|1, T|1, Hkv·dk | Hkv]
  float scale = 1.0f;
};

class LinearAttentionKernel : public Kernel {
 public:
  LinearAttentionKernel(const LinearAttentionShape& shape, int threads)
      : s_(shape), threads_(std::max(1, threads)) {
    chunk_ = std::min(kChunkTokens, s_.tokens);
    WorkspaceLayout layout;
    state_offset_ = layout.add(sizeof(float) * s_.dk * s_.dv);
    g_offset_ = layout.add(sizeof(float) * chunk_ * s_.dk);
    qt_offset_ = layout.add(sizeof(float) * chunk_ * s_.dk);
    kt_offset_ = layout.add(sizeof(float) * s_.dk * chunk_);
    kh_offset_ = layout.add(sizeof(float) * chunk_ * s_.dk);
    a_offset_ = layout.add(sizeof(float) * chunk_ * chunk_);
    e_offset_ = layout.add(sizeof(float) * s_.dk);
    qf_offset_ = layout.add(sizeof(float) * chunk_ * s_.dk);  // exp(G)
    per_thread_bytes_ = layout.total();
  }

  size_t workspace_bytes() const override { return per_thread_bytes_ * static_cast<size_t>(threads_); }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    Args a;
    a.q = inputs[0].as<const float>();
    a.k = inputs[1].as<const float>();
    a.v = inputs[2].as<const float>();
    a.past = s_.has_past ? inputs[3].as<const float>() : nullptr;
    a.decay = s_.gated ? inputs[4].as<const float>() : nullptr;
    a.bonus = s_.bonus ? inputs[6].as<const float>() : nullptr;
    a.out = outputs[0].as<float>();
    a.present = s_.has_present ? outputs[1].as<float>() : nullptr;
    const int64_t items = s_.batch * s_.kv_heads;
    const int threads = std::max(1, std::min(threads_, omp_get_max_threads()));
    // A decode step (a few µs of work) stays on the calling thread: a fork/join would cost as much.
    const double flops = 4.0 * s_.batch * s_.tokens * s_.q_heads * s_.dk * s_.dv;
    const bool parallel = threads > 1 && items > 1 && flops >= kParallelMinFlops;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (parallel)
    for (int64_t item = 0; item < items; ++item) {
      char* scratch = static_cast<char*>(workspace) + per_thread_bytes_ * omp_get_thread_num();
      kv_head(a, item / s_.kv_heads, item % s_.kv_heads, scratch);
    }
    return Status::ok();
  }

  std::string label() const override {
    return "avx2:linear_attention";
  }

 private:
  struct Args {
    const float *q, *k, *v, *past, *decay, *bonus;
    float *out, *present;
  };

  // Row strides between consecutive tokens.
  int64_t q_stride() const {
    return s_.q_heads * s_.dk;
  }
  int64_t k_stride() const {
    return s_.kv_heads * s_.dk;
  }
  int64_t v_stride() const {
    return s_.kv_heads * s_.dv;
  }
  int64_t o_stride() const {
    return s_.q_heads * s_.dv;
  }

  // The log decays of token t for kv head h: dk values (per key channel) or one (per head), see
  // decay_per_channel().
  const float* decay_row(const float* decay, int64_t b, int64_t h, int64_t t) const {
    const int64_t row = (s_.decay_batch == 1 ? 0 : b) * s_.decay_steps + (s_.decay_steps == 1 ? 0 : t);
    const float* g = decay + row * s_.decay_width;
    return decay_per_channel() ? g + h * s_.dk : g + h;
  }
  bool decay_per_channel() const {
    return s_.decay_width != s_.kv_heads;
  }

  // Prefetches the rows of tokens [t0, t0 + len) that a chunk of kv head h reads: hides the misses of
  // the next chunk's q/k/v/decay rows (each a few cache lines, one page apart) behind this chunk's products.
  void prefetch_rows(const Args& a, int64_t b, int64_t h, int64_t t0, int64_t len) const {
    const int64_t group = s_.q_heads / s_.kv_heads;
    auto lines = [](const float* p, int64_t floats) {
      for (int64_t i = 0; i < floats; i += 16)
        _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
    };
    for (int64_t t = t0; t < t0 + len; ++t) {
      const int64_t row = b * s_.tokens + t;
      lines(a.q + row * q_stride() + h * group * s_.dk, group * s_.dk);
      lines(a.k + row * k_stride() + h * s_.dk, s_.dk);
      lines(a.v + row * v_stride() + h * s_.dv, s_.dv);
      if (s_.gated && s_.decay_steps > 1) lines(decay_row(a.decay, b, h, t), decay_per_channel() ? s_.dk : 1);
    }
  }

  void kv_head(const Args& a, int64_t b, int64_t h, char* scratch) const {
    float* state = reinterpret_cast<float*>(scratch + state_offset_);
    const int64_t state_size = s_.dk * s_.dv;
    const float* past = a.past != nullptr ? a.past + (b * s_.kv_heads + h) * state_size : nullptr;
    for (int64_t i = 0; i < state_size; ++i) state[i] = past != nullptr ? past[i] : 0.0f;
    for (int64_t t0 = 0; t0 < s_.tokens; t0 += chunk_) {
      const int64_t len = std::min(chunk_, s_.tokens - t0);
      if (t0 + len < s_.tokens) prefetch_rows(a, b, h, t0 + len, std::min(chunk_, s_.tokens - t0 - len));
      if (len >= kMinChunkTokens && chunk(a, b, h, t0, len, state, scratch)) continue;
      for (int64_t t = t0; t < t0 + len; ++t) step(a, b, h, t, state, scratch);
    }
    if (a.present != nullptr) {
      float* present = a.present + (b * s_.kv_heads + h) * state_size;
      for (int64_t i = 0; i < state_size; ++i) present[i] = state[i];
    }
  }

  // One chunk in the chunkwise form; false (nothing written) when its decay is too strong for it.
  bool chunk(const Args& a, int64_t b, int64_t h, int64_t t0, int64_t len, float* state,
             char* scratch) const {
    const int64_t dk = s_.dk, dv = s_.dv, group = s_.q_heads / s_.kv_heads;
    float* cum = reinterpret_cast<float*>(scratch + g_offset_);  // G [len x dk]
    float* qt = reinterpret_cast<float*>(scratch + qt_offset_);  // q̃ [len x dk]
    float* kt = reinterpret_cast<float*>(scratch + kt_offset_);  // k̃ᵀ [dk x chunk_]
    float* kh = reinterpret_cast<float*>(scratch + kh_offset_);  // k ⊙ exp(G_L - G) [len x dk]
    float* att = reinterpret_cast<float*>(scratch + a_offset_);  // q̃ k̃ᵀ [len x chunk_]
    float* e = reinterpret_cast<float*>(scratch + e_offset_);    // exp(G_L) [dk]
    float* eg = reinterpret_cast<float*>(scratch + qf_offset_);  // exp(G) [len x dk]
    const float* kc = a.k + (b * s_.tokens + t0) * k_stride() + h * dk;
    const float* vc = a.v + (b * s_.tokens + t0) * v_stride() + h * dv;
    if (s_.gated) {
      if (!decay_factors(a, b, h, t0, len, cum, eg, kt, kh, e, /*tilde=*/qt)) return false;
    } else {
      block_gemm::transpose(len, dk, kc, k_stride(), kt, chunk_);
    }

    for (int64_t member = 0; member < group; ++member) {
      const int64_t qh = h * group + member;
      const float* qc = a.q + (b * s_.tokens + t0) * q_stride() + qh * dk;
      float* oc = a.out + (b * s_.tokens + t0) * o_stride() + qh * dv;
      for (int64_t t = 0; t < len; ++t) {
        const float* q_row = qc + t * q_stride();
        float* qt_row = qt + t * dk;
        if (s_.gated && (!s_.bonus || t > 0)) {
          const float* factor = eg + (s_.bonus ? t - 1 : t) * dk;  // exp(G_t), or exp(G_{t-1}) with the bonus
          for (int64_t r = 0; r < dk; ++r) qt_row[r] = q_row[r] * s_.scale * factor[r];
        } else {
          for (int64_t r = 0; r < dk; ++r) qt_row[r] = q_row[r] * s_.scale;
        }
      }
      for (int64_t i = 0; i < len; i += kBandRows) {
        const int64_t rows = std::min(kBandRows, len - i);
        const int64_t keys = i + rows;  // keys j <= t for the band's last row
        block_gemm::gemm(rows, keys, dk, {qt + i * dk, dk, 1}, kt, chunk_, att + i * chunk_, chunk_, false);
        for (int64_t t = i; t < i + rows; ++t) {
          float* row = att + t * chunk_;
          for (int64_t j = s_.bonus ? t : t + 1; j < keys; ++j) row[j] = 0.0f;
          if (s_.bonus) {  // ((q ⊙ u)·k) for the current token, scaled like the rest
            const float* q_row = qc + t * q_stride();
            const float* k_row = kc + t * k_stride();
            const float* u = a.bonus + h * dk;
            float w = 0.0f;
            for (int64_t r = 0; r < dk; ++r) w += q_row[r] * u[r] * k_row[r];
            row[t] = s_.scale * w;
          }
        }
        float* o_band = oc + i * o_stride();
        block_gemm::gemm(rows, dv, dk, {qt + i * dk, dk, 1}, state, dv, o_band, o_stride(), false);
        block_gemm::gemm(rows, dv, keys, {att + i * chunk_, chunk_, 1}, vc, v_stride(), o_band, o_stride(),
                         true);
      }
    }

    // S = diag(exp(G_L)) S + Σ_j k̂_j v_jᵀ
    if (s_.gated) {
      scale_rows(state, e);
      block_gemm::gemm(dk, dv, len, {kh, 1, dk}, vc, v_stride(), state, dv, true);
    } else {
      block_gemm::gemm(dk, dv, len, {kc, 1, k_stride()}, vc, v_stride(), state, dv, true);
    }
    return true;
  }

  // The chunk's decay factors: G_t = Σ_{τ<=t} g_τ inside the chunk (false when some |G| exceeds
  // kMaxLogDecay), eg = exp(G) [len x dk], k̃ᵀ = (k ⊙ exp(-G))ᵀ into kt, k̂ = k̃ ⊙ exp(G_L) and
  // e_last = exp(G_L). A per-head decay needs two scalar exps per token, a per-channel one two vector
  // exps per 8 channels. `tilde` is scratch [len x dk] for k̃ before its transpose.
  bool decay_factors(const Args& a, int64_t b, int64_t h, int64_t t0, int64_t len, float* cum, float* eg,
                     float* kt, float* kh, float* e_last, float* tilde) const {
    const int64_t dk = s_.dk;
    const float* kc = a.k + (b * s_.tokens + t0) * k_stride() + h * dk;
    if (!decay_per_channel()) {
      float sum = 0.0f;
      for (int64_t t = 0; t < len; ++t) {
        sum += *decay_row(a.decay, b, h, t0 + t);
        if (!(std::fabs(sum) <= kMaxLogDecay)) return false;  // NaN too
        const float up = std::exp(sum), down = std::exp(-sum);
        const float* k_row = kc + t * k_stride();
        for (int64_t r = 0; r < dk; ++r) {
          eg[t * dk + r] = up;
          tilde[t * dk + r] = k_row[r] * down;
        }
      }
    } else {
      const __m256 limit = _mm256_set1_ps(kMaxLogDecay);
      for (int64_t t = 0; t < len; ++t) {
        const float* g = decay_row(a.decay, b, h, t0 + t);
        const float* prev = t > 0 ? cum + (t - 1) * dk : nullptr;
        float* row = cum + t * dk;
        int64_t r = 0;
        for (; r + 8 <= dk; r += 8) {
          __m256 x = _mm256_loadu_ps(g + r);
          if (prev != nullptr) x = _mm256_add_ps(x, _mm256_loadu_ps(prev + r));
          // |x| <= limit, false for NaN (ordered compare)
          if (_mm256_movemask_ps(_mm256_cmp_ps(vec::abs(x), limit, _CMP_LE_OQ)) != 0xff) return false;
          _mm256_storeu_ps(row + r, x);
        }
        for (; r < dk; ++r) {
          row[r] = g[r] + (prev != nullptr ? prev[r] : 0.0f);
          if (!(std::fabs(row[r]) <= kMaxLogDecay)) return false;
        }
      }
      const __m256 zero = _mm256_setzero_ps();
      for (int64_t t = 0; t < len; ++t) {
        const float* k_row = kc + t * k_stride();
        int64_t r = 0;
        for (; r + 8 <= dk; r += 8) {
          const __m256 x = _mm256_loadu_ps(cum + t * dk + r);
          _mm256_storeu_ps(eg + t * dk + r, vec::exp(x));
          _mm256_storeu_ps(tilde + t * dk + r,
                           _mm256_mul_ps(_mm256_loadu_ps(k_row + r), vec::exp(_mm256_sub_ps(zero, x))));
        }
        for (; r < dk; ++r) {
          eg[t * dk + r] = std::exp(cum[t * dk + r]);
          tilde[t * dk + r] = k_row[r] * std::exp(-cum[t * dk + r]);
        }
      }
    }
    block_gemm::transpose(len, dk, tilde, dk, kt, chunk_);
    for (int64_t r = 0; r < dk; ++r) e_last[r] = eg[(len - 1) * dk + r];
    for (int64_t t = 0; t < len; ++t) {
      for (int64_t r = 0; r < dk; ++r) kh[t * dk + r] = tilde[t * dk + r] * e_last[r];
    }
    return true;
  }

  // S[r, :] *= factor[r]
  void scale_rows(float* state, const float* factor) const {
    for (int64_t r = 0; r < s_.dk; ++r) {
      const __m256 f = _mm256_set1_ps(factor[r]);
      float* row = state + r * s_.dv;
      int64_t c = 0;
      for (; c + 8 <= s_.dv; c += 8) _mm256_storeu_ps(row + c, _mm256_mul_ps(_mm256_loadu_ps(row + c), f));
      for (; c < s_.dv; ++c) row[c] *= factor[r];
    }
  }

  // out[c] = scale · (Σ_r q[r] S[r, c] + w · v[c]) for every column c (w = 0 without the bonus).
  void readout(const float* q, const float* state, float w, const float* v, float* out) const {
    const int64_t dk = s_.dk, dv = s_.dv;
    const __m256 scale = _mm256_set1_ps(s_.scale), wv = _mm256_set1_ps(w);
    for (int64_t c = 0; c < dv; c += 8) {
      const __m256i mask = vec::tail_mask(std::min<int64_t>(8, dv - c));
      __m256 acc0 = s_.bonus ? _mm256_mul_ps(wv, _mm256_maskload_ps(v + c, mask)) : _mm256_setzero_ps();
      __m256 acc1 = _mm256_setzero_ps();
      int64_t r = 0;
      for (; r + 2 <= dk; r += 2) {
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(q[r]), _mm256_maskload_ps(state + r * dv + c, mask), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(q[r + 1]), _mm256_maskload_ps(state + (r + 1) * dv + c, mask),
                               acc1);
      }
      if (r < dk)
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(q[r]), _mm256_maskload_ps(state + r * dv + c, mask), acc0);
      block_gemm::store_first(out + c, _mm256_mul_ps(scale, _mm256_add_ps(acc0, acc1)), dv - c);
    }
  }

  // One token of the recurrence (decode, short tails, chunks with a strong decay).
  void step(const Args& a, int64_t b, int64_t h, int64_t t, float* state, char* scratch) const {
    const int64_t dk = s_.dk, dv = s_.dv, group = s_.q_heads / s_.kv_heads;
    const float* kt = a.k + (b * s_.tokens + t) * k_stride() + h * dk;
    const float* vt = a.v + (b * s_.tokens + t) * v_stride() + h * dv;
    auto emit = [&]() {
      for (int64_t member = 0; member < group; ++member) {
        const int64_t qh = h * group + member;
        const float* qt = a.q + (b * s_.tokens + t) * q_stride() + qh * dk;
        float w = 0.0f;
        if (s_.bonus) {
          for (int64_t r = 0; r < dk; ++r) w += qt[r] * a.bonus[h * dk + r] * kt[r];
        }
        readout(qt, state, w, vt, a.out + (b * s_.tokens + t) * o_stride() + qh * dv);
      }
    };
    if (s_.bonus) emit();
    float* e = reinterpret_cast<float*>(scratch + e_offset_);
    if (s_.gated) {
      const float* g = decay_row(a.decay, b, h, t);
      for (int64_t r = 0; r < dk; ++r) e[r] = std::exp(g[decay_per_channel() ? r : 0]);
    } else {
      for (int64_t r = 0; r < dk; ++r) e[r] = 1.0f;
    }
    for (int64_t r = 0; r < dk; ++r) {
      const __m256 f = _mm256_set1_ps(e[r]), kr = _mm256_set1_ps(kt[r]);
      float* row = state + r * dv;
      for (int64_t c = 0; c < dv; c += 8) {
        const __m256i mask = vec::tail_mask(std::min<int64_t>(8, dv - c));
        const __m256 updated = _mm256_fmadd_ps(kr, _mm256_maskload_ps(vt + c, mask),
                                               _mm256_mul_ps(_mm256_maskload_ps(row + c, mask), f));
        block_gemm::store_first(row + c, updated, dv - c);
      }
    }
    if (!s_.bonus) emit();
  }

  LinearAttentionShape s_;
  int threads_;
  int64_t chunk_ = kChunkTokens;
  size_t state_offset_ = 0, g_offset_ = 0, qt_offset_ = 0, kt_offset_ = 0, kh_offset_ = 0, a_offset_ = 0,
         e_offset_ = 0, qf_offset_ = 0;
  size_t per_thread_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> make_linear_attention_kernel(const KernelInfo& info) {
  const Node& node = *info.node;
  if (!all_f32(info) || info.inputs.size() < 3 || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  const std::string rule = node.get_string("update_rule", "gated_delta");
  if (rule != "linear" && rule != "gated") return nullptr;  // the delta rules: reference
  LinearAttentionShape s;
  s.gated = rule == "gated";
  s.q_heads = node.get_int("q_num_heads", 0);
  s.kv_heads = node.get_int("kv_num_heads", 0);
  if (s.q_heads <= 0 || s.kv_heads <= 0 || s.q_heads % s.kv_heads != 0) return nullptr;
  for (int i = 0; i < 3; ++i) {
    if (!info.input_present(i) || info.inputs[i].rank() != 3) return nullptr;
  }
  const Shape& q = info.inputs[0].shape;
  const Shape& k = info.inputs[1].shape;
  const Shape& v = info.inputs[2].shape;
  s.batch = q[0];
  s.tokens = q[1];
  if (s.batch <= 0 || s.tokens <= 0 || q[2] % s.q_heads != 0 || v[2] % s.kv_heads != 0) return nullptr;
  s.dk = q[2] / s.q_heads;
  s.dv = v[2] / s.kv_heads;
  if (s.dk <= 0 || s.dv <= 0) return nullptr;
  if (k != Shape({s.batch, s.tokens, s.kv_heads * s.dk}) || v[0] != s.batch || v[1] != s.tokens)
    return nullptr;
  s.has_past = info.input_present(3);
  if (s.has_past && info.inputs[3].shape != Shape({s.batch, s.kv_heads, s.dk, s.dv})) return nullptr;
  if (s.gated) {
    if (!info.input_present(4)) return nullptr;
    const Shape& g = info.inputs[4].shape;
    if (g.size() != 3 || (g[0] != s.batch && g[0] != 1) || (g[1] != s.tokens && g[1] != 1) ||
        (g[2] != s.kv_heads * s.dk && g[2] != s.kv_heads))
      return nullptr;
    s.decay_batch = g[0];
    s.decay_steps = g[1];
    s.decay_width = g[2];
  }
  s.bonus = info.input_present(6);
  if (s.bonus && info.inputs[6].numel() != s.kv_heads * s.dk) return nullptr;
  if (info.outputs[0].shape != Shape({s.batch, s.tokens, s.q_heads * s.dv})) return nullptr;
  s.has_present = info.outputs.size() > 1;
  if (s.has_present && info.outputs[1].shape != Shape({s.batch, s.kv_heads, s.dk, s.dv})) return nullptr;
  s.scale = node.has_attr("scale") ? node.get_float("scale")
                                   : static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.dk)));
  return std::make_unique<LinearAttentionKernel>(s, info.threads);
}

}  // namespace seqrun::backends::cpu
