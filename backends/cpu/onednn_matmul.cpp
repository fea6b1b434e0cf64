// Matrix products through oneDNN matmul: MatMul (batched, broadcast), Gemm, Linear and FusedLinear.
//
// Each node becomes one matmul primitive built at plan time: src [batch..., M, K], weights
// [batch..., K, N] and dst [batch..., M, N] row-major; transposed operands are strides, never
// copies. A constant weight is reordered once, at prepare, into the layout the primitive prefers
// (format_tag::any); bias and activation are the primitive's bias and eltwise post-op, Gemm's alpha
// an output scale and its general C a sum post-op over a dst prefilled with C. run() only swaps
// data pointers and executes: compute-bound for real sizes, no per-run allocation or packing.
#include <cmath>
#include <optional>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/onednn_common.h"

namespace seqrun::backends::cpu {
namespace {

using onednn::dims;

// One product as oneDNN sees it, plus where its operands come from among the node's inputs.
struct MatmulSpec {
  dims src_dims, src_strides;
  dims wei_dims, wei_strides;
  dims dst_dims;  // row-major
  int src_input = 0;
  int wei_input = 1;
  int bias_input = -1;  // bias broadcast along M: dims {1..., N}
  dims bias_dims;
  float alpha = 1.0f;  // output scale
  // Gemm's general C: dst is prefilled with C (strides per dst [M, N] position) and summed with beta.
  int c_input = -1;
  float beta = 0.0f;
  int64_t c_stride_m = 0, c_stride_n = 0;
  std::optional<dnnl::algorithm> activation;
  float activation_alpha = 0.0f;
  std::string what;  // "matmul", "gemm", "linear", "fused_linear"
};

class OnednnMatmulKernel : public Kernel {
 public:
  OnednnMatmulKernel(const Node* node, MatmulSpec spec) : node_(node), spec_(std::move(spec)) {}

  // Builds the primitive (plan time). Throws dnnl::error when oneDNN rejects the problem.
  void build(const KernelInfo& info) {
    using dt = dnnl::memory::data_type;
    const dnnl::memory::desc src_md = onednn::f32_desc(spec_.src_dims, spec_.src_strides);
    wei_user_md_ = onednn::f32_desc(spec_.wei_dims, spec_.wei_strides);
    pack_weights_ = input_is_constant(info, spec_.wei_input);
    const dnnl::memory::desc wei_md =
        pack_weights_ ? dnnl::memory::desc(spec_.wei_dims, dt::f32, onednn::tag::any) : wei_user_md_;
    const dnnl::memory::desc dst_md = onednn::f32_desc(spec_.dst_dims);
    dnnl::primitive_attr attr = onednn::user_scratchpad_attr();
    if (spec_.alpha != 1.0f) attr.set_output_scales(0, {spec_.alpha});
    dnnl::post_ops ops;
    if (spec_.c_input >= 0) ops.append_sum(spec_.beta);
    if (spec_.activation) ops.append_eltwise(1.0f, *spec_.activation, spec_.activation_alpha, 0.0f);
    attr.set_post_ops(ops);
    std::optional<dnnl::matmul::desc> desc;
    if (spec_.bias_input >= 0) {
      desc.emplace(src_md, wei_md, onednn::f32_desc(spec_.bias_dims), dst_md);
    } else {
      desc.emplace(src_md, wei_md, dst_md);
    }
    const dnnl::matmul::primitive_desc pd(*desc, attr, onednn::engine());
    impl_ = onednn::impl_name(pd);
    primitive_.init(dnnl::matmul(pd), pd.scratchpad_desc(), layout_);
    primitive_.bind(DNNL_ARG_SRC, src_md);
    primitive_.bind(DNNL_ARG_DST, dst_md);
    if (spec_.bias_input >= 0) primitive_.bind(DNNL_ARG_BIAS, onednn::f32_desc(spec_.bias_dims));
    packed_md_ = pd.weights_desc();
    // Packing only pays when the primitive wants another layout than the weight already has.
    if (pack_weights_ && packed_md_ == wei_user_md_) pack_weights_ = false;
    if (!pack_weights_) primitive_.bind(DNNL_ARG_WEIGHTS, wei_user_md_);
  }

  Status prepare(const KernelInfo& info) override {
    if (!pack_weights_ || packed_) return Status::ok();
    try {
      primitive_.bind_owned(
          DNNL_ARG_WEIGHTS,
          onednn::pack_constant(wei_user_md_, info.inputs[spec_.wei_input].data, packed_md_));
    } catch (const dnnl::error& e) {
      return node_error(node_, "oneDNN weight packing: {}", e.what());
    }
    packed_ = true;
    return Status::ok();
  }

  size_t workspace_bytes() const override { return layout_.total(); }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    if (pack_weights_ && !packed_) return node_error(node_, "kernel used before prepare");
    float* dst = outputs[0].as<float>();
    if (spec_.c_input >= 0) prefill_c(inputs[spec_.c_input].as<const float>(), dst);
    primitive_.set(DNNL_ARG_SRC, inputs[spec_.src_input].data);
    if (!pack_weights_) primitive_.set(DNNL_ARG_WEIGHTS, inputs[spec_.wei_input].data);
    if (spec_.bias_input >= 0) primitive_.set(DNNL_ARG_BIAS, inputs[spec_.bias_input].data);
    primitive_.set(DNNL_ARG_DST, dst);
    return primitive_.execute(node_, workspace);
  }

  std::string label() const override { return "onednn:" + spec_.what + "(" + impl_ + ")"; }

 private:
  // dst[m, n] = C[m * c_stride_m + n * c_stride_n]: Gemm's C broadcast to [M, N] (memory-bound).
  void prefill_c(const float* c, float* dst) const {
    const int64_t m = spec_.dst_dims[0], n = spec_.dst_dims[1];
    const int64_t sm = spec_.c_stride_m, sn = spec_.c_stride_n;
#pragma omp parallel for schedule(static) if (m * n >= kParallelMinElements)
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) dst[i * n + j] = c[i * sm + j * sn];
    }
  }

  const Node* node_;
  MatmulSpec spec_;
  WorkspaceLayout layout_;
  onednn::BoundPrimitive primitive_;
  dnnl::memory::desc wei_user_md_, packed_md_;
  bool pack_weights_ = false;
  bool packed_ = false;
  std::string impl_;
};

std::unique_ptr<Kernel> build_kernel(const KernelInfo& info, MatmulSpec spec) {
  for (const dims* d : {&spec.src_dims, &spec.wei_dims, &spec.dst_dims}) {
    if (d->size() > DNNL_MAX_NDIMS) return nullptr;
    for (int64_t v : *d) {
      if (v <= 0) return nullptr;  // empty products: the reference handles them
    }
  }
  auto kernel = std::make_unique<OnednnMatmulKernel>(info.node, std::move(spec));
  try {
    kernel->build(info);
  } catch (const dnnl::error&) {
    return nullptr;  // oneDNN has no implementation for this problem
  }
  return kernel;
}

// Row-major [M, K] or its transpose stored as [K, M]: dims {M, K} with the matching strides.
void matrix(int64_t rows, int64_t cols, bool transposed, dims& d, dims& strides) {
  d = {rows, cols};
  strides = transposed ? dims{1, rows} : dims{cols, 1};
}

// Linear-like product: x [..., K] times a 2-D weight (W [K, N], or W [N, K] when w_transposed).
std::unique_ptr<Kernel> make_linear_like(const KernelInfo& info, bool w_transposed, int bias_input,
                                         std::optional<dnnl::algorithm> activation, float activation_alpha,
                                         const char* what) {
  if (!all_f32(info) || info.inputs.size() < 2) return nullptr;
  const Shape& x = info.inputs[0].shape;
  const Shape& w = info.inputs[1].shape;
  if (x.empty() || w.size() != 2) return nullptr;
  const int64_t k = w_transposed ? w[1] : w[0], n = w_transposed ? w[0] : w[1];
  if (x.back() != k) return nullptr;
  Shape out(x.begin(), x.end() - 1);
  out.push_back(n);
  if (info.outputs.empty() || info.outputs[0].shape != out) return nullptr;
  MatmulSpec spec;
  spec.what = what;
  const int64_t rows = product(x, 0, x.size() - 1);
  matrix(rows, k, false, spec.src_dims, spec.src_strides);
  matrix(k, n, w_transposed, spec.wei_dims, spec.wei_strides);
  spec.dst_dims = {rows, n};
  if (bias_input >= 0 && info.input_present(bias_input)) {
    if (info.inputs[bias_input].shape != Shape{n}) return nullptr;
    spec.bias_input = bias_input;
    spec.bias_dims = {1, n};
  }
  spec.activation = activation;
  spec.activation_alpha = activation_alpha;
  return build_kernel(info, std::move(spec));
}

}  // namespace

// Each factory first offers the node to the small-M kernel (gemv.cpp: decode steps, M <= 3 or 4 rows, where
// it reads the weight faster than the oneDNN primitive, see tools/bench/matmul/bench_gemv.cpp); oneDNN takes
// what it declines.
std::unique_ptr<Kernel> make_matmul_kernel(const KernelInfo& info) {
  if (auto gemv = make_gemv_matmul_kernel(info)) return gemv;
  if (!all_f32(info) || info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  Shape a = info.inputs[0].shape, b = info.inputs[1].shape;
  if (a.empty() || b.empty()) return nullptr;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  const int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
  if (b[b.size() - 2] != k) return nullptr;
  MatmulSpec spec;
  spec.what = "matmul";
  if (b.size() == 2) {
    // A's batch dims fold into M: one 2-D product with a shared weight.
    const int64_t rows = product(a, 0, a.size() - 1);
    matrix(rows, k, false, spec.src_dims, spec.src_strides);
    matrix(k, n, false, spec.wei_dims, spec.wei_strides);
    spec.dst_dims = {rows, n};
  } else {
    const size_t rank = std::max(a.size(), b.size());
    a.insert(a.begin(), rank - a.size(), 1);
    b.insert(b.begin(), rank - b.size(), 1);
    dims out;
    for (size_t i = 0; i + 2 < rank; ++i) {
      if (a[i] != b[i] && a[i] != 1 && b[i] != 1) return nullptr;
      out.push_back(std::max(a[i], b[i]));
    }
    out.push_back(m);
    out.push_back(n);
    spec.src_dims = onednn::to_dims(a);
    spec.wei_dims = onednn::to_dims(b);
    spec.dst_dims = out;
  }
  if (num_elements(info.outputs[0].shape) != product(spec.dst_dims, 0, spec.dst_dims.size())) return nullptr;
  return build_kernel(info, std::move(spec));
}

std::unique_ptr<Kernel> make_gemm_kernel(const KernelInfo& info) {
  if (auto gemv = make_gemv_gemm_kernel(info)) return gemv;
  if (!all_f32(info) || info.inputs.size() < 2) return nullptr;
  const Node& node = *info.node;
  const Shape& a = info.inputs[0].shape;
  const Shape& b = info.inputs[1].shape;
  if (a.size() != 2 || b.size() != 2) return nullptr;
  const bool trans_a = node.get_int("transA", 0) != 0, trans_b = node.get_int("transB", 0) != 0;
  const int64_t m = trans_a ? a[1] : a[0], k = trans_a ? a[0] : a[1];
  const int64_t kb = trans_b ? b[1] : b[0], n = trans_b ? b[0] : b[1];
  if (k != kb || info.outputs[0].shape != Shape{m, n}) return nullptr;
  MatmulSpec spec;
  spec.what = "gemm";
  matrix(m, k, trans_a, spec.src_dims, spec.src_strides);
  matrix(k, n, trans_b, spec.wei_dims, spec.wei_strides);
  spec.dst_dims = {m, n};
  spec.alpha = node.get_float("alpha", 1.0f);
  const float beta = node.get_float("beta", 1.0f);
  if (info.input_present(2) && beta != 0.0f) {
    const Shape& c = info.inputs[2].shape;
    if (c.size() > 2) return nullptr;
    Shape c2 = c;
    c2.insert(c2.begin(), 2 - c2.size(), 1);
    if ((c2[0] != 1 && c2[0] != m) || (c2[1] != 1 && c2[1] != n)) return nullptr;
    if (c2[0] == 1 && c2[1] == n && spec.alpha == 1.0f && beta == 1.0f) {
      spec.bias_input = 2;  // the common Linear-as-Gemm case: C is a bias row
      spec.bias_dims = {1, n};
    } else {
      spec.c_input = 2;
      spec.beta = beta;
      spec.c_stride_m = c2[0] == 1 ? 0 : c2[1];
      spec.c_stride_n = c2[1] == 1 ? 0 : 1;
    }
  }
  return build_kernel(info, std::move(spec));
}

std::unique_ptr<Kernel> make_linear_kernel(const KernelInfo& info) {
  if (auto gemv = make_gemv_linear_kernel(info)) return gemv;
  return make_linear_like(info, true, 2, std::nullopt, 0.0f, "linear");
}

std::unique_ptr<Kernel> make_fused_linear_kernel(const KernelInfo& info) {
  if (auto gemv = make_gemv_fused_linear_kernel(info)) return gemv;
  const std::string act = info.node->get_string("activation", "none");
  std::optional<dnnl::algorithm> alg;
  float alpha = 0.0f;
  if (act == "relu") {
    alg = dnnl::algorithm::eltwise_relu;
  } else if (act == "gelu") {
    alg = dnnl::algorithm::eltwise_gelu_erf;
  } else if (act == "gelu_tanh") {
    alg = dnnl::algorithm::eltwise_gelu_tanh;
  } else if (act == "silu") {
    alg = dnnl::algorithm::eltwise_swish;
    alpha = 1.0f;
  } else if (act == "sigmoid") {
    alg = dnnl::algorithm::eltwise_logistic;
  } else if (act == "tanh") {
    alg = dnnl::algorithm::eltwise_tanh;
  } else if (act != "none") {
    return nullptr;
  }
  const bool trans_b = info.node->get_int("transB", 0) != 0;
  return make_linear_like(info, trans_b, 2, alg, alpha, "fused_linear");
}

}  // namespace seqrun::backends::cpu
