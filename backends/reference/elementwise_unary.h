// Private to backends/reference/elementwise.cpp: the one-input elementwise kernels (math functions
// and activations). Float ops are compute_in_f32 and evaluate in double; Abs, Neg, Sign and Relu
// also take every integer dtype.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "backends/reference/elementwise_map.h"

namespace seqrun::reference::elementwise {

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
// log(1 + e^x) without overflow for large x.
inline double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// Registers a float kernel whose function needs no attributes.
template <typename F>
void add_float_map(KernelRegistry& r, const char* op, F f) {
  r.add(
      op, [f](KernelContext& ctx) { return map_float(ctx, f); }, true);
}

inline void register_numeric_unary_kernels(KernelRegistry& r) {
  r.add(
      "Abs",
      [](KernelContext& ctx) {
        return map_numeric(ctx, [](auto v) -> decltype(v) {
          using T = decltype(v);
          if constexpr (std::is_unsigned_v<T>) {
            return v;
          } else if constexpr (std::is_integral_v<T>) {
            return v < 0 ? wrap_sub<T>(0, v) : v;
          } else {
            return std::fabs(v);
          }
        });
      },
      true);
  r.add(
      "Neg",
      [](KernelContext& ctx) { return map_numeric(ctx, [](auto v) { return wrap_sub<decltype(v)>(0, v); }); },
      true);
  r.add(
      "Sign",
      [](KernelContext& ctx) {
        return map_numeric(ctx, [](auto v) -> decltype(v) {
          using T = decltype(v);
          if constexpr (std::is_unsigned_v<T>) {
            return v > 0 ? T(1) : T(0);
          } else {
            if constexpr (std::is_floating_point_v<T>) {
              if (std::isnan(v)) return v;
            }
            return v > 0 ? T(1) : (v < 0 ? T(-1) : T(0));
          }
        });
      },
      true);
  // x < 0 ? 0 : x lets NaN through, like numpy's maximum(x, 0).
  r.add(
      "Relu",
      [](KernelContext& ctx) {
        return map_numeric(ctx, [](auto v) -> decltype(v) {
          using T = decltype(v);
          if constexpr (std::is_unsigned_v<T>) {
            return v;
          } else {
            return v < 0 ? T(0) : v;
          }
        });
      },
      true);
}

inline void register_math_kernels(KernelRegistry& r) {
  add_float_map(r, "Exp", [](double x) { return std::exp(x); });
  add_float_map(r, "Log", [](double x) { return std::log(x); });
  add_float_map(r, "Sqrt", [](double x) { return std::sqrt(x); });
  add_float_map(r, "Rsqrt", [](double x) { return 1.0 / std::sqrt(x); });
  add_float_map(r, "Reciprocal", [](double x) { return 1.0 / x; });
  add_float_map(r, "Erf", [](double x) { return std::erf(x); });
  add_float_map(r, "Sin", [](double x) { return std::sin(x); });
  add_float_map(r, "Cos", [](double x) { return std::cos(x); });
  add_float_map(r, "Tan", [](double x) { return std::tan(x); });
  add_float_map(r, "Asin", [](double x) { return std::asin(x); });
  add_float_map(r, "Acos", [](double x) { return std::acos(x); });
  add_float_map(r, "Atan", [](double x) { return std::atan(x); });
  add_float_map(r, "Sinh", [](double x) { return std::sinh(x); });
  add_float_map(r, "Cosh", [](double x) { return std::cosh(x); });
  add_float_map(r, "Asinh", [](double x) { return std::asinh(x); });
  add_float_map(r, "Acosh", [](double x) { return std::acosh(x); });
  add_float_map(r, "Atanh", [](double x) { return std::atanh(x); });
  add_float_map(r, "Floor", [](double x) { return std::floor(x); });
  add_float_map(r, "Ceil", [](double x) { return std::ceil(x); });
  // nearbyint under the default rounding mode rounds half to even, as ONNX Round requires.
  add_float_map(r, "Round", [](double x) { return std::nearbyint(x); });
  r.add(
      "IsNaN",
      [](KernelContext& ctx) { return map_float_to_bool(ctx, [](float x) { return std::isnan(x); }); }, true);
  r.add(
      "IsInf",
      [](KernelContext& ctx) {
        const bool neg = ctx.node.get_int("detect_negative", 1) != 0;
        const bool pos = ctx.node.get_int("detect_positive", 1) != 0;
        return map_float_to_bool(ctx, [neg, pos](float x) { return std::isinf(x) && (x > 0 ? pos : neg); });
      },
      true);
}

inline void register_activation_kernels(KernelRegistry& r) {
  add_float_map(r, "Sigmoid", [](double x) { return sigmoid(x); });
  add_float_map(r, "Tanh", [](double x) { return std::tanh(x); });
  add_float_map(r, "Softplus", [](double x) { return softplus(x); });
  add_float_map(r, "Softsign", [](double x) { return x / (1.0 + std::fabs(x)); });
  add_float_map(r, "HardSwish", [](double x) { return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)); });
  add_float_map(r, "Silu", [](double x) { return x * sigmoid(x); });
  add_float_map(r, "Mish", [](double x) { return x * std::tanh(softplus(x)); });
  r.add(
      "Elu",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 1.0f);
        return map_float(ctx, [alpha](double x) { return x >= 0 ? x : alpha * std::expm1(x); });
      },
      true);
  r.add(
      "Selu",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 1.67326319217681884765625f);
        const double gamma = ctx.node.get_float("gamma", 1.05070102214813232421875f);
        return map_float(ctx,
                         [alpha, gamma](double x) { return gamma * (x > 0 ? x : alpha * std::expm1(x)); });
      },
      true);
  r.add(
      "Celu",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 1.0f);
        if (alpha == 0) return ctx.error("alpha must not be 0");
        return map_float(ctx, [alpha](double x) {
          return std::max(0.0, x) + std::min(0.0, alpha * std::expm1(x / alpha));
        });
      },
      true);
  r.add(
      "LeakyRelu",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 0.01f);
        return map_float(ctx, [alpha](double x) { return x >= 0 ? x : alpha * x; });
      },
      true);
  r.add(
      "ThresholdedRelu",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 1.0f);
        return map_float(ctx, [alpha](double x) { return x > alpha ? x : 0.0; });
      },
      true);
  r.add(
      "HardSigmoid",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 0.2f);
        const double beta = ctx.node.get_float("beta", 0.5f);
        return map_float(ctx,
                         [alpha, beta](double x) { return std::max(0.0, std::min(1.0, alpha * x + beta)); });
      },
      true);
  r.add(
      "Gelu",
      [](KernelContext& ctx) {
        const std::string approximate = ctx.node.get_string("approximate", "none");
        if (approximate == "none") {
          return map_float(ctx, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); });
        }
        if (approximate == "tanh") {
          const double k = 0.79788456080286535588;  // sqrt(2 / pi)
          return map_float(
              ctx, [k](double x) { return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x))); });
        }
        return ctx.error("approximate must be 'none' or 'tanh', is '{}'", approximate);
      },
      true);
  r.add(
      "Swish",
      [](KernelContext& ctx) {
        const double alpha = ctx.node.get_float("alpha", 1.0f);
        return map_float(ctx, [alpha](double x) { return x * sigmoid(alpha * x); });
      },
      true);
  r.add(
      "Shrink",
      [](KernelContext& ctx) {
        const double bias = ctx.node.get_float("bias", 0.0f);
        const double lambd = ctx.node.get_float("lambd", 0.5f);
        return map_float(
            ctx, [bias, lambd](double x) { return x < -lambd ? x + bias : (x > lambd ? x - bias : 0.0); });
      },
      true);
}

}  // namespace seqrun::reference::elementwise
