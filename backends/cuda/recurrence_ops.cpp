// CUDA kernels for the state-carrying recurrences: SelectiveScan (Mamba) and TokenShift (RWKV). Device
// code in selective_scan.cu and token_shift.cu.
//
// The factories check shapes, dtypes and attributes the way the reference kernels do and decline anything
// else (a state size over kSelectiveScanMaxState, unknown attribute values, bad shapes): the CPU fallback
// then computes it or reports the error with the reference's message.
#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

// ---- SelectiveScan -----------------------------------------------------------------------------------

class SelectiveScanKernel final : public CudaKernel {
 public:
  SelectiveScanKernel(CudaContext* ctx, const Node* node, SelectiveScanParams params)
      : CudaKernel(ctx, node, "cuda:selective-scan"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    SelectiveScanParams p = params_;
    auto data = [&](int i) -> const void* { return i < static_cast<int>(in.size()) ? in[i].data : nullptr; };
    p.u = data(0);
    p.delta = data(1);
    p.a = data(2);
    p.bmat = data(3);
    p.cmat = data(4);
    p.dskip = data(5);
    p.z = data(6);
    p.delta_bias = data(7);
    p.h0 = data(8);
    p.y = out[0].data;
    p.h_out = out.size() > 1 ? out[1].data : nullptr;
    return launched(launch_selective_scan(p, ctx_->stream()));
  }

 private:
  SelectiveScanParams params_;
};

// Optional input i: absent, or a float tensor of `shape`; its type goes to *type.
bool optional_float(const KernelInfo& info, int i, const Shape& shape, ElemType* type) {
  if (!info.input_present(i)) return true;
  const TensorArg& t = info.inputs[i];
  if (!is_cuda_float(t.dtype) || t.shape != shape) return false;
  *type = *elem_type(t.dtype);
  return true;
}

std::unique_ptr<Kernel> make_selective_scan(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() < 5 || info.inputs.size() > 9 || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  for (int i = 0; i < 5; ++i) {
    if (!info.input_present(i)) return nullptr;
  }
  const TensorArg& u = info.inputs[0];
  const DType dt = u.dtype;
  if (!is_cuda_float(dt) || u.rank() != 3) return nullptr;
  SelectiveScanParams p;
  p.type = *elem_type(dt);
  p.batch = u.shape[0];
  p.channels = u.shape[1];
  p.length = u.shape[2];
  const Shape row_shape{p.batch, p.channels, p.length};
  const TensorArg& delta = info.inputs[1];
  if (delta.dtype != dt || delta.shape != row_shape) return nullptr;
  const TensorArg& a = info.inputs[2];
  if (!is_cuda_float(a.dtype) || a.rank() != 2 || a.shape[0] != p.channels) return nullptr;
  p.a_type = *elem_type(a.dtype);
  p.state_size = a.shape[1];
  if (p.state_size < 1 || p.state_size > kSelectiveScanMaxState) return nullptr;
  const TensorArg& bmat = info.inputs[3];
  const TensorArg& cmat = info.inputs[4];
  if (bmat.dtype != dt || cmat.dtype != dt || cmat.shape != bmat.shape) return nullptr;
  if (bmat.rank() == 4) {
    p.groups = bmat.shape[1];
    if (bmat.shape != Shape{p.batch, p.groups, p.state_size, p.length}) return nullptr;
  } else if (bmat.rank() == 3) {
    p.groups = 1;
    if (bmat.shape != Shape{p.batch, p.state_size, p.length}) return nullptr;
  } else {
    return nullptr;
  }
  if (p.groups < 1 || p.channels % p.groups != 0) return nullptr;
  if (!optional_float(info, 5, {p.channels}, &p.dskip_type)) return nullptr;
  if (info.input_present(6) && (info.inputs[6].dtype != dt || info.inputs[6].shape != row_shape))
    return nullptr;
  if (!optional_float(info, 7, {p.channels}, &p.bias_type)) return nullptr;
  if (!optional_float(info, 8, {p.batch, p.channels, p.state_size}, &p.h0_type)) return nullptr;
  const int64_t softplus = node.get_int("delta_softplus", 1);
  if (softplus != 0 && softplus != 1) return nullptr;
  p.delta_softplus = softplus == 1;
  if (p.batch > 65535) return nullptr;
  if (info.outputs[0].dtype != dt || info.outputs[0].shape != row_shape) return nullptr;
  if (info.outputs.size() > 1 &&
      (info.outputs[1].dtype != dt || info.outputs[1].shape != Shape{p.batch, p.channels, p.state_size})) {
    return nullptr;
  }
  return std::make_unique<SelectiveScanKernel>(ctx, info.node, p);
}

// ---- TokenShift --------------------------------------------------------------------------------------

class TokenShiftKernel final : public CudaKernel {
 public:
  TokenShiftKernel(CudaContext* ctx, const Node* node, TokenShiftParams params)
      : CudaKernel(ctx, node, "cuda:token-shift"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    TokenShiftParams p = params_;
    p.x = in[0].data;
    p.state = in.size() > 1 ? in[1].data : nullptr;
    p.y = out[0].data;
    p.new_state = out.size() > 1 ? out[1].data : nullptr;
    return launched(launch_token_shift(p, ctx_->stream()));
  }

 private:
  TokenShiftParams params_;
};

std::unique_ptr<Kernel> make_token_shift(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.empty() || info.inputs.size() > 2 || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  const TensorArg& x = info.inputs[0];
  const DType dt = x.dtype;
  if (!is_cuda_float(dt) || x.rank() != 3) return nullptr;
  TokenShiftParams p;
  p.elem_size = static_cast<int32_t>(dtype_size(dt));
  p.batch = x.shape[0];
  p.length = x.shape[1];
  p.channels = x.shape[2];
  const Shape state_shape{p.batch, p.channels};
  if (info.input_present(1) && (info.inputs[1].dtype != dt || info.inputs[1].shape != state_shape))
    return nullptr;
  if (info.outputs[0].dtype != dt || info.outputs[0].shape != x.shape) return nullptr;
  if (info.outputs.size() > 1 && (info.outputs[1].dtype != dt || info.outputs[1].shape != state_shape))
    return nullptr;
  return std::make_unique<TokenShiftKernel>(ctx, info.node, p);
}

}  // namespace

void register_recurrence_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  registry.add("SelectiveScan", [ctx](const KernelInfo& info) { return make_selective_scan(info, ctx); });
  registry.add("TokenShift", [ctx](const KernelInfo& info) { return make_token_shift(info, ctx); });
}

}  // namespace seqrun::backends::cuda
