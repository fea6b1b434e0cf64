// Softmax and LogSoftmax through oneDNN's softmax / logsoftmax primitives, preferred over the own
// AVX2 kernel (avx2_softmax_norm.cpp), which stays as the fallback.
//
// Measured (1 thread, [128, 768] and [1536, 128] rows): equal to the own kernel when oneDNN is limited
// to AVX2, 1.6x faster where it can use AVX-512. X is viewed as [outer, len, inner] around the axis,
// plain layout, one primitive built at plan time; compute-bound (exp) for cache-resident rows. When
// oneDNN has only its reference loop for the problem (a strided axis), the factory declines.
// One semantic difference from the reference: a row holding +inf gives NaN everywhere (oneDNN
// subtracts the infinite maximum) where the reference gives NaN only at the +inf entries.
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/onednn_common.h"

namespace seqrun::backends::cpu {
namespace {

class OnednnSoftmaxKernel : public Kernel {
 public:
  OnednnSoftmaxKernel(const Node* node, bool log) : node_(node), log_(log) {}

  // Builds the primitive (plan time). Throws dnnl::error.
  void build(const onednn::dims& dims) {
    const dnnl::memory::desc md = onednn::f32_desc(dims);
    if (log_) {
      const dnnl::logsoftmax_forward::primitive_desc pd(
          dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1),
          onednn::user_scratchpad_attr(), onednn::engine());
      impl_ = onednn::impl_name(pd);
      primitive_.init(dnnl::logsoftmax_forward(pd), pd.scratchpad_desc(), layout_);
    } else {
      const dnnl::softmax_forward::primitive_desc pd(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1),
          onednn::user_scratchpad_attr(), onednn::engine());
      impl_ = onednn::impl_name(pd);
      primitive_.init(dnnl::softmax_forward(pd), pd.scratchpad_desc(), layout_);
    }
    primitive_.bind(DNNL_ARG_SRC, md);
    primitive_.bind(DNNL_ARG_DST, md);
  }

  bool can_run_in_place(int output, int input) const override { return output == 0 && input == 0; }
  size_t workspace_bytes() const override { return layout_.total(); }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
             void* workspace) override {
    primitive_.set(DNNL_ARG_SRC, inputs[0].data);
    primitive_.set(DNNL_ARG_DST, outputs[0].data);
    return primitive_.execute(node_, workspace);
  }

  const std::string& implementation() const { return impl_; }
  std::string label() const override {
    return std::string("onednn:") + (log_ ? "log_softmax(" : "softmax(") + impl_ + ")";
  }

 private:
  const Node* node_;
  bool log_;
  WorkspaceLayout layout_;
  onednn::BoundPrimitive primitive_;
  std::string impl_;
};

}  // namespace

std::unique_ptr<Kernel> make_onednn_softmax_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  const Shape& x = info.inputs[0].shape;
  if (x.empty() || info.outputs[0].shape != x) return nullptr;
  const int axis = normalize_axis(info.node->get_int("axis", -1), static_cast<int>(x.size()));
  if (axis < 0) return nullptr;
  const onednn::dims dims = {product(x, 0, axis), x[axis], product(x, axis + 1, x.size())};
  for (int64_t d : dims) {
    if (d <= 0) return nullptr;
  }
  auto k = std::make_unique<OnednnSoftmaxKernel>(info.node, info.node->op() == "LogSoftmax");
  try {
    k->build(dims);
  } catch (const dnnl::error&) {
    return nullptr;
  }
  // A strided axis gets oneDNN's reference loop ("ref:any"): the own vector kernel is faster there.
  if (k->implementation().rfind("ref", 0) == 0) return nullptr;
  return k;
}

}  // namespace seqrun::backends::cpu
