// Elementwise kernels (AVX2 + FMA, OpenMP): unary math and activations, Add/Sub/Mul/Div with
// broadcasting, Pow with a constant exponent of 2 or 0.5, and Where.
//
// Unary ops stream the tensor in blocks of kBlock floats, one block per OpenMP iteration, 8 lanes
// at a time with a masked tail (so every element goes through the same vector formula).
// Broadcasting ops collapse the output into as few dims as the operands allow (broadcast.h); the
// innermost collapsed dim then reads each operand either contiguously or as one repeated value, so
// the same-shape, scalar, row and column cases are all one vector loop over rows. Memory-bound,
// except the transcendental activations (exp/tanh/erf), which are compute-bound at ~10-30 flops/value.
// In place: output 0 may overwrite any input of the output's shape (each element is read before
// its slot is written).
#include <immintrin.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <string>
#include <utility>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/broadcast.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {

const char* const kUnaryOps[] = {"Exp",  "Tanh", "Erf",   "Gelu",       "Sigmoid", "Silu", "Swish",
                                 "Relu", "Sqrt", "Rsqrt", "Reciprocal", "Neg",     "Abs",  "LeakyRelu"};
const int kNumUnaryOps = static_cast<int>(sizeof(kUnaryOps) / sizeof(kUnaryOps[0]));

namespace {

constexpr int64_t kBlock = 4096;  // floats per OpenMP work item (16 KiB: stays in L1/L2)

enum class UnaryOp {
  Exp,
  Tanh,
  Erf,
  Gelu,
  GeluTanh,
  Sigmoid,
  Swish,
  Relu,
  Sqrt,
  Rsqrt,
  Reciprocal,
  Neg,
  Abs,
  LeakyRelu,
  Square,
  PowHalf
};

inline __m256 apply_unary(UnaryOp op, __m256 x, __m256 alpha) {
  switch (op) {
    case UnaryOp::Exp:
      return vec::exp(x);
    case UnaryOp::Tanh:
      return vec::tanh(x);
    case UnaryOp::Erf:
      return vec::erf(x);
    case UnaryOp::Gelu:
      return vec::gelu_erf(x);
    case UnaryOp::GeluTanh:
      return vec::gelu_tanh(x);
    case UnaryOp::Sigmoid:
      return vec::sigmoid(x);
    case UnaryOp::Swish:
      return vec::swish(x, alpha);
    // max(0, x) returns its second operand for NaN, so NaN passes like the reference's x < 0 ? 0 : x.
    case UnaryOp::Relu:
      return _mm256_max_ps(_mm256_setzero_ps(), x);
    case UnaryOp::Sqrt:
      return _mm256_sqrt_ps(x);
    case UnaryOp::Rsqrt:
      return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(x));
    case UnaryOp::Reciprocal:
      return _mm256_div_ps(_mm256_set1_ps(1.0f), x);
    case UnaryOp::Neg:
      return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
    case UnaryOp::Abs:
      return vec::abs(x);
    case UnaryOp::LeakyRelu: {
      const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
      return _mm256_blendv_ps(x, _mm256_mul_ps(x, alpha), negative);
    }
    case UnaryOp::Square:
      return _mm256_mul_ps(x, x);
    case UnaryOp::PowHalf: {
      // pow(x, 0.5) differs from sqrt at -0 (+0) and -inf (+inf).
      const __m256 r = _mm256_add_ps(_mm256_sqrt_ps(x), _mm256_setzero_ps());
      const __m256 minus_inf = _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
      return _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY), minus_inf);
    }
  }
  return x;
}

// One contiguous run; the switch sits outside the loop (the compiler unswitches the inlined body).
template <UnaryOp kOp>
void unary_run(const float* src, float* dst, int64_t n, __m256 alpha) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, apply_unary(kOp, _mm256_loadu_ps(src + i), alpha));
  if (i < n) {
    const __m256i mask = vec::tail_mask(n - i);
    _mm256_maskstore_ps(dst + i, mask, apply_unary(kOp, _mm256_maskload_ps(src + i, mask), alpha));
  }
}

void unary_run(UnaryOp op, const float* src, float* dst, int64_t n, float alpha_value) {
  const __m256 alpha = _mm256_set1_ps(alpha_value);
  switch (op) {
#define SEQRUN_UNARY_CASE(name) \
  case UnaryOp::name:           \
    return unary_run<UnaryOp::name>(src, dst, n, alpha);
    SEQRUN_UNARY_CASE(Exp)
    SEQRUN_UNARY_CASE(Tanh)
    SEQRUN_UNARY_CASE(Erf)
    SEQRUN_UNARY_CASE(Gelu)
    SEQRUN_UNARY_CASE(GeluTanh)
    SEQRUN_UNARY_CASE(Sigmoid)
    SEQRUN_UNARY_CASE(Swish)
    SEQRUN_UNARY_CASE(Relu)
    SEQRUN_UNARY_CASE(Sqrt)
    SEQRUN_UNARY_CASE(Rsqrt)
    SEQRUN_UNARY_CASE(Reciprocal)
    SEQRUN_UNARY_CASE(Neg)
    SEQRUN_UNARY_CASE(Abs)
    SEQRUN_UNARY_CASE(LeakyRelu)
    SEQRUN_UNARY_CASE(Square)
    SEQRUN_UNARY_CASE(PowHalf)
#undef SEQRUN_UNARY_CASE
  }
}

class UnaryKernel : public Kernel {
 public:
  UnaryKernel(UnaryOp op, float alpha, int64_t n, std::string name)
      : op_(op), alpha_(alpha), n_(n), name_(std::move(name)) {}
  bool can_run_in_place(int output, int input) const override { return output == 0 && input == 0; }
  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* src = inputs[0].as<const float>();
    float* dst = outputs[0].as<float>();
    const int64_t blocks = (n_ + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n_ >= kParallelMinElements)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * kBlock;
      unary_run(op_, src + begin, dst + begin, std::min(kBlock, n_ - begin), alpha_);
    }
    return Status::ok();
  }
  std::string label() const override {
    return "avx2:" + name_;
  }

 private:
  UnaryOp op_;
  float alpha_;
  int64_t n_;
  std::string name_;
};

// The vector op for the node (false when it is not one this file handles), with its parameter.
bool unary_op_of(const Node& node, UnaryOp& op, float& alpha) {
  static const std::pair<const char*, UnaryOp> kPlain[] = {
      {"Exp", UnaryOp::Exp},     {"Tanh", UnaryOp::Tanh},
      {"Erf", UnaryOp::Erf},     {"Sigmoid", UnaryOp::Sigmoid},
      {"Relu", UnaryOp::Relu},   {"Sqrt", UnaryOp::Sqrt},
      {"Rsqrt", UnaryOp::Rsqrt}, {"Reciprocal", UnaryOp::Reciprocal},
      {"Neg", UnaryOp::Neg},     {"Abs", UnaryOp::Abs}};
  const std::string& name = node.op();
  alpha = 0.0f;
  for (const auto& [op_name, value] : kPlain) {
    if (name == op_name) {
      op = value;
      return true;
    }
  }
  if (name == "Silu" || name == "Swish") {
    op = UnaryOp::Swish;
    alpha = name == "Silu" ? 1.0f : node.get_float("alpha", 1.0f);
    return true;
  }
  if (name == "LeakyRelu") {
    op = UnaryOp::LeakyRelu;
    alpha = node.get_float("alpha", 0.01f);
    return true;
  }
  if (name == "Gelu") {
    const std::string approximate = node.get_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh") return false;
    op = approximate == "none" ? UnaryOp::Gelu : UnaryOp::GeluTanh;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Binary arithmetic

enum class BinaryOp { Add, Sub, Mul, Div };

inline __m256 apply_binary(BinaryOp op, __m256 a, __m256 b) {
  switch (op) {
    case BinaryOp::Add:
      return _mm256_add_ps(a, b);
    case BinaryOp::Sub:
      return _mm256_sub_ps(a, b);
    case BinaryOp::Mul:
      return _mm256_mul_ps(a, b);
    case BinaryOp::Div:
      return _mm256_div_ps(a, b);
  }
  return a;
}

// n results of a[i * sa] op b[i * sb], sa and sb each 0 (one repeated value) or 1 (contiguous).
template <BinaryOp kOp>
void binary_run(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  const __m256 a_splat = _mm256_set1_ps(a[0]), b_splat = _mm256_set1_ps(b[0]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 va = sa ? _mm256_loadu_ps(a + i) : a_splat;
    const __m256 vb = sb ? _mm256_loadu_ps(b + i) : b_splat;
    _mm256_storeu_ps(out + i, apply_binary(kOp, va, vb));
  }
  if (i < n) {
    const __m256i mask = vec::tail_mask(n - i);
    const __m256 va = sa ? _mm256_maskload_ps(a + i, mask) : a_splat;
    const __m256 vb = sb ? _mm256_maskload_ps(b + i, mask) : b_splat;
    _mm256_maskstore_ps(out + i, mask, apply_binary(kOp, va, vb));
  }
}

void binary_run(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add:
      return binary_run<BinaryOp::Add>(a, sa, b, sb, out, n);
    case BinaryOp::Sub:
      return binary_run<BinaryOp::Sub>(a, sa, b, sb, out, n);
    case BinaryOp::Mul:
      return binary_run<BinaryOp::Mul>(a, sa, b, sb, out, n);
    case BinaryOp::Div:
      return binary_run<BinaryOp::Div>(a, sa, b, sb, out, n);
  }
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(BinaryOp op, BroadcastPlan plan, Shape out, std::vector<Shape> in_shapes, std::string name)
      : op_(op),
        plan_(std::move(plan)),
        out_(std::move(out)),
        in_shapes_(std::move(in_shapes)),
        name_(std::move(name)) {}
  bool can_run_in_place(int output, int input) const override {
    return output == 0 && input >= 0 && input < 2 && in_shapes_[input] == out_;
  }
  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* a = inputs[0].as<const float>();
    const float* b = inputs[1].as<const float>();
    float* out = outputs[0].as<float>();
    const int64_t sa = plan_.inner_stride(0), sb = plan_.inner_stride(1);
    plan_.for_each_run([&](int64_t out_offset, const int64_t* in_offsets, int64_t n) {
      binary_run(op_, a + in_offsets[0], sa, b + in_offsets[1], sb, out + out_offset, n);
    });
    return Status::ok();
  }
  std::string label() const override { return "avx2:" + name_; }

 private:
  BinaryOp op_;
  BroadcastPlan plan_;
  Shape out_;
  std::vector<Shape> in_shapes_;
  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// Where(cond, x, y): bytes of x or y by a bool condition, all three broadcast.

class WhereKernel : public Kernel {
 public:
  WhereKernel(BroadcastPlan plan, std::vector<bool> same_shape)
      : plan_(std::move(plan)), same_shape_(std::move(same_shape)) {}
  // Over x or y (same dtype), when it has the output's shape; never over the bool condition.
  bool can_run_in_place(int output, int input) const override {
    return output == 0 && (input == 1 || input == 2) && same_shape_[input];
  }
  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const uint8_t* cond = inputs[0].as<const uint8_t>();
    const float* x = inputs[1].as<const float>();
    const float* y = inputs[2].as<const float>();
    float* out = outputs[0].as<float>();
    const int64_t sc = plan_.inner_stride(0), sx = plan_.inner_stride(1), sy = plan_.inner_stride(2);
    plan_.for_each_run([&](int64_t out_offset, const int64_t* in, int64_t n) {
      const uint8_t* c = cond + in[0];
      const float* xs = x + in[1];
      const float* ys = y + in[2];
      float* o = out + out_offset;
      for (int64_t i = 0; i < n; ++i) o[i] = c[i * sc] ? xs[i * sx] : ys[i * sy];
    });
    return Status::ok();
  }
  std::string label() const override { return "avx2:where"; }

 private:
  BroadcastPlan plan_;
  std::vector<bool> same_shape_;  // per input: equals the output's shape
};

}  // namespace

std::unique_ptr<Kernel> make_unary_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() != 1 || info.outputs.size() != 1) return nullptr;
  if (info.outputs[0].shape != info.inputs[0].shape) return nullptr;
  UnaryOp op;
  float alpha;
  if (!unary_op_of(*info.node, op, alpha)) return nullptr;
  std::string name = info.node->op();
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return std::make_unique<UnaryKernel>(op, alpha, info.inputs[0].numel(), name);
}

std::unique_ptr<Kernel> make_binary_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  static const std::pair<const char*, BinaryOp> kOps[] = {
      {"Add", BinaryOp::Add}, {"Sub", BinaryOp::Sub}, {"Mul", BinaryOp::Mul}, {"Div", BinaryOp::Div}};
  const std::string& name = info.node->op();
  const auto* found =
      std::find_if(std::begin(kOps), std::end(kOps), [&](const auto& e) { return name == e.first; });
  if (found == std::end(kOps)) return nullptr;
  const BinaryOp op = found->second;
  std::vector<Shape> ins = {info.inputs[0].shape, info.inputs[1].shape};
  auto plan = BroadcastPlan::make(info.outputs[0].shape, ins);
  if (!plan) return nullptr;
  std::string label = name;
  for (char& ch : label) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return std::make_unique<BinaryKernel>(op, std::move(*plan), info.outputs[0].shape, std::move(ins), label);
}

// Pow(x, e) with a constant scalar exponent 2 (x * x) or 0.5 (sqrt x): the forms RMSNorm and
// variance computations export. Other exponents go to the reference.
std::unique_ptr<Kernel> make_pow_kernel(const KernelInfo& info) {
  if (info.inputs.size() != 2 || info.outputs.size() != 1) return nullptr;
  if (info.inputs[0].dtype != DType::f32 || info.outputs[0].dtype != DType::f32) return nullptr;
  const TensorArg& e = info.inputs[1];
  if (e.data == nullptr || e.numel() != 1 || info.outputs[0].shape != info.inputs[0].shape) return nullptr;
  double exponent;
  switch (e.dtype) {
    case DType::f32:
      exponent = e.as<const float>()[0];
      break;
    case DType::f64:
      exponent = e.as<const double>()[0];
      break;
    case DType::i64:
      exponent = static_cast<double>(e.as<const int64_t>()[0]);
      break;
    case DType::i32:
      exponent = e.as<const int32_t>()[0];
      break;
    default:
      return nullptr;
  }
  if (exponent == 2.0)
    return std::make_unique<UnaryKernel>(UnaryOp::Square, 0.0f, info.inputs[0].numel(), "pow2");
  if (exponent == 0.5)
    return std::make_unique<UnaryKernel>(UnaryOp::PowHalf, 0.0f, info.inputs[0].numel(), "pow0.5");
  return nullptr;
}

std::unique_ptr<Kernel> make_where_kernel(const KernelInfo& info) {
  if (info.inputs.size() != 3 || info.outputs.size() != 1) return nullptr;
  if (info.inputs[0].dtype != DType::boolean || info.inputs[1].dtype != DType::f32 ||
      info.inputs[2].dtype != DType::f32 || info.outputs[0].dtype != DType::f32) {
    return nullptr;
  }
  auto plan = BroadcastPlan::make(info.outputs[0].shape,
                                  {info.inputs[0].shape, info.inputs[1].shape, info.inputs[2].shape});
  if (!plan) return nullptr;
  std::vector<bool> same_shape;
  for (const TensorArg& in : info.inputs) same_shape.push_back(in.shape == info.outputs[0].shape);
  return std::make_unique<WhereKernel>(std::move(*plan), std::move(same_shape));
}

}  // namespace seqrun::backends::cpu
