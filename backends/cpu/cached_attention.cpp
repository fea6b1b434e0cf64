// CachedAttention on the CPU (ir/ops/cached_attention.cpp): T new tokens appended to a KV cache and their
// causal attention over it, in two regimes chosen per shape (the position P is only known at run time).
//
// Layout: Q [B, Hq, T, Dk], K [B, Hkv, T, Dk], V [B, Hkv, T, Dv], caches [B, Hkv, C, D*] row-major; query
// head h reads kv head h / (Hq / Hkv). Every run first makes the new caches: rows P .. P+T-1 from K and
// V, the other rows copied from the old caches unless the output is the old cache's memory (the plan
// runs the kernel in place when the old cache dies here: can_run_in_place), in which case only the T new
// rows are written.
//
// Decode (T <= kDecodeMaxTokens): one OpenMP task per (batch, kv head), dynamic schedule. The task's
// R = (Hq / Hkv) · T query rows walk the keys 0 .. P+T-1 once, in tiles of kKeyTile keys: scores
// q·k·scale four rows at a time (each key row loaded once for the four dot products; AVX-512F where the
// CPU has it, else AVX2), softcap, then per row an online softmax step over the tile (running max m, sum
// l, correction exp(m - m')) and the V accumulation acc += p·v, four rows' accumulators in registers while
// the tile's values stream from L1. The next tile's K and V rows are prefetched during the score loop (the
// 4 KiB pages stop the hardware prefetchers). Each K/V row is read from memory once per task and reused by
// all R rows, so the kernel is bound by the K/V read: (P + T)·(Dk + Dv)·4 bytes per (batch, kv head)
// (measured: 85-90% of a plain read of the same bytes, 2 threads, tools/bench/attention). Scratch:
// R·(kKeyTile + Dv + 2) floats per thread. The per-tile vector pieces are in decode_attention_tiles.h.
// Prefill (larger T): chunked_attention.cpp's blocked kernel (blocked_attention.h) with query offset P
// over the first P + T rows of the new caches; compute-bound like ChunkedAttention.
// f32 accumulation throughout; results differ from the double-precision reference by rounding only.
// GCC 12's AVX-512 headers initialize their "undefined" operand from itself, which -O3 reports as
// (maybe-)uninitialized inside the intrinsics; the warning is about the header, not this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "backends/cpu/block_gemm.h"
#include "backends/cpu/blocked_attention.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/decode_attention_tiles.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kDecodeMaxTokens = 8;
constexpr int64_t kKeyTile = 64;
constexpr int64_t kPrefetchTiles = 1;           // how many tiles ahead the decode walk prefetches K and V
constexpr int64_t kParallelMinBytes = 1 << 18;  // K/V bytes below which one thread does the whole step

struct CachedShape {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, tokens = 0, capacity = 0, qk_size = 0, v_size = 0;
};

struct CachedOptions {
  float scale = 1.0f;
  float softcap = 0.0f;  // 0: none
  int64_t window = -1;   // -1: none
};

using namespace decode_tiles;  // the tile pieces have no other user

class CachedAttentionKernel : public Kernel {
 public:
  CachedAttentionKernel(const Node* node, const CachedShape& shape, const CachedOptions& options, int threads)
      : node_(node), s_(shape), opt_(options), threads_(std::max(1, threads)) {
    group_ = s_.q_heads / s_.kv_heads;
    decode_ = s_.tokens <= kDecodeMaxTokens;
    if (decode_) {
      rows_ = group_ * s_.tokens;
      WorkspaceLayout layout;
      scores_offset_ = layout.add(sizeof(float) * rows_ * kKeyTile);
      acc_offset_ = layout.add(sizeof(float) * rows_ * s_.v_size);
      max_offset_ = layout.add(sizeof(float) * rows_);
      sum_offset_ = layout.add(sizeof(float) * rows_);
      per_thread_bytes_ = layout.total();
    } else {
      CacheAttentionShape bs{s_.batch,    s_.q_heads, s_.kv_heads, s_.tokens,
                             s_.capacity, s_.qk_size, s_.v_size};
      CacheAttentionOptions bo;
      bo.scale = opt_.scale;
      bo.softcap = opt_.softcap;
      bo.window = opt_.window;
      blocked_ = make_blocked_cache_attention(bs, bo, threads_);
    }
  }

  size_t workspace_bytes() const override {
    return decode_ ? per_thread_bytes_ * static_cast<size_t>(threads_) : blocked_->workspace_bytes();
  }

  // The new caches may be written over the old ones (the kernel then writes only the new rows).
  bool can_run_in_place(int output, int input) const override {
    return (output == 1 && input == 3) || (output == 2 && input == 4);
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    const int64_t P = *inputs[5].as<const int64_t>();
    const int64_t T = s_.tokens, C = s_.capacity;
    if (P < 0) return node_error(node_, "position {} is negative", P);
    if (P > C - T)
      return node_error(node_, "position {} + {} new tokens exceeds the cache capacity {}", P, T, C);
    if (outputs[1].data == nullptr || outputs[2].data == nullptr)
      return node_error(node_, "the new k_cache and v_cache outputs need memory");
    const float* q = inputs[0].as<const float>();
    const float* k = inputs[1].as<const float>();
    const float* v = inputs[2].as<const float>();
    const float* k_old = inputs[3].as<const float>();
    const float* v_old = inputs[4].as<const float>();
    float* y = outputs[0].as<float>();
    float* k_new = outputs[1].as<float>();
    float* v_new = outputs[2].as<float>();
    const int64_t heads = s_.batch * s_.kv_heads;
    const int threads = std::max(1, std::min(threads_, omp_get_max_threads()));
    const double kv_bytes = 4.0 * static_cast<double>(heads) * (P + T) * (s_.qk_size + s_.v_size);
    const bool parallel = threads > 1 && heads > 1 && (kv_bytes >= kParallelMinBytes || k_new != k_old);
    if (!decode_) {
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
      for (int64_t kv = 0; kv < heads; ++kv) update_head_cache(kv, P, k, v, k_old, v_old, k_new, v_new);
      blocked_->run(q, k_new, v_new, y, P, workspace);
      return Status::ok();
    }
    const bool avx512 = block_gemm::avx512_enabled();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (parallel)
    for (int64_t kv = 0; kv < heads; ++kv) {
      update_head_cache(kv, P, k, v, k_old, v_old, k_new, v_new);
      char* scratch = static_cast<char*>(workspace) + per_thread_bytes_ * omp_get_thread_num();
      if (avx512) {
        decode_head_avx512(kv, P, q, k_new, v_new, y, scratch);
      } else {
        decode_head_avx2(kv, P, q, k_new, v_new, y, scratch);
      }
    }
    return Status::ok();
  }

  std::string label() const override {
    return decode_ ? "avx2:cached_attention_decode" : "avx2:cached_attention_prefill";
  }

 private:
  // Rows P .. P+T-1 of kv head `kv` (b * Hkv + g) from K and V; the other rows from the old cache unless
  // the new cache is the old one's memory.
  void update_head_cache(int64_t kv, int64_t P, const float* k, const float* v, const float* k_old,
                         const float* v_old, float* k_new, float* v_new) const {
    const int64_t T = s_.tokens, C = s_.capacity;
    update_rows(kv, P, T, C, s_.qk_size, k, k_old, k_new);
    update_rows(kv, P, T, C, s_.v_size, v, v_old, v_new);
  }

  static void update_rows(int64_t kv, int64_t P, int64_t T, int64_t C, int64_t D, const float* rows,
                          const float* old_cache, float* new_cache) {
    float* dst = new_cache + kv * C * D;
    if (new_cache != old_cache) {
      const float* src = old_cache + kv * C * D;
      std::memcpy(dst, src, sizeof(float) * P * D);
      std::memcpy(dst + (P + T) * D, src + (P + T) * D, sizeof(float) * (C - P - T) * D);
    }
    std::memcpy(dst + P * D, rows + kv * T * D, sizeof(float) * T * D);
  }

  // The first key that query token i (absolute position P + i) sees; the last is P + i itself.
  int64_t first_key(int64_t P, int64_t i) const {
    return opt_.window >= 0 ? std::max<int64_t>(0, P + i - opt_.window) : 0;
  }
  // The columns [visible_begin, visible_end) of the key tile starting at j0 that token i sees.
  int64_t visible_begin(int64_t P, int64_t i, int64_t j0) const {
    return std::max<int64_t>(0, first_key(P, i) - j0);
  }
  static int64_t visible_end(int64_t P, int64_t i, int64_t j0, int64_t cols) {
    return std::min<int64_t>(cols, P + i + 1 - j0);
  }

  // Decode of one kv head: its Hq/Hkv query heads x T tokens as R rows (row r: head h0 + r / T, token
  // r % T), one pass over the visible keys in tiles.
  template <bool kAvx512>
  void decode_head(int64_t kv, int64_t P, const float* q, const float* k_cache, const float* v_cache,
                   float* y, char* scratch) const {
    const int64_t T = s_.tokens, Dk = s_.qk_size, Dv = s_.v_size, R = rows_;
    float* scores = reinterpret_cast<float*>(scratch + scores_offset_);
    float* acc = reinterpret_cast<float*>(scratch + acc_offset_);
    float* row_max = reinterpret_cast<float*>(scratch + max_offset_);
    float* row_sum = reinterpret_cast<float*>(scratch + sum_offset_);
    const int64_t b = kv / s_.kv_heads, g = kv % s_.kv_heads;
    const float* kh = k_cache + kv * s_.capacity * Dk;
    const float* vh = v_cache + kv * s_.capacity * Dv;
    // Query rows of this kv head: heads g·group .. (g+1)·group - 1, all T tokens, contiguous in Q and Y.
    const float* qh = q + (b * s_.q_heads + g * group_) * T * Dk;
    float* yh = y + (b * s_.q_heads + g * group_) * T * Dv;
    for (int64_t r = 0; r < R; ++r) {
      row_max[r] = kNegInf;
      row_sum[r] = 0.0f;
    }
    std::fill(acc, acc + R * Dv, 0.0f);
    const int64_t j_begin = first_key(P, 0), j_end = P + T;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kKeyTile) {
      const int64_t cols = std::min(kKeyTile, j_end - j0);
      // The keys and values kPrefetchTiles tiles ahead start their way into the caches while this tile
      // computes (TilePrefetch).
      TilePrefetch ahead;
      const int64_t ahead_j = j0 + kPrefetchTiles * kKeyTile;
      if (ahead_j < j_end) {
        ahead = {kh + ahead_j * Dk, vh + ahead_j * Dv, Dk, Dv, std::min(kKeyTile, j_end - ahead_j)};
      }
      // Scores, four rows at a time over the union of their visible columns (rows r0.. differ only in
      // their token, so the union is the last row's end and the first row's start).
      for (int64_t r0 = 0; r0 < R; r0 += 4) {
        const int64_t nr = std::min<int64_t>(4, R - r0);
        int64_t c_lo = cols, c_hi = 0;
        const float* rows[4];
        for (int64_t k = 0; k < nr; ++k) {
          rows[k] = qh + (r0 + k) * Dk;
          c_lo = std::min(c_lo, visible_begin(P, (r0 + k) % T, j0));
          c_hi = std::max(c_hi, visible_end(P, (r0 + k) % T, j0, cols));
        }
        const TilePrefetch& fetch = r0 == 0 ? ahead : TilePrefetch{};  // the first row group asks
        if (kAvx512) {
          score_tile512(nr, rows, kh + j0 * Dk, Dk, c_lo, c_hi, opt_.scale, scores + r0 * kKeyTile, kKeyTile,
                        fetch);
        } else {
          score_tile256(nr, rows, kh + j0 * Dk, Dk, c_lo, c_hi, opt_.scale, scores + r0 * kKeyTile, kKeyTile,
                        fetch);
        }
      }
      // Per row: softmax step and rescale; then the values, four rows at a time where they see the same
      // columns (always for T = 1; for T > 1 all but the tiles at the causal or window edge).
      for (int64_t r0 = 0; r0 < R; r0 += 4) {
        const int64_t nr = std::min<int64_t>(4, R - r0);
        bool same_columns = true;
        for (int64_t r = r0; r < r0 + nr; ++r) {
          const int64_t c_begin = visible_begin(P, r % T, j0), c_end = visible_end(P, r % T, j0, cols);
          same_columns = same_columns && c_begin == visible_begin(P, r0 % T, j0) &&
                         c_end == visible_end(P, r0 % T, j0, cols);
          if (c_begin >= c_end) continue;
          float* s = scores + r * kKeyTile;
          for (int64_t c = 0; c < c_begin; ++c) s[c] = kNegInf;
          for (int64_t c = c_end; c < cols; ++c) s[c] = kNegInf;
          const float correction =
              kAvx512 ? softmax_tile512(s, cols, c_begin, c_end, opt_.softcap, row_max + r, row_sum + r)
                      : softmax_tile(s, cols, c_begin, c_end, opt_.softcap, row_max + r, row_sum + r);
          if (correction != 1.0f) {
            float* ar = acc + r * Dv;
            for (int64_t d = 0; d < Dv; ++d) ar[d] *= correction;
          }
        }
        const int64_t c_begin0 = visible_begin(P, r0 % T, j0), c_end0 = visible_end(P, r0 % T, j0, cols);
        if (kAvx512 && same_columns) {
          if (c_begin0 < c_end0) {
            accumulate_group512(nr, acc + r0 * Dv, Dv, scores + r0 * kKeyTile, kKeyTile, vh + j0 * Dv, Dv,
                                c_begin0, c_end0);
          }
          continue;
        }
        for (int64_t r = r0; r < r0 + nr; ++r) {
          const int64_t c_begin = visible_begin(P, r % T, j0), c_end = visible_end(P, r % T, j0, cols);
          if (c_begin >= c_end) continue;
          if (kAvx512) {
            accumulate512(acc + r * Dv, scores + r * kKeyTile, vh + j0 * Dv, Dv, c_begin, c_end);
          } else {
            accumulate256(acc + r * Dv, scores + r * kKeyTile, vh + j0 * Dv, Dv, c_begin, c_end);
          }
        }
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const float inv = row_sum[r] == 0.0f ? 0.0f : 1.0f / row_sum[r];
      for (int64_t d = 0; d < Dv; ++d) yh[r * Dv + d] = acc[r * Dv + d] * inv;
    }
  }

  __attribute__((target("avx512f"))) void decode_head_avx512(int64_t kv, int64_t P, const float* q,
                                                             const float* k_cache, const float* v_cache,
                                                             float* y, char* scratch) const {
    decode_head<true>(kv, P, q, k_cache, v_cache, y, scratch);
  }

  void decode_head_avx2(int64_t kv, int64_t P, const float* q, const float* k_cache, const float* v_cache,
                        float* y, char* scratch) const {
    decode_head<false>(kv, P, q, k_cache, v_cache, y, scratch);
  }

  const Node* node_;
  CachedShape s_;
  CachedOptions opt_;
  int threads_;
  int64_t group_ = 1, rows_ = 0;
  bool decode_ = true;
  size_t scores_offset_ = 0, acc_offset_ = 0, max_offset_ = 0, sum_offset_ = 0, per_thread_bytes_ = 0;
  std::unique_ptr<BlockedCacheAttention> blocked_;
};

bool is_f32_rank4(const TensorArg& a) {
  return a.dtype == DType::f32 && a.rank() == 4;
}

}  // namespace

std::unique_ptr<Kernel> make_cached_attention_kernel(const KernelInfo& info) {
  const Node& node = *info.node;
  if (info.inputs.size() != 6 || info.outputs.size() != 3) return nullptr;
  for (int i = 0; i < 5; ++i) {
    if (!info.input_present(i) || !is_f32_rank4(info.inputs[i])) return nullptr;
  }
  const TensorArg& pos = info.inputs[5];
  if (!info.input_present(5) || pos.dtype != DType::i64 || pos.rank() > 1 || pos.numel() != 1) return nullptr;
  const Shape& q = info.inputs[0].shape;
  const Shape& kc = info.inputs[3].shape;
  const Shape& vc = info.inputs[4].shape;
  CachedShape s{q[0], q[1], kc[1], q[2], kc[2], q[3], vc[3]};
  for (int64_t n : {s.batch, s.q_heads, s.kv_heads, s.tokens, s.capacity, s.qk_size, s.v_size}) {
    if (n <= 0) return nullptr;  // empty tensors: the reference handles them
  }
  if (s.q_heads % s.kv_heads != 0) return nullptr;
  if (info.inputs[1].shape != Shape({s.batch, s.kv_heads, s.tokens, s.qk_size}) ||
      info.inputs[2].shape != Shape({s.batch, s.kv_heads, s.tokens, s.v_size}) ||
      kc != Shape({s.batch, s.kv_heads, s.capacity, s.qk_size}) ||
      vc != Shape({s.batch, s.kv_heads, s.capacity, s.v_size})) {
    return nullptr;  // the reference reports the mismatch
  }
  if (s.tokens > s.capacity) return nullptr;                        // never fits: the reference reports it
  if (s.capacity + s.tokens >= (int64_t{1} << 30)) return nullptr;  // positions are int32 lanes
  for (const TensorArg& o : info.outputs) {
    if (o.dtype != DType::f32) return nullptr;
  }
  if (info.outputs[0].shape != Shape({s.batch, s.q_heads, s.tokens, s.v_size}) ||
      info.outputs[1].shape != kc || info.outputs[2].shape != vc) {
    return nullptr;
  }
  CachedOptions opt;
  opt.window = node.get_int("window", -1);
  opt.softcap = node.get_float("softcap", 0.0f);
  if (opt.window < -1 || opt.softcap < 0.0f) return nullptr;
  opt.scale = node.has_attr("scale") ? node.get_float("scale")
                                     : static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.qk_size)));
  return std::make_unique<CachedAttentionKernel>(info.node, s, opt, info.threads);
}

}  // namespace seqrun::backends::cpu
