// The op-test table, elementwise family: every unary op on its valid domain, binary and variadic ops with
// numpy broadcasting (same shape, row, column, scalar, batch), comparisons and logic, Where, Cast, Clip.
#include <cmath>
#include <limits>

#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

struct Unary {
  const char* op;
  Fill fill;
  bool exact;  // selects or copies input values: the result must match bit for bit
};

// Values of either sign with |x| in [lo, hi): divisors, reciprocals.
Fill away_from_zero(double lo, double hi) {
  return custom([lo, hi](Tensor& t, Rng& rng) {
    std::uniform_real_distribution<double> mag(lo, hi);
    std::bernoulli_distribution negative(0.5);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(negative(rng) ? -mag(rng) : mag(rng));
  });
}

// Mostly normal numbers with some +inf, -inf and NaN (IsNaN / IsInf).
Fill with_specials() {
  return custom([](Tensor& t, Rng& rng) {
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::uniform_int_distribution<int> which(0, 7);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      int w = which(rng);
      p[i] = w == 0   ? std::numeric_limits<float>::infinity()
             : w == 1 ? -std::numeric_limits<float>::infinity()
             : w == 2 ? std::numeric_limits<float>::quiet_NaN()
                      : u(rng);
    }
  });
}

void add_unary_cases(std::vector<Case>& cases, Rng& rng) {
  const std::vector<Unary> unary = {
      {"Abs", uniform(-3, 3), true},
      {"Neg", uniform(-3, 3), true},
      {"Sign", uniform(-3, 3), true},
      {"Relu", uniform(-3, 3), true},
      {"Identity", uniform(-3, 3), true},
      {"Exp", uniform(-5, 5), false},
      {"Log", uniform(0.01, 10), false},
      {"Sqrt", uniform(0, 10), false},
      {"Rsqrt", uniform(0.01, 10), false},
      {"Reciprocal", away_from_zero(0.1, 4), false},
      {"Sigmoid", uniform(-8, 8), false},
      {"Tanh", uniform(-4, 4), false},
      {"Softplus", uniform(-8, 8), false},
      {"Softsign", uniform(-4, 4), false},
      {"Elu", uniform(-4, 4), false},
      {"Selu", uniform(-4, 4), false},
      {"Celu", uniform(-4, 4), false},
      {"LeakyRelu", uniform(-4, 4), false},
      {"ThresholdedRelu", uniform(-2, 3), true},
      {"HardSigmoid", uniform(-4, 4), false},
      {"HardSwish", uniform(-5, 5), false},
      {"Gelu", uniform(-5, 5), false},
      {"Erf", uniform(-3, 3), false},
      {"Sin", uniform(-6, 6), false},
      {"Cos", uniform(-6, 6), false},
      {"Tan", uniform(-1.2, 1.2), false},
      {"Asin", uniform(-0.99, 0.99), false},
      {"Acos", uniform(-0.99, 0.99), false},
      {"Atan", uniform(-5, 5), false},
      {"Sinh", uniform(-4, 4), false},
      {"Cosh", uniform(-4, 4), false},
      {"Asinh", uniform(-5, 5), false},
      {"Acosh", uniform(1.01, 10), false},
      {"Atanh", uniform(-0.99, 0.99), false},
      {"Floor", uniform(-10, 10), true},
      {"Ceil", uniform(-10, 10), true},
      {"Round", uniform(-10, 10), true},
      {"IsNaN", with_specials(), true},
      {"IsInf", with_specials(), true},
      {"Swish", uniform(-6, 6), false},
      {"Silu", uniform(-6, 6), false},
      {"Mish", uniform(-6, 6), false},
      {"Shrink", uniform(-2, 2), false},
  };
  for (const Unary& u : unary) {
    // A small odd shape (vector tails) and a larger one (threaded paths).
    for (Shape shape : {Shape{pick(rng, 1, 3), pick(rng, 1, 9), pick(rng, 1, 70)}, Shape{96, 1003}}) {
      Case& c = add_case(cases, u.op, {f32(shape, u.fill)});
      if (u.exact) c.exact();
    }
  }
  add_case(cases, "Gelu", {f32({64, 515}, uniform(-5, 5))}).attr("approximate", "tanh").with_note("tanh");
  add_case(cases, "Elu", {f32({7, 33})}).attr("alpha", 0.5f);
  add_case(cases, "LeakyRelu", {f32({7, 33})}).attr("alpha", 0.2f);
  add_case(cases, "Swish", {f32({7, 33})}).attr("alpha", 1.702f);
  add_case(cases, "HardSigmoid", {f32({7, 33}, uniform(-4, 4))}).attr("alpha", 0.25f).attr("beta", 0.4f);
  add_case(cases, "Shrink", {f32({7, 33}, uniform(-2, 2))}).attr("bias", 0.3f).attr("lambd", 0.8f);
  add_case(cases, "IsInf", {f32({5, 40}, with_specials())}).attr("detect_negative", 0).exact();
  // Half precision and integer forms.
  add_case(cases, "Gelu", {in(DType::f16, {32, 257}, uniform(-4, 4))});
  add_case(cases, "Silu", {in(DType::bf16, {32, 257}, uniform(-4, 4))});
  add_case(cases, "Exp", {in(DType::f16, {32, 257}, uniform(-4, 4))});
  add_case(cases, "Abs", {in(DType::i32, {9, 31}, ints(-100, 100))});
  add_case(cases, "Neg", {in(DType::i64, {9, 31}, ints(-100, 100))});
  add_case(cases, "Relu", {in(DType::i32, {9, 31}, ints(-100, 100))});
  add_case(cases, "Sign", {in(DType::i64, {9, 31}, ints(-3, 3))});
  add_case(cases, "Not", {in(DType::boolean, {9, 31}, bools())});
  // Memory-bound throughput at 4 Mi elements.
  for (const char* op : {"Relu", "Exp", "Sigmoid", "Tanh", "Gelu", "Silu", "Erf"}) {
    add_case(cases, op, {f32({1024, 4096}, uniform(-4, 4))}).perf();
  }
}

void add_binary_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t m = pick(rng, 2, 40), n = pick(rng, 1, 130), b = pick(rng, 2, 4);
  // (a, b) shape pairs: same, row, column, scalar, batch broadcast on both sides.
  const std::vector<std::pair<Shape, Shape>> patterns = {
      {{m, n}, {m, n}}, {{m, n}, {n}}, {{m, 1}, {1, n}}, {{m, n}, {}}, {{b, 1, n}, {m, n}}};
  for (const char* op : {"Add", "Sub", "Mul", "Max", "Min"}) {
    for (const auto& [sa, sb] : patterns) add_case(cases, op, {f32(sa), f32(sb)});
  }
  for (const auto& [sa, sb] : patterns) {
    add_case(cases, "Div", {f32(sa), f32(sb, away_from_zero(0.5, 2))});
  }
  add_case(cases, "Pow", {f32({m, n}, uniform(0.1, 3)), f32({m, n}, uniform(-2, 2))});
  add_case(cases, "Pow", {f32({m, n}, uniform(0.1, 3)), const_f32({}, {2.0})}).with_note("square");
  add_case(cases, "Pow", {f32({m, n}, uniform(0.1, 3)), const_f32({}, {0.5})}).with_note("sqrt");
  add_case(cases, "PRelu", {f32({b, 8, m, 5}, uniform(-2, 2)), weight(DType::f32, {8, 1, 1})});
  add_case(cases, "PRelu", {f32({m, n}, uniform(-2, 2)), f32({n})});
  // Variadic forms with broadcasting.
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    add_case(cases, op, {f32({m, n}), f32({n}), f32({m, 1})});
  }
  add_case(cases, "Sum", {f32({m, n})}).with_note("one input");
  // Comparisons: integers make ties likely, floats compare strictly.
  for (const char* op : {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}) {
    add_case(cases, op, {in(DType::i64, {m, n}, ints(-3, 3)), in(DType::i64, {n}, ints(-3, 3))});
    add_case(cases, op, {f32({b, m, n}), f32({m, 1})});
  }
  add_case(cases, "Equal", {in(DType::boolean, {m, n}), in(DType::boolean, {m, n})});
  for (const char* op : {"And", "Or", "Xor"}) {
    add_case(cases, op, {in(DType::boolean, {m, n}, bools()), in(DType::boolean, {n}, bools(0.3))});
  }
  // Integer arithmetic (exact by dtype).
  add_case(cases, "Add", {in(DType::i64, {m, n}, ints(-1000, 1000)), in(DType::i64, {n}, ints(-1000, 1000))});
  add_case(cases, "Mul", {in(DType::i32, {m, n}, ints(-100, 100)), in(DType::i32, {m, n}, ints(-100, 100))});
  add_case(cases, "Sub", {in(DType::i32, {m, n}, ints(-100, 100)), in(DType::i32, {}, ints(-100, 100))});
  add_case(cases, "Div", {in(DType::i32, {m, n}, ints(-1000, 1000)), in(DType::i32, {m, n}, ints(1, 9))});
  add_case(cases, "Mod", {in(DType::i64, {m, n}, ints(-50, 50)), in(DType::i64, {n}, ints(1, 7))});
  add_case(cases, "Mod", {in(DType::i32, {m, n}, ints(-50, 50)), in(DType::i32, {m, n}, ints(-7, -1))})
      .with_note("negative divisor");
  add_case(cases, "Mod", {f32({m, n}, uniform(-5, 5)), f32({m, n}, away_from_zero(0.5, 2))}).attr("fmod", 1);
  add_case(cases, "BitShift", {in(DType::u32, {m, n}, ints(0, 1 << 20)), in(DType::u32, {n}, ints(0, 11))})
      .attr("direction", "LEFT");
  add_case(cases, "BitShift", {in(DType::u8, {m, n}, ints(0, 255)), in(DType::u8, {m, n}, ints(0, 7))})
      .attr("direction", "RIGHT");
  // Large same-shape and row-broadcast forms for throughput.
  for (const char* op : {"Add", "Mul"}) {
    add_case(cases, op, {f32({1024, 4096}), f32({1024, 4096})}).perf();
    add_case(cases, op, {f32({1024, 4096}), f32({4096})}).perf();
  }
  add_case(cases, "Add", {in(DType::f16, {64, 257}), in(DType::f16, {257})});
  add_case(cases, "Mul", {in(DType::bf16, {64, 257}), in(DType::bf16, {64, 257})});
}

void add_select_cast_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t m = pick(rng, 2, 40), n = pick(rng, 1, 130);
  add_case(cases, "Where", {in(DType::boolean, {m, n}, bools()), f32({m, n}), f32({m, n})}).exact();
  add_case(cases, "Where", {in(DType::boolean, {m, 1}, bools()), f32({n}), f32({3, m, n})}).exact();
  add_case(cases, "Where",
           {in(DType::boolean, {m, n}, bools()), in(DType::i64, {m, n}, ints(-9, 9)),
            in(DType::i64, {}, ints(-9, 9))});
  // Cast `to` holds ONNX TensorProto numbers: 1 f32, 6 i32, 7 i64, 9 bool, 10 f16, 11 f64, 16 bf16.
  const struct {
    DType from;
    int64_t to;
    Fill fill;
  } casts[] = {
      {DType::f32, 7, uniform(-100, 100)}, {DType::f32, 6, uniform(-100, 100)},
      {DType::i64, 1, ints(-1000, 1000)},  {DType::f32, 10, uniform(-8, 8)},
      {DType::f16, 1, uniform(-8, 8)},     {DType::f32, 16, uniform(-8, 8)},
      {DType::bf16, 1, uniform(-8, 8)},    {DType::boolean, 1, bools()},
      {DType::f32, 9, ints(-1, 1)},        {DType::f32, 11, uniform(-8, 8)},
      {DType::i32, 7, ints(-1000, 1000)},  {DType::u8, 1, ints(0, 255)},
  };
  for (const auto& c : casts) {
    add_case(cases, "Cast", {in(c.from, {m, n}, c.fill)}).attr("to", c.to).exact();
  }
  add_case(cases, "CastLike", {f32({m, n}, uniform(-50, 50)), in(DType::i32, {1}, ints(0, 0))}).exact();
  add_case(cases, "CastLike", {in(DType::i64, {m, n}, ints(-50, 50)), f32({1})}).exact();
  add_case(cases, "Clip", {f32({m, n}, uniform(-2, 2)), const_f32({}, {-0.5}), const_f32({}, {0.75})})
      .exact();
  add_case(cases, "Clip", {f32({m, n}, uniform(-2, 2)), absent(), const_f32({}, {0.25})}).exact();
  add_case(cases, "Clip", {f32({m, n}, uniform(-2, 2))}).exact().with_note("no bounds");
  add_case(cases, "Clip",
           {in(DType::i64, {m, n}, ints(-20, 20)), in(DType::i64, {}, ints(-5, -5)),
            in(DType::i64, {}, ints(7, 7))});
  add_case(cases, "Dropout", {f32({m, n})}).outputs(2).exact();
  add_case(cases, "Dropout", {f32({m, n}), const_f32({}, {0.3})}).exact().with_note("ratio");
}

}  // namespace

void add_elementwise_cases(std::vector<Case>& cases, Rng& rng) {
  add_unary_cases(cases, rng);
  add_binary_cases(cases, rng);
  add_select_cast_cases(cases, rng);
}

}  // namespace seqrun::optest
