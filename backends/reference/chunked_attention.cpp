// Reference kernel: ChunkedAttention (ir/ops/chunked_attention.cpp) — Attention's function computed in
// [block_q x block_k] tiles with an online softmax, so scratch is O(block_q · (block_k + Dv)), not O(Sq · T).
//
// Layout [B, H, S, D]. For each (batch, query head, query block) the kernel keeps, per row, the running
// max m, the running sum l of exp(s - m) and the unnormalized output acc (double precision); each key
// block rescales them by exp(m_old - m_new). Key blocks that the causal/window bias masks for every row of
// the query block are skipped without computing a score. The block-sparse layout (sparse_block) is a bias
// applied score by score, the plain definition; the CPU kernel is the one that skips its empty blocks. A
// row that never saw a key with a finite bias outputs 0 (ONNX 24's all-masked rule). Compute-bound
// O(B·Hq·Sq·T_visible·D); no parallel split.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The attn_mask as a [B, Hq, Sq, T] bias: broadcast strides, and its own last length (keys beyond it are
// masked, ONNX 24's padding of short masks).
struct BiasView {
  const Tensor* mask = nullptr;
  int64_t stride[3] = {0, 0, 0};
  int64_t len = 0;

  double at(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (mask == nullptr) return 0.0;
    if (j >= len) return kNegInf;
    const int64_t off = b * stride[0] + h * stride[1] + i * stride[2] + j;
    if (mask->dtype() == DType::boolean) return mask->data<bool>()[off] ? 0.0 : kNegInf;
    return mask->data<float>()[off];
  }
};

Status make_bias_view(const KernelContext& ctx, int64_t batch, int64_t heads, int64_t q_len, int64_t total,
                      BiasView* view) {
  const Tensor& m = ctx.input(3);
  if (m.dtype() != DType::boolean && m.dtype() != DType::f32) {
    return ctx.error("attn_mask must be bool or float, is {}", dtype_name(m.dtype()));
  }
  if (m.rank() < 1 || m.rank() > 4)
    return ctx.error("attn_mask must have rank 1..4, is {}", shape_to_string(m.shape()));
  int64_t dims[4] = {1, 1, 1, 1};
  for (int i = 0; i < m.rank(); ++i) dims[4 - m.rank() + i] = m.dim(i);
  const int64_t want[3] = {batch, heads, q_len};
  int64_t strides[4];
  strides[3] = 1;
  for (int i = 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  for (int i = 0; i < 3; ++i) {
    if (dims[i] != 1 && dims[i] != want[i]) {
      return ctx.error("attn_mask {} does not broadcast to [{}, {}, {}, {}]", shape_to_string(m.shape()),
                       batch, heads, q_len, total);
    }
    view->stride[i] = dims[i] == 1 ? 0 : strides[i];
  }
  if (dims[3] > total) return ctx.error("attn_mask last dim {} exceeds the key length {}", dims[3], total);
  view->mask = &m;
  view->len = dims[3];
  return Status::ok();
}

Status run_chunked_attention(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4) {
    return ctx.error("Q, K, V must be 4-D [B, H, S, D], are {}, {}, {}", shape_to_string(q.shape()),
                     shape_to_string(k.shape()), shape_to_string(v.shape()));
  }
  for (const Tensor* t : {&q, &k, &v}) {
    if (t->dtype() != DType::f32) return ctx.error("Q, K, V must be float, got {}", dtype_name(t->dtype()));
  }
  const int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), D = q.dim(3);
  const int64_t Hkv = k.dim(1), T = k.dim(2), Dv = v.dim(3);
  if (k.dim(0) != B || v.dim(0) != B || k.dim(3) != D || v.dim(1) != Hkv || v.dim(2) != T) {
    return ctx.error("shapes Q {}, K {}, V {} do not match", shape_to_string(q.shape()),
                     shape_to_string(k.shape()), shape_to_string(v.shape()));
  }
  if (Hkv <= 0 || Hq % Hkv != 0)
    return ctx.error("q heads {} must be a positive multiple of kv heads {}", Hq, Hkv);
  const int64_t block_q = node.get_int("block_q", 64), block_k = node.get_int("block_k", 64);
  if (block_q <= 0 || block_k <= 0) return ctx.error("block_q and block_k must be positive");
  const int64_t window = node.get_int("window", -1);
  if (window < -1) return ctx.error("window must be -1 or >= 0, is {}", window);
  const bool causal = node.get_int("is_causal", 0) != 0;
  const int64_t sparse_block = node.get_int("sparse_block", 0);
  const int64_t sparse_local = node.get_int("sparse_local", 1);
  const int64_t sparse_stride = node.get_int("sparse_stride", 1);
  if (sparse_block < 0 || (sparse_block > 0 && (!causal || sparse_local < 1 || sparse_stride < 1))) {
    return ctx.error("sparse_block {} (needs is_causal = 1), sparse_local {}, sparse_stride {} are invalid",
                     sparse_block, sparse_local, sparse_stride);
  }
  // The block-sparse layout: key j hidden from query i (beyond the causal bias) iff both hold.
  auto sparse_hidden = [&](int64_t i, int64_t j) {
    return sparse_block > 0 && i / sparse_block - j / sparse_block >= sparse_local &&
           (j / sparse_block) % sparse_stride != sparse_stride - 1;
  };
  const double softcap = node.get_float("softcap", 0.0f);
  const double scale =
      node.has_attr("scale") ? node.get_float("scale") : 1.0 / std::sqrt(static_cast<double>(D));
  BiasView bias;
  if (ctx.has_input(3)) SEQRUN_TRY(make_bias_view(ctx, B, Hq, Sq, T, &bias));
  const bool has_bias = ctx.has_input(3) || causal || window >= 0;

  Tensor y = Tensor::zeros(DType::f32, {B, Hq, Sq, Dv});
  const int64_t group = Hq / Hkv;
  std::vector<double> scores(static_cast<size_t>(block_q * block_k));
  std::vector<double> row_max(block_q), row_sum(block_q), acc(static_cast<size_t>(block_q * Dv));
  std::vector<char> seen(block_q);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const float* kb = k.data<float>() + (b * Hkv + h / group) * T * D;
      const float* vb = v.data<float>() + (b * Hkv + h / group) * T * Dv;
      for (int64_t i0 = 0; i0 < Sq; i0 += block_q) {
        const int64_t rows = std::min(block_q, Sq - i0);
        std::fill(row_max.begin(), row_max.end(), kNegInf);
        std::fill(row_sum.begin(), row_sum.end(), 0.0);
        std::fill(acc.begin(), acc.end(), 0.0);
        std::fill(seen.begin(), seen.end(), 0);
        for (int64_t j0 = 0; j0 < T; j0 += block_k) {
          const int64_t cols = std::min(block_k, T - j0);
          // Skip blocks masked for every row: all keys after the last row (causal), or all keys more
          // than `window` before the first row.
          if (causal && j0 > i0 + rows - 1) break;
          if (window >= 0 && j0 + cols - 1 < i0 - window) continue;
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = i0 + r;
            const float* qr = q.data<float>() + ((b * Hq + h) * Sq + i) * D;
            double block_max = kNegInf;
            for (int64_t c = 0; c < cols; ++c) {
              const int64_t j = j0 + c;
              double bj = bias.at(b, h, i, j);
              if (causal && j > i) bj = kNegInf;
              if (window >= 0 && j < i - window) bj = kNegInf;
              if (sparse_hidden(i, j)) bj = kNegInf;
              double s = kNegInf;
              if (bj != kNegInf) {
                double dot = 0.0;
                for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qr[d]) * kb[j * D + d];
                s = dot * scale;
                if (softcap != 0.0) s = softcap * std::tanh(s / softcap);
                s += bj;
                seen[r] = 1;
              }
              scores[r * block_k + c] = s;
              block_max = std::max(block_max, s);
            }
            if (block_max == kNegInf) continue;
            // Online softmax: rescale what the earlier blocks accumulated to the new running max.
            const double new_max = std::max(row_max[r], block_max);
            const double correction = row_max[r] == kNegInf ? 0.0 : std::exp(row_max[r] - new_max);
            row_sum[r] *= correction;
            double* out = acc.data() + r * Dv;
            for (int64_t d = 0; d < Dv; ++d) out[d] *= correction;
            for (int64_t c = 0; c < cols; ++c) {
              const double p = std::exp(scores[r * block_k + c] - new_max);
              if (p == 0.0) continue;
              row_sum[r] += p;
              const float* vr = vb + (j0 + c) * Dv;
              for (int64_t d = 0; d < Dv; ++d) out[d] += p * vr[d];
            }
            row_max[r] = new_max;
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          float* yr = y.data<float>() + ((b * Hq + h) * Sq + i0 + r) * Dv;
          const bool masked_row = has_bias && !seen[r];
          for (int64_t d = 0; d < Dv; ++d) {
            yr[d] = masked_row || row_sum[r] == 0.0 ? 0.0f : static_cast<float>(acc[r * Dv + d] / row_sum[r]);
          }
        }
      }
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(y));
  return Status::ok();
}

}  // namespace

void register_chunked_attention_kernels(KernelRegistry& r) {
  r.add("ChunkedAttention", run_chunked_attention, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
