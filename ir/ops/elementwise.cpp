// Op schemas: elementwise family — unary math and activations, broadcasting binary/variadic
// arithmetic, comparisons and logic, Where, Cast/CastLike, Clip and inference-mode Dropout.
//
// Output dtypes: unary and arithmetic ops keep their input's dtype; comparisons, IsNaN/IsInf and
// logic give bool; Cast takes its target from the ONNX TensorProto number in `to`.
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

namespace {

// Which input dtypes an op accepts (checked when the dtype is known).
enum class Accepts { Float, Numeric, Bool, Any };

bool accepts(Accepts kind, DType t) {
  switch (kind) {
    case Accepts::Float:
      return is_float(t);
    case Accepts::Numeric:
      return is_float(t) || is_integer(t);
    case Accepts::Bool:
      return t == DType::boolean;
    case Accepts::Any:
      return true;
  }
  return false;
}

const char* accepts_name(Accepts kind) {
  switch (kind) {
    case Accepts::Float:
      return "a float";
    case Accepts::Numeric:
      return "a numeric";
    case Accepts::Bool:
      return "a bool";
    case Accepts::Any:
      return "any";
  }
  return "?";
}

Status check_input_dtype(const InferContext& ctx, int i, Accepts kind) {
  DType t = ctx.input_dtype(i);
  if (t == DType::undefined || accepts(kind, t)) return Status::ok();
  return make_error("input {} must be {} tensor, got {}", i, accepts_name(kind), dtype_name(t));
}

// Inputs [first, last) must share one dtype (when known); returns it (undefined if none known).
Result<DType> common_dtype(const InferContext& ctx, int first, int last) {
  DType common = DType::undefined;
  for (int i = first; i < last; ++i) {
    if (!ctx.has_input(i)) continue;
    DType t = ctx.input_dtype(i);
    if (t == DType::undefined) continue;
    if (common != DType::undefined && t != common) {
      return make_error("input dtypes differ ({} vs {})", dtype_name(common), dtype_name(t));
    }
    common = t;
  }
  return common;
}

// Unary op: output = input type (or the same dims with `out_dtype` when given).
InferFn unary_infer(Accepts kind, DType out_dtype = DType::undefined) {
  return [kind, out_dtype](InferContext& ctx) -> Status {
    SEQRUN_TRY(check_input_dtype(ctx, 0, kind));
    TensorType t = ctx.input_type(0);
    if (out_dtype != DType::undefined) t.set_dtype(out_dtype);
    for (auto& o : ctx.outputs) o = t;
    return Status::ok();
  };
}

// Broadcasting op over all inputs, which share a dtype; output dtype = theirs or `out_dtype`.
InferFn broadcast_infer(Accepts kind, DType out_dtype = DType::undefined) {
  return [kind, out_dtype](InferContext& ctx) -> Status {
    std::vector<TensorType> types;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      SEQRUN_TRY(check_input_dtype(ctx, i, kind));
      types.push_back(ctx.input_type(i));
    }
    SEQRUN_ASSIGN(DType common, common_dtype(ctx, 0, ctx.num_inputs()));
    DType dt = out_dtype != DType::undefined ? out_dtype : common;
    SEQRUN_ASSIGN(ctx.outputs[0], infer::broadcast(ctx, types, dt));
    return Status::ok();
  };
}

// Pow and PRelu: broadcast of two inputs, output dtype = input 0's (Pow's exponent may differ).
InferFn broadcast_first_dtype_infer(bool same_dtypes) {
  return [same_dtypes](InferContext& ctx) -> Status {
    SEQRUN_TRY(check_input_dtype(ctx, 0, Accepts::Numeric));
    SEQRUN_TRY(check_input_dtype(ctx, 1, Accepts::Numeric));
    if (same_dtypes) SEQRUN_TRY(common_dtype(ctx, 0, 2).status());
    SEQRUN_ASSIGN(ctx.outputs[0],
                  infer::broadcast(ctx, {ctx.input_type(0), ctx.input_type(1)}, ctx.input_dtype(0)));
    return Status::ok();
  };
}

Status infer_where(InferContext& ctx) {
  SEQRUN_TRY(check_input_dtype(ctx, 0, Accepts::Bool));
  SEQRUN_ASSIGN(DType dt, common_dtype(ctx, 1, 3));
  SEQRUN_ASSIGN(ctx.outputs[0],
                infer::broadcast(ctx, {ctx.input_type(0), ctx.input_type(1), ctx.input_type(2)}, dt));
  return Status::ok();
}

Status infer_cast(InferContext& ctx) {
  SEQRUN_ASSIGN(DType to, dtype_from_onnx_type(ctx.node().get_int("to", 0)));
  TensorType t = ctx.input_type(0);
  t.set_dtype(to);
  ctx.outputs[0] = t;
  return Status::ok();
}

Status infer_cast_like(InferContext& ctx) {
  TensorType t = ctx.input_type(0);
  t.set_dtype(ctx.input_dtype(1));
  ctx.outputs[0] = t;
  return Status::ok();
}

Status infer_clip(InferContext& ctx) {
  SEQRUN_TRY(check_input_dtype(ctx, 0, Accepts::Numeric));
  SEQRUN_TRY(common_dtype(ctx, 0, 3).status());
  for (int i = 1; i < 3; ++i) {
    const TensorType& b = ctx.input_type(i);
    if (ctx.has_input(i) && b.has_rank() && b.is_static() && num_elements(*b.static_shape()) != 1) {
      return make_error("input {} (bound) must hold one value, has type {}", i, b.to_string());
    }
  }
  return infer::same_as_input(ctx, 0);
}

Status infer_dropout(InferContext& ctx) {
  // Training mode is random unless ratio = 0 (default 0.5); reject it when both are constants.
  const Tensor* mode = ctx.input_constant(2);
  const Tensor* ratio = ctx.input_constant(1);
  const bool ratio_known = !ctx.has_input(1) || (ratio != nullptr && ratio->numel() == 1);
  const double ratio_value = ctx.has_input(1) && ratio_known ? ratio->get_f64(0) : 0.5;
  if (mode != nullptr && mode->numel() == 1 && mode->get_f64(0) != 0 && ratio_known && ratio_value != 0) {
    return make_error("training_mode = true with ratio {} is not supported (inference only)", ratio_value);
  }
  ctx.outputs[0] = ctx.input_type(0);
  if (ctx.num_outputs() > 1) {
    TensorType mask = ctx.input_type(0);
    mask.set_dtype(DType::boolean);
    ctx.outputs[1] = mask;
  }
  return Status::ok();
}

void add_unary(OpRegistry& r, const char* name, const char* doc, Accepts kind = Accepts::Float,
               std::vector<AttrSpec> attrs = {}, DType out_dtype = DType::undefined) {
  OpDef def(name);
  def.inputs(1).doc(doc).infer(unary_infer(kind, out_dtype));
  for (AttrSpec& a : attrs) def.attr(a.name, a.type, a.default_value);
  r.add(def.build());
}

AttrSpec float_attr(const char* name, float value) {
  return {name, AttrType::Float, Attribute(value), false};
}
AttrSpec int_attr(const char* name, int64_t value) {
  return {name, AttrType::Int, Attribute(value), false};
}

void register_unary_ops(OpRegistry& r) {
  add_unary(r, "Abs", "|x|", Accepts::Numeric);
  add_unary(r, "Neg", "-x", Accepts::Numeric);
  add_unary(r, "Sign", "-1, 0 or 1 by the sign of x", Accepts::Numeric);
  add_unary(r, "Relu", "max(x, 0)", Accepts::Numeric);
  add_unary(r, "Identity", "x unchanged (any dtype)", Accepts::Any);
  add_unary(r, "Not", "logical not", Accepts::Bool);
  add_unary(r, "Exp", "e^x");
  add_unary(r, "Log", "natural logarithm");
  add_unary(r, "Sqrt", "square root");
  add_unary(r, "Rsqrt", "1 / sqrt(x) (seqrun op)");
  add_unary(r, "Reciprocal", "1 / x");
  add_unary(r, "Sigmoid", "1 / (1 + e^-x)");
  add_unary(r, "Tanh", "hyperbolic tangent");
  add_unary(r, "Softplus", "log(1 + e^x)");
  add_unary(r, "Softsign", "x / (1 + |x|)");
  add_unary(r, "Elu", "x if x >= 0 else alpha * (e^x - 1)", Accepts::Float, {float_attr("alpha", 1.0f)});
  add_unary(
      r, "Selu", "gamma * (x if x > 0 else alpha * (e^x - 1))", Accepts::Float,
      {float_attr("alpha", 1.67326319217681884765625f), float_attr("gamma", 1.05070102214813232421875f)});
  add_unary(r, "Celu", "max(0, x) + min(0, alpha * (e^(x / alpha) - 1))", Accepts::Float,
            {float_attr("alpha", 1.0f)});
  add_unary(r, "LeakyRelu", "x if x >= 0 else alpha * x", Accepts::Float, {float_attr("alpha", 0.01f)});
  add_unary(r, "ThresholdedRelu", "x if x > alpha else 0", Accepts::Float, {float_attr("alpha", 1.0f)});
  add_unary(r, "HardSigmoid", "max(0, min(1, alpha * x + beta))", Accepts::Float,
            {float_attr("alpha", 0.2f), float_attr("beta", 0.5f)});
  add_unary(r, "HardSwish", "x * max(0, min(1, x / 6 + 0.5))");
  add_unary(r, "Gelu", "x * Phi(x); approximate = none | tanh", Accepts::Float,
            {{"approximate", AttrType::String, Attribute("none"), false}});
  add_unary(r, "Erf", "error function");
  add_unary(r, "Sin", "sine");
  add_unary(r, "Cos", "cosine");
  add_unary(r, "Tan", "tangent");
  add_unary(r, "Asin", "arcsine");
  add_unary(r, "Acos", "arccosine");
  add_unary(r, "Atan", "arctangent");
  add_unary(r, "Sinh", "hyperbolic sine");
  add_unary(r, "Cosh", "hyperbolic cosine");
  add_unary(r, "Asinh", "inverse hyperbolic sine");
  add_unary(r, "Acosh", "inverse hyperbolic cosine");
  add_unary(r, "Atanh", "inverse hyperbolic tangent");
  add_unary(r, "Floor", "round down");
  add_unary(r, "Ceil", "round up");
  add_unary(r, "Round", "round half to even");
  add_unary(r, "IsNaN", "x is NaN", Accepts::Float, {}, DType::boolean);
  add_unary(r, "IsInf", "x is +inf (detect_positive) or -inf (detect_negative)", Accepts::Float,
            {int_attr("detect_negative", 1), int_attr("detect_positive", 1)}, DType::boolean);
  add_unary(r, "Swish", "x * sigmoid(alpha * x)", Accepts::Float, {float_attr("alpha", 1.0f)});
  add_unary(r, "Silu", "x * sigmoid(x) (seqrun op)");
  add_unary(r, "Mish", "x * tanh(softplus(x))");
  add_unary(r, "Shrink", "x + bias if x < -lambd, x - bias if x > lambd, else 0", Accepts::Float,
            {float_attr("bias", 0.0f), float_attr("lambd", 0.5f)});
}

void register_binary_ops(OpRegistry& r) {
  const int any = OpSchema::kVariadic;
  struct Binary {
    const char* name;
    const char* doc;
    int max_inputs;
    Accepts kind;
    DType out_dtype;
  };
  const Binary ops[] = {
      {"Add", "a + b (broadcast)", 2, Accepts::Numeric, DType::undefined},
      {"Sub", "a - b (broadcast)", 2, Accepts::Numeric, DType::undefined},
      {"Mul", "a * b (broadcast)", 2, Accepts::Numeric, DType::undefined},
      {"Div", "a / b (broadcast; integers truncate toward zero)", 2, Accepts::Numeric, DType::undefined},
      {"Max", "elementwise maximum of 1..N inputs (NaN propagates)", any, Accepts::Numeric, DType::undefined},
      {"Min", "elementwise minimum of 1..N inputs (NaN propagates)", any, Accepts::Numeric, DType::undefined},
      {"Sum", "elementwise sum of 1..N inputs", any, Accepts::Numeric, DType::undefined},
      {"Mean", "elementwise mean of 1..N inputs", any, Accepts::Numeric, DType::undefined},
      {"Equal", "a == b (broadcast)", 2, Accepts::Any, DType::boolean},
      {"Less", "a < b (broadcast)", 2, Accepts::Numeric, DType::boolean},
      {"LessOrEqual", "a <= b (broadcast)", 2, Accepts::Numeric, DType::boolean},
      {"Greater", "a > b (broadcast)", 2, Accepts::Numeric, DType::boolean},
      {"GreaterOrEqual", "a >= b (broadcast)", 2, Accepts::Numeric, DType::boolean},
      {"And", "logical and (broadcast)", 2, Accepts::Bool, DType::boolean},
      {"Or", "logical or (broadcast)", 2, Accepts::Bool, DType::boolean},
      {"Xor", "logical xor (broadcast)", 2, Accepts::Bool, DType::boolean},
  };
  for (const Binary& op : ops) {
    int min_inputs = op.max_inputs == 2 ? 2 : 1;
    r.add(OpDef(op.name)
              .inputs(min_inputs, op.max_inputs)
              .doc(op.doc)
              .infer(broadcast_infer(op.kind, op.out_dtype))
              .build());
  }
  r.add(OpDef("Mod")
            .inputs(2)
            .doc("remainder; fmod = 0: sign of the divisor (Python), fmod = 1: sign of the dividend (C fmod)")
            .attr("fmod", AttrType::Int, Attribute(int64_t{0}))
            .infer(broadcast_infer(Accepts::Numeric))
            .build());
  r.add(OpDef("BitShift")
            .inputs(2)
            .doc("x << y or x >> y on unsigned integers; direction = LEFT | RIGHT")
            .required_attr("direction", AttrType::String)
            .infer([](InferContext& ctx) -> Status {
              std::string dir = ctx.node().get_string("direction");
              if (dir != "LEFT" && dir != "RIGHT")
                return make_error("direction must be LEFT or RIGHT, is '{}'", dir);
              SEQRUN_TRY(check_input_dtype(ctx, 0, Accepts::Numeric));
              if (is_float(ctx.input_dtype(0))) return make_error("input 0 must be an integer tensor");
              return broadcast_infer(Accepts::Numeric)(ctx);
            })
            .build());
  r.add(OpDef("Pow")
            .inputs(2)
            .doc("base ^ exponent (broadcast); output has the base's dtype")
            .infer(broadcast_first_dtype_infer(false))
            .build());
  r.add(OpDef("PRelu")
            .inputs(2)
            .doc("x if x >= 0 else slope * x (slope broadcasts to x)")
            .infer(broadcast_first_dtype_infer(true))
            .build());
}

}  // namespace

Result<DType> dtype_from_onnx_type(int64_t onnx_type) {
  switch (onnx_type) {
    case 1:
      return DType::f32;
    case 2:
      return DType::u8;
    case 3:
      return DType::i8;
    case 4:
      return DType::u16;
    case 5:
      return DType::i16;
    case 6:
      return DType::i32;
    case 7:
      return DType::i64;
    case 9:
      return DType::boolean;
    case 10:
      return DType::f16;
    case 11:
      return DType::f64;
    case 12:
      return DType::u32;
    case 13:
      return DType::u64;
    case 16:
      return DType::bf16;
    default:
      break;
  }
  static const char* const kNames[] = {
      "UNDEFINED",      "FLOAT",      "UINT8",          "INT8",       "UINT16",   "INT16",
      "INT32",          "INT64",      "STRING",         "BOOL",       "FLOAT16",  "DOUBLE",
      "UINT32",         "UINT64",     "COMPLEX64",      "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
      "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4",      "INT4",     "FLOAT4E2M1"};
  const int64_t known = static_cast<int64_t>(sizeof(kNames) / sizeof(kNames[0]));
  std::string name = onnx_type >= 0 && onnx_type < known ? kNames[onnx_type] : "unknown";
  return make_error("ONNX data type {} ({}) is not supported", onnx_type, name);
}

void register_elementwise_ops(OpRegistry& r) {
  register_unary_ops(r);
  register_binary_ops(r);
  r.add(OpDef("Where").inputs(3).doc("cond ? x : y (3-way broadcast, any dtype)").infer(infer_where).build());
  r.add(OpDef("Cast")
            .inputs(1)
            .doc("converts to the ONNX data type number `to` (floats to ints truncate toward zero)")
            .required_attr("to", AttrType::Int)
            .attr("saturate", AttrType::Int, Attribute(int64_t{1}))
            .infer(infer_cast)
            .build());
  r.add(OpDef("CastLike")
            .inputs(2)
            .doc("converts x to the dtype of `like`")
            .attr("saturate", AttrType::Int, Attribute(int64_t{1}))
            .infer(infer_cast_like)
            .build());
  r.add(OpDef("Clip")
            .inputs(1, 3)
            .doc("min(max(x, min), max); absent bounds do not clip")
            .infer(infer_clip)
            .build());
  r.add(OpDef("Dropout")
            .inputs(1, 3)
            .outputs(1, 2)
            .doc("inference: output = data, mask = all true (inputs: data, ratio?, training_mode?)")
            .attr("seed", AttrType::Int)
            .infer(infer_dropout)
            .build());
}

}  // namespace seqrun::ops
