// Reference kernels of the nn family: matrix products (MatMul, Gemm, Linear, Einsum) and
// LinearRecurrence here; convolutions, pools, normalizations and resizing live in nn_conv.cpp,
// nn_pool.cpp, nn_norm.cpp and nn_resize.cpp, registered from register_nn_kernels.
//
// Products accept every numeric dtype (floats arrive as f32) and accumulate in double (floats) or
// 64-bit integers, so they are the accuracy baseline for faster kernels. Plain triple loops:
// compute-bound, single-threaded.
#include <algorithm>
#include <map>
#include <type_traits>

#include "backends/reference/kernel.h"
#include "backends/reference/nn_window.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

using namespace nn_detail;

// Integers accumulate in uint64 so that overflow wraps (two's complement) instead of being undefined.
template <typename T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;

template <typename T>
double accumulator_value(Accumulator<T> acc) {
  if constexpr (std::is_floating_point_v<T>) return acc;
  if constexpr (std::is_signed_v<T>) return static_cast<double>(static_cast<int64_t>(acc));
  return static_cast<double>(acc);
}

Status require_same_dtype(const KernelContext& ctx) {
  for (int i = 1; i < ctx.num_inputs(); ++i) {
    if (ctx.has_input(i) && ctx.input(i).dtype() != ctx.input(0).dtype()) {
      return ctx.error("input {} has dtype {} but input 0 has {}", i, dtype_name(ctx.input(i).dtype()),
                       dtype_name(ctx.input(0).dtype()));
    }
  }
  return Status::ok();
}

// Runs fn<T>() for the dtype of input 0 and names the node on an unsupported dtype.
template <typename Fn>
Status dispatch_numeric(const KernelContext& ctx, Fn&& fn) {
  Status st = SEQRUN_DISPATCH_NUMERIC(ctx.input(0).dtype(), fn);
  return st.is_ok() ? st : st.with_context(ctx.node.describe());
}

// ---------------------------------------------------------------------------------------------
// MatMul: numpy semantics. A 1-D A is [1, K] (row dropped after), a 1-D B is [K, 1] (column dropped).

template <typename T>
Status matmul_typed(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.rank() == 0 || b.rank() == 0) {
    return ctx.error("operands must have rank >= 1, got {} and {}", shape_to_string(a.shape()),
                     shape_to_string(b.shape()));
  }
  Shape as = a.shape(), bs = b.shape();
  const bool a_vector = as.size() == 1, b_vector = bs.size() == 1;
  if (a_vector) as.insert(as.begin(), 1);
  if (b_vector) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k) {
    return ctx.error("inner dims differ: A {} has K = {}, B {} has K = {}", shape_to_string(a.shape()), k,
                     shape_to_string(b.shape()), bs[bs.size() - 2]);
  }
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  auto batch = broadcast_shapes({a_batch, b_batch});
  if (!batch) return ctx.error("batch dims: {}", batch.status().message());
  Shape out_shape = *batch;
  if (!a_vector) out_shape.push_back(m);
  if (!b_vector) out_shape.push_back(n);
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, a.dtype(), out_shape));
  const T* ad = a.data<T>();
  const T* bd = b.data<T>();
  T* yd = y.data<T>();
  for_each_broadcast(*batch, {a_batch, b_batch}, [&](int64_t bi, const int64_t* off) {
    const T* ap = ad + off[0] * m * k;
    const T* bp = bd + off[1] * k * n;
    T* yp = yd + bi * m * n;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        Accumulator<T> acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += static_cast<Accumulator<T>>(ap[i * k + p]) * bp[p * n + j];
        yp[i * n + j] = static_cast<T>(acc);
      }
    }
  });
  ctx.outputs = {y};
  return Status::ok();
}

Status matmul_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_same_dtype(ctx));
  return dispatch_numeric(ctx,
                          [&](auto* tag) { return matmul_typed<std::remove_pointer_t<decltype(tag)>>(ctx); });
}

// ---------------------------------------------------------------------------------------------
// Gemm: Y = alpha * A' B' + beta * C

template <typename T>
Status gemm_typed(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.rank() != 2 || b.rank() != 2) {
    return ctx.error("A and B must be 2-D, got {} and {}", shape_to_string(a.shape()),
                     shape_to_string(b.shape()));
  }
  const bool trans_a = ctx.node.get_int("transA") != 0, trans_b = ctx.node.get_int("transB") != 0;
  const int64_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0), n = trans_b ? b.dim(0) : b.dim(1);
  if (k != kb) {
    return ctx.error("inner dims differ: A {} (transA={}) vs B {} (transB={})", shape_to_string(a.shape()),
                     trans_a ? 1 : 0, shape_to_string(b.shape()), trans_b ? 1 : 0);
  }
  const double alpha = ctx.node.get_float("alpha", 1.0f), beta = ctx.node.get_float("beta", 1.0f);
  const Shape out_shape = {m, n};
  std::vector<int64_t> c_strides = {0, 0};
  const T* cd = nullptr;
  if (ctx.has_input(2)) {
    const Tensor& c = ctx.input(2);
    auto bc = broadcast_shapes({c.shape(), out_shape});
    if (c.rank() > 2 || !bc || *bc != out_shape) {
      return ctx.error("C {} does not broadcast to [M, N] = {}", shape_to_string(c.shape()),
                       shape_to_string(out_shape));
    }
    c_strides = broadcast_strides(c.shape(), out_shape);
    cd = c.data<T>();
  }
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, a.dtype(), out_shape));
  const T* ad = a.data<T>();
  const T* bd = b.data<T>();
  T* yd = y.data<T>();
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      Accumulator<T> acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const T av = trans_a ? ad[p * m + i] : ad[i * k + p];
        const T bv = trans_b ? bd[j * k + p] : bd[p * n + j];
        acc += static_cast<Accumulator<T>>(av) * bv;
      }
      double v = alpha * accumulator_value<T>(acc);
      if (cd != nullptr) v += beta * static_cast<double>(cd[i * c_strides[0] + j * c_strides[1]]);
      yd[i * n + j] = saturate_cast<T>(v);
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status gemm_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_same_dtype(ctx));
  return dispatch_numeric(ctx,
                          [&](auto* tag) { return gemm_typed<std::remove_pointer_t<decltype(tag)>>(ctx); });
}

// ---------------------------------------------------------------------------------------------
// Linear: y[..., o] = sum_i x[..., i] * W[o, i] + b[o]

template <typename T>
Status linear_typed(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.rank() == 0 || w.rank() != 2 || x.dim(-1) != w.dim(1)) {
    return ctx.error("x {} and W {} must be [..., in] and [out, in]", shape_to_string(x.shape()),
                     shape_to_string(w.shape()));
  }
  const int64_t in = w.dim(1), out = w.dim(0);
  const T* bd = nullptr;
  if (ctx.has_input(2)) {
    if (ctx.input(2).rank() != 1 || ctx.input(2).dim(0) != out) {
      return ctx.error("bias must be [{}], got {}", out, shape_to_string(ctx.input(2).shape()));
    }
    bd = ctx.input(2).data<T>();
  }
  Shape out_shape = x.shape();
  out_shape.back() = out;
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, x.dtype(), out_shape));
  const int64_t rows = in > 0 ? x.numel() / in : num_elements(Shape(x.shape().begin(), x.shape().end() - 1));
  const T* xd = x.data<T>();
  const T* wd = w.data<T>();
  T* yd = y.data<T>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      Accumulator<T> acc = bd != nullptr ? static_cast<Accumulator<T>>(bd[o]) : 0;
      for (int64_t i = 0; i < in; ++i) acc += static_cast<Accumulator<T>>(xd[r * in + i]) * wd[o * in + i];
      yd[r * out + o] = static_cast<T>(acc);
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status linear_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_same_dtype(ctx));
  return dispatch_numeric(ctx,
                          [&](auto* tag) { return linear_typed<std::remove_pointer_t<decltype(tag)>>(ctx); });
}

// ---------------------------------------------------------------------------------------------
// Einsum. Every distinct letter and every broadcast ('...') dim becomes one loop variable; the
// output variables are walked outside, the summed ones inside. A letter repeated within one operand
// walks that operand's diagonal (its strides add up); a dim of size 1 broadcasts (stride 0).

constexpr int kEllipsisBase = 128;  // loop-variable ids of '...' dims start here (letters use their char)

struct EinsumPlan {
  std::vector<std::vector<int>> operand_vars;  // per operand, per axis: loop variable id
  std::vector<int> output_vars;
  std::map<int, int64_t> var_size;
};

Result<std::vector<int>> parse_einsum_term(const KernelContext& ctx, const std::string& term, int rank,
                                           int* ellipsis_rank) {
  int letters = 0;
  bool has_ellipsis = false;
  for (size_t i = 0; i < term.size(); ++i) {
    const char c = term[i];
    if (c == '.') {
      if (has_ellipsis || term.compare(i, 3, "...") != 0)
        return ctx.error("bad ellipsis in einsum term '{}'", term);
      has_ellipsis = true;
      i += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      ++letters;
    } else {
      return ctx.error("invalid character '{}' in einsum term '{}'", c, term);
    }
  }
  const int ell = rank < 0 ? *ellipsis_rank : rank - letters;  // rank < 0: the output term
  if (ell < 0 || (!has_ellipsis && ell != 0 && rank >= 0)) {
    return ctx.error("einsum term '{}' names {} dims but its operand has rank {}", term, letters, rank);
  }
  if (rank >= 0 && has_ellipsis) *ellipsis_rank = ell;
  std::vector<int> vars;
  for (size_t i = 0; i < term.size(); ++i) {
    if (term[i] == '.') {
      // '...' dims are right-aligned across operands: the last one is kEllipsisBase + 0.
      for (int e = ell - 1; e >= 0; --e) vars.push_back(kEllipsisBase + e);
      i += 2;
    } else {
      vars.push_back(term[i]);
    }
  }
  return vars;
}

Result<EinsumPlan> plan_einsum(const KernelContext& ctx) {
  std::string eq;
  for (char c : ctx.node.get_string("equation")) {
    if (c != ' ') eq += c;
  }
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (static_cast<int>(terms.size()) != ctx.num_inputs()) {
    return ctx.error("equation '{}' has {} operand terms but the node has {} inputs", eq, terms.size(),
                     ctx.num_inputs());
  }
  EinsumPlan plan;
  std::map<int, int> count;
  int max_ellipsis = 0;
  bool any_ellipsis = false;
  for (size_t k = 0; k < terms.size(); ++k) {
    if (!ctx.has_input(static_cast<int>(k))) return ctx.error("operand {} is absent", k);
    const Tensor& t = ctx.input(static_cast<int>(k));
    int ell = 0;
    SEQRUN_ASSIGN(std::vector<int> vars, parse_einsum_term(ctx, terms[k], t.rank(), &ell));
    any_ellipsis |= terms[k].find("...") != std::string::npos;
    max_ellipsis = std::max(max_ellipsis, ell);
    for (size_t axis = 0; axis < vars.size(); ++axis) {
      const int v = vars[axis];
      const int64_t d = t.dim(static_cast<int>(axis));
      if (v < kEllipsisBase) ++count[v];
      auto it = plan.var_size.find(v);
      if (it == plan.var_size.end() || it->second == 1) {
        plan.var_size[v] = d;
      } else if (d != 1 && d != it->second) {
        return ctx.error("equation '{}': dim {} of operand {} is {} but the same index has size {} elsewhere",
                         eq, axis, k, d, it->second);
      }
    }
    plan.operand_vars.push_back(std::move(vars));
  }
  if (arrow != std::string::npos) {
    const std::string out = eq.substr(arrow + 2);
    if (!any_ellipsis && out.find("...") != std::string::npos) {
      return ctx.error("equation '{}': '...' in the output but in no operand", eq);
    }
    SEQRUN_ASSIGN(plan.output_vars, parse_einsum_term(ctx, out, -1, &max_ellipsis));
    for (size_t i = 0; i < plan.output_vars.size(); ++i) {
      const int v = plan.output_vars[i];
      if (plan.var_size.count(v) == 0)
        return ctx.error("equation '{}': output index '{}' is in no operand", eq, static_cast<char>(v));
      for (size_t j = 0; j < i; ++j) {
        if (plan.output_vars[j] == v) return ctx.error("equation '{}': output index repeats", eq);
      }
    }
    if (max_ellipsis > 0 && out.find("...") == std::string::npos) {
      return ctx.error("equation '{}': output omits '...' but operands have broadcast dims", eq);
    }
  } else {
    for (int e = max_ellipsis - 1; e >= 0; --e) plan.output_vars.push_back(kEllipsisBase + e);
    for (const auto& [v, c] : count) {
      if (c == 1) plan.output_vars.push_back(v);
    }
  }
  return plan;
}

template <typename T>
Status einsum_typed(KernelContext& ctx, const EinsumPlan& plan) {
  // Loop variables: output ones first (their order = output axes), then the summed ones.
  std::vector<int> vars = plan.output_vars;
  for (const auto& [v, size] : plan.var_size) {
    if (std::find(vars.begin(), vars.end(), v) == vars.end()) vars.push_back(v);
  }
  const size_t n_out = plan.output_vars.size(), n_vars = vars.size(), n_ops = plan.operand_vars.size();
  std::vector<int64_t> sizes(n_vars);
  for (size_t i = 0; i < n_vars; ++i) sizes[i] = plan.var_size.at(vars[i]);
  // stride[k][i]: how far operand k moves when variable i advances by one.
  std::vector<std::vector<int64_t>> stride(n_ops, std::vector<int64_t>(n_vars, 0));
  for (size_t k = 0; k < n_ops; ++k) {
    const Tensor& t = ctx.input(static_cast<int>(k));
    const std::vector<int64_t> st = row_major_strides(t.shape());
    for (size_t axis = 0; axis < plan.operand_vars[k].size(); ++axis) {
      if (t.dim(static_cast<int>(axis)) == 1) continue;  // broadcast
      const size_t i = std::find(vars.begin(), vars.end(), plan.operand_vars[k][axis]) - vars.begin();
      stride[k][i] += st[axis];
    }
  }
  const Shape out_shape(sizes.begin(), sizes.begin() + n_out);
  const Shape sum_shape(sizes.begin() + n_out, sizes.end());
  SEQRUN_ASSIGN(Tensor y, alloc_output(ctx, ctx.input(0).dtype(), out_shape));
  const int64_t out_total = y.numel(), sum_total = num_elements(sum_shape);
  std::vector<int64_t> idx(n_vars, 0), sum_idx(n_vars - n_out, 0), out_idx(n_out, 0);
  for (int64_t o = 0; o < out_total; ++o, next_index(out_idx, out_shape)) {
    Accumulator<T> acc = 0;
    std::fill(sum_idx.begin(), sum_idx.end(), 0);
    for (int64_t s = 0; s < sum_total; ++s, next_index(sum_idx, sum_shape)) {
      std::copy(out_idx.begin(), out_idx.end(), idx.begin());
      std::copy(sum_idx.begin(), sum_idx.end(), idx.begin() + n_out);
      Accumulator<T> term = 1;
      for (size_t k = 0; k < n_ops; ++k) {
        int64_t off = 0;
        for (size_t i = 0; i < n_vars; ++i) off += stride[k][i] * idx[i];
        term *= static_cast<Accumulator<T>>(ctx.input(static_cast<int>(k)).data<T>()[off]);
      }
      acc += term;
    }
    y.data<T>()[o] = static_cast<T>(acc);
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status einsum_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  SEQRUN_TRY(require_same_dtype(ctx));
  SEQRUN_ASSIGN(EinsumPlan plan, plan_einsum(ctx));
  return dispatch_numeric(
      ctx, [&](auto* tag) { return einsum_typed<std::remove_pointer_t<decltype(tag)>>(ctx, plan); });
}

// ---------------------------------------------------------------------------------------------
// LinearRecurrence: h_t = a_t * h_{t-1} + b_t along `axis`, h_{-1} = h0 (or 0).
// Layout: [outer..., L, inner...]; the state is [outer..., inner...].

Status linear_recurrence_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  for (int i = 0; i < 3; ++i) {
    if (ctx.has_input(i) && ctx.input(i).dtype() != DType::f32) {
      return ctx.error("input {} must be a float tensor, got {}", i, dtype_name(ctx.input(i).dtype()));
    }
  }
  if (a.shape() != b.shape()) {
    return ctx.error("a {} and b {} must have the same shape", shape_to_string(a.shape()),
                     shape_to_string(b.shape()));
  }
  if (b.rank() < 2) return ctx.error("a and b must be [batch, seq, ...], got {}", shape_to_string(b.shape()));
  const int64_t axis_attr = ctx.node.get_int("axis", 1);
  if (axis_attr < -b.rank() || axis_attr >= b.rank()) {
    return ctx.error("axis {} out of range for rank {}", axis_attr, b.rank());
  }
  const int axis = static_cast<int>(axis_attr < 0 ? axis_attr + b.rank() : axis_attr);
  Shape state_shape = b.shape();
  state_shape.erase(state_shape.begin() + axis);
  if (ctx.has_input(2) && ctx.input(2).shape() != state_shape) {
    return ctx.error("h0 {} must be the state shape {}", shape_to_string(ctx.input(2).shape()),
                     shape_to_string(state_shape));
  }
  const int64_t steps = b.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= b.dim(i);
  for (int i = axis + 1; i < b.rank(); ++i) inner *= b.dim(i);
  Tensor h = Tensor::empty(DType::f32, b.shape());
  Tensor last = Tensor::empty(DType::f32, state_shape);
  const float* ad = a.data<float>();
  const float* bd = b.data<float>();
  const float* h0 = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  float* hd = h.data<float>();
  float* ld = last.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      float state = h0 != nullptr ? h0[o * inner + i] : 0.0f;
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t at = (o * steps + t) * inner + i;
        state = ad[at] * state + bd[at];
        hd[at] = state;
      }
      ld[o * inner + i] = state;
    }
  }
  ctx.outputs = {h};
  if (ctx.node.num_outputs() > 1) ctx.outputs.push_back(last);
  return Status::ok();
}

}  // namespace

void register_nn_kernels(KernelRegistry& r) {
  r.add("MatMul", matmul_kernel, true);
  r.add("Gemm", gemm_kernel, true);
  r.add("Linear", linear_kernel, true);
  r.add("Einsum", einsum_kernel, true);
  r.add("LinearRecurrence", linear_recurrence_kernel, true);
  register_conv_kernels(r);
  register_pool_kernels(r);
  register_norm_kernels(r);
  register_resize_kernels(r);
}

}  // namespace seqrun::reference
