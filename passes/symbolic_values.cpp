// Small-tensor evaluation for pattern-matching passes (see symbolic_dims.h): the elements of shape
// vectors (Shape -> Gather -> Concat -> ...) as SymDims, and one-element float constants computed from
// constants the way the graph computes them.
#include <algorithm>
#include <cmath>

#include "passes/symbolic_dims.h"
#include "passes/symbolic_internal.h"

namespace seqrun::passes {

using namespace symbolic;

namespace {

bool is_one_of(const std::string& op, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (op == n) return true;
  }
  return false;
}

// Rounds a double to what storing it in `dtype` keeps.
double round_to(double v, DType dtype) {
  if (dtype == DType::f64 || !is_float(dtype)) return v;
  if (dtype == DType::f32) return static_cast<double>(static_cast<float>(v));
  Tensor t = Tensor::from_vector<float>({1}, {static_cast<float>(v)}).cast(dtype);
  return t.get_f64(0);
}

}  // namespace

std::optional<std::vector<SymDim>> ShapeReasoner::elements(const Value* v) {
  if (v == nullptr) return std::nullopt;
  auto it = elements_memo_.find(v);
  if (it != elements_memo_.end()) return it->second;
  DepthGuard guard(&depth_);
  if (guard.too_deep()) return std::nullopt;
  std::optional<std::vector<SymDim>> out = derive_elements(v);
  elements_memo_[v] = out;
  return out;
}

std::optional<SymDim> ShapeReasoner::scalar(const Value* v) {
  auto e = elements(v);
  if (!e || e->size() != 1) return std::nullopt;
  return (*e)[0];
}

std::optional<std::vector<SymDim>> ShapeReasoner::derive_elements(const Value* v) {
  if (v->is_constant()) {
    const Tensor& t = v->constant();
    if (t.numel() > kMaxElements) return std::nullopt;
    std::vector<SymDim> out;
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (is_float(t.dtype())) {
        const double x = t.get_f64(i);
        if (!(std::fabs(x) < 9e15) || x != std::floor(x)) return std::nullopt;
        out.push_back(SymDim::of(static_cast<int64_t>(x)));
      } else {
        out.push_back(SymDim::of(t.get_i64(i)));
      }
    }
    return out;
  }
  const Node* n = producer_of(v);
  if (n == nullptr) return std::nullopt;
  const std::string& op = n->op();
  const Value* in0 = n->input(0);
  if (op == "Shape") {
    auto d = dims(in0);
    if (!d) return std::nullopt;
    const int64_t r = static_cast<int64_t>(d->size());
    int64_t start = n->get_int("start", 0);
    int64_t end = n->has_attr("end") ? n->get_int("end", r) : r;
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, start, r);
    return std::vector<SymDim>(d->begin() + start, d->begin() + end);
  }
  if (op == "Size") {
    auto d = dims(in0);
    if (!d) return std::nullopt;
    SymDim p = SymDim::of(1);
    for (const SymDim& x : *d) p = p.times(x);
    return std::vector<SymDim>{p};
  }
  if (op == "Identity" || op == "Unsqueeze" || op == "Squeeze" || op == "Reshape" || op == "Flatten") {
    return elements(in0);
  }
  if (op == "Cast") {
    auto e = elements(in0);
    if (!e) return std::nullopt;
    const DType to = v->type().dtype();
    if (to == DType::boolean) {
      for (SymDim& x : *e) {
        if (!x.is_static()) return std::nullopt;
        x = SymDim::of(x.value() != 0 ? 1 : 0);
      }
    }
    return e;
  }
  if (op == "Concat") {
    std::vector<SymDim> out;
    for (int i = 0; i < n->num_explicit_inputs(); ++i) {
      auto e = elements(n->input(i));
      if (!e) return std::nullopt;
      out.insert(out.end(), e->begin(), e->end());
    }
    return out;
  }
  if (op == "Gather") {
    auto data = elements(in0);
    auto idx = elements(n->input(1));
    if (!data || !idx || ShapeReasoner::rank(in0) != 1) return std::nullopt;
    std::vector<SymDim> out;
    const int64_t size = static_cast<int64_t>(data->size());
    for (const SymDim& i : *idx) {
      if (!i.is_static()) return std::nullopt;
      int64_t k = i.value() < 0 ? i.value() + size : i.value();
      if (k < 0 || k >= size) return std::nullopt;
      out.push_back((*data)[k]);
    }
    return out;
  }
  if (op == "Split") {
    auto data = elements(in0);
    if (!data || ShapeReasoner::rank(in0) != 1) return std::nullopt;
    int out_index = 0;
    while (out_index < n->num_outputs() && n->output(out_index) != v) ++out_index;
    std::vector<int64_t> sizes;
    if (auto given = const_ints(n->input(1))) {
      sizes = *given;
    } else {
      const int64_t parts = n->num_outputs(), total = static_cast<int64_t>(data->size());
      if (parts == 0 || total % parts != 0) return std::nullopt;
      sizes.assign(parts, total / parts);
    }
    if (out_index >= static_cast<int>(sizes.size())) return std::nullopt;
    int64_t begin = 0;
    for (int k = 0; k < out_index; ++k) begin += sizes[k];
    if (begin < 0 || sizes[out_index] < 0 || begin + sizes[out_index] > static_cast<int64_t>(data->size())) {
      return std::nullopt;
    }
    return std::vector<SymDim>(data->begin() + begin, data->begin() + begin + sizes[out_index]);
  }
  if (op == "Slice") {
    auto data = elements(in0);
    auto starts = const_ints(n->input(1));
    auto ends = const_ints(n->input(2));
    if (!data || !starts || !ends || starts->size() != 1 || ends->size() != 1) return std::nullopt;
    if (n->input(4) != nullptr) {
      auto steps = const_ints(n->input(4));
      if (!steps || steps->size() != 1 || (*steps)[0] != 1) return std::nullopt;
    }
    const int64_t size = static_cast<int64_t>(data->size());
    int64_t s = (*starts)[0], e = (*ends)[0];
    if (s < 0) s += size;
    if (e < 0) e += size;
    s = std::clamp<int64_t>(s, 0, size);
    e = std::clamp<int64_t>(e, s, size);
    return std::vector<SymDim>(data->begin() + s, data->begin() + e);
  }
  if (op == "Expand") {
    auto data = elements(in0);
    auto shape = elements(n->input(1));
    if (!data || !shape || shape->size() != 1 || !(*shape)[0].is_static()) return std::nullopt;
    const int64_t count = (*shape)[0].value();
    if (data->size() == 1 && count >= 1 && count <= kMaxElements)
      return std::vector<SymDim>(count, (*data)[0]);
    if (static_cast<int64_t>(data->size()) == count || count == 1) return data;
    return std::nullopt;
  }
  if (op == "ConstantOfShape") {
    auto shape = elements(in0);
    if (!shape) return std::nullopt;
    int64_t count = 1;
    for (const SymDim& d : *shape) {
      if (!d.is_static() || d.value() < 0) return std::nullopt;
      count *= d.value();
      if (count > kMaxElements) return std::nullopt;
    }
    int64_t fill = 0;
    if (const Attribute* a = n->attr("value")) {
      const Tensor& t = a->tensor();
      if (t.numel() != 1) return std::nullopt;
      const double x = t.get_f64(0);
      if (x != std::floor(x)) return std::nullopt;
      fill = static_cast<int64_t>(x);
    }
    return std::vector<SymDim>(count, SymDim::of(fill));
  }
  if (op == "Range") {
    auto start = scalar(in0);
    auto limit = scalar(n->input(1));
    auto delta = scalar(n->input(2));
    if (!start || !limit || !delta || !start->is_static() || !limit->is_static() || !delta->is_static() ||
        delta->value() == 0) {
      return std::nullopt;
    }
    std::vector<SymDim> out;
    for (int64_t x = start->value(); delta->value() > 0 ? x < limit->value() : x > limit->value();
         x += delta->value()) {
      out.push_back(SymDim::of(x));
      if (static_cast<int64_t>(out.size()) > kMaxElements) return std::nullopt;
    }
    return out;
  }
  if (op == "Neg" || op == "Not" || op == "Abs") {
    auto e = elements(in0);
    if (!e) return std::nullopt;
    for (SymDim& x : *e) {
      if (op == "Neg") {
        x = SymDim::of(0).minus(x);
      } else if (!x.is_static()) {
        return std::nullopt;
      } else {
        x = SymDim::of(op == "Not" ? (x.value() == 0 ? 1 : 0) : std::abs(x.value()));
      }
    }
    return e;
  }
  if (broadcasting_elementwise(op) && n->num_explicit_inputs() <= 3) {
    std::vector<std::vector<SymDim>> args;
    size_t count = 1;
    for (int i = 0; i < n->num_explicit_inputs(); ++i) {
      auto e = elements(n->input(i));
      if (!e || ShapeReasoner::rank(n->input(i)) > 1) return std::nullopt;
      if (e->size() != 1) {
        if (count != 1 && count != e->size()) return std::nullopt;
        count = e->size();
      }
      args.push_back(std::move(*e));
    }
    const bool integer_out = !is_float(v->type().dtype());
    std::vector<SymDim> out;
    for (size_t k = 0; k < count; ++k) {
      auto at = [&](size_t i) { return args[i].size() == 1 ? args[i][0] : args[i][k]; };
      const SymDim a = at(0);
      const SymDim b = args.size() > 1 ? at(1) : SymDim();
      SymDim r;
      const bool both_static = a.is_static() && b.is_static();
      if (op == "Add") {
        r = a.plus(b);
      } else if (op == "Sub") {
        r = a.minus(b);
      } else if (op == "Mul") {
        r = a.times(b);
      } else if (op == "Div") {
        if (both_static && b.value() != 0 && integer_out) {
          r = SymDim::of(a.value() / b.value());
        } else {
          r = a.divided_by(b);
        }
      } else if (op == "Mod" && both_static && b.value() != 0) {
        r = SymDim::of(a.value() % b.value());
      } else if ((op == "Max" || op == "Min") && both_static) {
        r = SymDim::of(op == "Max" ? std::max(a.value(), b.value()) : std::min(a.value(), b.value()));
      } else if (op == "Equal") {
        if (a == b) {
          r = SymDim::of(1);
        } else if (both_static) {
          r = SymDim::of(0);
        } else if ((a.known() && !a.is_static() && b.is_static() && b.value() < 0) ||
                   (b.known() && !b.is_static() && a.is_static() && a.value() < 0)) {
          r = SymDim::of(0);  // sizes are never negative
        }
      } else if ((op == "Less" || op == "Greater" || op == "LessOrEqual" || op == "GreaterOrEqual") &&
                 both_static) {
        const int64_t x = a.value(), y = b.value();
        const bool t = op == "Less" ? x < y : op == "Greater" ? x > y : op == "LessOrEqual" ? x <= y : x >= y;
        r = SymDim::of(t ? 1 : 0);
      } else if ((op == "And" || op == "Or") && both_static) {
        const bool t = op == "And" ? (a.value() != 0 && b.value() != 0) : (a.value() != 0 || b.value() != 0);
        r = SymDim::of(t ? 1 : 0);
      } else if (op == "Where" && args.size() == 3 && a.is_static()) {
        r = a.value() != 0 ? b : at(2);
      }
      if (!r.known()) return std::nullopt;
      out.push_back(r);
    }
    return out;
  }
  return std::nullopt;
}

std::optional<double> ShapeReasoner::constant_value(const Value* v) {
  if (v == nullptr) return std::nullopt;
  DepthGuard guard(&depth_);
  if (guard.too_deep()) return std::nullopt;
  return derive_constant(v);
}

std::optional<double> ShapeReasoner::derive_constant(const Value* v) {
  if (v->is_constant()) {
    const Tensor& t = v->constant();
    if (t.numel() != 1) return std::nullopt;
    return t.get_f64(0);
  }
  const Node* n = producer_of(v);
  if (n == nullptr) return std::nullopt;
  const std::string& op = n->op();
  const DType dtype = v->type().dtype();
  if (!is_float(dtype)) {
    auto s = scalar(v);
    if (s && s->is_static()) return static_cast<double>(s->value());
    return std::nullopt;
  }
  auto arg = [&](int i) -> std::optional<double> { return constant_value(n->input(i)); };
  std::optional<double> a = arg(0);
  if (!a) return std::nullopt;
  double r;
  if (is_one_of(op,
                {"Identity", "Cast", "CastLike", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand"})) {
    r = *a;
  } else if (op == "Sqrt") {
    r = std::sqrt(*a);
  } else if (op == "Neg") {
    r = -*a;
  } else if (op == "Reciprocal") {
    r = 1.0 / *a;
  } else if (op == "Exp") {
    r = std::exp(*a);
  } else if (is_one_of(op, {"Add", "Sub", "Mul", "Div", "Pow"}) && n->num_explicit_inputs() == 2) {
    std::optional<double> b = arg(1);
    if (!b) return std::nullopt;
    r = op == "Add"   ? *a + *b
        : op == "Sub" ? *a - *b
        : op == "Mul" ? *a * *b
        : op == "Div" ? *a / *b
                      : std::pow(*a, *b);
  } else {
    return std::nullopt;
  }
  return round_to(r, dtype);
}

}  // namespace seqrun::passes
