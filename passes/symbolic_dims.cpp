// Symbolic dims for pattern-matching passes (see symbolic_dims.h): SymDim arithmetic and the sizes
// ShapeReasoner derives through producers (Transpose, Reshape, broadcasting, MatMul, Expand, ...).
#include "passes/symbolic_dims.h"

#include <algorithm>
#include <limits>
#include <set>

#include "passes/symbolic_internal.h"

namespace seqrun::passes {

namespace symbolic {

bool same_shape_as_first_input(const std::string& op) {
  static const std::set<std::string> ops = {"Identity",
                                            "Cast",
                                            "CastLike",
                                            "Neg",
                                            "Abs",
                                            "Exp",
                                            "Log",
                                            "Sqrt",
                                            "Rsqrt",
                                            "Reciprocal",
                                            "Relu",
                                            "Sigmoid",
                                            "Tanh",
                                            "Erf",
                                            "Sin",
                                            "Cos",
                                            "Softplus",
                                            "Elu",
                                            "Gelu",
                                            "Silu",
                                            "Softmax",
                                            "LogSoftmax",
                                            "Hardmax",
                                            "Not",
                                            "Dropout",
                                            "Trilu",
                                            "LayerNormalization",
                                            "LayerNorm",
                                            "RMSNormalization",
                                            "RMSNorm",
                                            "Clip",
                                            "LeakyRelu",
                                            "HardSigmoid",
                                            "HardSwish",
                                            "Floor",
                                            "Ceil",
                                            "Round",
                                            "Sign",
                                            "IsNaN",
                                            "IsInf",
                                            "CumSum",
                                            "Mish",
                                            "Selu",
                                            "Celu",
                                            "ThresholdedRelu",
                                            "Shrink",
                                            "Softsign",
                                            "Tan",
                                            "Atan",
                                            "Asin",
                                            "Acos",
                                            "Sinh",
                                            "Cosh",
                                            "BitwiseNot",
                                            "RotaryEmbedding"};
  return ops.count(op) > 0;
}

bool broadcasting_elementwise(const std::string& op) {
  static const std::set<std::string> ops = {
      "Add",   "Sub",   "Mul",      "Div",   "Pow",  "Max",        "Min",         "Mod",
      "And",   "Or",    "Xor",      "Equal", "Less", "Greater",    "LessOrEqual", "GreaterOrEqual",
      "Where", "PRelu", "BitShift", "Sum",   "Mean", "BitwiseAnd", "BitwiseOr",   "BitwiseXor"};
  return ops.count(op) > 0;
}

}  // namespace symbolic

using namespace symbolic;

// ------------------------------------------------------------------------------------------------ SymDim

SymDim SymDim::of(int64_t value) {
  SymDim d;
  d.known_ = true;
  d.coeff_ = value;
  return d;
}

SymDim SymDim::atom(std::string key) {
  SymDim d;
  d.known_ = true;
  d.coeff_ = 1;
  d.atoms_.push_back(std::move(key));
  return d;
}

SymDim SymDim::times(const SymDim& o) const {
  if (!known_ || !o.known_) return SymDim();
  if (coeff_ == 0 || o.coeff_ == 0) return of(0);
  SymDim d;
  d.known_ = true;
  d.coeff_ = coeff_ * o.coeff_;
  d.atoms_ = atoms_;
  d.atoms_.insert(d.atoms_.end(), o.atoms_.begin(), o.atoms_.end());
  std::sort(d.atoms_.begin(), d.atoms_.end());
  return d;
}

SymDim SymDim::divided_by(const SymDim& o) const {
  if (!known_ || !o.known_ || o.coeff_ == 0 || coeff_ % o.coeff_ != 0) return SymDim();
  std::vector<std::string> rest = atoms_;
  for (const std::string& a : o.atoms_) {
    auto it = std::find(rest.begin(), rest.end(), a);
    if (it == rest.end()) return SymDim();
    rest.erase(it);
  }
  SymDim d;
  d.known_ = true;
  d.coeff_ = coeff_ / o.coeff_;
  d.atoms_ = std::move(rest);
  return d;
}

SymDim SymDim::plus(const SymDim& o) const {
  if (!known_ || !o.known_) return SymDim();
  if (coeff_ == 0) return o;
  if (o.coeff_ == 0) return *this;
  if (atoms_ != o.atoms_) return SymDim();
  SymDim d = *this;
  d.coeff_ += o.coeff_;
  if (d.coeff_ == 0) return of(0);
  return d;
}

SymDim SymDim::minus(const SymDim& o) const {
  if (!o.known_) return SymDim();
  SymDim neg = o;
  neg.coeff_ = -neg.coeff_;
  return plus(neg);
}

bool SymDim::operator==(const SymDim& o) const {
  return known_ && o.known_ && coeff_ == o.coeff_ && atoms_ == o.atoms_;
}

std::string SymDim::to_string() const {
  if (!known_) return "?";
  if (atoms_.empty()) return std::to_string(coeff_);
  std::string s = coeff_ == 1 ? "" : std::to_string(coeff_) + "*";
  for (size_t i = 0; i < atoms_.size(); ++i) s += (i ? "*" : "") + atoms_[i];
  return s;
}

SymDim broadcast_dim(const std::vector<SymDim>& sizes) {
  // Sizes that are provably 1 do not decide the result; among the rest, all must agree, or one
  // static size > 1 decides (a successful broadcast makes every other size 1 or equal to it).
  std::vector<SymDim> rest;
  for (const SymDim& s : sizes) {
    if (!s.is(1)) rest.push_back(s);
  }
  if (rest.empty()) return SymDim::of(1);
  bool all_equal = true;
  for (const SymDim& s : rest) all_equal = all_equal && s == rest[0];
  if (all_equal) return rest[0];
  for (const SymDim& s : rest) {
    if (s.is_static() && s.value() > 1) return s;
  }
  return SymDim();
}

// ------------------------------------------------------------------------------------------ ShapeReasoner

int ShapeReasoner::rank(const Value* v) {
  if (v == nullptr || !v->type().has_rank()) return -1;
  return v->type().rank();
}

void ShapeReasoner::clear() {
  dims_memo_.clear();
  elements_memo_.clear();
}

std::optional<std::vector<SymDim>> ShapeReasoner::dims(const Value* v) {
  const int r = rank(v);
  if (r < 0) return std::nullopt;
  auto it = dims_memo_.find(v);
  if (it != dims_memo_.end()) return it->second;
  DepthGuard guard(&depth_);
  std::vector<SymDim> out(r);
  for (int a = 0; a < r; ++a) {
    const Dim& d = v->type().dim(a);
    if (d.is_static()) {
      out[a] = SymDim::of(d.value());
    } else if (d.is_symbol()) {
      out[a] = SymDim::atom(d.symbol_name());
    } else {
      SymDim derived = guard.too_deep() ? SymDim() : derive_dim(v, a, r);
      out[a] = derived.known() ? derived : SymDim::atom("%" + v->name() + ":" + std::to_string(a));
    }
  }
  if (!guard.too_deep()) dims_memo_[v] = out;
  return out;
}

SymDim ShapeReasoner::dim(const Value* v, int axis) {
  auto d = dims(v);
  if (!d) return SymDim();
  const int r = static_cast<int>(d->size());
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return SymDim();
  return (*d)[axis];
}

SymDim ShapeReasoner::derive_dim(const Value* v, int axis, int r) {
  const Node* n = producer_of(v);
  if (n == nullptr) return SymDim();
  const std::string& op = n->op();
  const Value* in0 = n->input(0);
  if (same_shape_as_first_input(op) && v == n->output(0)) {
    return rank(in0) == r ? dim(in0, axis) : SymDim();
  }
  if (broadcasting_elementwise(op)) {
    std::vector<SymDim> sizes;
    for (int i = 0; i < n->num_explicit_inputs(); ++i) {
      const Value* in = n->input(i);
      const int ri = rank(in);
      if (ri < 0) return SymDim();
      const int a = axis - (r - ri);
      if (a >= 0) sizes.push_back(dim(in, a));
    }
    return broadcast_dim(sizes);
  }
  if (op == "Transpose") {
    std::vector<int64_t> perm = n->get_ints("perm");
    if (perm.empty()) {
      for (int i = r - 1; i >= 0; --i) perm.push_back(i);
    }
    if (static_cast<int>(perm.size()) != r) return SymDim();
    return dim(in0, static_cast<int>(perm[axis]));
  }
  if (op == "Reshape") {
    auto target = elements(n->input(1));
    if (!target || static_cast<int>(target->size()) != r) return SymDim();
    const SymDim& t = (*target)[axis];
    const bool allowzero = n->get_int("allowzero", 0) != 0;
    if (t.is(0) && !allowzero) return dim(in0, axis);
    if (t.is(-1)) {
      auto in_dims = dims(in0);
      if (!in_dims) return SymDim();
      SymDim numel = SymDim::of(1);
      for (const SymDim& d : *in_dims) numel = numel.times(d);
      SymDim others = SymDim::of(1);
      for (int k = 0; k < r; ++k) {
        if (k == axis) continue;
        SymDim tk = (*target)[k];
        if (tk.is(0) && !allowzero) tk = dim(in0, k);
        if (!tk.known() || (tk.is_static() && tk.value() < 0)) return SymDim();
        others = others.times(tk);
      }
      return numel.divided_by(others);
    }
    if (t.is_static() && t.value() < 0) return SymDim();
    return t;
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const int ri = rank(in0);
    if (ri < 0) return SymDim();
    auto axes = const_ints(n->input(1));
    if (!axes) return SymDim();
    std::vector<bool> marked(op == "Unsqueeze" ? r : ri, false);
    for (int64_t a : *axes) {
      const int64_t span = static_cast<int64_t>(marked.size());
      if (a < 0) a += span;
      if (a < 0 || a >= span) return SymDim();
      marked[a] = true;
    }
    if (op == "Unsqueeze") {
      if (marked[axis]) return SymDim::of(1);
      int src = 0;
      for (int k = 0; k < axis; ++k) src += marked[k] ? 0 : 1;
      return dim(in0, src);
    }
    int seen = -1;
    for (int k = 0; k < ri; ++k) {
      if (marked[k]) continue;
      if (++seen == axis) return dim(in0, k);
    }
    return SymDim();
  }
  if (op == "MatMul") {
    const Value* b = n->input(1);
    const int ra = rank(in0), rb = rank(b);
    if (ra < 2 || rb < 2) return SymDim();
    if (axis == r - 1) return dim(b, rb - 1);
    if (axis == r - 2) return dim(in0, ra - 2);
    std::vector<SymDim> sizes;
    const int a_axis = axis - (r - ra), b_axis = axis - (r - rb);
    if (a_axis >= 0) sizes.push_back(dim(in0, a_axis));
    if (b_axis >= 0) sizes.push_back(dim(b, b_axis));
    return broadcast_dim(sizes);
  }
  if (op == "Expand") {
    auto shape = elements(n->input(1));
    const int ri = rank(in0);
    if (!shape || ri < 0) return SymDim();
    std::vector<SymDim> sizes;
    const int s_axis = axis - (r - static_cast<int>(shape->size()));
    const int i_axis = axis - (r - ri);
    if (s_axis >= 0) sizes.push_back((*shape)[s_axis]);
    if (i_axis >= 0) sizes.push_back(dim(in0, i_axis));
    return broadcast_dim(sizes);
  }
  if (op == "Concat") {
    int64_t cat = n->get_int("axis", 0);
    if (cat < 0) cat += r;
    if (cat != axis) return dim(in0, axis);
    SymDim total = SymDim::of(0);
    for (int i = 0; i < n->num_explicit_inputs(); ++i) total = total.plus(dim(n->input(i), axis));
    return total;
  }
  if (op == "Split") {
    int64_t split_axis = n->get_int("axis", 0);
    if (split_axis < 0) split_axis += r;
    if (split_axis != axis) return dim(in0, axis);
    int out_index = 0;
    while (out_index < n->num_outputs() && n->output(out_index) != v) ++out_index;
    auto sizes = const_ints(n->input(1));
    if (sizes && out_index < static_cast<int>(sizes->size())) return SymDim::of((*sizes)[out_index]);
    SymDim whole = dim(in0, axis);
    if (!sizes && whole.is_static() && whole.value() % n->num_outputs() == 0) {
      return SymDim::of(whole.value() / n->num_outputs());
    }
    return SymDim();
  }
  if (op == "Slice") {
    // Axes not sliced keep their size; the sliced axis needs static bounds (or a whole-axis slice).
    std::optional<std::vector<int64_t>> axes, steps;
    if (n->input(3) != nullptr) {
      axes = const_ints(n->input(3));
      if (!axes) return SymDim();
    }
    auto starts = elements(n->input(1));
    auto ends = elements(n->input(2));
    const size_t count = axes ? axes->size() : starts ? starts->size() : 0;
    if (!axes && !starts) return SymDim();
    int sliced = -1;
    for (size_t k = 0; k < count; ++k) {
      int64_t a = axes ? (*axes)[k] : static_cast<int64_t>(k);
      if (a < 0) a += r;
      if (a == axis) sliced = static_cast<int>(k);
    }
    if (sliced < 0) return dim(in0, axis);
    if (n->input(4) != nullptr) steps = const_ints(n->input(4));
    if (!starts || !ends || starts->size() != count || ends->size() != count ||
        (n->input(4) != nullptr && (!steps || steps->size() != count))) {
      return SymDim();
    }
    const SymDim& start_d = (*starts)[sliced];
    const SymDim& end_d = (*ends)[sliced];
    const int64_t step = steps ? (*steps)[sliced] : 1;
    SymDim whole = dim(in0, axis);
    if (step == 1 && start_d.is(0) && end_d.is_static() &&
        end_d.value() >= std::numeric_limits<int32_t>::max()) {
      return whole;
    }
    if (!whole.is_static() || !start_d.is_static() || !end_d.is_static() || step == 0) return SymDim();
    const int64_t size = whole.value();
    auto clampi = [&](int64_t x, int64_t lo, int64_t hi) { return std::min(std::max(x, lo), hi); };
    int64_t s = start_d.value() < 0 ? start_d.value() + size : start_d.value();
    int64_t e = end_d.value() < 0 ? end_d.value() + size : end_d.value();
    if (step > 0) {
      s = clampi(s, 0, size);
      e = clampi(e, 0, size);
      return SymDim::of(e > s ? (e - s + step - 1) / step : 0);
    }
    s = clampi(s, -1, size - 1);
    e = clampi(e, -1, size - 1);
    return SymDim::of(s > e ? (s - e - step - 1) / (-step) : 0);
  }
  if (op == "Einsum") {
    // Explicit equations without ellipsis: an output label's size is that label's size in an input.
    const std::string eq = n->get_string("equation");
    const size_t arrow = eq.find("->");
    if (arrow == std::string::npos || eq.find("...") != std::string::npos) return SymDim();
    std::string out_labels;
    for (char c : eq.substr(arrow + 2)) {
      if (c != ' ') out_labels += c;
    }
    if (static_cast<int>(out_labels.size()) != r) return SymDim();
    const char label = out_labels[axis];
    int input = 0, pos = 0;
    for (char c : eq.substr(0, arrow)) {
      if (c == ' ') continue;
      if (c == ',') {
        ++input;
        pos = 0;
        continue;
      }
      if (c == label && input < n->num_explicit_inputs()) return dim(n->input(input), pos);
      ++pos;
    }
    return SymDim();
  }
  if (op == "Gather") {
    const Value* idx = n->input(1);
    const int rd = rank(in0), ri = rank(idx);
    if (rd < 0 || ri < 0) return SymDim();
    int64_t g = n->get_int("axis", 0);
    if (g < 0) g += rd;
    if (axis < g) return dim(in0, axis);
    if (axis < g + ri) return dim(idx, static_cast<int>(axis - g));
    return dim(in0, static_cast<int>(axis - ri + 1));
  }
  if (op == "Range") {
    auto start = scalar(n->input(0));
    auto limit = scalar(n->input(1));
    auto delta = scalar(n->input(2));
    if (!start || !limit || !delta) return SymDim();
    if (start->is(0) && delta->is(1)) return *limit;
    if (start->is_static() && limit->is_static() && delta->is_static() && delta->value() != 0) {
      const int64_t span = limit->value() - start->value(), step = delta->value();
      const int64_t count = span / step + (span % step != 0 ? 1 : 0);
      return SymDim::of(std::max<int64_t>(count, 0));
    }
    return SymDim();
  }
  if (op == "ConstantOfShape") {
    auto shape = elements(in0);
    if (!shape || static_cast<int>(shape->size()) != r) return SymDim();
    return (*shape)[axis];
  }
  if (op == "Pad") {
    auto pads = elements(n->input(1));
    if (!pads) return SymDim();
    std::vector<int64_t> axes;
    if (n->input(3) != nullptr) {
      auto a = const_ints(n->input(3));
      if (!a) return SymDim();
      axes = *a;
    } else {
      for (int k = 0; k < r; ++k) axes.push_back(k);
    }
    if (pads->size() != 2 * axes.size()) return SymDim();
    for (size_t k = 0; k < axes.size(); ++k) {
      int64_t a = axes[k] < 0 ? axes[k] + r : axes[k];
      if (a != axis) continue;
      return dim(in0, axis).plus((*pads)[k]).plus((*pads)[k + axes.size()]);
    }
    return dim(in0, axis);
  }
  if (op == "Tile") {
    auto repeats = elements(n->input(1));
    if (!repeats || static_cast<int>(repeats->size()) != r) return SymDim();
    return dim(in0, axis).times((*repeats)[axis]);
  }
  if (op.rfind("Reduce", 0) == 0 || op == "ArgMax" || op == "ArgMin") {
    if (n->get_int("keepdims", 1) == 0 || rank(in0) != r) return SymDim();
    std::optional<std::vector<int64_t>> axes;
    if (op == "ArgMax" || op == "ArgMin") {
      axes = std::vector<int64_t>{n->get_int("axis", 0)};
    } else if (n->input(1) != nullptr) {
      axes = const_ints(n->input(1));
    } else if (n->has_attr("axes")) {
      axes = n->get_ints("axes");
    } else {
      return SymDim::of(1);  // every axis reduced
    }
    if (!axes) return SymDim();
    for (int64_t a : *axes) {
      if ((a < 0 ? a + r : a) == axis) return SymDim::of(1);
    }
    return dim(in0, axis);
  }
  return SymDim();
}

}  // namespace seqrun::passes
