// Reference kernel for FusedLinear: activation(x W + bias), accumulated and activated in double.
//
// The accuracy baseline for the fused CPU/GPU kernels and the meaning of the fuse-epilogues pass:
// its activations are the same formulas as the reference Relu, Gelu (both forms), Silu, Sigmoid and
// Tanh kernels. Plain loops: compute-bound, single-threaded.
#include <cmath>
#include <string>

#include "backends/reference/kernel.h"

namespace seqrun::reference {
namespace {

double activate(const std::string& activation, double v) {
  if (activation == "relu") return v < 0 ? 0.0 : v;
  if (activation == "gelu") return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  if (activation == "gelu_tanh") {
    const double k = 0.79788456080286535588;  // sqrt(2 / pi)
    return 0.5 * v * (1.0 + std::tanh(k * (v + 0.044715 * v * v * v)));
  }
  if (activation == "silu") return v / (1.0 + std::exp(-v));
  if (activation == "sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (activation == "tanh") return std::tanh(v);
  return v;
}

// y[r, o] = act(sum_i x[r, i] * W'[i, o] + b[o]), W' = transB ? W^T : W
Status fused_linear_kernel(KernelContext& ctx) {
  for (int i = 0; i < 2; ++i) {
    if (!ctx.has_input(i)) return ctx.error("required input {} is missing", i);
  }
  for (int i = 0; i < 3; ++i) {
    if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
      return ctx.error("input {} must be a float tensor, got {}", i, dtype_name(ctx.input(i).dtype()));
    }
  }
  const std::string activation = ctx.node.get_string("activation", "none");
  if (activation != "none" && activation != "relu" && activation != "gelu" && activation != "gelu_tanh" &&
      activation != "silu" && activation != "sigmoid" && activation != "tanh") {
    return ctx.error("unknown activation '{}'", activation);
  }
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const bool trans_b = ctx.node.get_int("transB", 0) != 0;
  if (x.rank() == 0 || w.rank() != 2) {
    return ctx.error("x {} and W {} must be [..., in] and 2-D", shape_to_string(x.shape()),
                     shape_to_string(w.shape()));
  }
  const int64_t in = trans_b ? w.dim(1) : w.dim(0), out = trans_b ? w.dim(0) : w.dim(1);
  if (x.dim(-1) != in) {
    return ctx.error("x {} has {} input features but W {} (transB = {}) expects {}",
                     shape_to_string(x.shape()), x.dim(-1), shape_to_string(w.shape()), trans_b ? 1 : 0, in);
  }
  const float* bd = nullptr;
  if (ctx.has_input(2)) {
    if (ctx.input(2).rank() != 1 || ctx.input(2).dim(0) != out) {
      return ctx.error("bias must be [{}], got {}", out, shape_to_string(ctx.input(2).shape()));
    }
    bd = ctx.input(2).data<float>();
  }
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor y = Tensor::empty(DType::f32, out_shape);
  const int64_t rows = num_elements(Shape(x.shape().begin(), x.shape().end() - 1));
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* yd = y.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = bd != nullptr ? bd[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) {
        acc += static_cast<double>(xd[r * in + i]) * (trans_b ? wd[o * in + i] : wd[i * out + o]);
      }
      yd[r * out + o] = static_cast<float>(activate(activation, acc));
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

}  // namespace

void register_fused_kernels(KernelRegistry& r) {
  r.add("FusedLinear", fused_linear_kernel, true);
}

}  // namespace seqrun::reference
