// Reference kernel: MixedChunkAttention (GAU/FLASH; schema, formula and step form in
// ir/ops/mixed_chunk_attention.cpp).
//
// Layout: every input [B, T, D] row-major, output [B, T, E]; state tensors [B, Sl, E] and [B, C, D].
// Causal (full sequence and step form alike) streams the tokens of each batch row in order through a
// per-chunk buffer (the unfinished chunk's quad_k, lin_k and value rows) and a [Sl, E] linear state
// Σ lin_k_jᵀ v_j over the completed chunks; when a token completes a chunk its rows fold into the state.
// The full sequence is the step form from the empty state at P = 0, so both share one loop.
// Non-causal forms the [Sl, E] state over the whole sequence first. Double-precision accumulation.
// Compute-bound O(C·(Sq + E) + Sl·E) per token (the fold, O(C·Sl·E), happens once per C tokens);
// no parallel split.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

constexpr int kFirstStateInput = 6;
constexpr int kNumStateInputs = 5;
const char* const kStateInputNames[kNumStateInputs] = {"past_lin_state", "past_chunk_quad_k",
                                                       "past_chunk_lin_k", "past_chunk_v", "position"};

// The shapes and attributes every path reads.
struct MixedChunkDims {
  int64_t batch, tokens, sq, sl, width, chunk;
  bool causal;
  double quad_scale, lin_scale;
  const float* bias;  // [C, C] or null (zero)
};

// state += Σ_{t in [begin, end)} lin_k_tᵀ v_t for one batch row (lin_k rows of `sl`, v rows of `e`).
void accumulate_state(const float* lin_k, const float* v, int64_t begin, int64_t end, int64_t sl, int64_t e,
                      std::vector<double>& state) {
  for (int64_t t = begin; t < end; ++t) {
    const float* kt = lin_k + t * sl;
    const float* vt = v + t * e;
    for (int64_t r = 0; r < sl; ++r) {
      const double kr = kt[r];
      for (int64_t c = 0; c < e; ++c) state[r * e + c] += kr * vt[c];
    }
  }
}

// acc += lin_scale · lin_q_t · state for one query row.
void add_linear_part(const float* lq_t, const std::vector<double>& state, const MixedChunkDims& d,
                     std::vector<double>& acc) {
  for (int64_t r = 0; r < d.sl; ++r) {
    const double qr = d.lin_scale * lq_t[r];
    for (int64_t c = 0; c < d.width; ++c) acc[c] += qr * state[r * d.width + c];
  }
}

// acc += relu(quad_scale · qq_t·qk_j + bias[p_t, p_j])² v_j for keys j in [0, num_keys) of one chunk, whose
// rows start at qk (stride sq) and v (stride width); key j sits at chunk position j.
void add_quad_part(const float* qq_t, int64_t p_t, const float* qk, const float* v, int64_t num_keys,
                   const MixedChunkDims& d, std::vector<double>& acc) {
  for (int64_t j = 0; j < num_keys; ++j) {
    double score = 0.0;
    for (int64_t r = 0; r < d.sq; ++r) score += static_cast<double>(qq_t[r]) * qk[j * d.sq + r];
    score = d.quad_scale * score + (d.bias != nullptr ? d.bias[p_t * d.chunk + j] : 0.0);
    const double weight = score > 0.0 ? score * score : 0.0;
    for (int64_t c = 0; c < d.width; ++c) acc[c] += weight * v[j * d.width + c];
  }
}

// Non-causal: every query sees its whole chunk and the linear state of the whole sequence.
void run_noncausal(const Tensor* in[5], const MixedChunkDims& d, Tensor& out) {
  const int64_t T = d.tokens, E = d.width;
  std::vector<double> state(d.sl * E), acc(E);
  for (int64_t b = 0; b < d.batch; ++b) {
    const float* qq = in[0]->data<float>() + b * T * d.sq;
    const float* qk = in[1]->data<float>() + b * T * d.sq;
    const float* lq = in[2]->data<float>() + b * T * d.sl;
    const float* lk = in[3]->data<float>() + b * T * d.sl;
    const float* vb = in[4]->data<float>() + b * T * E;
    std::fill(state.begin(), state.end(), 0.0);
    accumulate_state(lk, vb, 0, T, d.sl, E, state);
    for (int64_t begin = 0; begin < T; begin += d.chunk) {
      const int64_t end = std::min(begin + d.chunk, T);
      for (int64_t t = begin; t < end; ++t) {
        std::fill(acc.begin(), acc.end(), 0.0);
        add_quad_part(qq + t * d.sq, t - begin, qk + begin * d.sq, vb + begin * E, end - begin, d, acc);
        add_linear_part(lq + t * d.sl, state, d, acc);
        float* ot = out.data<float>() + (b * T + t) * E;
        for (int64_t c = 0; c < E; ++c) ot[c] = static_cast<float>(acc[c]);
      }
    }
  }
}

// The step-form state of all batch rows: inputs 6..9 (or empty) in, outputs 1..4 out.
struct ChunkState {
  Tensor lin_state, chunk_qk, chunk_lk, chunk_v;  // [B, Sl, E], [B, C, Sq], [B, C, Sl], [B, C, E]
};

// Causal: tokens P..P+T-1 streamed through the chunk buffer, starting from `past` (nullptr: the empty
// state at P = 0); the state after the last token lands in `next`.
void run_causal(const Tensor* in[5], const MixedChunkDims& d, const ChunkState* past, int64_t position,
                Tensor& out, ChunkState& next) {
  const int64_t T = d.tokens, E = d.width, C = d.chunk, sq = d.sq, sl = d.sl;
  std::vector<double> lin_state(sl * E), acc(E);
  std::vector<float> chunk_qk(C * sq), chunk_lk(C * sl), chunk_v(C * E);
  for (int64_t b = 0; b < d.batch; ++b) {
    const float* qq = in[0]->data<float>() + b * T * sq;
    const float* qk = in[1]->data<float>() + b * T * sq;
    const float* lq = in[2]->data<float>() + b * T * sl;
    const float* lk = in[3]->data<float>() + b * T * sl;
    const float* vb = in[4]->data<float>() + b * T * E;
    // Rows 0..filled-1 of the chunk buffer hold the unfinished chunk's tokens.
    int64_t filled = 0;
    std::fill(lin_state.begin(), lin_state.end(), 0.0);
    if (past != nullptr) {
      filled = position % C;
      const float* ls = past->lin_state.data<float>() + b * sl * E;
      std::copy(ls, ls + sl * E, lin_state.begin());
      const float* pqk = past->chunk_qk.data<float>() + b * C * sq;
      const float* plk = past->chunk_lk.data<float>() + b * C * sl;
      const float* pv = past->chunk_v.data<float>() + b * C * E;
      std::copy(pqk, pqk + filled * sq, chunk_qk.begin());
      std::copy(plk, plk + filled * sl, chunk_lk.begin());
      std::copy(pv, pv + filled * E, chunk_v.begin());
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = filled;  // == (P + t) % C
      std::copy(qk + t * sq, qk + (t + 1) * sq, chunk_qk.begin() + p * sq);
      std::copy(lk + t * sl, lk + (t + 1) * sl, chunk_lk.begin() + p * sl);
      std::copy(vb + t * E, vb + (t + 1) * E, chunk_v.begin() + p * E);
      std::fill(acc.begin(), acc.end(), 0.0);
      add_quad_part(qq + t * sq, p, chunk_qk.data(), chunk_v.data(), p + 1, d, acc);
      add_linear_part(lq + t * sl, lin_state, d, acc);
      float* ot = out.data<float>() + (b * T + t) * E;
      for (int64_t c = 0; c < E; ++c) ot[c] = static_cast<float>(acc[c]);
      filled = p + 1;
      if (filled == C) {  // the chunk is complete: later chunks see it through the linear state only
        accumulate_state(chunk_lk.data(), chunk_v.data(), 0, C, sl, E, lin_state);
        filled = 0;
      }
    }
    float* nls = next.lin_state.data<float>() + b * sl * E;
    for (int64_t i = 0; i < sl * E; ++i) nls[i] = static_cast<float>(lin_state[i]);
    // Rows past `filled` stay zero (Tensor::zeros): deterministic, though the contract says "anything".
    std::copy(chunk_qk.begin(), chunk_qk.begin() + filled * sq, next.chunk_qk.data<float>() + b * C * sq);
    std::copy(chunk_lk.begin(), chunk_lk.begin() + filled * sl, next.chunk_lk.data<float>() + b * C * sl);
    std::copy(chunk_v.begin(), chunk_v.begin() + filled * E, next.chunk_v.data<float>() + b * C * E);
  }
}

// Validates inputs 6..10 of the step form; fills `past` and `position` when present.
Status read_step_state(KernelContext& ctx, const MixedChunkDims& d, ChunkState& past, int64_t* position,
                       bool* has_state) {
  int present = 0;
  std::string missing;
  for (int i = 0; i < kNumStateInputs; ++i) {
    if (ctx.has_input(kFirstStateInput + i)) {
      ++present;
    } else {
      missing += std::string(missing.empty() ? "" : ", ") + kStateInputNames[i];
    }
  }
  *has_state = present == kNumStateInputs;
  if (present == 0) {
    if (ctx.node.num_outputs() > 1 && !d.causal) {
      return ctx.error("the step form (state outputs) needs causal = 1, is causal = 0");
    }
    return Status::ok();
  }
  if (present != kNumStateInputs) {
    return ctx.error(
        "the step form needs all of past_lin_state, past_chunk_quad_k, past_chunk_lin_k, past_chunk_v and "
        "position; missing {}",
        missing);
  }
  if (!d.causal) return ctx.error("the step form (state inputs) needs causal = 1, is causal = 0");
  const Shape expected[4] = {{d.batch, d.sl, d.width},
                             {d.batch, d.chunk, d.sq},
                             {d.batch, d.chunk, d.sl},
                             {d.batch, d.chunk, d.width}};
  const char* meaning[4] = {"[B, Sl, E]", "[B, chunk_size, Sq]", "[B, chunk_size, Sl]", "[B, chunk_size, E]"};
  for (int i = 0; i < 4; ++i) {
    const Tensor& t = ctx.input(kFirstStateInput + i);
    if (t.dtype() != DType::f32) {
      return ctx.error("{} must be a float tensor, is {}", kStateInputNames[i], dtype_name(t.dtype()));
    }
    if (t.shape() != expected[i]) {
      return ctx.error("{} must be {} = {}, is {}", kStateInputNames[i], meaning[i],
                       shape_to_string(expected[i]), shape_to_string(t.shape()));
    }
  }
  const Tensor& pos = ctx.input(10);
  if (pos.dtype() != DType::i64 || pos.rank() > 1 || pos.numel() != 1) {
    return ctx.error("position must be an i64 scalar or [1], is {}{}", dtype_name(pos.dtype()),
                     shape_to_string(pos.shape()));
  }
  *position = pos.data<int64_t>()[0];
  if (*position < 0) return ctx.error("position must be >= 0, is {}", *position);
  past = ChunkState{ctx.input(6), ctx.input(7), ctx.input(8), ctx.input(9)};
  return Status::ok();
}

Status run_mixed_chunk_attention(KernelContext& ctx) {
  const char* names[6] = {"quad_q", "quad_k", "lin_q", "lin_k", "value", "bias"};
  for (int i = 0; i < 5; ++i) {
    if (!ctx.has_input(i)) return ctx.error("{} is required", names[i]);
  }
  for (int i = 0; i < 6; ++i) {
    if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
      return ctx.error("{} must be a float tensor, is {}", names[i], dtype_name(ctx.input(i).dtype()));
    }
  }
  const int64_t chunk = ctx.node.get_int("chunk_size", 0);
  if (chunk <= 0) return ctx.error("chunk_size must be positive, is {}", chunk);
  if (ctx.node.num_outputs() > 5) return ctx.error("has {} outputs, at most 5", ctx.node.num_outputs());
  for (int i = 0; i < 5; ++i) {
    if (ctx.input(i).rank() != 3) {
      return ctx.error("{} must be 3-D [B, T, D], is {}", names[i], shape_to_string(ctx.input(i).shape()));
    }
  }
  const Tensor* in[5] = {&ctx.input(0), &ctx.input(1), &ctx.input(2), &ctx.input(3), &ctx.input(4)};
  MixedChunkDims d{};
  d.batch = in[4]->dim(0);
  d.tokens = in[4]->dim(1);
  d.width = in[4]->dim(2);
  d.sq = in[0]->dim(2);
  d.sl = in[2]->dim(2);
  d.chunk = chunk;
  d.causal = ctx.node.get_int("causal", 1) != 0;
  d.quad_scale =
      ctx.node.has_attr("quad_scale") ? ctx.node.get_float("quad_scale") : 1.0 / static_cast<double>(chunk);
  d.lin_scale =
      ctx.node.has_attr("lin_scale") ? ctx.node.get_float("lin_scale") : 1.0 / static_cast<double>(chunk);
  const int64_t B = d.batch, T = d.tokens, sq = d.sq, sl = d.sl;
  if (in[0]->shape() != Shape{B, T, sq} || in[1]->shape() != Shape{B, T, sq} ||
      in[2]->shape() != Shape{B, T, sl} || in[3]->shape() != Shape{B, T, sl}) {
    return ctx.error(
        "quad_q {} and quad_k {} must be [B, T, Sq], lin_q {} and lin_k {} [B, T, Sl], with value {} [B, T, "
        "E]",
        shape_to_string(in[0]->shape()), shape_to_string(in[1]->shape()), shape_to_string(in[2]->shape()),
        shape_to_string(in[3]->shape()), shape_to_string(in[4]->shape()));
  }
  d.bias = nullptr;
  if (ctx.has_input(5)) {
    if (ctx.input(5).shape() != Shape{chunk, chunk}) {
      return ctx.error("bias must be [chunk_size = {}, chunk_size], is {}", chunk,
                       shape_to_string(ctx.input(5).shape()));
    }
    d.bias = ctx.input(5).data<float>();
  }
  ChunkState past;
  int64_t position = 0;
  bool has_state = false;
  SEQRUN_TRY(read_step_state(ctx, d, past, &position, &has_state));

  Tensor out = Tensor::zeros(DType::f32, {B, T, d.width});
  ChunkState next;
  if (d.causal) {
    next =
        ChunkState{Tensor::zeros(DType::f32, {B, sl, d.width}), Tensor::zeros(DType::f32, {B, chunk, sq}),
                   Tensor::zeros(DType::f32, {B, chunk, sl}), Tensor::zeros(DType::f32, {B, chunk, d.width})};
    run_causal(in, d, has_state ? &past : nullptr, position, out, next);
  } else {
    run_noncausal(in, d, out);
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(out));
  Tensor* state_outputs[4] = {&next.lin_state, &next.chunk_qk, &next.chunk_lk, &next.chunk_v};
  for (int i = 1; i < ctx.node.num_outputs(); ++i) ctx.outputs.push_back(std::move(*state_outputs[i - 1]));
  return Status::ok();
}

}  // namespace

void register_mixed_chunk_attention_kernels(KernelRegistry& r) {
  r.add("MixedChunkAttention", run_mixed_chunk_attention, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
