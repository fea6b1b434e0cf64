// Affine-in-t evaluation of integer index/shape subgraphs (see ssm_index_eval.h): one small
// interpreter over the ops torch.onnx uses to build ScatterND indices and Reshape/Expand shapes.
#include "passes/ssm_index_eval.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

namespace seqrun::passes::ssm {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 20;  // index tensors are B×D×rank at most
constexpr int kMaxDepth = 256;

using Affine = std::optional<AffineTensor>;

// Element count, or kMaxElements + 1 when it exceeds the limit (or a dim is negative): never overflows.
int64_t count(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0 || (d > 0 && n > kMaxElements / d)) return kMaxElements + 1;
    n *= d;
  }
  return n;
}

bool is_integer_like(DType t) {
  return t == DType::i64 || t == DType::i32 || t == DType::boolean || t == DType::i8 || t == DType::u8 ||
         t == DType::i16;
}

Affine constant_tensor(const Tensor& t) {
  if (!is_integer_like(t.dtype()) || t.numel() > kMaxElements) return std::nullopt;
  AffineTensor a{t.shape(), t.to_i64_vector(), std::vector<int64_t>(static_cast<size_t>(t.numel()), 0)};
  return a;
}

Affine from_vector(Shape shape, std::vector<int64_t> values) {
  AffineTensor a{std::move(shape), std::move(values), {}};
  a.c1.assign(a.c0.size(), 0);
  return a;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

std::optional<Shape> broadcast_shape(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  if (count(out) > kMaxElements) return std::nullopt;
  return out;
}

// Flat index into `in` (broadcast into `out`) of the out element with multi-index `idx`.
int64_t broadcast_offset(const Shape& in, const Shape& out, const std::vector<int64_t>& idx) {
  const std::vector<int64_t> st = strides_of(in);
  int64_t off = 0;
  const size_t shift = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) off += (in[i] == 1 ? 0 : idx[i + shift]) * st[i];
  return off;
}

// Calls fn(flat_out, multi_index) for every element of `shape` in row-major order.
void for_each_index(const Shape& shape, const std::function<void(int64_t, const std::vector<int64_t>&)>& fn) {
  std::vector<int64_t> idx(shape.size(), 0);
  const int64_t n = count(shape);
  for (int64_t i = 0; i < n; ++i) {
    fn(i, idx);
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Elementwise op on broadcast operands; `op` returns false when the result is not affine.
Affine elementwise(const std::vector<AffineTensor>& ins,
                   const std::function<bool(const std::vector<int64_t>&, const std::vector<int64_t>&,
                                            int64_t&, int64_t&)>& op) {
  Shape out = ins[0].shape;
  for (size_t k = 1; k < ins.size(); ++k) {
    auto s = broadcast_shape(out, ins[k].shape);
    if (!s) return std::nullopt;
    out = *s;
  }
  AffineTensor r{out, std::vector<int64_t>(static_cast<size_t>(count(out))), {}};
  r.c1.assign(r.c0.size(), 0);
  bool ok = true;
  std::vector<int64_t> a0(ins.size()), a1(ins.size());
  for_each_index(out, [&](int64_t i, const std::vector<int64_t>& idx) {
    if (!ok) return;
    for (size_t k = 0; k < ins.size(); ++k) {
      const int64_t off = broadcast_offset(ins[k].shape, out, idx);
      a0[k] = ins[k].c0[off];
      a1[k] = ins[k].c1[off];
    }
    ok = op(a0, a1, r.c0[i], r.c1[i]);
  });
  if (!ok) return std::nullopt;
  return r;
}

int normalize_axis(int64_t axis, int rank) {
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// Gathers `in` elements into a new shape: out element i is in element src[i].
AffineTensor gather_elements(const AffineTensor& in, Shape shape, const std::vector<int64_t>& src) {
  AffineTensor r{std::move(shape), std::vector<int64_t>(src.size()), std::vector<int64_t>(src.size())};
  for (size_t i = 0; i < src.size(); ++i) {
    r.c0[i] = in.c0[src[i]];
    r.c1[i] = in.c1[src[i]];
  }
  return r;
}

}  // namespace

bool AffineTensor::depends_on_t() const {
  return std::any_of(c1.begin(), c1.end(), [](int64_t c) { return c != 0; });
}

std::optional<std::vector<int64_t>> AffineEvaluator::eval_constant(const Value* v) {
  Affine a = eval(v);
  if (!a || a->depends_on_t()) return std::nullopt;
  return a->c0;
}

std::optional<Shape> AffineEvaluator::static_shape(const Value* v) {
  if (v == nullptr) return std::nullopt;
  if (auto s = v->type().static_shape()) return Shape(s->begin(), s->end());
  if (!is_integer_like(v->type().dtype())) return std::nullopt;
  Affine a = eval(v);
  if (!a) return std::nullopt;
  return a->shape;
}

Affine AffineEvaluator::eval(const Value* v) {
  if (v == nullptr) return std::nullopt;
  auto it = memo_.find(v);
  if (it != memo_.end()) return it->second;
  if (depth_ >= kMaxDepth) return std::nullopt;
  ++depth_;
  Affine r = compute(v);
  --depth_;
  memo_[v] = r;
  return r;
}

Affine AffineEvaluator::compute(const Value* v) {
  if (v == iteration_) {
    if (!v->type().has_rank() || v->type().rank() != 0) return std::nullopt;
    return AffineTensor{{}, {0}, {1}};
  }
  if (v->is_constant()) return constant_tensor(v->constant());
  const Node* n = v->producer();
  if (n == nullptr || n->num_captures() > 0 || n->num_outputs() != 1) return std::nullopt;
  const std::string& op = n->op();
  if (op == "Shape") {
    auto s = static_shape(n->input(0));
    if (!s) return std::nullopt;
    const int rank = static_cast<int>(s->size());
    int64_t start = n->get_int("start", 0), end = n->has_attr("end") ? n->get_int("end", rank) : rank;
    start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
    end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
    std::vector<int64_t> dims;
    for (int64_t i = start; i < end; ++i) dims.push_back((*s)[i]);
    return from_vector({static_cast<int64_t>(dims.size())}, dims);
  }
  if (op == "Size") {
    auto s = static_shape(n->input(0));
    if (!s) return std::nullopt;
    int64_t n = 1;
    for (int64_t d : *s) {
      if (d > 0 && n > INT64_MAX / d) return std::nullopt;
      n *= d;
    }
    return from_vector({}, {n});
  }
  if (!is_integer_like(v->type().dtype()) && v->type().dtype() != DType::undefined) return std::nullopt;
  if (op == "Identity") return eval(n->input(0));
  if (op == "Cast") {
    Affine x = eval(n->input(0));
    if (!x || !is_integer_like(v->type().dtype())) return std::nullopt;
    if (v->type().dtype() == DType::boolean) {
      if (x->depends_on_t()) return std::nullopt;
      for (int64_t& c : x->c0) c = c != 0 ? 1 : 0;
    }
    return x;
  }
  if (op == "ConstantOfShape") {
    auto s = eval_constant(n->input(0));
    if (!s) return std::nullopt;
    for (int64_t d : *s) {
      if (d < 0) return std::nullopt;
    }
    int64_t fill = 0;
    if (const Attribute* a = n->attr("value")) {
      if (a->type() != AttrType::Tensor) return std::nullopt;
      Affine t = constant_tensor(a->tensor());
      if (!t || t->c0.size() != 1) return std::nullopt;
      fill = t->c0[0];
    }
    if (count(*s) > kMaxElements) return std::nullopt;
    return from_vector(*s, std::vector<int64_t>(static_cast<size_t>(count(*s)), fill));
  }
  if (op == "Range") {
    auto start = eval_constant(n->input(0)), limit = eval_constant(n->input(1)),
         delta = eval_constant(n->input(2));
    if (!start || !limit || !delta || start->size() != 1 || limit->size() != 1 || delta->size() != 1) {
      return std::nullopt;
    }
    const int64_t s = (*start)[0], l = (*limit)[0], d = (*delta)[0];
    if (d == 0) return std::nullopt;
    std::vector<int64_t> vals;
    for (int64_t x = s; (d > 0 ? x < l : x > l) && static_cast<int64_t>(vals.size()) < kMaxElements; x += d) {
      vals.push_back(x);
    }
    return from_vector({static_cast<int64_t>(vals.size())}, vals);
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Equal" || op == "Neg" ||
      op == "Where") {
    std::vector<AffineTensor> ins;
    for (const Value* in : n->inputs()) {
      Affine a = eval(in);
      if (!a) return std::nullopt;
      ins.push_back(*a);
    }
    using V = std::vector<int64_t>;
    if (op == "Add" && ins.size() == 2) {
      return elementwise(ins, [](const V& a0, const V& a1, int64_t& r0, int64_t& r1) {
        r0 = a0[0] + a0[1];
        r1 = a1[0] + a1[1];
        return true;
      });
    }
    if (op == "Sub" && ins.size() == 2) {
      return elementwise(ins, [](const V& a0, const V& a1, int64_t& r0, int64_t& r1) {
        r0 = a0[0] - a0[1];
        r1 = a1[0] - a1[1];
        return true;
      });
    }
    if (op == "Mul" && ins.size() == 2) {
      return elementwise(ins, [](const V& a0, const V& a1, int64_t& r0, int64_t& r1) {
        if (a1[0] != 0 && a1[1] != 0) return false;  // t·t is not affine
        r0 = a0[0] * a0[1];
        r1 = a1[0] * a0[1] + a0[0] * a1[1];
        return true;
      });
    }
    if (op == "Div" && ins.size() == 2) {
      return elementwise(ins, [](const V& a0, const V& a1, int64_t& r0, int64_t& r1) {
        if (a1[0] != 0 || a1[1] != 0 || a0[1] == 0 || a0[0] % a0[1] != 0) return false;  // exact, t-free
        r0 = a0[0] / a0[1];
        r1 = 0;
        return true;
      });
    }
    if (op == "Equal" && ins.size() == 2) {
      return elementwise(ins, [](const V& a0, const V& a1, int64_t& r0, int64_t& r1) {
        if (a1[0] != 0 || a1[1] != 0) return false;
        r0 = a0[0] == a0[1] ? 1 : 0;
        r1 = 0;
        return true;
      });
    }
    if (op == "Neg" && ins.size() == 1) {
      for (auto& c : ins[0].c0) c = -c;
      for (auto& c : ins[0].c1) c = -c;
      return ins[0];
    }
    if (op == "Where" && ins.size() == 3) {
      return elementwise(ins, [](const V& a0, const V& a1, int64_t& r0, int64_t& r1) {
        if (a1[0] != 0) return false;
        r0 = a0[0] != 0 ? a0[1] : a0[2];
        r1 = a0[0] != 0 ? a1[1] : a1[2];
        return true;
      });
    }
    return std::nullopt;
  }
  Affine x = eval(n->input(0));
  if (!x) return std::nullopt;
  const int rank = static_cast<int>(x->shape.size());
  if (op == "Unsqueeze" || op == "Squeeze") {
    std::optional<std::vector<int64_t>> axes;
    if (n->has_input(1)) {
      axes = eval_constant(n->input(1));
      if (!axes) return std::nullopt;
    }
    Shape out;
    if (op == "Unsqueeze") {
      if (!axes) return std::nullopt;
      const int out_rank = rank + static_cast<int>(axes->size());
      std::vector<bool> inserted(out_rank, false);
      for (int64_t a : *axes) {
        const int ax = normalize_axis(a, out_rank);
        if (ax < 0 || ax >= out_rank || inserted[ax]) return std::nullopt;
        inserted[ax] = true;
      }
      for (int i = 0, k = 0; i < out_rank; ++i) out.push_back(inserted[i] ? 1 : x->shape[k++]);
    } else {
      std::vector<bool> removed(rank, false);
      for (int i = 0; i < rank; ++i) removed[i] = !axes && x->shape[i] == 1;
      if (axes) {
        for (int64_t a : *axes) {
          const int ax = normalize_axis(a, rank);
          if (ax < 0 || ax >= rank || x->shape[ax] != 1) return std::nullopt;
          removed[ax] = true;
        }
      }
      for (int i = 0; i < rank; ++i) {
        if (!removed[i]) out.push_back(x->shape[i]);
      }
    }
    x->shape = out;
    return x;
  }
  if (op == "Reshape") {
    auto s = eval_constant(n->input(1));
    if (!s) return std::nullopt;
    Shape out(s->begin(), s->end());
    const bool allowzero = n->get_int("allowzero", 0) != 0;
    int infer_at = -1;
    int64_t known = 1;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == 0 && !allowzero) {
        if (i >= x->shape.size()) return std::nullopt;
        out[i] = x->shape[i];
      }
      if (out[i] == -1) {
        if (infer_at >= 0) return std::nullopt;
        infer_at = static_cast<int>(i);
      } else if (out[i] < 0) {
        return std::nullopt;
      } else {
        known *= out[i];
      }
    }
    const int64_t total = count(x->shape);
    if (infer_at >= 0) {
      if (known == 0 || total % known != 0) return std::nullopt;
      out[infer_at] = total / known;
    }
    if (count(out) != total || total > kMaxElements) return std::nullopt;
    x->shape = out;
    return x;
  }
  if (op == "Expand") {
    auto s = eval_constant(n->input(1));
    if (!s) return std::nullopt;
    auto out = broadcast_shape(x->shape, Shape(s->begin(), s->end()));
    if (!out) return std::nullopt;
    std::vector<int64_t> src(static_cast<size_t>(count(*out)));
    for_each_index(*out, [&](int64_t i, const std::vector<int64_t>& idx) {
      src[i] = broadcast_offset(x->shape, *out, idx);
    });
    return gather_elements(*x, *out, src);
  }
  if (op == "Concat") {
    std::vector<AffineTensor> parts;
    for (const Value* in : n->inputs()) {
      Affine a = eval(in);
      if (!a || a->shape.size() != x->shape.size()) return std::nullopt;
      parts.push_back(*a);
    }
    const int axis = normalize_axis(n->get_int("axis", 0), rank);
    if (axis < 0 || axis >= rank) return std::nullopt;
    Shape out = x->shape;
    out[axis] = 0;
    for (const AffineTensor& p : parts) {
      for (int d = 0; d < rank; ++d) {
        if (d != axis && p.shape[d] != out[d]) return std::nullopt;
      }
      out[axis] += p.shape[axis];
    }
    AffineTensor r{out, {}, {}};
    int64_t outer = 1;
    for (int d = 0; d < axis; ++d) outer *= out[d];
    for (int64_t o = 0; o < outer; ++o) {
      for (const AffineTensor& p : parts) {
        const int64_t chunk = count(p.shape) / std::max<int64_t>(outer, 1);
        r.c0.insert(r.c0.end(), p.c0.begin() + o * chunk, p.c0.begin() + (o + 1) * chunk);
        r.c1.insert(r.c1.end(), p.c1.begin() + o * chunk, p.c1.begin() + (o + 1) * chunk);
      }
    }
    return r;
  }
  if (op == "Slice") {
    auto starts = eval_constant(n->input(1)), ends = eval_constant(n->input(2));
    if (!starts || !ends || starts->size() != ends->size()) return std::nullopt;
    std::vector<int64_t> axes(starts->size()), steps(starts->size(), 1);
    for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
    if (n->has_input(3)) {
      auto a = eval_constant(n->input(3));
      if (!a || a->size() != axes.size()) return std::nullopt;
      axes = *a;
    }
    if (n->has_input(4)) {
      auto s = eval_constant(n->input(4));
      if (!s || s->size() != axes.size()) return std::nullopt;
      steps = *s;
    }
    std::vector<int64_t> begin(rank, 0), step(rank, 1);
    Shape out = x->shape;
    for (size_t i = 0; i < axes.size(); ++i) {
      const int ax = normalize_axis(axes[i], rank);
      if (ax < 0 || ax >= rank || steps[i] == 0) return std::nullopt;
      const int64_t dim = x->shape[ax];
      int64_t s = (*starts)[i], e = (*ends)[i];
      if (s < 0) s += dim;
      if (e < 0) e += dim;
      if (steps[i] > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        out[ax] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        out[ax] = s > e ? (s - e - steps[i] - 1) / -steps[i] : 0;
      }
      begin[ax] = s;
      step[ax] = steps[i];
    }
    const std::vector<int64_t> st = strides_of(x->shape);
    std::vector<int64_t> src(static_cast<size_t>(count(out)));
    for_each_index(out, [&](int64_t i, const std::vector<int64_t>& idx) {
      int64_t off = 0;
      for (int d = 0; d < rank; ++d) off += (begin[d] + idx[d] * step[d]) * st[d];
      src[i] = off;
    });
    return gather_elements(*x, out, src);
  }
  if (op == "Gather") {
    Affine idx = eval(n->input(1));
    if (!idx || idx->depends_on_t() || rank == 0) return std::nullopt;
    const int axis = normalize_axis(n->get_int("axis", 0), rank);
    if (axis < 0 || axis >= rank) return std::nullopt;
    Shape out(x->shape.begin(), x->shape.begin() + axis);
    out.insert(out.end(), idx->shape.begin(), idx->shape.end());
    out.insert(out.end(), x->shape.begin() + axis + 1, x->shape.end());
    if (count(out) > kMaxElements) return std::nullopt;
    const std::vector<int64_t> st = strides_of(x->shape);
    const int q = static_cast<int>(idx->shape.size());
    std::vector<int64_t> src(static_cast<size_t>(count(out)));
    bool ok = true;
    for_each_index(out, [&](int64_t i, const std::vector<int64_t>& o) {
      int64_t flat_idx = 0;
      for (int k = 0; k < q; ++k) flat_idx = flat_idx * idx->shape[k] + o[axis + k];
      int64_t j = idx->c0[flat_idx];
      if (j < 0) j += x->shape[axis];
      if (j < 0 || j >= x->shape[axis]) {
        ok = false;
        return;
      }
      int64_t off = j * st[axis];
      for (int d = 0; d < axis; ++d) off += o[d] * st[d];
      for (int d = axis + 1; d < rank; ++d) off += o[d - 1 + q] * st[d];
      src[i] = off;
    });
    if (!ok) return std::nullopt;
    return gather_elements(*x, out, src);
  }
  return std::nullopt;
}

}  // namespace seqrun::passes::ssm
