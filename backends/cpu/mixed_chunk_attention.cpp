// MixedChunkAttention (GAU/FLASH; schema, formula and step form in ir/ops/mixed_chunk_attention.cpp) on the
// CPU: relu² quadratic attention inside chunks and linear attention across chunks as small dense block
// products (block_gemm.h: AVX-512F or AVX2 + FMA register tiles), OpenMP; f32 only.
//
// Layout: quad_q, quad_k [B, T, Sq], lin_q, lin_k [B, T, Sl], value and output [B, T, E], bias [C, C],
// state [B, Sl, E] and [B, C, Sq | Sl | E], row-major. A call covers tokens P..P+T-1 (P = 0 without state
// inputs). Its tokens split into segments that never cross a chunk boundary: the first one continues the
// unfinished chunk (its f = P % C earlier rows sit in the past chunk buffers), the others start a chunk.
// A segment's keys are its chunk's first f rows (buffers) and its own rows (input). Two phases, each an
// OpenMP loop with a dynamic schedule:
//   1. quadratic part, one task per (batch, segment) (and per group of value columns when there are fewer
//      of those than threads, each group recomputing W): pack qs·K_chunkᵀ [Sq x keys], then per band of
//      kBandRows query rows the scores W = Q·(qs·Kᵀ) over the keys the band's last row sees (causal: a
//      triangle of bands), W = relu(W + bias)² with the causal mask zeroed, and finally out = W·V_chunk,
//      one block of kQuadColumns value columns at a time, packed so it stays in L2 (and its panels in L1)
//      while every band reads it. Writes the output rows (no accumulation yet).
//   2. linear part, one task per (batch, block of kLinearColumns value columns): the [Sl x cols] slice of
//      the state S walks the segments in order: out += (ls·lin_q)·S, and when the segment completes its
//      chunk, S += lin_kᵀ·V_chunk (V packed); non-causal forms S = lin_kᵀ·V over every token first. S is
//      read from past_lin_state until the first fold, then lives in per-thread scratch, and is written to
//      new_lin_state at the end (skipped when in place and unchanged, as in most decode steps).
// Then the unfinished chunk's rows go to the chunk-buffer outputs. The state outputs may alias the state
// inputs (can_run_in_place): every read of the past state happens before it is written.
// Every packed operand and scratch matrix has a row stride of an odd number of cache lines (padded_stride):
// E = 1536 floats is 96 lines, which would put a panel's rows into two L1 sets.
// Cost per token: ~2·keys·(Sq + E) flops quadratic (keys <= C, half of it causal) plus 4·Sl·E linear:
// compute-bound for prefill. A decode step (T = 1) is O(C·(Sq + E) + Sl·E): it reads the chunk's V rows
// and the state once, in place (segments shorter than kPackMinRows are not packed); the fold, O(C·Sl·E),
// comes once per C tokens. Scratch per thread: max(Sq·K + R·K + K·256, R·Sl + (Sl + K)·128) floats (K: keys
// of a chunk, R: rows of a segment; strides padded).
// f32 accumulation (chains over keys, Sq, Sl and the tokens folded into S); the reference accumulates in
// double, so results differ by float rounding.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backends/cpu/block_gemm.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kBandRows = 24;              // query rows per score band: 2 AVX-512 / 4 AVX2 row tiles
constexpr int64_t kQuadColumns = 256;          // value columns per W·V block: [keys x 256] stays in L2
constexpr int64_t kLinearColumns = 128;        // state columns per linear task: [Sl x 128] stays in L2
constexpr int64_t kPackMinRows = 8;            // segments this short read V in place (a decode step)
constexpr double kParallelMinFlops = 1 << 20;  // below this an OpenMP fork/join costs more than it saves

// A row stride (floats) of at least `n` that is an odd number of 64-byte lines: the rows of a block-product
// operand then spread over every L1 set. A stride of many lines with a large power-of-two factor (E = 1536
// is 96 lines: the rows alternate between two sets) makes a [k x 32] panel evict itself and stream from L2.
int64_t padded_stride(int64_t n) {
  int64_t lines = (n + 15) / 16;
  if (lines % 2 == 0) ++lines;
  return lines * 16;
}

struct MixedChunkShape {
  int64_t batch = 0, tokens = 0, sq = 0, sl = 0, width = 0, chunk = 0;
  bool causal = true, has_bias = false, has_past = false;
  int num_outputs = 1;  // 1..5: output, then new_lin_state, new_chunk_quad_k, new_chunk_lin_k, new_chunk_v
  float quad_scale = 1.0f, lin_scale = 1.0f;
};

// Tokens t0..t0+n-1 of a call, all in one chunk, at chunk positions past..past+n-1: the first `past` rows
// of the chunk come from the past chunk buffers (only the first segment has any).
struct Segment {
  int64_t t0 = 0, n = 0, past = 0;
  bool completes = false;  // the segment's last token is its chunk's last
};

// The pointers of one run; absent inputs and outputs are null.
struct Args {
  const float *qq, *qk, *lq, *lk, *v, *bias;
  const float *past_state, *past_qk, *past_lk, *past_v;
  float *out, *state, *chunk_qk, *chunk_lk, *chunk_v;
};

class MixedChunkAttentionKernel : public Kernel {
 public:
  MixedChunkAttentionKernel(const Node* node, const MixedChunkShape& shape, int threads)
      : s_(shape), threads_(std::max(1, threads)), node_(node) {
    // A segment has at most min(C, T) rows; its keys include up to C - 1 buffer rows in the step form.
    rows_ = std::min(s_.chunk, s_.tokens);
    keys_ = s_.has_past ? s_.chunk : rows_;
    ldk_ = padded_stride(keys_);
    ldq_ = padded_stride(std::min(kQuadColumns, s_.width));
    lds_ = padded_stride(std::min(kLinearColumns, s_.width));
    WorkspaceLayout quad;
    kt_offset_ = quad.add(sizeof(float) * s_.sq * ldk_);
    w_offset_ = quad.add(sizeof(float) * rows_ * ldk_);
    quad_v_offset_ = quad.add(sizeof(float) * keys_ * ldq_);
    WorkspaceLayout linear;
    lq_offset_ = linear.add(sizeof(float) * rows_ * s_.sl);
    state_offset_ = linear.add(sizeof(float) * s_.sl * lds_);
    linear_v_offset_ = linear.add(sizeof(float) * keys_ * lds_);
    per_thread_bytes_ = std::max(quad.total(), linear.total());
  }

  size_t workspace_bytes() const override { return per_thread_bytes_ * static_cast<size_t>(threads_); }

  // Each state output over its own state input (1 over 6, ..., 4 over 9).
  bool can_run_in_place(int output, int input) const override {
    return s_.has_past && output >= 1 && output <= 4 && input == output + 5;
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    Args a{};
    a.qq = inputs[0].as<const float>();
    a.qk = inputs[1].as<const float>();
    a.lq = inputs[2].as<const float>();
    a.lk = inputs[3].as<const float>();
    a.v = inputs[4].as<const float>();
    a.bias = s_.has_bias ? inputs[5].as<const float>() : nullptr;
    int64_t position = 0;
    if (s_.has_past) {
      a.past_state = inputs[6].as<const float>();
      a.past_qk = inputs[7].as<const float>();
      a.past_lk = inputs[8].as<const float>();
      a.past_v = inputs[9].as<const float>();
      position = inputs[10].as<const int64_t>()[0];
      if (position < 0) return node_error(node_, "position must be >= 0, is {}", position);
    }
    float* outs[5] = {};
    for (int i = 0; i < s_.num_outputs; ++i) outs[i] = outputs[i].as<float>();
    a.out = outs[0];
    a.state = outs[1];
    a.chunk_qk = outs[2];
    a.chunk_lk = outs[3];
    a.chunk_v = outs[4];

    const int64_t filled = position % s_.chunk;  // rows of the unfinished chunk before this call
    const int64_t first = std::min(s_.tokens, s_.chunk - filled);
    const int64_t segments = 1 + (s_.tokens - first + s_.chunk - 1) / s_.chunk;
    const int threads = std::max(1, std::min(threads_, omp_get_max_threads()));
    char* scratch = static_cast<char*>(workspace);

    // Fewer (batch, segment) tasks than threads (a short prefill): each segment's value columns split into
    // groups, every group recomputing the segment's scores (Sq / (E / groups) of the W·V work).
    const int64_t quad_blocks = (s_.width + kQuadColumns - 1) / kQuadColumns;
    const int64_t groups = std::min(quad_blocks, (threads + s_.batch * segments - 1) / (s_.batch * segments));
    const int64_t blocks_per_group = (quad_blocks + groups - 1) / groups;
    const int64_t quad_items = s_.batch * segments * groups;
    const double quad_flops = 2.0 * s_.batch * s_.tokens * std::min(s_.chunk, s_.tokens + filled) *
                              static_cast<double>(s_.sq + s_.width);
    const bool quad_parallel = threads > 1 && quad_items > 1 && quad_flops >= kParallelMinFlops;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (quad_parallel)
    for (int64_t item = 0; item < quad_items; ++item) {
      const int64_t task = item / groups, group = item % groups;
      const int64_t c_begin = group * blocks_per_group * kQuadColumns;
      const int64_t c_end = std::min(s_.width, (group + 1) * blocks_per_group * kQuadColumns);
      if (c_begin >= c_end) continue;
      const Segment seg = segment(task % segments, filled, first);
      quad_part(a, task / segments, seg, c_begin, c_end, scratch + per_thread_bytes_ * omp_get_thread_num());
    }

    const int64_t column_blocks = (s_.width + kLinearColumns - 1) / kLinearColumns;
    const int64_t linear_items = s_.batch * column_blocks;
    const double linear_flops = 4.0 * s_.batch * s_.tokens * s_.sl * static_cast<double>(s_.width);
    const bool linear_parallel = threads > 1 && linear_items > 1 && linear_flops >= kParallelMinFlops;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (linear_parallel)
    for (int64_t item = 0; item < linear_items; ++item) {
      const int64_t b = item / column_blocks, c0 = item % column_blocks * kLinearColumns;
      char* mine = scratch + per_thread_bytes_ * omp_get_thread_num();
      if (s_.causal) {
        linear_part_causal(a, b, c0, segments, filled, first, mine);
      } else {
        linear_part_noncausal(a, b, c0, mine);
      }
    }

    write_chunk_buffers(a, segment(segments - 1, filled, first), segments == 1);
    return Status::ok();
  }

  std::string label() const override {
    return "avx2:mixed_chunk_attention";
  }

 private:
  // Segment k of a call whose first segment has `first` tokens after `filled` buffer rows.
  Segment segment(int64_t k, int64_t filled, int64_t first) const {
    Segment seg;
    if (k == 0) {
      seg.n = first;
      seg.past = filled;
    } else {
      seg.t0 = first + (k - 1) * s_.chunk;
      seg.n = std::min(s_.chunk, s_.tokens - seg.t0);
    }
    seg.completes = seg.past + seg.n == s_.chunk;
    return seg;
  }

  // Columns c0..c0+cols-1 of the segment chunk's value rows (buffer rows, then input rows) into
  // packed [keys x cols], row stride ld.
  void pack_values(const Args& a, int64_t b, const Segment& seg, int64_t c0, int64_t cols, float* packed,
                   int64_t ld) const {
    const int64_t E = s_.width;
    const float* past = seg.past > 0 ? a.past_v + b * s_.chunk * E + c0 : nullptr;
    const float* fresh = a.v + (b * s_.tokens + seg.t0) * E + c0;
    for (int64_t j = 0; j < seg.past; ++j) std::memcpy(packed + j * ld, past + j * E, sizeof(float) * cols);
    for (int64_t j = 0; j < seg.n; ++j) {
      std::memcpy(packed + (seg.past + j) * ld, fresh + j * E, sizeof(float) * cols);
    }
  }

  // Value columns c_begin..c_end-1 of the segment's output rows = relu(qs·Q·Kᵀ + bias)² · V over the
  // segment's chunk (causal: keys j <= query).
  void quad_part(const Args& a, int64_t b, const Segment& seg, int64_t c_begin, int64_t c_end,
                 char* scratch) const {
    const int64_t sq = s_.sq, E = s_.width, C = s_.chunk, T = s_.tokens;
    float* kt = reinterpret_cast<float*>(scratch + kt_offset_);      // qs·Kᵀ [Sq x keys], stride ldk_
    float* w = reinterpret_cast<float*>(scratch + w_offset_);        // W [n x keys], stride ldk_
    float* vp = reinterpret_cast<float*>(scratch + quad_v_offset_);  // V block [keys x cols], stride ldq_
    const float* qq = a.qq + (b * T + seg.t0) * sq;
    const int64_t keys = seg.past + seg.n;
    if (seg.past > 0)
      block_gemm::transpose(seg.past, sq, a.past_qk + b * C * sq, sq, kt, ldk_, s_.quad_scale);
    block_gemm::transpose(seg.n, sq, a.qk + (b * T + seg.t0) * sq, sq, kt + seg.past, ldk_, s_.quad_scale);

    // Scores band by band; a causal band only needs the keys its last row sees.
    for (int64_t i0 = 0; i0 < seg.n; i0 += kBandRows) {
      const int64_t rows = std::min(kBandRows, seg.n - i0);
      const int64_t band_keys = s_.causal ? seg.past + i0 + rows : keys;
      float* wb = w + i0 * ldk_;
      block_gemm::gemm(rows, band_keys, sq, {qq + i0 * sq, sq, 1}, kt, ldk_, wb, ldk_, /*accumulate=*/false);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t pos = seg.past + i0 + r;  // the query's chunk position
        const int64_t visible = s_.causal ? pos + 1 : keys;
        float* row = wb + r * ldk_;
        const float* bias = a.bias != nullptr ? a.bias + pos * C : nullptr;
        if (bias != nullptr) {
          for (int64_t j = 0; j < visible; ++j) row[j] += bias[j];
        }
        for (int64_t j = 0; j < visible; ++j) {
          const float x = std::max(row[j], 0.0f);
          row[j] = x * x;
        }
        for (int64_t j = visible; j < band_keys; ++j) row[j] = 0.0f;
      }
    }

    // out = W · V, a block of value columns at a time (packed, it stays in L2 while every band reads it).
    // A short segment (a decode step) reads V where it lies: packing would cost as much as the product.
    const bool pack = seg.n >= kPackMinRows;
    float* out = a.out + (b * T + seg.t0) * E;
    for (int64_t c0 = c_begin; c0 < c_end; c0 += kQuadColumns) {
      const int64_t cols = std::min(kQuadColumns, c_end - c0);
      if (pack) pack_values(a, b, seg, c0, cols, vp, ldq_);
      for (int64_t i0 = 0; i0 < seg.n; i0 += kBandRows) {
        const int64_t rows = std::min(kBandRows, seg.n - i0);
        const int64_t band_keys = s_.causal ? seg.past + i0 + rows : keys;
        const float* wb = w + i0 * ldk_;
        float* ob = out + i0 * E + c0;
        if (pack) {
          block_gemm::gemm(rows, cols, band_keys, {wb, ldk_, 1}, vp, ldq_, ob, E, /*accumulate=*/false);
          continue;
        }
        if (seg.past > 0) {
          block_gemm::gemm(rows, cols, seg.past, {wb, ldk_, 1}, a.past_v + b * C * E + c0, E, ob, E,
                           /*accumulate=*/false);
        }
        block_gemm::gemm(rows, cols, band_keys - seg.past, {wb + seg.past, ldk_, 1},
                         a.v + (b * T + seg.t0) * E + c0, E, ob, E, /*accumulate=*/seg.past > 0);
      }
    }
  }

  // lq_scaled [n x Sl] = ls · lin_q rows t0..t0+n-1 of batch row b.
  void scale_lin_q(const Args& a, int64_t b, int64_t t0, int64_t n, float* lq_scaled) const {
    const float* lq = a.lq + (b * s_.tokens + t0) * s_.sl;
    for (int64_t i = 0; i < n * s_.sl; ++i) lq_scaled[i] = s_.lin_scale * lq[i];
  }

  // Causal: the [Sl x cols] state slice walks the segments; each adds ls·lin_q·S to its rows, then folds its
  // chunk into S when the chunk is complete (unless nothing needs S afterwards). S is read from
  // past_lin_state (or is zero) until the first fold, which moves it to scratch; it ends in new_lin_state
  // when asked for (untouched when in place and unchanged: a decode step that completes no chunk).
  void linear_part_causal(const Args& a, int64_t b, int64_t c0, int64_t segments, int64_t filled,
                          int64_t first, char* scratch) const {
    const int64_t sl = s_.sl, E = s_.width, C = s_.chunk, T = s_.tokens;
    const int64_t cols = std::min(kLinearColumns, E - c0);
    float* lq_scaled = reinterpret_cast<float*>(scratch + lq_offset_);
    float* S = reinterpret_cast<float*>(scratch + state_offset_);
    float* vp = reinterpret_cast<float*>(scratch + linear_v_offset_);  // chunk's V block, stride lds_
    const float* past = a.past_state != nullptr ? a.past_state + b * sl * E + c0 : nullptr;
    bool in_scratch = false;
    for (int64_t k = 0; k < segments; ++k) {
      const Segment seg = segment(k, filled, first);
      if (in_scratch || past != nullptr) {
        scale_lin_q(a, b, seg.t0, seg.n, lq_scaled);
        block_gemm::gemm(seg.n, cols, sl, {lq_scaled, sl, 1}, in_scratch ? S : past, in_scratch ? lds_ : E,
                         a.out + (b * T + seg.t0) * E + c0, E, /*accumulate=*/true);
      }
      if (!seg.completes || (k + 1 == segments && a.state == nullptr)) continue;
      if (!in_scratch) {
        for (int64_t r = 0; r < sl; ++r) {
          if (past != nullptr) {
            std::memcpy(S + r * lds_, past + r * E, sizeof(float) * cols);
          } else {
            std::fill(S + r * lds_, S + r * lds_ + cols, 0.0f);
          }
        }
        in_scratch = true;
      }
      pack_values(a, b, seg, c0, cols, vp, lds_);
      if (seg.past > 0) {  // the chunk's earlier rows, from the past buffers
        block_gemm::gemm(sl, cols, seg.past, {a.past_lk + b * C * sl, 1, sl}, vp, lds_, S, lds_,
                         /*accumulate=*/true);
      }
      block_gemm::gemm(sl, cols, seg.n, {a.lk + (b * T + seg.t0) * sl, 1, sl}, vp + seg.past * lds_, lds_, S,
                       lds_, /*accumulate=*/true);
    }
    if (a.state == nullptr) return;
    float* dst = a.state + b * sl * E + c0;
    for (int64_t r = 0; r < sl; ++r) {
      if (in_scratch) {
        std::memcpy(dst + r * E, S + r * lds_, sizeof(float) * cols);
      } else if (past == nullptr) {
        std::fill(dst + r * E, dst + r * E + cols, 0.0f);
      } else if (past + r * E != dst + r * E) {  // not in place
        std::memcpy(dst + r * E, past + r * E, sizeof(float) * cols);
      }
    }
  }

  // Non-causal: S = lin_kᵀ·V over the whole sequence, then every row adds ls·lin_q·S.
  void linear_part_noncausal(const Args& a, int64_t b, int64_t c0, char* scratch) const {
    const int64_t sl = s_.sl, E = s_.width, T = s_.tokens;
    const int64_t cols = std::min(kLinearColumns, E - c0);
    float* lq_scaled = reinterpret_cast<float*>(scratch + lq_offset_);
    float* S = reinterpret_cast<float*>(scratch + state_offset_);
    float* vp = reinterpret_cast<float*>(scratch + linear_v_offset_);
    for (int64_t t0 = 0; t0 < T; t0 += rows_) {
      Segment rows_of_v;
      rows_of_v.t0 = t0;
      rows_of_v.n = std::min(rows_, T - t0);
      pack_values(a, b, rows_of_v, c0, cols, vp, lds_);
      block_gemm::gemm(sl, cols, rows_of_v.n, {a.lk + (b * T + t0) * sl, 1, sl}, vp, lds_, S, lds_,
                       /*accumulate=*/t0 > 0);
    }
    for (int64_t t0 = 0; t0 < T; t0 += rows_) {
      const int64_t n = std::min(rows_, T - t0);
      scale_lin_q(a, b, t0, n, lq_scaled);
      block_gemm::gemm(n, cols, sl, {lq_scaled, sl, 1}, S, lds_, a.out + (b * T + t0) * E + c0, E,
                       /*accumulate=*/true);
    }
  }

  // The unfinished chunk's rows into the chunk-buffer outputs: the last segment's tokens, after the past
  // rows when it is the first segment. Nothing when the last segment completed its chunk (rows past
  // (P + T) % C may hold anything).
  void write_chunk_buffers(const Args& a, const Segment& last, bool last_is_first) const {
    if (last.completes) return;
    const int64_t C = s_.chunk, T = s_.tokens;
    struct Buffer {
      float* out;
      const float* past;
      const float* input;
      int64_t width;
    };
    const Buffer buffers[3] = {{a.chunk_qk, a.past_qk, a.qk, s_.sq},
                               {a.chunk_lk, a.past_lk, a.lk, s_.sl},
                               {a.chunk_v, a.past_v, a.v, s_.width}};
    for (const Buffer& buf : buffers) {
      if (buf.out == nullptr) continue;
      for (int64_t b = 0; b < s_.batch; ++b) {
        float* dst = buf.out + b * C * buf.width;
        if (last_is_first && last.past > 0 && buf.past + b * C * buf.width != dst) {
          std::memmove(dst, buf.past + b * C * buf.width, sizeof(float) * last.past * buf.width);
        }
        std::memcpy(dst + last.past * buf.width, buf.input + (b * T + last.t0) * buf.width,
                    sizeof(float) * last.n * buf.width);
      }
    }
  }

  MixedChunkShape s_;
  int threads_;
  const Node* node_;
  int64_t rows_ = 0, keys_ = 0;          // most rows of a segment, most keys of a chunk
  int64_t ldk_ = 0, ldq_ = 0, lds_ = 0;  // padded strides: keys, quad V block, state slice and linear V block
  size_t kt_offset_ = 0, w_offset_ = 0, quad_v_offset_ = 0, lq_offset_ = 0, state_offset_ = 0,
         linear_v_offset_ = 0;
  size_t per_thread_bytes_ = 0;
};

bool is_f32(const KernelInfo& info, int i, const Shape& shape) {
  return info.input_present(i) && info.inputs[i].dtype == DType::f32 && info.inputs[i].shape == shape;
}

}  // namespace

std::unique_ptr<Kernel> make_mixed_chunk_attention_kernel(const KernelInfo& info) {
  const Node& node = *info.node;
  const int num_inputs = static_cast<int>(info.inputs.size());
  const int num_outputs = static_cast<int>(info.outputs.size());
  if (num_inputs < 5 || num_inputs > 11 || num_outputs < 1 || num_outputs > 5) return nullptr;
  for (int i = 0; i < 5; ++i) {
    if (!info.input_present(i) || info.inputs[i].rank() != 3) return nullptr;
  }
  MixedChunkShape s;
  s.batch = info.inputs[4].shape[0];
  s.tokens = info.inputs[4].shape[1];
  s.width = info.inputs[4].shape[2];
  s.sq = info.inputs[0].shape[2];
  s.sl = info.inputs[2].shape[2];
  s.chunk = node.get_int("chunk_size", 0);
  const int64_t causal = node.get_int("causal", 1);
  if (s.chunk <= 0 || (causal != 0 && causal != 1)) return nullptr;
  s.causal = causal == 1;
  for (int64_t n : {s.batch, s.tokens, s.width, s.sq, s.sl}) {
    if (n <= 0) return nullptr;  // empty tensors: the reference handles them
  }
  const int64_t B = s.batch, T = s.tokens, C = s.chunk;
  if (!is_f32(info, 0, {B, T, s.sq}) || !is_f32(info, 1, {B, T, s.sq}) || !is_f32(info, 2, {B, T, s.sl}) ||
      !is_f32(info, 3, {B, T, s.sl}) || !is_f32(info, 4, {B, T, s.width}))
    return nullptr;
  s.has_bias = info.input_present(5);
  if (s.has_bias && !is_f32(info, 5, {C, C})) return nullptr;

  int state_inputs = 0;
  for (int i = 6; i <= 10; ++i) state_inputs += info.input_present(i) ? 1 : 0;
  if (state_inputs != 0 && state_inputs != 5) return nullptr;
  s.has_past = state_inputs == 5;
  if ((s.has_past || num_outputs > 1) && !s.causal) return nullptr;  // the reference reports the error
  if (s.has_past) {
    if (!is_f32(info, 6, {B, s.sl, s.width}) || !is_f32(info, 7, {B, C, s.sq}) ||
        !is_f32(info, 8, {B, C, s.sl}) || !is_f32(info, 9, {B, C, s.width}))
      return nullptr;
    const TensorArg& position = info.inputs[10];
    if (position.dtype != DType::i64 || position.rank() > 1 || position.numel() != 1) return nullptr;
  }
  const Shape output_shapes[5] = {
      {B, T, s.width}, {B, s.sl, s.width}, {B, C, s.sq}, {B, C, s.sl}, {B, C, s.width}};
  for (int i = 0; i < num_outputs; ++i) {
    if (info.outputs[i].dtype != DType::f32 || info.outputs[i].shape != output_shapes[i]) return nullptr;
  }
  s.num_outputs = num_outputs;
  const float default_scale = static_cast<float>(1.0 / static_cast<double>(C));
  s.quad_scale = node.has_attr("quad_scale") ? node.get_float("quad_scale") : default_scale;
  s.lin_scale = node.has_attr("lin_scale") ? node.get_float("lin_scale") : default_scale;
  return std::make_unique<MixedChunkAttentionKernel>(info.node, s, info.threads);
}

}  // namespace seqrun::backends::cpu
