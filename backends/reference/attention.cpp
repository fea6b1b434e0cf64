// Reference kernels: softmax attention — Attention (ONNX 23/24), FlexAttention (ai.onnx.preview),
// SwiGLU. The recurrent/positional ops of the family live in linear_attention.cpp.
//
// Attention follows the ONNX 24 function body exactly: scores = (Q·Kᵀ)·scale, then softcap
// (c·tanh(s/c)), then the additive bias (mask, causal frontier, nonpad padding), softmax, and rows
// whose bias is -inf everywhere get all-zero probabilities instead of NaN. One query row at a time
// in double precision; layout [B, H, S, D] (4-D) or [B, S, H*D] (3-D), heads grouped for GQA
// (query head h reads KV head h / (Hq/Hkv)). Compute-bound O(B·Hq·Sq·T·D); no parallel split.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Shapes of one Attention call after unpacking 3-D inputs into heads.
struct AttentionDims {
  bool packed = false;  // 3-D [B, S, H*D] inputs and output
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, past_len = 0, total_len = 0;
  int64_t qk_size = 0, v_size = 0;
};

// Offset of element (b, h, s, 0) in a [B, H, S, D] tensor, or in its packed [B, S, H*D] form.
int64_t head_offset(bool packed, int64_t b, int64_t h, int64_t s, int64_t heads, int64_t len, int64_t size) {
  if (packed) return (b * len + s) * heads * size + h * size;
  return ((b * heads + h) * len + s) * size;
}

Status attention_dims(const KernelContext& ctx, AttentionDims* d) {
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  if (q.rank() != 3 && q.rank() != 4) {
    return ctx.error("Q must be 3-D or 4-D, is {}", shape_to_string(q.shape()));
  }
  if (k.rank() != q.rank() || v.rank() != q.rank()) {
    return ctx.error("Q {}, K {} and V {} must have the same rank", shape_to_string(q.shape()),
                     shape_to_string(k.shape()), shape_to_string(v.shape()));
  }
  d->packed = q.rank() == 3;
  d->batch = q.dim(0);
  if (d->packed) {
    d->q_heads = ctx.node.get_int("q_num_heads", 0);
    d->kv_heads = ctx.node.get_int("kv_num_heads", 0);
    if (d->q_heads <= 0 || d->kv_heads <= 0) {
      return ctx.error("3-D inputs need positive q_num_heads and kv_num_heads attributes");
    }
    if (q.dim(2) % d->q_heads != 0 || v.dim(2) % d->kv_heads != 0) {
      return ctx.error("hidden sizes Q {} / V {} are not divisible by q_num_heads {} / kv_num_heads {}",
                       q.dim(2), v.dim(2), d->q_heads, d->kv_heads);
    }
    d->q_len = q.dim(1);
    d->qk_size = q.dim(2) / d->q_heads;
    d->kv_len = k.dim(1);
    d->v_size = v.dim(2) / d->kv_heads;
    if (k.dim(2) != d->kv_heads * d->qk_size) {
      return ctx.error("K hidden size {} != kv_num_heads {} x head size {}", k.dim(2), d->kv_heads,
                       d->qk_size);
    }
    if (v.dim(1) != d->kv_len) {
      return ctx.error("K and V sequence lengths differ ({} vs {})", d->kv_len, v.dim(1));
    }
  } else {
    d->q_heads = q.dim(1);
    d->q_len = q.dim(2);
    d->qk_size = q.dim(3);
    d->kv_heads = k.dim(1);
    d->kv_len = k.dim(2);
    d->v_size = v.dim(3);
    if (k.dim(3) != d->qk_size) return ctx.error("K head size {} != Q head size {}", k.dim(3), d->qk_size);
    if (v.dim(1) != d->kv_heads || v.dim(2) != d->kv_len) {
      return ctx.error("V {} does not match K {} in heads and sequence length", shape_to_string(v.shape()),
                       shape_to_string(k.shape()));
    }
  }
  if (k.dim(0) != d->batch || v.dim(0) != d->batch) return ctx.error("Q, K and V batch sizes differ");
  if (d->kv_heads <= 0 || d->q_heads % d->kv_heads != 0) {
    return ctx.error("q heads {} must be a positive multiple of kv heads {}", d->q_heads, d->kv_heads);
  }
  const bool has_past_key = ctx.has_input(4), has_past_value = ctx.has_input(5);
  if (has_past_key != has_past_value) return ctx.error("past_key and past_value must be given together");
  if (has_past_key) {
    const Tensor& pk = ctx.input(4);
    const Tensor& pv = ctx.input(5);
    const Shape want_k{d->batch, d->kv_heads, pk.rank() == 4 ? pk.dim(2) : -1, d->qk_size};
    if (pk.rank() != 4 || pk.shape() != want_k) {
      return ctx.error("past_key must be [B={}, Hkv={}, P, D={}], is {}", d->batch, d->kv_heads, d->qk_size,
                       shape_to_string(pk.shape()));
    }
    d->past_len = pk.dim(2);
    const Shape want_v{d->batch, d->kv_heads, d->past_len, d->v_size};
    if (pv.shape() != want_v) {
      return ctx.error("past_value must be {}, is {}", shape_to_string(want_v), shape_to_string(pv.shape()));
    }
  }
  d->total_len = d->past_len + d->kv_len;
  return Status::ok();
}

// present = concat(past, new) along the sequence axis, as [B, Hkv, T, D].
Tensor build_present(const AttentionDims& d, const Tensor* past, const Tensor& fresh, int64_t size) {
  Tensor out = Tensor::empty(DType::f32, {d.batch, d.kv_heads, d.total_len, size});
  float* dst = out.data<float>();
  const float* src = fresh.data<float>();
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.kv_heads; ++h) {
      float* row = dst + ((b * d.kv_heads + h) * d.total_len) * size;
      if (past != nullptr) {
        const float* p = past->data<float>() + ((b * d.kv_heads + h) * d.past_len) * size;
        for (int64_t i = 0; i < d.past_len * size; ++i) row[i] = p[i];
      }
      for (int64_t s = 0; s < d.kv_len; ++s) {
        const float* x = src + head_offset(d.packed, b, h, s, d.kv_heads, d.kv_len, size);
        for (int64_t i = 0; i < size; ++i) row[(d.past_len + s) * size + i] = x[i];
      }
    }
  }
  return out;
}

// The attention mask, viewed as a [B, Hq, Sq, T] bias: broadcast strides per dim, its own last
// length (shorter masks are padded with -inf, as in ONNX 24).
struct MaskView {
  const Tensor* mask = nullptr;
  int64_t stride[3] = {0, 0, 0};  // b, h, i (element strides, 0 where broadcast)
  int64_t row_stride = 0;         // stride of the mask's last dim rows
  int64_t len = 0;                // mask last-dim length (<= T)

  double bias(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (j >= len) return kNegInf;
    const int64_t off = b * stride[0] + h * stride[1] + i * stride[2] + j;
    if (mask->dtype() == DType::boolean) return mask->data<bool>()[off] ? 0.0 : kNegInf;
    return mask->data<float>()[off];
  }
};

Status make_mask_view(const KernelContext& ctx, const AttentionDims& d, bool batch_major_3d, MaskView* view) {
  const Tensor& m = ctx.input(3);
  if (m.dtype() != DType::boolean && m.dtype() != DType::f32) {
    return ctx.error("attn_mask must be bool or float, is {}", dtype_name(m.dtype()));
  }
  if (m.rank() < 1 || m.rank() > 4) {
    return ctx.error("attn_mask must have rank 1..4, is {}", shape_to_string(m.shape()));
  }
  // Right-align to [B, Hq, Sq, Tm]; a 3-D mask with an external KV cache is [B, Sq, Tm].
  int64_t dims[4] = {1, 1, 1, 1};
  if (batch_major_3d && m.rank() == 3) {
    dims[0] = m.dim(0);
    dims[2] = m.dim(1);
    dims[3] = m.dim(2);
  } else {
    for (int i = 0; i < m.rank(); ++i) dims[4 - m.rank() + i] = m.dim(i);
  }
  const int64_t want[3] = {d.batch, d.q_heads, d.q_len};
  const char* names[3] = {"batch", "heads", "q_len"};
  int64_t strides[4];
  strides[3] = 1;
  for (int i = 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  for (int i = 0; i < 3; ++i) {
    if (dims[i] != 1 && dims[i] != want[i]) {
      return ctx.error("attn_mask {} does not broadcast to [{}, {}, {}, {}] ({} is {}, mask has {})",
                       shape_to_string(m.shape()), d.batch, d.q_heads, d.q_len, d.total_len, names[i],
                       want[i], dims[i]);
    }
    view->stride[i] = dims[i] == 1 ? 0 : strides[i];
  }
  if (dims[3] > d.total_len) {
    return ctx.error("attn_mask last dim {} exceeds the total sequence length {}", dims[3], d.total_len);
  }
  view->mask = &m;
  view->len = dims[3];
  return Status::ok();
}

Status run_attention(KernelContext& ctx) {
  const Node& node = ctx.node;
  AttentionDims d;
  SEQRUN_TRY(attention_dims(ctx, &d));
  for (int i : {0, 1, 2, 4, 5}) {
    if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
      return ctx.error("input {} must be a float tensor, is {}", i, dtype_name(ctx.input(i).dtype()));
    }
  }
  const int64_t mode = node.get_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) return ctx.error("qk_matmul_output_mode must be 0..3, is {}", mode);
  const bool is_causal = node.get_int("is_causal", 0) != 0;
  const double softcap = node.get_float("softcap", 0.0f);
  const double scale =
      node.has_attr("scale") ? node.get_float("scale") : 1.0 / std::sqrt(static_cast<double>(d.qk_size));

  // nonpad_kv_seqlen (opset 24): keys at or beyond it are padding; with is_causal and no past_key
  // it also sets the causal frontier per batch (bottom-right aligned to the valid keys).
  std::vector<int64_t> nonpad;
  if (ctx.has_input(6)) {
    const Tensor& np = ctx.input(6);
    if (!is_integer(np.dtype()) || np.rank() != 1 || np.dim(0) != d.batch) {
      return ctx.error("nonpad_kv_seqlen must be an integer vector of length batch={}, is {} {}", d.batch,
                       dtype_name(np.dtype()), shape_to_string(np.shape()));
    }
    if (ctx.has_input(4)) return ctx.error("nonpad_kv_seqlen cannot be combined with past_key/past_value");
    nonpad = np.to_i64_vector();
    // Values beyond ±(T + Sq) compare the same as the bound; clamping keeps the offset math in range.
    const int64_t bound = d.total_len + d.q_len + 1;
    for (int64_t& n : nonpad) n = std::min(std::max(n, -bound), bound);
  }
  const bool external_cache = is_causal && !nonpad.empty();
  MaskView mask;
  if (ctx.has_input(3)) SEQRUN_TRY(make_mask_view(ctx, d, external_cache, &mask));
  const bool has_bias = ctx.has_input(3) || is_causal || !nonpad.empty();

  Tensor present_key = build_present(d, ctx.has_input(4) ? &ctx.input(4) : nullptr, ctx.input(1), d.qk_size);
  Tensor present_value = build_present(d, ctx.has_input(5) ? &ctx.input(5) : nullptr, ctx.input(2), d.v_size);
  const Shape y_shape =
      d.packed ? Shape{d.batch, d.q_len, d.q_heads * d.v_size} : Shape{d.batch, d.q_heads, d.q_len, d.v_size};
  Tensor y = Tensor::zeros(DType::f32, y_shape);
  Tensor qk_out;
  if (node.num_outputs() > 3) qk_out = Tensor::zeros(DType::f32, {d.batch, d.q_heads, d.q_len, d.total_len});

  const int64_t group = d.q_heads / d.kv_heads;
  const int64_t T = d.total_len;
  std::vector<double> bias(T), scores(T), probs(T);
  const float* q = ctx.input(0).data<float>();
  const float* keys = present_key.data<float>();
  const float* values = present_value.data<float>();
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t causal_offset = external_cache ? nonpad[b] - d.q_len : d.past_len;
    for (int64_t h = 0; h < d.q_heads; ++h) {
      const int64_t kvh = h / group;
      const float* kbase = keys + (b * d.kv_heads + kvh) * T * d.qk_size;
      const float* vbase = values + (b * d.kv_heads + kvh) * T * d.v_size;
      for (int64_t i = 0; i < d.q_len; ++i) {
        const float* qrow = q + head_offset(d.packed, b, h, i, d.q_heads, d.q_len, d.qk_size);
        bool all_masked = true;  // ReduceMax(bias) == -inf in the ONNX body
        for (int64_t j = 0; j < T; ++j) {
          double bj = 0.0;
          if (mask.mask != nullptr) bj += mask.bias(b, h, i, j);
          if (is_causal && j > i + causal_offset) bj += kNegInf;
          if (!nonpad.empty() && j >= nonpad[b]) bj += kNegInf;
          bias[j] = bj;
          if (!(bj == kNegInf)) all_masked = false;
        }
        const bool row_masked = has_bias && all_masked;
        float* qk_row =
            qk_out.defined() ? qk_out.data<float>() + ((b * d.q_heads + h) * d.q_len + i) * T : nullptr;
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < d.qk_size; ++c)
            dot += static_cast<double>(qrow[c]) * kbase[j * d.qk_size + c];
          double s = dot * scale;
          if (qk_row != nullptr && mode == 0) qk_row[j] = static_cast<float>(s);
          if (softcap != 0.0) s = softcap * std::tanh(s / softcap);
          if (qk_row != nullptr && mode == 1) qk_row[j] = static_cast<float>(s);
          s += bias[j];
          if (qk_row != nullptr && mode == 2) qk_row[j] = static_cast<float>(s);
          scores[j] = s;
        }
        // Softmax over the row (max-subtracted); an all-masked row gets zeros.
        double row_max = kNegInf;
        for (int64_t j = 0; j < T; ++j) row_max = std::max(row_max, scores[j]);
        double sum = 0.0;
        for (int64_t j = 0; j < T; ++j) {
          probs[j] = std::exp(scores[j] - row_max);
          sum += probs[j];
        }
        for (int64_t j = 0; j < T; ++j) probs[j] = row_masked ? 0.0 : probs[j] / sum;
        if (qk_row != nullptr && mode == 3) {
          for (int64_t j = 0; j < T; ++j) qk_row[j] = static_cast<float>(probs[j]);
        }
        float* yrow = y.data<float>() + head_offset(d.packed, b, h, i, d.q_heads, d.q_len, d.v_size);
        for (int64_t c = 0; c < d.v_size; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < T; ++j) acc += probs[j] * vbase[j * d.v_size + c];
          yrow[c] = static_cast<float>(acc);
        }
      }
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(y));
  if (node.num_outputs() > 1) ctx.outputs.push_back(present_key);
  if (node.num_outputs() > 2) ctx.outputs.push_back(present_value);
  if (node.num_outputs() > 3) ctx.outputs.push_back(std::move(qk_out));
  return Status::ok();
}

// Runs a score_mod / prob_mod body on the whole [B, H, L, S] tensor; the result must keep the shape.
Status run_modifier(KernelContext& ctx, const char* attr, Tensor* x) {
  const Graph* body = ctx.node.get_graph(attr);
  if (body == nullptr) return Status::ok();
  auto result = ctx.run_graph(*body, {*x}, ctx.captures());
  if (!result.is_ok()) return result.status().with_context(ctx.node.describe() + " (" + attr + ")");
  if (result.value().size() != 1) {
    return ctx.error("{} must return one tensor, returned {}", attr, result.value().size());
  }
  Tensor out = result.value()[0];
  if (out.shape() != x->shape()) {
    return ctx.error("{} returned shape {}, expected {}", attr, shape_to_string(out.shape()),
                     shape_to_string(x->shape()));
  }
  if (!is_float(out.dtype())) {
    return ctx.error("{} returned {}, expected a float tensor", attr, dtype_name(out.dtype()));
  }
  *x = out.dtype() == DType::f32 ? out : out.cast(DType::f32);
  return Status::ok();
}

// FlexAttention: Scores = Q·Kᵀ·scale -> score_mod -> softmax -> prob_mod -> ·V. Rank-4 only.
Status run_flex_attention(KernelContext& ctx) {
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4) {
    return ctx.error("Q, K, V must be 4-D, are {}, {}, {}", shape_to_string(q.shape()),
                     shape_to_string(k.shape()), shape_to_string(v.shape()));
  }
  for (const Tensor* t : {&q, &k, &v}) {
    if (t->dtype() != DType::f32) return ctx.error("Q, K, V must be float, got {}", dtype_name(t->dtype()));
  }
  const int64_t B = q.dim(0), Hq = q.dim(1), L = q.dim(2), E = q.dim(3);
  const int64_t Hkv = k.dim(1), S = k.dim(2), Ev = v.dim(3);
  if (k.dim(0) != B || v.dim(0) != B || k.dim(3) != E || v.dim(1) != Hkv || v.dim(2) != S) {
    return ctx.error("shapes Q {}, K {}, V {} do not match", shape_to_string(q.shape()),
                     shape_to_string(k.shape()), shape_to_string(v.shape()));
  }
  if (Hkv <= 0 || Hq % Hkv != 0) return ctx.error("q heads {} must be a multiple of kv heads {}", Hq, Hkv);
  const int64_t group = Hq / Hkv;
  const double scale =
      ctx.node.has_attr("scale") ? ctx.node.get_float("scale") : 1.0 / std::sqrt(static_cast<double>(E));

  Tensor scores = Tensor::empty(DType::f32, {B, Hq, L, S});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const float* kb = k.data<float>() + (b * Hkv + h / group) * S * E;
      for (int64_t i = 0; i < L; ++i) {
        const float* qr = q.data<float>() + ((b * Hq + h) * L + i) * E;
        float* out = scores.data<float>() + ((b * Hq + h) * L + i) * S;
        for (int64_t j = 0; j < S; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < E; ++c) dot += static_cast<double>(qr[c]) * kb[j * E + c];
          out[j] = static_cast<float>(dot * scale);
        }
      }
    }
  }
  SEQRUN_TRY(run_modifier(ctx, "score_mod", &scores));
  // Softmax over the last axis, as ONNX Softmax computes it (an all -inf row gives NaN).
  Tensor probs = Tensor::empty(DType::f32, {B, Hq, L, S});
  for (int64_t r = 0; r < B * Hq * L; ++r) {
    const float* s = scores.data<float>() + r * S;
    float* p = probs.data<float>() + r * S;
    double row_max = kNegInf;
    for (int64_t j = 0; j < S; ++j) row_max = std::max(row_max, static_cast<double>(s[j]));
    double sum = 0.0;
    for (int64_t j = 0; j < S; ++j) sum += std::exp(s[j] - row_max);
    for (int64_t j = 0; j < S; ++j) p[j] = static_cast<float>(std::exp(s[j] - row_max) / sum);
  }
  SEQRUN_TRY(run_modifier(ctx, "prob_mod", &probs));
  Tensor y = Tensor::empty(DType::f32, {B, Hq, L, Ev});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const float* vb = v.data<float>() + (b * Hkv + h / group) * S * Ev;
      for (int64_t i = 0; i < L; ++i) {
        const float* p = probs.data<float>() + ((b * Hq + h) * L + i) * S;
        float* out = y.data<float>() + ((b * Hq + h) * L + i) * Ev;
        for (int64_t c = 0; c < Ev; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < S; ++j) acc += static_cast<double>(p[j]) * vb[j * Ev + c];
          out[c] = static_cast<float>(acc);
        }
      }
    }
  }
  ctx.outputs = {std::move(y)};
  return Status::ok();
}

// SwiGLU: Y = A * sigmoid(alpha * A) * B, A and B of identical shape (no broadcasting).
Status run_swiglu(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != DType::f32 || b.dtype() != DType::f32) {
    return ctx.error("A and B must be float, are {} and {}", dtype_name(a.dtype()), dtype_name(b.dtype()));
  }
  if (a.shape() != b.shape()) {
    return ctx.error("A {} and B {} must have the same shape", shape_to_string(a.shape()),
                     shape_to_string(b.shape()));
  }
  const double alpha = ctx.node.get_float("alpha", 1.0f);
  Tensor y = Tensor::empty(DType::f32, a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<float>()[i];
    y.data<float>()[i] = static_cast<float>(x / (1.0 + std::exp(-alpha * x)) * b.data<float>()[i]);
  }
  ctx.outputs = {std::move(y)};
  return Status::ok();
}

}  // namespace

void register_attention_kernels(KernelRegistry& r) {
  r.add("Attention", run_attention, /*compute_in_f32=*/true);
  r.add("FlexAttention", run_flex_attention, /*compute_in_f32=*/true);
  r.add("SwiGLU", run_swiglu, /*compute_in_f32=*/true);
  register_linear_attention_kernels(r);
}

}  // namespace seqrun::reference
