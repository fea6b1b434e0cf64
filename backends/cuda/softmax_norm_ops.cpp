// CUDA kernels for Softmax / LogSoftmax, LayerNormalization / RMSNormalization and ReduceSum /
// ReduceMean / ReduceMax over a contiguous range of axes (device code in softmax_norm.cu).
#include <algorithm>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

class SoftmaxKernel final : public CudaKernel {
 public:
  SoftmaxKernel(CudaContext* ctx, const Node* node, SoftmaxParams params)
      : CudaKernel(ctx, node, "cuda:softmax"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    SoftmaxParams p = params_;
    p.x = in[0].data;
    p.y = out[0].data;
    return launched(launch_softmax(p, ctx_->stream()));
  }

 private:
  SoftmaxParams params_;
};

std::unique_ptr<Kernel> make_softmax(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  if (!is_cuda_float(x.dtype) || info.outputs[0].dtype != x.dtype || x.rank() == 0) return nullptr;
  const std::optional<int> axis = normalize_axis(info.node->get_int("axis", -1), x.rank());
  if (!axis) return nullptr;
  SoftmaxParams p;
  p.type = *elem_type(x.dtype);
  p.log = info.node->op() == "LogSoftmax";
  p.outer = dims_product(x.shape, 0, *axis);
  p.n = x.shape[*axis];
  p.inner = dims_product(x.shape, *axis + 1, x.rank());
  if (p.n == 0) return nullptr;
  return std::make_unique<SoftmaxKernel>(ctx, info.node, p);
}

class NormKernel final : public CudaKernel {
 public:
  NormKernel(CudaContext* ctx, const Node* node, NormParams params, bool has_bias)
      : CudaKernel(ctx, node, params.rms ? "cuda:rms-norm" : "cuda:layer-norm"),
        params_(params),
        has_bias_(has_bias) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    NormParams p = params_;
    p.x = in[0].data;
    p.scale = in[1].data;
    p.bias = has_bias_ ? in[2].data : nullptr;
    p.y = out[0].data;
    p.mean = out.size() > 1 ? static_cast<float*>(out[1].data) : nullptr;
    p.inv_std = out.size() > 2 ? static_cast<float*>(out[2].data) : nullptr;
    return launched(launch_norm(p, ctx_->stream()));
  }

 private:
  NormParams params_;
  bool has_bias_;
};

// A parameter covers exactly the normalized dims: its shape, without leading 1s, is x.shape[axis:]
// without leading 1s (so it indexes like the row).
bool covers_row(const Shape& param, const Shape& x, int axis) {
  auto strip = [](const Shape& s, size_t from) {
    size_t i = from;
    while (i < s.size() && s[i] == 1) ++i;
    return Shape(s.begin() + static_cast<std::ptrdiff_t>(i), s.end());
  };
  return strip(param, 0) == strip(x, static_cast<size_t>(axis));
}

std::unique_ptr<Kernel> make_norm(const KernelInfo& info, CudaContext* ctx, bool rms) {
  if (info.inputs.size() < 2 || info.outputs.empty()) return nullptr;
  const TensorArg& x = info.inputs[0];
  if (!is_cuda_float(x.dtype) || x.rank() == 0 || info.outputs[0].dtype != x.dtype) return nullptr;
  const std::optional<int> axis = normalize_axis(info.node->get_int("axis", -1), x.rank());
  if (!axis) return nullptr;
  const bool has_bias = !rms && info.input_present(2);
  for (int i = 1; i <= (has_bias ? 2 : 1); ++i) {
    if (!info.input_present(i) || info.inputs[i].dtype != x.dtype ||
        !covers_row(info.inputs[i].shape, x.shape, *axis)) {
      return nullptr;
    }
  }
  if (rms && info.outputs.size() > 1) return nullptr;
  for (size_t o = 1; o < info.outputs.size(); ++o) {
    if (info.outputs[o].dtype != DType::f32) return nullptr;  // Mean / InvStdDev in f32 (stash_type 1)
  }
  NormParams p;
  p.type = *elem_type(x.dtype);
  p.rms = rms;
  p.epsilon = info.node->get_float("epsilon", 1e-5f);
  p.rows = dims_product(x.shape, 0, *axis);
  p.row_len = dims_product(x.shape, *axis, x.rank());
  if (p.row_len == 0) return nullptr;
  return std::make_unique<NormKernel>(ctx, info.node, p, has_bias);
}

class ReduceKernel final : public CudaKernel {
 public:
  ReduceKernel(CudaContext* ctx, const Node* node, ReduceParams params)
      : CudaKernel(ctx, node, "cuda:reduce"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    ReduceParams p = params_;
    p.x = in[0].data;
    p.y = out[0].data;
    return launched(launch_reduce(p, ctx_->stream()));
  }

 private:
  ReduceParams params_;
};

// ReduceX(data, axes?) whose axes (a constant input, or the old attribute) form one contiguous range.
std::unique_ptr<Kernel> make_reduce(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.empty() || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  if (!is_cuda_float(x.dtype) || info.outputs[0].dtype != x.dtype) return nullptr;
  std::vector<int64_t> axes = node.get_ints("axes");
  if (info.input_present(1)) {
    const Value* axes_value = node.input(1);
    if (axes_value == nullptr || !axes_value->is_constant()) return nullptr;
    axes = axes_value->constant().to_i64_vector();
  }
  if (axes.empty()) {
    if (node.get_int("noop_with_empty_axes", 0) != 0) return nullptr;
    for (int d = 0; d < x.rank(); ++d) axes.push_back(d);
  }
  std::vector<int> normalized;
  for (int64_t a : axes) {
    const std::optional<int> n = normalize_axis(a, x.rank());
    if (!n) return nullptr;
    normalized.push_back(*n);
  }
  std::sort(normalized.begin(), normalized.end());
  for (size_t i = 1; i < normalized.size(); ++i) {
    if (normalized[i] != normalized[i - 1] + 1) return nullptr;  // not one contiguous range
  }
  ReduceParams p;
  p.type = *elem_type(x.dtype);
  p.op = node.op() == "ReduceSum"    ? ReduceOp::Sum
         : node.op() == "ReduceMean" ? ReduceOp::Mean
                                     : ReduceOp::Max;
  if (normalized.empty()) {  // a scalar input
    p.outer = 1;
    p.r = 1;
    p.inner = 1;
  } else {
    p.outer = dims_product(x.shape, 0, normalized.front());
    p.r = dims_product(x.shape, normalized.front(), normalized.back() + 1);
    p.inner = dims_product(x.shape, normalized.back() + 1, x.rank());
  }
  if (p.r == 0 || info.outputs[0].numel() != p.outer * p.inner) return nullptr;
  return std::make_unique<ReduceKernel>(ctx, info.node, p);
}

}  // namespace

void register_softmax_norm_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    registry.add(op, [ctx](const KernelInfo& info) { return make_softmax(info, ctx); });
  }
  registry.add("LayerNormalization", [ctx](const KernelInfo& info) { return make_norm(info, ctx, false); });
  registry.add("RMSNormalization", [ctx](const KernelInfo& info) { return make_norm(info, ctx, true); });
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
    registry.add(op, [ctx](const KernelInfo& info) { return make_reduce(info, ctx); });
  }
}

}  // namespace seqrun::backends::cuda
