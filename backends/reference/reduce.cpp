// Reference kernels: reduce family — ReduceX over an axes input, ArgMax/ArgMin, CumSum, the
// softmax family along one axis, and TopK.
//
// All are compute_in_f32 (f16/bf16/f64 arrive as f32). Float reductions accumulate in double;
// integer Sum/Prod/SumSquare/L1 wrap like integer arithmetic, the others go through double.
// Axis ops view the input as [outer, len, inner] around the axis (row-major), one pass each.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

namespace {

template <typename Fn>
Status dispatch_numeric(const KernelContext& ctx, DType dtype, Fn&& fn) {
  if (!is_integer(dtype) && dtype != DType::f32 && dtype != DType::f64) {
    return ctx.error("unsupported dtype {}", dtype_name(dtype));
  }
  return SEQRUN_DISPATCH_NUMERIC(dtype, fn);
}

Result<int> normalize_axis(const KernelContext& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return ctx.error("axis {} out of range for rank {}", axis, rank);
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// [outer, len, inner] view of `shape` around `axis`.
struct AxisView {
  int64_t outer = 1;
  int64_t len = 1;
  int64_t inner = 1;
};

AxisView axis_view(const Shape& shape, int axis) {
  AxisView v;
  for (int i = 0; i < axis; ++i) v.outer *= shape[i];
  v.len = shape[axis];
  for (size_t i = axis + 1; i < shape.size(); ++i) v.inner *= shape[i];
  return v;
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

template <typename T>
bool is_negative(T v) {
  if constexpr (std::is_signed_v<T>) {
    return v < T(0);
  } else {
    (void)v;
    return false;
  }
}

// Integer addition wraps modulo 2^bits (no signed-overflow UB); floats add normally.
template <typename T>
T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return a + b;
  }
}

// ---------------------------------------------------------------- ReduceX

enum class ReduceOp { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

// Reduces x into `acc` (one slot per output element, `kept` is the keepdims output shape).
// Integer sums use uint64 wrap-around; everything else accumulates in double.
template <typename T>
Status reduce_typed(KernelContext& ctx, ReduceOp op, const Tensor& x, const Shape& kept,
                    const Shape& out_shape) {
  const int64_t n_out = num_elements(kept);
  const int64_t n_in = x.numel();
  const int64_t count = n_out == 0 ? 0 : n_in / n_out;  // elements per output
  const T* src = x.data<T>();
  Tensor out = Tensor::empty(x.dtype(), out_shape);
  T* dst = out.data<T>();
  constexpr bool kInt = std::is_integral_v<T>;

  if (op == ReduceOp::Max || op == ReduceOp::Min) {
    const bool is_max = op == ReduceOp::Max;
    const T init = is_max ? (kInt ? std::numeric_limits<T>::lowest() : -std::numeric_limits<T>::infinity())
                          : (kInt ? std::numeric_limits<T>::max() : std::numeric_limits<T>::infinity());
    std::fill(dst, dst + n_out, init);
    for_each_broadcast(x.shape(), {kept}, [&](int64_t i, const int64_t* off) {
      T& a = dst[off[0]];
      const T v = src[i];
      if (is_nan_value(a)) return;  // NaN propagates
      if (is_nan_value(v) || (is_max ? v > a : v < a)) a = v;
    });
  } else if (kInt && (op == ReduceOp::Sum || op == ReduceOp::Prod || op == ReduceOp::SumSquare ||
                      op == ReduceOp::L1)) {
    std::vector<uint64_t> acc(n_out, op == ReduceOp::Prod ? 1 : 0);
    for_each_broadcast(x.shape(), {kept}, [&](int64_t i, const int64_t* off) {
      const T v = src[i];
      uint64_t& a = acc[off[0]];
      if (op == ReduceOp::Prod) {
        a *= static_cast<uint64_t>(v);
      } else if (op == ReduceOp::SumSquare) {
        a += static_cast<uint64_t>(v) * static_cast<uint64_t>(v);
      } else if (op == ReduceOp::L1 && is_negative(v)) {
        a -= static_cast<uint64_t>(v);
      } else {
        a += static_cast<uint64_t>(v);
      }
    });
    for (int64_t j = 0; j < n_out; ++j) dst[j] = static_cast<T>(acc[j]);
  } else {
    // LogSumExp subtracts each slot's maximum first so e^x cannot overflow.
    std::vector<double> shift(n_out, 0.0);
    if (op == ReduceOp::LogSumExp) {
      std::fill(shift.begin(), shift.end(), -std::numeric_limits<double>::infinity());
      for_each_broadcast(x.shape(), {kept}, [&](int64_t i, const int64_t* off) {
        shift[off[0]] = std::max(shift[off[0]], static_cast<double>(src[i]));
      });
      for (double& s : shift) {
        if (!std::isfinite(s)) s = 0.0;  // all -inf, +inf or empty: no shift needed
      }
    }
    std::vector<double> acc(n_out, op == ReduceOp::Prod ? 1.0 : 0.0);
    for_each_broadcast(x.shape(), {kept}, [&](int64_t i, const int64_t* off) {
      const double v = static_cast<double>(src[i]);
      double& a = acc[off[0]];
      switch (op) {
        case ReduceOp::Prod:
          a *= v;
          break;
        case ReduceOp::L1:
          a += std::fabs(v);
          break;
        case ReduceOp::L2:
        case ReduceOp::SumSquare:
          a += v * v;
          break;
        case ReduceOp::LogSumExp:
          a += std::exp(v - shift[off[0]]);
          break;
        default:
          a += v;
          break;
      }
    });
    for (int64_t j = 0; j < n_out; ++j) {
      double r = acc[j];
      switch (op) {
        case ReduceOp::Mean:
          r = r / static_cast<double>(count);
          break;
        case ReduceOp::L2:
          r = std::sqrt(r);
          break;
        case ReduceOp::LogSum:
          r = std::log(r);
          break;
        case ReduceOp::LogSumExp:
          r = std::log(r) + shift[j];
          break;
        default:
          break;
      }
      if constexpr (kInt) {
        if (!std::isfinite(r)) r = 0;
        dst[j] = static_cast<T>(std::max(static_cast<double>(std::numeric_limits<T>::lowest()),
                                         std::min(static_cast<double>(std::numeric_limits<T>::max()), r)));
      } else {
        dst[j] = static_cast<T>(r);
      }
    }
  }
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

Status reduce_kernel(KernelContext& ctx, ReduceOp op) {
  const Tensor& x = ctx.input(0);
  const int rank = x.rank();
  const bool keepdims = ctx.node.get_int("keepdims", 1) != 0;
  const bool noop_with_empty_axes = ctx.node.get_int("noop_with_empty_axes", 0) != 0;
  std::vector<int64_t> axes;
  if (ctx.has_input(1)) {
    const Tensor& a = ctx.input(1);
    if (!is_integer(a.dtype()))
      return ctx.error("axes must be an integer tensor, got {}", dtype_name(a.dtype()));
    if (a.rank() > 1) return ctx.error("axes must be 1-D, has shape {}", shape_to_string(a.shape()));
    axes = a.to_i64_vector();
  }
  if (axes.empty() && noop_with_empty_axes) {
    ctx.outputs.push_back(x.clone());
    return Status::ok();
  }
  std::vector<bool> reduced(rank, axes.empty());
  for (int64_t a : axes) {
    if (rank == 0 && (a == 0 || a == -1)) continue;
    SEQRUN_ASSIGN(int axis, normalize_axis(ctx, a, rank));
    if (reduced[axis]) return ctx.error("axis {} appears twice in axes", a);
    reduced[axis] = true;
  }
  Shape kept;
  Shape out_shape;
  for (int i = 0; i < rank; ++i) {
    kept.push_back(reduced[i] ? 1 : x.dim(i));
    if (!reduced[i]) {
      out_shape.push_back(x.dim(i));
    } else if (keepdims) {
      out_shape.push_back(1);
    }
  }
  return dispatch_numeric(ctx, x.dtype(), [&](auto* tag) -> Status {
    using T = std::remove_pointer_t<decltype(tag)>;
    return reduce_typed<T>(ctx, op, x, kept, out_shape);
  });
}

// ---------------------------------------------------------------- ArgMax / ArgMin

Status arg_reduce_kernel(KernelContext& ctx, bool is_max) {
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) return ctx.error("input must have rank >= 1");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", 0), x.rank()));
  const bool keepdims = ctx.node.get_int("keepdims", 1) != 0;
  const bool last = ctx.node.get_int("select_last_index", 0) != 0;
  const AxisView v = axis_view(x.shape(), axis);
  if (v.len == 0 && v.outer * v.inner > 0)
    return ctx.error("cannot take the arg-extreme of an empty axis {}", axis);
  Shape out_shape = x.shape();
  if (keepdims) {
    out_shape[axis] = 1;
  } else {
    out_shape.erase(out_shape.begin() + axis);
  }
  Tensor out = Tensor::empty(DType::i64, out_shape);
  int64_t* dst = out.data<int64_t>();
  return dispatch_numeric(ctx, x.dtype(), [&](auto* tag) -> Status {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* src = x.data<T>();
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t in = 0; in < v.inner; ++in) {
        const T* row = src + o * v.len * v.inner + in;
        int64_t best = 0;
        for (int64_t k = 1; k < v.len; ++k) {
          const T cur = row[k * v.inner];
          const T b = row[best * v.inner];
          if (is_nan_value(b)) break;  // the first NaN wins, like numpy
          bool better = is_nan_value(cur) || (is_max ? cur > b : cur < b) || (last && cur == b);
          if (better) best = k;
        }
        dst[o * v.inner + in] = best;
      }
    }
    ctx.outputs.push_back(std::move(out));
    return Status::ok();
  });
}

// ---------------------------------------------------------------- CumSum

Status cumsum_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& axis_t = ctx.input(1);
  if (!is_integer(axis_t.dtype()))
    return ctx.error("axis must be an integer tensor, got {}", dtype_name(axis_t.dtype()));
  if (axis_t.numel() != 1) return ctx.error("axis must hold one value, has {}", axis_t.numel());
  if (x.rank() == 0) return ctx.error("input must have rank >= 1");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, axis_t.get_i64(0), x.rank()));
  const bool exclusive = ctx.node.get_int("exclusive", 0) != 0;
  const bool reverse = ctx.node.get_int("reverse", 0) != 0;
  const AxisView v = axis_view(x.shape(), axis);
  return dispatch_numeric(ctx, x.dtype(), [&](auto* tag) -> Status {
    using T = std::remove_pointer_t<decltype(tag)>;
    Tensor out = Tensor::empty(x.dtype(), x.shape());
    const T* src = x.data<T>();
    T* dst = out.data<T>();
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t in = 0; in < v.inner; ++in) {
        const int64_t base = o * v.len * v.inner + in;
        T acc = T(0);
        for (int64_t step = 0; step < v.len; ++step) {
          const int64_t k = reverse ? v.len - 1 - step : step;
          const int64_t at = base + k * v.inner;
          if (exclusive) {
            dst[at] = acc;
            acc = wrap_add(acc, src[at]);
          } else {
            acc = wrap_add(acc, src[at]);
            dst[at] = acc;
          }
        }
      }
    }
    ctx.outputs.push_back(std::move(out));
    return Status::ok();
  });
}

// ---------------------------------------------------------------- Softmax family

enum class SoftmaxOp { Softmax, LogSoftmax, Hardmax };

Status softmax_kernel(KernelContext& ctx, SoftmaxOp op) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::f32) return ctx.error("expects a float input, got {}", dtype_name(x.dtype()));
  if (x.rank() == 0) return ctx.error("input must have rank >= 1");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", -1), x.rank()));
  const AxisView v = axis_view(x.shape(), axis);
  Tensor out = Tensor::empty(DType::f32, x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t in = 0; in < v.inner; ++in) {
      const int64_t base = o * v.len * v.inner + in;
      auto at = [&](int64_t k) { return base + k * v.inner; };
      if (v.len == 0) continue;
      int64_t arg_max = 0;
      for (int64_t k = 1; k < v.len; ++k) {
        if (src[at(k)] > src[at(arg_max)]) arg_max = k;
      }
      if (op == SoftmaxOp::Hardmax) {
        for (int64_t k = 0; k < v.len; ++k) dst[at(k)] = k == arg_max ? 1.0f : 0.0f;
        continue;
      }
      double max_v = src[at(arg_max)];
      if (!std::isfinite(max_v)) max_v = 0.0;
      double sum = 0.0;
      for (int64_t k = 0; k < v.len; ++k) sum += std::exp(static_cast<double>(src[at(k)]) - max_v);
      for (int64_t k = 0; k < v.len; ++k) {
        const double shifted = static_cast<double>(src[at(k)]) - max_v;
        dst[at(k)] =
            static_cast<float>(op == SoftmaxOp::Softmax ? std::exp(shifted) / sum : shifted - std::log(sum));
      }
    }
  }
  ctx.outputs.push_back(std::move(out));
  return Status::ok();
}

// ---------------------------------------------------------------- TopK

Status topk_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& k_t = ctx.input(1);
  if (!is_integer(k_t.dtype()) || k_t.numel() != 1) {
    return ctx.error("K must be an integer tensor with one value, has {}{}", dtype_name(k_t.dtype()),
                     shape_to_string(k_t.shape()));
  }
  if (x.rank() == 0) return ctx.error("input must have rank >= 1");
  SEQRUN_ASSIGN(int axis, normalize_axis(ctx, ctx.node.get_int("axis", -1), x.rank()));
  const int64_t k = k_t.get_i64(0);
  const AxisView v = axis_view(x.shape(), axis);
  if (k < 0 || k > v.len) return ctx.error("K = {} out of range for axis length {}", k, v.len);
  const bool largest = ctx.node.get_int("largest", 1) != 0;
  Shape out_shape = x.shape();
  out_shape[axis] = k;
  return dispatch_numeric(ctx, x.dtype(), [&](auto* tag) -> Status {
    using T = std::remove_pointer_t<decltype(tag)>;
    Tensor values = Tensor::empty(x.dtype(), out_shape);
    Tensor indices = Tensor::empty(DType::i64, out_shape);
    const T* src = x.data<T>();
    T* val = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    // NaN ranks above every number (first for largest, last for smallest); a strict weak order.
    auto before = [largest](T a, T b) {
      if (largest) {
        if (is_nan_value(b)) return false;
        if (is_nan_value(a)) return true;
        return a > b;
      }
      if (is_nan_value(a)) return false;
      if (is_nan_value(b)) return true;
      return a < b;
    };
    std::vector<int64_t> order(v.len);
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t in = 0; in < v.inner; ++in) {
        const T* row = src + o * v.len * v.inner + in;
        std::iota(order.begin(), order.end(), 0);
        // stable: equal values keep the lower index first, as ONNX requires
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return before(row[a * v.inner], row[b * v.inner]); });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t at = o * k * v.inner + j * v.inner + in;
          val[at] = row[order[j] * v.inner];
          idx[at] = order[j];
        }
      }
    }
    ctx.outputs.push_back(std::move(values));
    ctx.outputs.push_back(std::move(indices));
    return Status::ok();
  });
}

}  // namespace

void register_reduce_kernels(KernelRegistry& r) {
  const std::pair<const char*, ReduceOp> reduces[] = {
      {"ReduceSum", ReduceOp::Sum},
      {"ReduceMean", ReduceOp::Mean},
      {"ReduceMax", ReduceOp::Max},
      {"ReduceMin", ReduceOp::Min},
      {"ReduceProd", ReduceOp::Prod},
      {"ReduceL1", ReduceOp::L1},
      {"ReduceL2", ReduceOp::L2},
      {"ReduceLogSum", ReduceOp::LogSum},
      {"ReduceLogSumExp", ReduceOp::LogSumExp},
      {"ReduceSumSquare", ReduceOp::SumSquare},
  };
  for (const auto& [name, op] : reduces) {
    const ReduceOp reduce_op = op;
    r.add(
        name, [reduce_op](KernelContext& ctx) { return reduce_kernel(ctx, reduce_op); }, true);
  }
  r.add(
      "ArgMax", [](KernelContext& ctx) { return arg_reduce_kernel(ctx, true); }, true);
  r.add(
      "ArgMin", [](KernelContext& ctx) { return arg_reduce_kernel(ctx, false); }, true);
  r.add("CumSum", cumsum_kernel, true);
  r.add(
      "Softmax", [](KernelContext& ctx) { return softmax_kernel(ctx, SoftmaxOp::Softmax); }, true);
  r.add(
      "LogSoftmax", [](KernelContext& ctx) { return softmax_kernel(ctx, SoftmaxOp::LogSoftmax); }, true);
  r.add(
      "Hardmax", [](KernelContext& ctx) { return softmax_kernel(ctx, SoftmaxOp::Hardmax); }, true);
  r.add("TopK", topk_kernel, true);
}

}  // namespace seqrun::reference
