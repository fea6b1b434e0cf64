// CUDA kernels for the elementwise ops: unary math and activations, Add/Sub/Mul/Div/Pow/Max/Min with
// broadcasting, Where, SwiGLU and float-to-float Cast (device code in elementwise.cu).
#include <map>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

class UnaryKernel final : public CudaKernel {
 public:
  UnaryKernel(CudaContext* ctx, const Node* node, UnaryParams params)
      : CudaKernel(ctx, node, "cuda:unary"), params_(params) {}
  bool can_run_in_place(int, int) const override { return true; }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    UnaryParams p = params_;
    p.x = in[0].data;
    p.y = out[0].data;
    return launched(launch_unary(p, ctx_->stream()));
  }

 private:
  UnaryParams params_;
};

const std::map<std::string, UnaryOp>& unary_ops() {
  static const std::map<std::string, UnaryOp> ops = {
      {"Neg", UnaryOp::Neg},
      {"Abs", UnaryOp::Abs},
      {"Relu", UnaryOp::Relu},
      {"Exp", UnaryOp::Exp},
      {"Log", UnaryOp::Log},
      {"Sqrt", UnaryOp::Sqrt},
      {"Rsqrt", UnaryOp::Rsqrt},
      {"Reciprocal", UnaryOp::Reciprocal},
      {"Sigmoid", UnaryOp::Sigmoid},
      {"Tanh", UnaryOp::Tanh},
      {"Softplus", UnaryOp::Softplus},
      {"Softsign", UnaryOp::Softsign},
      {"Gelu", UnaryOp::Gelu},
      {"Erf", UnaryOp::Erf},
      {"Sin", UnaryOp::Sin},
      {"Cos", UnaryOp::Cos},
      {"Silu", UnaryOp::Silu},
      {"Swish", UnaryOp::Swish},
      {"Elu", UnaryOp::Elu},
      {"LeakyRelu", UnaryOp::LeakyRelu},
      {"HardSigmoid", UnaryOp::HardSigmoid},
      {"HardSwish", UnaryOp::HardSwish},
      {"Floor", UnaryOp::Floor},
      {"Ceil", UnaryOp::Ceil},
  };
  return ops;
}

std::unique_ptr<Kernel> make_unary(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  if (!is_cuda_float(x.dtype) || info.outputs[0].dtype != x.dtype || info.outputs[0].shape != x.shape)
    return nullptr;
  auto it = unary_ops().find(node.op());
  if (it == unary_ops().end()) return nullptr;
  UnaryParams p;
  p.type = *elem_type(x.dtype);
  p.op = it->second;
  p.n = x.numel();
  switch (p.op) {
    case UnaryOp::Gelu: {
      const std::string approximate = node.get_string("approximate", "none");
      if (approximate == "tanh") {
        p.op = UnaryOp::GeluTanh;
      } else if (approximate != "none") {
        return nullptr;
      }
      break;
    }
    case UnaryOp::Swish:
    case UnaryOp::Elu:
      p.alpha = node.get_float("alpha", 1.0f);
      break;
    case UnaryOp::LeakyRelu:
      p.alpha = node.get_float("alpha", 0.01f);
      break;
    case UnaryOp::HardSigmoid:
      p.alpha = node.get_float("alpha", 0.2f);
      p.beta = node.get_float("beta", 0.5f);
      break;
    default:
      break;
  }
  return std::make_unique<UnaryKernel>(ctx, info.node, p);
}

class BinaryKernel final : public CudaKernel {
 public:
  BinaryKernel(CudaContext* ctx, const Node* node, BinaryParams params, bool a_full, bool b_full)
      : CudaKernel(ctx, node, "cuda:binary"), params_(params), a_full_(a_full), b_full_(b_full) {}
  // Thread i reads a full-shape operand only at i before writing y[i].
  bool can_run_in_place(int, int input) const override { return input == 0 ? a_full_ : b_full_; }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    BinaryParams p = params_;
    p.a = in[0].data;
    p.b = in[1].data;
    p.y = out[0].data;
    return launched(launch_binary(p, ctx_->stream()));
  }

 private:
  BinaryParams params_;
  bool a_full_, b_full_;
};

std::unique_ptr<Kernel> make_binary(const KernelInfo& info, CudaContext* ctx) {
  const Node& node = *info.node;
  if (info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  const TensorArg& a = info.inputs[0];
  const TensorArg& b = info.inputs[1];
  const TensorArg& y = info.outputs[0];
  if (!is_cuda_float(a.dtype) || b.dtype != a.dtype || y.dtype != a.dtype) return nullptr;
  static const std::map<std::string, BinaryOp> ops = {
      {"Add", BinaryOp::Add}, {"Sub", BinaryOp::Sub}, {"Mul", BinaryOp::Mul}, {"Div", BinaryOp::Div},
      {"Pow", BinaryOp::Pow}, {"Max", BinaryOp::Max}, {"Min", BinaryOp::Min}};
  auto it = ops.find(node.op());
  if (it == ops.end()) return nullptr;
  BinaryParams p;
  p.type = *elem_type(a.dtype);
  p.op = it->second;
  p.n = y.numel();
  p.contiguous = a.shape == y.shape && b.shape == y.shape;
  if (!p.contiguous) {
    if (y.shape.empty()) return nullptr;  // a scalar output is always contiguous
    if (!fill_broadcast(a.shape, y.shape, 0, &p.map) || !fill_broadcast(b.shape, y.shape, 1, &p.map)) {
      return nullptr;
    }
  }
  return std::make_unique<BinaryKernel>(ctx, info.node, p, a.shape == y.shape, b.shape == y.shape);
}

class WhereKernel final : public CudaKernel {
 public:
  WhereKernel(CudaContext* ctx, const Node* node, WhereParams params)
      : CudaKernel(ctx, node, "cuda:where"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    WhereParams p = params_;
    p.cond = static_cast<const uint8_t*>(in[0].data);
    p.x = in[1].data;
    p.y = in[2].data;
    p.out = out[0].data;
    return launched(launch_where(p, ctx_->stream()));
  }

 private:
  WhereParams params_;
};

std::unique_ptr<Kernel> make_where(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() != 3 || info.outputs.size() != 1) return nullptr;
  const TensorArg& cond = info.inputs[0];
  const TensorArg& x = info.inputs[1];
  const TensorArg& y = info.inputs[2];
  const TensorArg& out = info.outputs[0];
  if (cond.dtype != DType::boolean || x.dtype != y.dtype || out.dtype != x.dtype) return nullptr;
  const size_t size = dtype_size(x.dtype);
  if (size != 1 && size != 2 && size != 4 && size != 8) return nullptr;
  WhereParams p;
  p.elem_size = static_cast<int32_t>(size);
  p.n = out.numel();
  Shape shape = out.shape;
  if (shape.empty()) shape = {1};  // scalars: a rank-1 map of one element
  auto padded = [](Shape s) { return s.empty() ? Shape{1} : s; };
  if (!fill_broadcast(padded(cond.shape), shape, 0, &p.map) ||
      !fill_broadcast(padded(x.shape), shape, 1, &p.map) ||
      !fill_broadcast(padded(y.shape), shape, 2, &p.map)) {
    return nullptr;
  }
  return std::make_unique<WhereKernel>(ctx, info.node, p);
}

class SwigluKernel final : public CudaKernel {
 public:
  SwigluKernel(CudaContext* ctx, const Node* node, SwigluParams params)
      : CudaKernel(ctx, node, "cuda:swiglu"), params_(params) {}
  bool can_run_in_place(int, int) const override { return true; }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    SwigluParams p = params_;
    p.a = in[0].data;
    p.b = in[1].data;
    p.y = out[0].data;
    return launched(launch_swiglu(p, ctx_->stream()));
  }

 private:
  SwigluParams params_;
};

std::unique_ptr<Kernel> make_swiglu(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  const TensorArg& a = info.inputs[0];
  const TensorArg& b = info.inputs[1];
  if (!is_cuda_float(a.dtype) || b.dtype != a.dtype || info.outputs[0].dtype != a.dtype) return nullptr;
  if (a.shape != b.shape || info.outputs[0].shape != a.shape) return nullptr;
  SwigluParams p;
  p.type = *elem_type(a.dtype);
  p.alpha = info.node->get_float("alpha", 1.0f);
  p.n = a.numel();
  return std::make_unique<SwigluKernel>(ctx, info.node, p);
}

class CastKernel final : public CudaKernel {
 public:
  CastKernel(CudaContext* ctx, const Node* node, CastParams params)
      : CudaKernel(ctx, node, "cuda:cast"), params_(params) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    CastParams p = params_;
    p.x = in[0].data;
    p.y = out[0].data;
    return launched(launch_cast(p, ctx_->stream()));
  }

 private:
  CastParams params_;
};

std::unique_ptr<Kernel> make_cast(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.empty() || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  const TensorArg& y = info.outputs[0];
  if (!is_cuda_float(x.dtype) || !is_cuda_float(y.dtype) || x.shape != y.shape) return nullptr;
  CastParams p;
  p.from = *elem_type(x.dtype);
  p.to = *elem_type(y.dtype);
  p.n = x.numel();
  return std::make_unique<CastKernel>(ctx, info.node, p);
}

}  // namespace

void register_elementwise_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  for (const auto& [op, code] : unary_ops()) {
    (void)code;
    registry.add(op, [ctx](const KernelInfo& info) { return make_unary(info, ctx); });
  }
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}) {
    registry.add(op, [ctx](const KernelInfo& info) { return make_binary(info, ctx); });
  }
  registry.add("Where", [ctx](const KernelInfo& info) { return make_where(info, ctx); });
  registry.add("SwiGLU", [ctx](const KernelInfo& info) { return make_swiglu(info, ctx); });
  registry.add("Cast", [ctx](const KernelInfo& info) { return make_cast(info, ctx); });
}

}  // namespace seqrun::backends::cuda
