// Op schemas: ops that passes produce (FusedLinear, ...), see ir/ops/ops.h.
#include <string>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

bool known_activation(const std::string& a) {
  return a == "none" || a == "relu" || a == "gelu" || a == "gelu_tanh" || a == "silu" || a == "sigmoid" ||
         a == "tanh";
}

// FusedLinear(x [..., in], W, bias? [out]) -> [..., out]; W is [in, out] (transB = 0) or [out, in].
Status infer_fused_linear(InferContext& ctx) {
  const std::string activation = ctx.node().get_string("activation", "none");
  if (!known_activation(activation)) {
    return make_error("activation '{}' is not none, relu, gelu, gelu_tanh, silu, sigmoid or tanh",
                      activation);
  }
  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  const DType dt = x.dtype() != DType::undefined ? x.dtype() : w.dtype();
  if (dt != DType::undefined && !is_float(dt))
    return make_error("x must be a float tensor, got {}", dtype_name(dt));
  const bool trans_b = ctx.node().get_int("transB", 0) != 0;
  if (w.has_rank() && w.rank() != 2) {
    return make_error("W must be 2-D ({}), got {}", trans_b ? "[out, in]" : "[in, out]", w.to_string());
  }
  if (x.has_rank() && x.rank() == 0) return make_error("x must have rank >= 1");
  const Dim in_features = w.has_rank() ? w.dim(trans_b ? 1 : 0) : Dim();
  const Dim out_features = w.has_rank() ? w.dim(trans_b ? 0 : 1) : Dim();
  if (x.has_rank() && x.dim(-1).is_static() && in_features.is_static() &&
      x.dim(-1).value() != in_features.value()) {
    return make_error("x {} has {} input features but W {} (transB = {}) expects {}", x.to_string(),
                      x.dim(-1).value(), w.to_string(), trans_b ? 1 : 0, in_features.value());
  }
  if (ctx.has_input(2)) {
    const TensorType& b = ctx.input_type(2);
    if (b.has_rank() && (b.rank() != 1 || (b.dim(0).is_static() && out_features.is_static() &&
                                           b.dim(0).value() != out_features.value()))) {
      return make_error("bias must be [{}], got {}", out_features.to_string(), b.to_string());
    }
  }
  if (!x.has_rank()) {
    infer::unknown_outputs(ctx, dt);
    return Status::ok();
  }
  std::vector<Dim> out(x.dims().begin(), x.dims().end() - 1);
  out.push_back(out_features);
  ctx.outputs[0] = TensorType(dt, out);
  return Status::ok();
}

}  // namespace

void register_fused_ops(OpRegistry& r) {
  r.add(OpDef("FusedLinear")
            .inputs(2, 3)
            .doc("activation(x W + bias): W [in, out] (transB = 0) or [out, in]; activation none | relu | "
                 "gelu | gelu_tanh | silu | sigmoid | tanh")
            .attr("activation", AttrType::String, Attribute("none"))
            .attr("transB", AttrType::Int, Attribute(0))
            .infer(infer_fused_linear)
            .build());
}

}  // namespace seqrun::ops
