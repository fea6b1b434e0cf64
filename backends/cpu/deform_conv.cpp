// DeformConv (2-D, v1 and v2 with a mask): deformable im2col with bilinear sampling (AVX2 + OpenMP),
// then one oneDNN matmul per image over all groups.
//
// Per image: (1) a sampling table per (offset group, tap, output position) holds the four corner
// indices and bilinear weights (index -1 for a corner outside the image, which adds nothing, as in
// the reference's zero-outside sampling); (2) columns[c * taps + t][o] = sum of the four weighted corners of
// channel c, times the mask, gathered 8 outputs at a time; (3) Y[g] = W[g] columns[g] as one batched matmul
// ([group, M/group, C/group*taps] x [group, C/group*taps, oH*oW]) built at plan time; (4) the bias is
// added per output channel. Table and columns live in the workspace. Steps 1, 2 and 4 are
// memory-bound, step 3 compute-bound.
#include <immintrin.h>

#include <cmath>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/onednn_common.h"
#include "backends/reference/nn_window.h"

namespace seqrun::backends::cpu {
namespace {

struct DeformGeometry {
  int64_t batch, channels, height, width;
  int64_t out_channels, group, offset_group;
  int64_t kh, kw, oh, ow;
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  bool has_bias, has_mask;
  int64_t taps() const { return kh * kw; }
  int64_t out_plane() const { return oh * ow; }
};

class DeformConvKernel : public Kernel {
 public:
  DeformConvKernel(const Node* node, DeformGeometry geo) : node_(node), g_(geo) {}

  // Builds the matmul primitive and the workspace layout (plan time). Throws dnnl::error.
  void build() {
    const int64_t k = g_.channels / g_.group * g_.taps(), mg = g_.out_channels / g_.group, p = g_.out_plane();
    onednn::dims src = {g_.group, mg, k}, wei = {g_.group, k, p}, dst = {g_.group, mg, p};
    if (g_.group == 1) {
      src.erase(src.begin());
      wei.erase(wei.begin());
      dst.erase(dst.begin());
    }
    const dnnl::matmul::desc desc(onednn::f32_desc(src), onednn::f32_desc(wei), onednn::f32_desc(dst));
    const dnnl::matmul::primitive_desc pd(desc, onednn::user_scratchpad_attr(), onednn::engine());
    impl_ = onednn::impl_name(pd);
    gemm_.init(dnnl::matmul(pd), pd.scratchpad_desc(), layout_);
    gemm_.bind(DNNL_ARG_SRC, onednn::f32_desc(src));
    gemm_.bind(DNNL_ARG_WEIGHTS, onednn::f32_desc(wei));
    gemm_.bind(DNNL_ARG_DST, onednn::f32_desc(dst));
    // Sampling table: per (offset group, tap) 4 index arrays and 4 weight arrays of oH*oW entries.
    table_offset_ = layout_.add(static_cast<size_t>(g_.offset_group * g_.taps() * 8 * p) * 4);
    columns_offset_ = layout_.add(static_cast<size_t>(g_.channels * g_.taps() * p) * sizeof(float));
  }

  size_t workspace_bytes() const override { return layout_.total(); }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    const float* x = inputs[0].as<const float>();
    const float* w = inputs[1].as<const float>();
    const float* offset = inputs[2].as<const float>();
    const float* bias = g_.has_bias ? inputs[3].as<const float>() : nullptr;
    const float* mask = g_.has_mask ? inputs[4].as<const float>() : nullptr;
    float* y = outputs[0].as<float>();
    char* ws = static_cast<char*>(workspace);
    float* columns = reinterpret_cast<float*>(ws + columns_offset_);
    const int64_t p = g_.out_plane(), taps = g_.taps();
    for (int64_t b = 0; b < g_.batch; ++b) {
      build_table(offset + b * g_.offset_group * taps * 2 * p, ws + table_offset_);
      sample_columns(x + b * g_.channels * g_.height * g_.width,
                     mask != nullptr ? mask + b * g_.offset_group * taps * p : nullptr, ws + table_offset_,
                     columns);
      float* yb = y + b * g_.out_channels * p;
      gemm_.set(DNNL_ARG_SRC, w);
      gemm_.set(DNNL_ARG_WEIGHTS, columns);
      gemm_.set(DNNL_ARG_DST, yb);
      SEQRUN_TRY(gemm_.execute(node_, workspace));
      if (bias != nullptr) add_bias(bias, yb);
    }
    return Status::ok();
  }

  std::string label() const override { return "avx2:deform_conv+onednn(" + impl_ + ")"; }

 private:
  // Table entry arrays for (offset group og, tap t): idx[4][P] (int32) then weight[4][P] (float).
  int32_t* table_indices(char* table, int64_t og, int64_t t, int corner) const {
    const int64_t p = g_.out_plane();
    return reinterpret_cast<int32_t*>(table) + ((og * g_.taps() + t) * 8 + corner) * p;
  }
  float* table_weights(char* table, int64_t og, int64_t t, int corner) const {
    return reinterpret_cast<float*>(table_indices(table, og, t, 4 + corner));
  }

  // The sampling position of tap t at output (r, s) is the regular conv position plus the offsets
  // (dy, dx) of its offset group; corners outside the image get index -1.
  void build_table(const float* offset, char* table) const {
    const int64_t p = g_.out_plane(), taps = g_.taps(), pairs = g_.offset_group * taps;
    const float height = static_cast<float>(g_.height), width = static_cast<float>(g_.width);
#pragma omp parallel for schedule(static) if (pairs * p >= kParallelMinElements)
    for (int64_t pair = 0; pair < pairs; ++pair) {
      const int64_t og = pair / taps, t = pair % taps, i = t / g_.kw, j = t % g_.kw;
      const float* dy = offset + (og * taps * 2 + 2 * t) * p;
      const float* dx = dy + p;
      int32_t* idx[4];
      float* wgt[4];
      for (int c = 0; c < 4; ++c) {
        idx[c] = table_indices(table, og, t, c);
        wgt[c] = table_weights(table, og, t, c);
      }
      for (int64_t r = 0; r < g_.oh; ++r) {
        for (int64_t s = 0; s < g_.ow; ++s) {
          const int64_t o = r * g_.ow + s;
          const float py = static_cast<float>(r * g_.stride_h - g_.pad_h + i * g_.dilation_h) + dy[o];
          const float px = static_cast<float>(s * g_.stride_w - g_.pad_w + j * g_.dilation_w) + dx[o];
          for (int c = 0; c < 4; ++c) {
            idx[c][o] = -1;  // corner outside the image: contributes nothing (not even 0 * inf)
            wgt[c][o] = 0.0f;
          }
          if (!(py > -1.0f && py < height && px > -1.0f && px < width)) continue;
          const float fy = std::floor(py), fx = std::floor(px);
          const int64_t y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
          const float ly = py - fy, lx = px - fx;
          for (int c = 0; c < 4; ++c) {
            const int64_t yy = y0 + c / 2, xx = x0 + c % 2;
            if (yy < 0 || yy >= g_.height || xx < 0 || xx >= g_.width) continue;
            idx[c][o] = static_cast<int32_t>(yy * g_.width + xx);
            wgt[c][o] = (c / 2 ? ly : 1.0f - ly) * (c % 2 ? lx : 1.0f - lx);
          }
        }
      }
    }
  }

  // columns[(c * taps + t) * P + o] for every channel c and tap t, 8 outputs per step by gathers.
  void sample_columns(const float* x, const float* mask, char* table, float* columns) const {
    const int64_t p = g_.out_plane(), taps = g_.taps(), rows = g_.channels * taps;
    const int64_t per_offset_group = g_.channels / g_.offset_group;
    const int64_t plane = g_.height * g_.width;
#pragma omp parallel for schedule(static) if (rows * p >= kParallelMinElements)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t c = row / taps, t = row % taps, og = c / per_offset_group;
      const float* src = x + c * plane;
      const float* m = mask != nullptr ? mask + (og * taps + t) * p : nullptr;
      const int32_t* i0 = table_indices(table, og, t, 0);
      const int32_t* i1 = table_indices(table, og, t, 1);
      const int32_t* i2 = table_indices(table, og, t, 2);
      const int32_t* i3 = table_indices(table, og, t, 3);
      const float* w0 = table_weights(table, og, t, 0);
      const float* w1 = table_weights(table, og, t, 1);
      const float* w2 = table_weights(table, og, t, 2);
      const float* w3 = table_weights(table, og, t, 3);
      float* col = columns + row * p;
      int64_t o = 0;
      for (; o + 8 <= p; o += 8) {
        auto corner = [&](const int32_t* idx, const float* wt) {
          const __m256i iv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + o));
          const __m256 inside = _mm256_castsi256_ps(_mm256_cmpgt_epi32(iv, _mm256_set1_epi32(-1)));
          const __m256 v = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), src, iv, inside, 4);
          return _mm256_mul_ps(_mm256_loadu_ps(wt + o), v);
        };
        __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(corner(i0, w0), corner(i1, w1)), corner(i2, w2)),
                                 corner(i3, w3));
        if (m != nullptr) v = _mm256_mul_ps(v, _mm256_loadu_ps(m + o));
        _mm256_storeu_ps(col + o, v);
      }
      for (; o < p; ++o) {
        float v = 0.0f;
        if (i0[o] >= 0) v += w0[o] * src[i0[o]];
        if (i1[o] >= 0) v += w1[o] * src[i1[o]];
        if (i2[o] >= 0) v += w2[o] * src[i2[o]];
        if (i3[o] >= 0) v += w3[o] * src[i3[o]];
        col[o] = m != nullptr ? v * m[o] : v;
      }
    }
  }

  void add_bias(const float* bias, float* y) const {
    const int64_t p = g_.out_plane();
#pragma omp parallel for schedule(static) if (g_.out_channels * p >= kParallelMinElements)
    for (int64_t m = 0; m < g_.out_channels; ++m) {
      const __m256 bv = _mm256_set1_ps(bias[m]);
      float* row = y + m * p;
      int64_t o = 0;
      for (; o + 8 <= p; o += 8) _mm256_storeu_ps(row + o, _mm256_add_ps(_mm256_loadu_ps(row + o), bv));
      for (; o < p; ++o) row[o] += bias[m];
    }
  }

  const Node* node_;
  DeformGeometry g_;
  WorkspaceLayout layout_;
  onednn::BoundPrimitive gemm_;
  size_t table_offset_ = 0, columns_offset_ = 0;
  std::string impl_;
};

}  // namespace

std::unique_ptr<Kernel> make_deform_conv_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() < 3 || info.outputs.size() != 1) return nullptr;
  const Shape& x = info.inputs[0].shape;
  const Shape& w = info.inputs[1].shape;
  if (x.size() != 4 || w.size() != 4) return nullptr;
  DeformGeometry g{};
  g.batch = x[0];
  g.channels = x[1];
  g.height = x[2];
  g.width = x[3];
  g.out_channels = w[0];
  g.group = info.node->get_int("group", 1);
  g.offset_group = info.node->get_int("offset_group", 1);
  g.kh = w[2];
  g.kw = w[3];
  if (g.group <= 0 || g.offset_group <= 0 || g.out_channels % g.group != 0 || g.channels != w[1] * g.group ||
      g.channels % g.offset_group != 0) {
    return nullptr;
  }
  for (int64_t d : x) {
    if (d <= 0) return nullptr;
  }
  if (g.out_channels <= 0 || g.kh <= 0 || g.kw <= 0) return nullptr;
  const std::vector<int64_t> kernel = {g.kh, g.kw};
  const std::vector<int64_t> kernel_attr = info.node->get_ints("kernel_shape");
  if (!kernel_attr.empty() && kernel_attr != kernel) return nullptr;
  reference::KernelContext ctx{*info.node, {}, {}, nullptr};
  auto geometry = reference::nn_detail::resolve_window(ctx, {g.height, g.width}, kernel, false);
  if (!geometry) return nullptr;
  g.oh = geometry->out[0];
  g.ow = geometry->out[1];
  g.stride_h = geometry->strides[0];
  g.stride_w = geometry->strides[1];
  g.pad_h = geometry->pad_begin[0];
  g.pad_w = geometry->pad_begin[1];
  g.dilation_h = geometry->dilations[0];
  g.dilation_w = geometry->dilations[1];
  if (g.height * g.width >= (int64_t{1} << 31)) return nullptr;  // int32 gather indices
  const int64_t taps = g.taps();
  if (info.inputs[2].shape != Shape{g.batch, g.offset_group * taps * 2, g.oh, g.ow}) return nullptr;
  g.has_bias = info.input_present(3);
  if (g.has_bias && info.inputs[3].shape != Shape{g.out_channels}) return nullptr;
  g.has_mask = info.input_present(4);
  if (g.has_mask && info.inputs[4].shape != Shape{g.batch, g.offset_group * taps, g.oh, g.ow}) return nullptr;
  if (info.outputs[0].shape != Shape{g.batch, g.out_channels, g.oh, g.ow}) return nullptr;
  auto k = std::make_unique<DeformConvKernel>(info.node, g);
  try {
    k->build();
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return k;
}

}  // namespace seqrun::backends::cpu
