// Reference kernels for Unique (elements, or slices along an axis) and Det (batched determinants).
//
// Unique sees the real dtype (f16/bf16 compare as f32 and come back bit-exact; bool as u8). Slices
// compare lexicographically in row-major order; NaN sorts after every number and equals NaN.
// sorted = 1 orders the unique values ascending, sorted = 0 by first occurrence; `indices` are first
// occurrences either way. Det: LU factorization with partial pivoting per matrix, in double.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/misc.h"
#include "backends/reference/nn_window.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

using nn_detail::alloc_output;
using nn_detail::require_inputs;

// Total order on values: NaN after everything, NaN == NaN.
template <typename T>
int compare_values(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    const bool an = std::isnan(a), bn = std::isnan(b);
    if (an || bn) return an == bn ? 0 : (an ? 1 : -1);
  }
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Unique over `count` slices of `slice_len` elements; element j of slice s is at
// data[(j / inner) * count * inner + s * inner + j % inner] (axis layout [outer, count, inner]).
template <typename T>
Status unique_typed(KernelContext& ctx, const Tensor& x, bool has_axis, int axis) {
  const T* xd = x.data<T>();
  int64_t count = x.numel(), inner = 1, outer = 1;
  if (has_axis) {
    count = x.dim(axis);
    for (int i = 0; i < axis; ++i) outer *= x.dim(i);
    for (int i = axis + 1; i < x.rank(); ++i) inner *= x.dim(i);
  }
  const int64_t slice_len = outer * inner;
  auto element = [&](int64_t s, int64_t j) {
    return xd[(j / inner) * count * inner + s * inner + j % inner];
  };
  auto compare = [&](int64_t a, int64_t b) {
    for (int64_t j = 0; j < slice_len; ++j) {
      const int c = compare_values<T>(element(a, j), element(b, j));
      if (c != 0) return c;
    }
    return 0;
  };
  // Slices in ascending order (ties by position, so each group starts at its first occurrence).
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return compare(a, b) < 0; });
  std::vector<int64_t> first, counts, group_of(static_cast<size_t>(count));
  for (size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || compare(order[k - 1], order[k]) != 0) {
      first.push_back(order[k]);
      counts.push_back(0);
    }
    group_of[order[k]] = static_cast<int64_t>(first.size()) - 1;
    ++counts.back();
  }
  // Output position of each group: ascending (sorted) or by first occurrence.
  const size_t groups = first.size();
  std::vector<int64_t> rank_of(groups);
  std::iota(rank_of.begin(), rank_of.end(), 0);
  if (ctx.node.get_int("sorted", 1) == 0) {
    std::vector<int64_t> by_first(groups);
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) { return first[a] < first[b]; });
    for (size_t k = 0; k < groups; ++k) rank_of[by_first[k]] = static_cast<int64_t>(k);
  }
  const auto unique = static_cast<int64_t>(groups);
  Shape y_shape = {unique};
  if (has_axis) {
    y_shape = x.shape();
    y_shape[axis] = unique;
  }
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, x.dtype(), y_shape));
  std::vector<int64_t> indices(groups), out_counts(groups), inverse(static_cast<size_t>(count));
  T* yd = y.data<T>();
  for (size_t g = 0; g < groups; ++g) {
    const int64_t pos = rank_of[g];
    indices[pos] = first[g];
    out_counts[pos] = counts[g];
    for (int64_t j = 0; j < slice_len; ++j) {
      yd[(j / inner) * unique * inner + pos * inner + j % inner] = element(first[g], j);
    }
  }
  for (int64_t s = 0; s < count; ++s) inverse[s] = rank_of[group_of[s]];
  ctx.outputs = {y, Tensor::from_vector<int64_t>({unique}, indices),
                 Tensor::from_vector<int64_t>({count}, inverse),
                 Tensor::from_vector<int64_t>({unique}, out_counts)};
  ctx.outputs.resize(static_cast<size_t>(ctx.node.num_outputs()));
  return Status::ok();
}

Status unique_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& in = ctx.input(0);
  const int64_t sorted = ctx.node.get_int("sorted", 1);
  if (sorted != 0 && sorted != 1) return ctx.error("sorted must be 0 or 1, got {}", sorted);
  const bool has_axis = ctx.node.has_attr("axis");
  int axis = 0;
  if (has_axis) {
    const int64_t a = ctx.node.get_int("axis");
    if (in.rank() == 0 || a < -in.rank() || a >= in.rank()) {
      return ctx.error("axis {} out of range for X of rank {}", a, in.rank());
    }
    axis = static_cast<int>(a < 0 ? a + in.rank() : a);
  }
  // f16 / bf16 compare as f32 (exact), bool as u8; Y goes back to the input's dtype.
  const DType original = in.dtype();
  const bool convert = original == DType::f16 || original == DType::bf16 || original == DType::boolean;
  const Tensor x = convert ? in.cast(original == DType::boolean ? DType::u8 : DType::f32) : in;
  Status st = SEQRUN_DISPATCH_NUMERIC(x.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return unique_typed<T>(ctx, x, has_axis, axis);
  });
  SEQRUN_TRY(st);  // every dtype is numeric after the conversion above
  if (convert) ctx.outputs[0] = ctx.outputs[0].cast(original);
  return Status::ok();
}

// det(A) by Gaussian elimination with partial pivoting.
double determinant(std::vector<double> a, int64_t m) {
  double det = 1.0;
  for (int64_t col = 0; col < m; ++col) {
    int64_t pivot = col;
    for (int64_t row = col + 1; row < m; ++row) {
      if (std::fabs(a[row * m + col]) > std::fabs(a[pivot * m + col])) pivot = row;
    }
    if (a[pivot * m + col] == 0.0) return 0.0;
    if (pivot != col) {
      for (int64_t k = 0; k < m; ++k) std::swap(a[col * m + k], a[pivot * m + k]);
      det = -det;
    }
    const double p = a[col * m + col];
    det *= p;
    for (int64_t row = col + 1; row < m; ++row) {
      const double f = a[row * m + col] / p;
      for (int64_t k = col; k < m; ++k) a[row * m + k] -= f * a[col * m + k];
    }
  }
  return det;
}

Status det_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::f32) return ctx.error("X must be a float tensor, got {}", dtype_name(x.dtype()));
  if (x.rank() < 2 || x.dim(-1) != x.dim(-2)) {
    return ctx.error("X must be [..., M, M], got {}", shape_to_string(x.shape()));
  }
  const int64_t m = x.dim(-1);
  const Shape out_shape(x.shape().begin(), x.shape().end() - 2);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, DType::f32, out_shape));
  const float* xd = x.data<float>();
  std::vector<double> a(static_cast<size_t>(m * m));
  for (int64_t b = 0; b < y.numel(); ++b) {
    for (int64_t i = 0; i < m * m; ++i) a[i] = xd[b * m * m + i];
    y.data<float>()[b] = static_cast<float>(determinant(a, m));
  }
  ctx.outputs = {y};
  return Status::ok();
}

}  // namespace

void register_misc_tensor_kernels(KernelRegistry& r) {
  r.add("Unique", unique_kernel);
  r.add("Det", det_kernel, true);
}

}  // namespace seqrun::reference
