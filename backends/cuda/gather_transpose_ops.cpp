// CUDA kernels for Gather (one axis, i64/i32 indices, any element size) and Transpose (device code in
// gather_transpose.cu).
#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

bool word_sized(size_t bytes) {
  return bytes == 1 || bytes == 2 || bytes == 4 || bytes == 8;
}

class GatherKernel final : public CudaKernel {
 public:
  GatherKernel(CudaContext* ctx, const Node* node, GatherParams params)
      : CudaKernel(ctx, node, "cuda:gather"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    GatherParams p = params_;
    p.data = in[0].data;
    p.indices = in[1].data;
    p.y = out[0].data;
    return launched(launch_gather(p, ctx_->stream()));
  }

 private:
  GatherParams params_;
};

std::unique_ptr<Kernel> make_gather(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  const TensorArg& data = info.inputs[0];
  const TensorArg& indices = info.inputs[1];
  if (data.rank() == 0 || !word_sized(dtype_size(data.dtype)) || info.outputs[0].dtype != data.dtype)
    return nullptr;
  if (indices.dtype != DType::i64 && indices.dtype != DType::i32) return nullptr;
  const std::optional<int> axis = normalize_axis(info.node->get_int("axis", 0), data.rank());
  if (!axis) return nullptr;
  GatherParams p;
  p.elem_size = static_cast<int32_t>(dtype_size(data.dtype));
  p.outer = dims_product(data.shape, 0, *axis);
  p.axis_dim = data.shape[*axis];
  p.inner = dims_product(data.shape, *axis + 1, data.rank());
  p.num_indices = indices.numel();
  p.indices_i64 = indices.dtype == DType::i64;
  if (info.outputs[0].numel() != p.outer * p.num_indices * p.inner) return nullptr;
  p.sink = ctx->error_sink(*info.node);
  return std::make_unique<GatherKernel>(ctx, info.node, p);
}

class TransposeKernel final : public CudaKernel {
 public:
  TransposeKernel(CudaContext* ctx, const Node* node, TransposeParams params)
      : CudaKernel(ctx, node, "cuda:transpose"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    TransposeParams p = params_;
    p.x = in[0].data;
    p.y = out[0].data;
    return launched(launch_transpose(p, ctx_->stream()));
  }

 private:
  TransposeParams params_;
};

std::unique_ptr<Kernel> make_transpose(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  const int rank = x.rank();
  if (rank < 1 || rank > kMaxRank || !word_sized(dtype_size(x.dtype)) || info.outputs[0].dtype != x.dtype) {
    return nullptr;
  }
  std::vector<int64_t> perm = info.node->get_ints("perm");
  if (perm.empty()) {
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  }
  if (static_cast<int>(perm.size()) != rank) return nullptr;
  std::vector<int64_t> in_strides(rank);
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    in_strides[d] = stride;
    stride *= x.shape[d];
  }
  TransposeParams p;
  p.elem_size = static_cast<int32_t>(dtype_size(x.dtype));
  p.rank = rank;
  p.n = x.numel();
  std::vector<bool> seen(rank, false);
  for (int d = 0; d < rank; ++d) {
    const std::optional<int> src = normalize_axis(perm[d], rank);
    if (!src || seen[*src]) return nullptr;
    seen[*src] = true;
    p.out_dims[d] = x.shape[*src];
    p.in_strides[d] = in_strides[*src];
  }
  Shape out_shape(p.out_dims, p.out_dims + rank);
  if (out_shape != info.outputs[0].shape) return nullptr;
  return std::make_unique<TransposeKernel>(ctx, info.node, p);
}

}  // namespace

void register_gather_transpose_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  registry.add("Gather", [ctx](const KernelInfo& info) { return make_gather(info, ctx); });
  registry.add("Transpose", [ctx](const KernelInfo& info) { return make_transpose(info, ctx); });
}

}  // namespace seqrun::backends::cuda
