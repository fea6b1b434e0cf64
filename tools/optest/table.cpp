// The op-test table's builders (input specs, cases, cost formulas) and build_cases, which joins the
// per-family tables in a fixed order.
#include <fmt/format.h>

#include "tools/optest/optest.h"

namespace seqrun::optest {

Fill uniform(double lo, double hi) {
  Fill f;
  f.kind = Fill::Kind::Uniform;
  f.lo = lo;
  f.hi = hi;
  return f;
}

Fill ints(int64_t lo, int64_t hi) {
  Fill f;
  f.kind = Fill::Kind::Ints;
  f.lo = static_cast<double>(lo);
  f.hi = static_cast<double>(hi);
  return f;
}

Fill bools(double p_true) {
  Fill f;
  f.kind = Fill::Kind::Bools;
  f.p_true = p_true;
  return f;
}

Fill values(std::vector<double> v) {
  Fill f;
  f.kind = Fill::Kind::Values;
  f.values = std::move(v);
  return f;
}

Fill custom(std::function<void(Tensor&, Rng&)> fn) {
  Fill f;
  f.kind = Fill::Kind::Custom;
  f.custom = std::move(fn);
  return f;
}

InputSpec in(DType dtype, Shape shape, Fill fill) {
  InputSpec s;
  s.dtype = dtype;
  s.shape = std::move(shape);
  s.fill = std::move(fill);
  return s;
}

InputSpec f32(Shape shape, Fill fill) {
  return in(DType::f32, std::move(shape), std::move(fill));
}

InputSpec weight(DType dtype, Shape shape, Fill fill) {
  InputSpec s = in(dtype, std::move(shape), std::move(fill));
  s.constant = true;
  return s;
}

InputSpec const_i64(std::vector<int64_t> v, bool scalar) {
  Shape shape = scalar ? Shape{} : Shape{static_cast<int64_t>(v.size())};
  return weight(DType::i64, shape, values(std::vector<double>(v.begin(), v.end())));
}

InputSpec const_f32(Shape shape, std::vector<double> v) {
  return weight(DType::f32, std::move(shape), values(std::move(v)));
}

InputSpec absent() {
  return InputSpec{};
}

Case& add_case(std::vector<Case>& cases, std::string op, std::vector<InputSpec> inputs) {
  Case c;
  c.op = std::move(op);
  c.inputs = std::move(inputs);
  cases.push_back(std::move(c));
  return cases.back();
}

int64_t pick(Rng& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// 2 * (output elements) * (contracted length): the contracted length is the last dim of input 0
// (MatMul, Linear, Gemm without transA).
double matmul_flops(const std::vector<backends::TensorArg>& in, const std::vector<backends::TensorArg>& out) {
  const int64_t k = in[0].shape.empty() ? 1 : in[0].shape.back();
  return 2.0 * static_cast<double>(out[0].numel()) * static_cast<double>(k);
}

std::vector<Case> build_cases(Rng& rng) {
  std::vector<Case> cases;
  add_elementwise_cases(cases, rng);
  add_linear_algebra_cases(cases, rng);
  add_conv_pool_cases(cases, rng);
  add_norm_resize_cases(cases, rng);
  add_reduce_cases(cases, rng);
  add_shape_cases(cases, rng);
  add_sequence_cases(cases, rng);
  add_misc_cases(cases, rng);
  add_lti_cases(cases, rng);
  return cases;
}

std::string describe_inputs(const Case& c) {
  std::string text;
  for (const InputSpec& s : c.inputs) {
    if (!text.empty()) text += ' ';
    if (s.dtype == DType::undefined) {
      text += '_';
      continue;
    }
    if (s.constant) text += '#';
    text += fmt::format("{}[{}]", dtype_name(s.dtype), fmt::join(s.shape, ","));
  }
  if (!c.note.empty()) text += " {" + c.note + "}";
  return text;
}

}  // namespace seqrun::optest
