// Private to backends/reference/elementwise.cpp: the broadcasting binary and variadic kernels —
// arithmetic, Pow, Mod, PRelu, BitShift, comparisons and logic. All are compute_in_f32 (f16/bf16/f64
// arrive as f32) and take every integer dtype; integer arithmetic wraps, integer division by
// zero is an error naming the node.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "backends/reference/elementwise_map.h"

namespace seqrun::reference::elementwise {

// a / b; integers truncate toward zero like C (INT_MIN / -1 wraps).
template <typename T>
T divide(T a, T b, Status& status) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) {
      status = make_error("integer division by zero");
      return 0;
    }
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return wrap_sub<T>(0, a);
    }
    return static_cast<T>(a / b);
  } else {
    return a / b;
  }
}

// Remainder. c_fmod: sign of the dividend (C fmod / %); otherwise sign of the divisor (Python).
template <typename T>
T modulo(T a, T b, bool c_fmod, Status& status) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) {
      status = make_error("integer modulo by zero");
      return 0;
    }
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return 0;
      T rem = static_cast<T>(a % b);
      if (!c_fmod && rem != 0 && ((rem < 0) != (b < 0))) rem = static_cast<T>(rem + b);
      return rem;
    } else {
      return static_cast<T>(a % b);
    }
  } else {
    T rem = std::fmod(a, b);
    if (!c_fmod && rem != 0 && ((rem < 0) != (b < 0))) rem += b;
    return rem;
  }
}

template <typename T>
bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    (void)v;
    return false;
  }
}

// base ^ exponent for an integer base and integer exponent, by squaring, wrapping on overflow.
template <typename T, typename E>
T integer_power(T base, E exponent, Status& status) {
  if constexpr (std::is_signed_v<E>) {
    if (exponent < 0) {
      if (base == 1) return 1;
      if constexpr (std::is_signed_v<T>) {
        if (base == T(-1)) return (exponent % 2 == 0) ? T(1) : T(-1);
      }
      status = make_error("integer base raised to a negative integer exponent");
      return 0;
    }
  }
  T result = 1;
  T factor = base;
  auto e = static_cast<uint64_t>(exponent);
  while (e > 0) {
    if (e & 1) result = wrap_mul(result, factor);
    factor = wrap_mul(factor, factor);
    e >>= 1;
  }
  return result;
}

// A float (or float-exponent) power converted to the base type T; float -> int truncates and saturates.
template <typename T>
T from_double(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return 0;
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(v);
  }
}

inline Status pow_kernel(KernelContext& ctx) {
  const DType base_dt = ctx.input(0).dtype();
  const DType exp_dt = ctx.input(1).dtype();
  return dispatch_numeric(ctx, base_dt, [&](auto* base_tag) -> Status {
    using B = std::remove_pointer_t<decltype(base_tag)>;
    return dispatch_numeric(ctx, exp_dt, [&](auto* exp_tag) -> Status {
      using E = std::remove_pointer_t<decltype(exp_tag)>;
      SEQRUN_ASSIGN(Shape out_shape, broadcast_inputs(ctx, 0, 2));
      Tensor out = Tensor::empty(base_dt, out_shape);
      const B* a = ctx.input(0).data<B>();
      const E* b = ctx.input(1).data<E>();
      B* dst = out.data<B>();
      Status status;
      for_each_broadcast(
          out_shape, {ctx.input(0).shape(), ctx.input(1).shape()}, [&](int64_t i, const int64_t* off) {
            if constexpr (std::is_integral_v<B> && std::is_integral_v<E>) {
              dst[i] = integer_power<B, E>(a[off[0]], b[off[1]], status);
            } else {
              dst[i] =
                  from_double<B>(std::pow(static_cast<double>(a[off[0]]), static_cast<double>(b[off[1]])));
            }
          });
      if (!status) return ctx.error("{}", status.message());
      ctx.outputs.push_back(std::move(out));
      return Status::ok();
    });
  });
}

// Registers a same-dtype binary op; f(a, b, status) -> T.
template <typename MakeFn>
void add_arithmetic(KernelRegistry& r, const char* op, MakeFn make_fn) {
  r.add(
      op,
      [make_fn](KernelContext& ctx) -> Status {
        SEQRUN_TRY(check_same_dtype(ctx, 0, 2));
        const DType dt = ctx.input(0).dtype();
        return dispatch_numeric(ctx, dt, [&](auto* tag) -> Status {
          using T = std::remove_pointer_t<decltype(tag)>;
          return map_binary<T, T>(ctx, dt, make_fn(ctx, tag));
        });
      },
      true);
}

// Registers a comparison; cmp(a, b) -> bool. Bool inputs compare as 0/1.
template <typename Cmp>
void add_comparison(KernelRegistry& r, const char* op, Cmp cmp) {
  r.add(
      op,
      [cmp](KernelContext& ctx) -> Status {
        SEQRUN_TRY(check_same_dtype(ctx, 0, 2));
        return dispatch_numeric_or_bool(ctx, ctx.input(0).dtype(), [&](auto* tag) -> Status {
          using T = std::remove_pointer_t<decltype(tag)>;
          return map_binary<T, uint8_t>(ctx, DType::boolean,
                                        [&](T a, T b, Status&) -> uint8_t { return cmp(a, b) ? 1 : 0; });
        });
      },
      true);
}

template <typename Logic>
void add_logic(KernelRegistry& r, const char* op, Logic logic) {
  r.add(op, [logic](KernelContext& ctx) -> Status {
    for (int i = 0; i < 2; ++i) {
      if (ctx.input(i).dtype() != DType::boolean) {
        return ctx.error("input {} must be bool, got {}", i, dtype_name(ctx.input(i).dtype()));
      }
    }
    return map_binary<uint8_t, uint8_t>(ctx, DType::boolean, [&](uint8_t a, uint8_t b, Status&) -> uint8_t {
      return logic(a != 0, b != 0) ? 1 : 0;
    });
  });
}

// Registers a variadic op over 1..N same-dtype inputs.
template <typename Combine>
void add_variadic(KernelRegistry& r, const char* op, Combine combine, bool mean) {
  r.add(
      op,
      [combine, mean](KernelContext& ctx) -> Status {
        if (ctx.num_inputs() < 1) return ctx.error("needs at least one input");
        SEQRUN_TRY(check_same_dtype(ctx, 0, ctx.num_inputs()));
        const auto count = ctx.num_inputs();
        return dispatch_numeric(ctx, ctx.input(0).dtype(), [&](auto* tag) -> Status {
          using T = std::remove_pointer_t<decltype(tag)>;
          return fold_broadcast<T>(
              ctx, [&](T a, T b) -> T { return combine(a, b); },
              [&](T acc) -> T { return mean ? static_cast<T>(acc / static_cast<T>(count)) : acc; });
        });
      },
      true);
}

inline void register_binary_kernels(KernelRegistry& r) {
  add_arithmetic(r, "Add", [](KernelContext&, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return [](T a, T b, Status&) { return wrap_add(a, b); };
  });
  add_arithmetic(r, "Sub", [](KernelContext&, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return [](T a, T b, Status&) { return wrap_sub(a, b); };
  });
  add_arithmetic(r, "Mul", [](KernelContext&, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return [](T a, T b, Status&) { return wrap_mul(a, b); };
  });
  add_arithmetic(r, "Div", [](KernelContext&, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return [](T a, T b, Status& st) { return divide(a, b, st); };
  });
  add_arithmetic(r, "Mod", [](KernelContext& ctx, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const bool c_fmod = ctx.node.get_int("fmod", 0) != 0;
    return [c_fmod](T a, T b, Status& st) { return modulo(a, b, c_fmod, st); };
  });
  add_arithmetic(r, "PRelu", [](KernelContext&, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return [](T x, T slope, Status&) -> T {
      if constexpr (std::is_unsigned_v<T>) {
        (void)slope;
        return x;
      } else {
        return x < 0 ? wrap_mul(slope, x) : x;
      }
    };
  });
  add_arithmetic(r, "BitShift", [](KernelContext& ctx, auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const bool left = ctx.node.get_string("direction") == "LEFT";
    return [left](T x, T shift, Status& st) -> T {
      if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>;
        const auto bits = static_cast<uint64_t>(sizeof(T) * 8);
        const auto amount = static_cast<uint64_t>(static_cast<U>(shift));
        if (amount >= bits) return 0;
        const auto ux = static_cast<U>(x);
        return static_cast<T>(left ? static_cast<U>(ux << amount) : static_cast<U>(ux >> amount));
      } else {
        st = make_error("BitShift needs integer inputs");
        return x;
      }
    };
  });
  r.add("Pow", pow_kernel, true);

  // Max/Min propagate NaN like numpy's maximum/minimum.
  add_variadic(
      r, "Max",
      [](auto a, auto b) {
        return is_nan_value(a) || is_nan_value(b) ? (is_nan_value(a) ? a : b) : (a < b ? b : a);
      },
      false);
  add_variadic(
      r, "Min",
      [](auto a, auto b) {
        return is_nan_value(a) || is_nan_value(b) ? (is_nan_value(a) ? a : b) : (b < a ? b : a);
      },
      false);
  add_variadic(
      r, "Sum", [](auto a, auto b) { return wrap_add(a, b); }, false);
  add_variadic(
      r, "Mean", [](auto a, auto b) { return wrap_add(a, b); }, true);

  add_comparison(r, "Equal", [](auto a, auto b) { return a == b; });
  add_comparison(r, "Less", [](auto a, auto b) { return a < b; });
  add_comparison(r, "LessOrEqual", [](auto a, auto b) { return a <= b; });
  add_comparison(r, "Greater", [](auto a, auto b) { return a > b; });
  add_comparison(r, "GreaterOrEqual", [](auto a, auto b) { return a >= b; });

  add_logic(r, "And", [](bool a, bool b) { return a && b; });
  add_logic(r, "Or", [](bool a, bool b) { return a || b; });
  add_logic(r, "Xor", [](bool a, bool b) { return a != b; });
}

}  // namespace seqrun::reference::elementwise
