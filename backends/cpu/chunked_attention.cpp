// ChunkedAttention, and Attention on 4-D inputs without a KV cache, on the CPU: FlashAttention-2-style
// query/key blocks with an online softmax (AVX2 + FMA, or AVX-512F for the block products and the softmax
// where the CPU has it; OpenMP).
//
// Layout: Q [B, Hq, Sq, D], K [B, Hkv, T, D], V [B, Hkv, T, Dv], Y [B, Hq, Sq, Dv], row-major; query
// head h reads kv head h / (Hq / Hkv). Parallel split: one OpenMP task per (batch, query head, query
// block), scheduled dynamically with each head's later (causally heavier) blocks first. A task packs its
// query block transposed and pre-scaled (Qᵀ·scale, [D x bq]) into thread-local scratch, then walks only
// the key blocks that the causal / window bias does not mask entirely (a block-sparse layout,
// sparse_block = b, tiles by b and walks only the visible b x b key blocks: the empty ones are never read):
//   Sᵀ = K_blk · Qᵀ                                   [bk x bq]  (block_gemm.h register tiles)
//   softcap, attn_mask bias, causal/window -inf       (the structural masks on edge blocks only)
//   per query: m' = max(m, max_j s), p = exp(s - m'), l = l·exp(m - m') + Σ p
//   Oᵀ = Oᵀ·exp(m - m') + Vᵀ · P                      [Dv x bq]
// and at the end writes Y = (Oᵀ)ᵀ / l, or 0 for a row that saw no key with a finite bias (ONNX's
// all-masked rule). Keeping scores and output transposed puts a vector's 8 (16) lanes on 8 (16) queries:
// every softmax step is vertical (no horizontal reductions) and no key or value block is ever packed.
// Scratch: (D + bk + Dv + 3) x bq floats per thread, from the workspace; run() allocates nothing.
// Compute-bound: 2·(D + Dv) flops per visible score plus one vector exp per 8 scores.
//
// The same kernel runs CachedAttention's prefill (blocked_attention.h): queries at positions P.. over the
// first P + T rows of a KV cache whose row stride is its capacity, P known only at run time (run_blocks).
// block_q / block_k are honoured up to kMaxBlock (scratch stays in L2); results differ from the
// reference only by float rounding (f32 accumulation, vector exp within 1e-7 relative).
// GCC 12's AVX-512 headers initialize their "undefined" operand from itself, which -O3 reports as
// maybe-uninitialized inside the intrinsics; the warning is about the header, not this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/avx512_math.h"
#include "backends/cpu/block_gemm.h"
#include "backends/cpu/blocked_attention.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kMaxBlock = 256;
constexpr int64_t kDefaultBlock = 64;
constexpr double kParallelMinFlops = 1 << 20;  // below this an OpenMP fork/join costs more than it saves
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

// kv_len is the largest key count a run may see and the row stride of every K/V head: a run over a KV
// cache passes its own (smaller) key count and a query offset to run_blocks.
struct AttentionShape {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, qk_size = 0, v_size = 0;
};

// The attn_mask as a [B, Hq, Sq, T] bias: broadcast element strides for b, h, i (0 where broadcast) and
// its own last length; keys at or beyond it are masked (ONNX 24 pads a short mask with -inf).
struct MaskLayout {
  bool present = false;
  bool is_bool = false;
  int64_t stride[3] = {0, 0, 0};
  int64_t len = 0;
};

struct AttentionOptions {
  bool causal = false;
  int64_t window = -1;  // keys j < i - window are masked; -1: none
  float scale = 1.0f;
  float softcap = 0.0f;  // 0: none
  int64_t block_q = kDefaultBlock, block_k = kDefaultBlock;
  // Block-sparse "fixed" layout (with causal): key block kb is visible from query block qb (blocks of
  // sparse_block) iff qb - kb < sparse_local or kb % sparse_stride == sparse_stride - 1. 0: dense.
  int64_t sparse_block = 0, sparse_local = 1, sparse_stride = 1;
};

class BlockedAttentionKernel : public Kernel {
 public:
  BlockedAttentionKernel(std::string what, const AttentionShape& shape, const MaskLayout& mask,
                         const AttentionOptions& options, int threads)
      : what_(std::move(what)), s_(shape), mask_(mask), opt_(options), threads_(std::max(1, threads)) {
    // A sparse layout tiles by its own block, so every tile is all visible, causal-diagonal or empty.
    const int64_t block_q = opt_.sparse_block > 0 ? opt_.sparse_block : opt_.block_q;
    const int64_t block_k = opt_.sparse_block > 0 ? opt_.sparse_block : opt_.block_k;
    bq_ = std::min(std::min(block_q, kMaxBlock), s_.q_len);
    bk_ = std::min(std::min(block_k, kMaxBlock), s_.kv_len);
    lanes_ = round_up(bq_, 16);
    WorkspaceLayout layout;
    qt_offset_ = layout.add(sizeof(float) * s_.qk_size * lanes_);
    st_offset_ = layout.add(sizeof(float) * bk_ * lanes_);
    ot_offset_ = layout.add(sizeof(float) * s_.v_size * lanes_);
    max_offset_ = layout.add(sizeof(float) * lanes_);
    sum_offset_ = layout.add(sizeof(float) * lanes_);
    corr_offset_ = layout.add(sizeof(float) * lanes_);
    per_thread_bytes_ = layout.total();
  }

  size_t workspace_bytes() const override { return per_thread_bytes_ * static_cast<size_t>(threads_); }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    const void* mask = mask_.present ? inputs[3].data : nullptr;
    run_blocks(inputs[0].as<const float>(), inputs[1].as<const float>(), inputs[2].as<const float>(), mask,
               outputs[0].as<float>(), /*q_offset=*/0, s_.kv_len, workspace);
    return Status::ok();
  }

  // Y for queries at positions q_offset .. q_offset + Sq - 1 over keys 0 .. kv_len - 1 (kv_len <= the
  // shape's kv_len, which stays the K/V row stride). Causal: key j is visible from query i iff
  // j <= q_offset + i; window: iff j >= q_offset + i - window.
  void run_blocks(const float* q, const float* k, const float* v, const void* mask, float* y,
                  int64_t q_offset, int64_t kv_len, void* workspace) const {
    const int64_t q_blocks = (s_.q_len + bq_ - 1) / bq_;
    const int64_t items = s_.batch * s_.q_heads * q_blocks;
    const int threads = std::max(1, std::min(threads_, omp_get_max_threads()));
    const double flops = 2.0 * s_.batch * s_.q_heads * s_.q_len * kv_len * (s_.qk_size + s_.v_size);
    const bool parallel = threads > 1 && items > 1 && flops >= kParallelMinFlops;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (parallel)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t head = item / q_blocks;  // b * Hq + h
      const int64_t block = q_blocks - 1 - item % q_blocks;
      char* scratch = static_cast<char*>(workspace) + per_thread_bytes_ * omp_get_thread_num();
      query_block(q, k, v, mask, y, head / s_.q_heads, head % s_.q_heads, block, q_offset, kv_len, scratch);
    }
  }

  std::string label() const override {
    return "avx2:" + what_;
  }
  const AttentionShape& shape() const {
    return s_;
  }

 private:
  // One (batch, query head, query block): the whole key walk and the block's rows of Y.
  void query_block(const float* q, const float* k, const float* v, const void* mask, float* y, int64_t b,
                   int64_t h, int64_t block, int64_t q_offset, int64_t T, char* scratch) const {
    const int64_t D = s_.qk_size, Dv = s_.v_size, stride = s_.kv_len;
    const int64_t i0 = block * bq_;
    const int64_t pos0 = q_offset + i0;  // the block's first query position, what the masks compare with
    const int64_t rows = std::min(bq_, s_.q_len - i0);
    const int64_t lanes = round_up(rows, 16);  // query lanes computed (rows plus zero padding)
    const int64_t ld = lanes_;
    float* qt = reinterpret_cast<float*>(scratch + qt_offset_);
    float* st = reinterpret_cast<float*>(scratch + st_offset_);
    float* ot = reinterpret_cast<float*>(scratch + ot_offset_);
    float* row_max = reinterpret_cast<float*>(scratch + max_offset_);
    float* row_sum = reinterpret_cast<float*>(scratch + sum_offset_);
    float* corr = reinterpret_cast<float*>(scratch + corr_offset_);
    const int64_t kv_head = b * s_.kv_heads + h / (s_.q_heads / s_.kv_heads);
    const float* qb = q + ((b * s_.q_heads + h) * s_.q_len + i0) * D;
    const float* kh = k + kv_head * stride * D;
    const float* vh = v + kv_head * stride * Dv;

    for (int64_t d = 0; d < D; ++d) {
      for (int64_t r = rows; r < lanes; ++r) qt[d * ld + r] = 0.0f;
    }
    block_gemm::transpose(rows, D, qb, D, qt, ld, opt_.scale);
    for (int64_t r = 0; r < lanes; ++r) {
      row_max[r] = kNegInf;
      row_sum[r] = 0.0f;
    }
    for (int64_t i = 0; i < Dv * ld; ++i) ot[i] = 0.0f;

    // Keys any row of the block can see: j <= i (causal), j >= i - window (window), i a query position.
    int64_t j_begin = 0, j_end = T;
    if (opt_.causal) j_end = std::min(T, pos0 + rows);
    if (opt_.window >= 0) j_begin = std::max<int64_t>(0, pos0 - opt_.window);
    const int64_t sb = opt_.sparse_block;
    if (sb > 0) j_begin = j_begin / sb * sb;  // key tiles on the layout's block boundaries
    for (int64_t j0 = j_begin; j0 < j_end; j0 += bk_) {
      // Sparse: only the visible key blocks of this query block (pos0 is a multiple of sb: q_offset is 0
      // and the query tiles are sb long, or there is just one).
      if (sb > 0 && pos0 / sb - j0 / sb >= opt_.sparse_local &&
          (j0 / sb) % opt_.sparse_stride != opt_.sparse_stride - 1) {
        continue;
      }
      const int64_t cols = std::min(bk_, j_end - j0);
      block_gemm::gemm(cols, lanes, D, {kh + j0 * D, D, 1}, qt, ld, st, ld, /*accumulate=*/false);
      if (opt_.softcap != 0.0f) apply_softcap(st, cols, lanes);
      if (mask != nullptr) add_mask(mask, st, b, h, i0, rows, j0, cols);
      const bool causal_edge = opt_.causal && j0 + cols - 1 > pos0;
      const bool window_edge = opt_.window >= 0 && j0 < pos0 + rows - 1 - opt_.window;
      const bool rescale =
          block_gemm::avx512_enabled()
              ? online_softmax_avx512(st, cols, lanes, pos0, j0, causal_edge, window_edge, row_max, row_sum,
                                      corr)
              : online_softmax(st, cols, lanes, pos0, j0, causal_edge, window_edge, row_max, row_sum, corr);
      if (rescale) {
        for (int64_t d = 0; d < Dv; ++d) {
          for (int64_t g = 0; g < lanes; g += 8) {
            _mm256_storeu_ps(ot + d * ld + g,
                             _mm256_mul_ps(_mm256_loadu_ps(ot + d * ld + g), _mm256_loadu_ps(corr + g)));
          }
        }
      }
      block_gemm::gemm(Dv, lanes, cols, {vh + j0 * Dv, 1, Dv}, st, ld, ot, ld, /*accumulate=*/true);
    }

    // Y = (Oᵀ / l)ᵀ; a row with l = 0 saw no key with a finite bias and gets 0 (a NaN l stays NaN).
    for (int64_t r = 0; r < lanes; ++r) corr[r] = row_sum[r] == 0.0f ? 0.0f : 1.0f / row_sum[r];
    for (int64_t d = 0; d < Dv; ++d) {
      for (int64_t g = 0; g < lanes; g += 8) {
        _mm256_storeu_ps(ot + d * ld + g,
                         _mm256_mul_ps(_mm256_loadu_ps(ot + d * ld + g), _mm256_loadu_ps(corr + g)));
      }
    }
    block_gemm::transpose(Dv, rows, ot, ld, y + ((b * s_.q_heads + h) * s_.q_len + i0) * Dv, Dv);
  }

  void apply_softcap(float* st, int64_t cols, int64_t lanes) const {
    const __m256 cap = _mm256_set1_ps(opt_.softcap), inv_cap = _mm256_set1_ps(1.0f / opt_.softcap);
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t g = 0; g < lanes; g += 8) {
        float* p = st + c * lanes_ + g;
        _mm256_storeu_ps(p, _mm256_mul_ps(cap, vec::tanh(_mm256_mul_ps(_mm256_loadu_ps(p), inv_cap))));
      }
    }
  }

  // Adds the attn_mask bias for (b, h, rows i0.., keys j0..) to the scores (bool: false -> -inf).
  void add_mask(const void* mask, float* st, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t j0,
                int64_t cols) const {
    const int64_t base = b * mask_.stride[0] + h * mask_.stride[1];
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t j = j0 + c;
      float* row = st + c * lanes_;
      if (j >= mask_.len) {
        for (int64_t r = 0; r < rows; ++r) row[r] = kNegInf;
        continue;
      }
      if (mask_.is_bool) {
        const bool* m = static_cast<const bool*>(mask) + base + j;
        for (int64_t r = 0; r < rows; ++r) {
          if (!m[(i0 + r) * mask_.stride[2]]) row[r] = kNegInf;
        }
      } else {
        const float* m = static_cast<const float*>(mask) + base + j;
        for (int64_t r = 0; r < rows; ++r) row[r] += m[(i0 + r) * mask_.stride[2]];
      }
    }
  }

  // The online softmax step for one key block, 8 queries per vector: masks the causal/window edge,
  // turns the scores into p = exp(s - m') in place and updates the running max and sum. Writes each
  // lane's correction exp(m - m') to `corr`; returns false when every correction is exactly 1.
  bool online_softmax(float* st, int64_t cols, int64_t lanes, int64_t i0, int64_t j0, bool causal_edge,
                      bool window_edge, float* row_max, float* row_sum, float* corr) const {
    const __m256 neg_inf = _mm256_set1_ps(kNegInf);
    const __m256 one = _mm256_set1_ps(1.0f);
    const int64_t ld = lanes_;
    const int window = static_cast<int>(std::min<int64_t>(opt_.window, s_.q_len + s_.kv_len));
    bool rescale = false;
    for (int64_t g = 0; g < lanes; g += 8) {
      __m256 block_max = neg_inf;
      if (causal_edge || window_edge) {
        const __m256i query = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(i0 + g)),
                                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256i window_start = _mm256_sub_epi32(query, _mm256_set1_epi32(window));
        for (int64_t c = 0; c < cols; ++c) {
          float* p = st + c * ld + g;
          const __m256i key = _mm256_set1_epi32(static_cast<int>(j0 + c));
          __m256i masked = _mm256_setzero_si256();
          if (causal_edge) masked = _mm256_cmpgt_epi32(key, query);  // j > i
          if (window_edge) masked = _mm256_or_si256(masked, _mm256_cmpgt_epi32(window_start, key));
          const __m256 s = _mm256_blendv_ps(_mm256_loadu_ps(p), neg_inf, _mm256_castsi256_ps(masked));
          _mm256_storeu_ps(p, s);
          block_max = _mm256_max_ps(block_max, s);
        }
      } else {
        for (int64_t c = 0; c < cols; ++c)
          block_max = _mm256_max_ps(block_max, _mm256_loadu_ps(st + c * ld + g));
      }
      const __m256 old_max = _mm256_loadu_ps(row_max + g);
      const __m256 new_max = _mm256_max_ps(old_max, block_max);
      // A lane that has seen no finite score yet shifts by 0: its p are exp(-inf) = 0, not NaN.
      const __m256 shift = _mm256_andnot_ps(_mm256_cmp_ps(new_max, neg_inf, _CMP_EQ_OQ), new_max);
      const __m256 correction = vec::exp(_mm256_sub_ps(old_max, shift));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t c = 0; c < cols; ++c) {
        float* p = st + c * ld + g;
        const __m256 e = vec::exp(_mm256_sub_ps(_mm256_loadu_ps(p), shift));
        _mm256_storeu_ps(p, e);
        sum = _mm256_add_ps(sum, e);
      }
      _mm256_storeu_ps(row_sum + g, _mm256_fmadd_ps(_mm256_loadu_ps(row_sum + g), correction, sum));
      _mm256_storeu_ps(row_max + g, new_max);
      _mm256_storeu_ps(corr + g, correction);
      if (_mm256_movemask_ps(_mm256_cmp_ps(correction, one, _CMP_NEQ_UQ)) != 0) rescale = true;
    }
    return rescale;
  }

  // online_softmax with 16 queries per vector (AVX-512F), the same steps in the same order.
  __attribute__((target("avx512f"))) bool online_softmax_avx512(float* st, int64_t cols, int64_t lanes,
                                                                int64_t i0, int64_t j0, bool causal_edge,
                                                                bool window_edge, float* row_max,
                                                                float* row_sum, float* corr) const {
    const __m512 neg_inf = _mm512_set1_ps(kNegInf);
    const __m512 one = _mm512_set1_ps(1.0f);
    const int64_t ld = lanes_;
    const int window = static_cast<int>(std::min<int64_t>(opt_.window, s_.q_len + s_.kv_len));
    bool rescale = false;
    for (int64_t g = 0; g < lanes; g += 16) {
      __m512 block_max = neg_inf;
      if (causal_edge || window_edge) {
        const __m512i query =
            _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(i0 + g)),
                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        const __m512i window_start = _mm512_sub_epi32(query, _mm512_set1_epi32(window));
        for (int64_t c = 0; c < cols; ++c) {
          float* p = st + c * ld + g;
          const __m512i key = _mm512_set1_epi32(static_cast<int>(j0 + c));
          __mmask16 masked = 0;
          if (causal_edge) masked = _mm512_cmpgt_epi32_mask(key, query);  // j > i
          if (window_edge) masked = masked | _mm512_cmpgt_epi32_mask(window_start, key);
          const __m512 s = _mm512_mask_mov_ps(_mm512_loadu_ps(p), masked, neg_inf);
          _mm512_storeu_ps(p, s);
          block_max = _mm512_max_ps(block_max, s);
        }
      } else {
        for (int64_t c = 0; c < cols; ++c)
          block_max = _mm512_max_ps(block_max, _mm512_loadu_ps(st + c * ld + g));
      }
      const __m512 old_max = _mm512_loadu_ps(row_max + g);
      const __m512 new_max = _mm512_max_ps(old_max, block_max);
      const __m512 shift =
          _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(new_max, neg_inf, _CMP_NEQ_UQ), new_max);  // -inf -> 0
      const __m512 correction = vec512::exp(_mm512_sub_ps(old_max, shift));
      __m512 sum = _mm512_setzero_ps();
      for (int64_t c = 0; c < cols; ++c) {
        float* p = st + c * ld + g;
        const __m512 e = vec512::exp(_mm512_sub_ps(_mm512_loadu_ps(p), shift));
        _mm512_storeu_ps(p, e);
        sum = _mm512_add_ps(sum, e);
      }
      _mm512_storeu_ps(row_sum + g, _mm512_fmadd_ps(_mm512_loadu_ps(row_sum + g), correction, sum));
      _mm512_storeu_ps(row_max + g, new_max);
      _mm512_storeu_ps(corr + g, correction);
      if (_mm512_cmp_ps_mask(correction, one, _CMP_NEQ_UQ) != 0) rescale = true;
    }
    return rescale;
  }

  std::string what_;
  AttentionShape s_;
  MaskLayout mask_;
  AttentionOptions opt_;
  int threads_;
  int64_t bq_ = 0, bk_ = 0, lanes_ = 0;  // lanes_: bq rounded up to 16, the row stride of every scratch
  size_t qt_offset_ = 0, st_offset_ = 0, ot_offset_ = 0, max_offset_ = 0, sum_offset_ = 0, corr_offset_ = 0;
  size_t per_thread_bytes_ = 0;
};

// Q, K, V (and Y) as the kernel needs them, or false to decline.
bool attention_shape(const KernelInfo& info, AttentionShape* s) {
  for (int i = 0; i < 3; ++i) {
    if (!info.input_present(i) || info.inputs[i].dtype != DType::f32 || info.inputs[i].rank() != 4)
      return false;
  }
  if (info.outputs.size() != 1 || info.outputs[0].dtype != DType::f32) return false;
  const Shape& q = info.inputs[0].shape;
  const Shape& k = info.inputs[1].shape;
  const Shape& v = info.inputs[2].shape;
  *s = {q[0], q[1], k[1], q[2], k[2], q[3], v[3]};
  if (k[0] != s->batch || v[0] != s->batch || k[3] != s->qk_size || v[1] != s->kv_heads || v[2] != s->kv_len)
    return false;
  for (int64_t n : {s->batch, s->q_heads, s->kv_heads, s->q_len, s->kv_len, s->qk_size, s->v_size}) {
    if (n <= 0) return false;  // empty tensors: the reference handles them
  }
  if (s->q_heads % s->kv_heads != 0) return false;
  // Query and key indices are compared as int32 lanes.
  if (s->q_len + s->kv_len >= (int64_t{1} << 30)) return false;
  return info.outputs[0].shape == Shape({s->batch, s->q_heads, s->q_len, s->v_size});
}

// The optional attn_mask (input 3): bool or f32, rank 1..4, right-aligned broadcast to [B, Hq, Sq, T].
bool mask_layout(const KernelInfo& info, const AttentionShape& s, MaskLayout* m) {
  if (!info.input_present(3)) return true;
  const TensorArg& mask = info.inputs[3];
  if (mask.dtype != DType::boolean && mask.dtype != DType::f32) return false;
  if (mask.rank() < 1 || mask.rank() > 4) return false;
  int64_t dims[4] = {1, 1, 1, 1};
  for (int i = 0; i < mask.rank(); ++i) dims[4 - mask.rank() + i] = mask.shape[i];
  const int64_t want[3] = {s.batch, s.q_heads, s.q_len};
  int64_t strides[4];
  strides[3] = 1;
  for (int i = 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  for (int i = 0; i < 3; ++i) {
    if (dims[i] != 1 && dims[i] != want[i]) return false;
    m->stride[i] = dims[i] == 1 ? 0 : strides[i];
  }
  if (dims[3] > s.kv_len) return false;
  m->present = true;
  m->is_bool = mask.dtype == DType::boolean;
  m->len = dims[3];
  return true;
}

float default_scale(const Node& node, int64_t qk_size) {
  return node.has_attr("scale") ? node.get_float("scale")
                                : static_cast<float>(1.0 / std::sqrt(static_cast<double>(qk_size)));
}

// CachedAttention's prefill: the blocked kernel, causal, with the query offset and key count of each run.
class BlockedCacheAttentionImpl : public BlockedCacheAttention {
 public:
  BlockedCacheAttentionImpl(const AttentionShape& shape, const AttentionOptions& options, int threads)
      : kernel_("cached_attention", shape, MaskLayout{}, options, threads) {}
  size_t workspace_bytes() const override { return kernel_.workspace_bytes(); }
  void run(const float* q, const float* k_cache, const float* v_cache, float* y, int64_t position,
           void* workspace) const override {
    kernel_.run_blocks(q, k_cache, v_cache, nullptr, y, position, position + shape_q_len(), workspace);
  }

 private:
  int64_t shape_q_len() const { return kernel_.shape().q_len; }
  BlockedAttentionKernel kernel_;
};

}  // namespace

std::unique_ptr<BlockedCacheAttention> make_blocked_cache_attention(const CacheAttentionShape& shape,
                                                                    const CacheAttentionOptions& options,
                                                                    int threads) {
  AttentionShape s{shape.batch,    shape.q_heads, shape.kv_heads, shape.q_len,
                   shape.capacity, shape.qk_size, shape.v_size};
  AttentionOptions opt;
  opt.causal = true;
  opt.window = options.window;
  opt.scale = options.scale;
  opt.softcap = options.softcap;
  opt.block_q = options.block_q;
  opt.block_k = options.block_k;
  return std::make_unique<BlockedCacheAttentionImpl>(s, opt, threads);
}

void set_attention_avx512(bool enabled) {
  block_gemm::avx512_enabled() = enabled && __builtin_cpu_supports("avx512f");
}

std::unique_ptr<Kernel> make_chunked_attention_kernel(const KernelInfo& info) {
  const Node& node = *info.node;
  if (info.inputs.size() < 3 || info.inputs.size() > 4) return nullptr;
  AttentionShape shape;
  MaskLayout mask;
  if (!attention_shape(info, &shape) || !mask_layout(info, shape, &mask)) return nullptr;
  AttentionOptions opt;
  opt.block_q = node.get_int("block_q", kDefaultBlock);
  opt.block_k = node.get_int("block_k", kDefaultBlock);
  opt.window = node.get_int("window", -1);
  const int64_t causal = node.get_int("is_causal", 0);
  if (opt.block_q <= 0 || opt.block_k <= 0 || opt.window < -1 || (causal != 0 && causal != 1)) return nullptr;
  opt.causal = causal == 1;
  opt.scale = default_scale(node, shape.qk_size);
  opt.softcap = node.get_float("softcap", 0.0f);
  opt.sparse_block = node.get_int("sparse_block", 0);
  opt.sparse_local = node.get_int("sparse_local", 1);
  opt.sparse_stride = node.get_int("sparse_stride", 1);
  if (opt.sparse_block < 0) return nullptr;
  if (opt.sparse_block > 0 &&
      (!opt.causal || opt.sparse_block > kMaxBlock || opt.sparse_local < 1 || opt.sparse_stride < 1)) {
    return nullptr;  // invalid (the reference reports it) or a block larger than the scratch allows
  }
  return std::make_unique<BlockedAttentionKernel>("chunked_attention", shape, mask, opt, info.threads);
}

std::unique_ptr<Kernel> make_attention_kernel(const KernelInfo& info) {
  const Node& node = *info.node;
  // 4-D, no KV cache, no nonpad_kv_seqlen, only the output Y: what ChunkedAttention computes.
  for (int i = 4; i < static_cast<int>(info.inputs.size()); ++i) {
    if (info.input_present(i)) return nullptr;
  }
  AttentionShape shape;
  MaskLayout mask;
  if (!attention_shape(info, &shape) || !mask_layout(info, shape, &mask)) return nullptr;
  AttentionOptions opt;
  opt.causal = node.get_int("is_causal", 0) != 0;
  opt.scale = default_scale(node, shape.qk_size);
  opt.softcap = node.get_float("softcap", 0.0f);
  return std::make_unique<BlockedAttentionKernel>("attention", shape, mask, opt, info.threads);
}

}  // namespace seqrun::backends::cpu
