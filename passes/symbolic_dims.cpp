// Symbolic dims and small-tensor evaluation for pattern-matching passes (see symbolic_dims.h).
#include "passes/symbolic_dims.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace seqrun::passes {

namespace {

constexpr int kMaxDepth = 256;
constexpr int64_t kMaxElements = 4096;

// RAII depth counter: long producer chains give up instead of overflowing the stack.
class DepthGuard {
 public:
  explicit DepthGuard(int* depth) : depth_(depth) { ++*depth_; }
  ~DepthGuard() { --*depth_; }
  bool too_deep() const { return *depth_ > kMaxDepth; }

 private:
  int* depth_;
};

const Node* producer_of(const Value* v) {
  if (v == nullptr || v->role() != Value::Role::Intermediate) return nullptr;
  const Node* n = v->producer();
  return n != nullptr && n->num_captures() == 0 ? n : nullptr;
}

std::optional<std::vector<int64_t>> const_ints(const Value* v) {
  if (v == nullptr || !v->is_constant()) return std::nullopt;
  const Tensor& t = v->constant();
  if (!is_integer(t.dtype()) || t.numel() > kMaxElements) return std::nullopt;
  return t.to_i64_vector();
}

bool is_one_of(const std::string& op, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (op == n) return true;
  }
  return false;
}

// Ops whose output 0 has the shape of input 0.
bool same_shape_as_first_input(const std::string& op) {
  return is_one_of(op, {"Identity",
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
                        "RotaryEmbedding"});
}

// Elementwise ops with numpy broadcasting over all their (explicit) inputs.
bool broadcasting_elementwise(const std::string& op) {
  return is_one_of(
      op, {"Add",   "Sub",   "Mul",      "Div",   "Pow",  "Max",        "Min",         "Mod",
           "And",   "Or",    "Xor",      "Equal", "Less", "Greater",    "LessOrEqual", "GreaterOrEqual",
           "Where", "PRelu", "BitShift", "Sum",   "Mean", "BitwiseAnd", "BitwiseOr",   "BitwiseXor"});
}

// Rounds a double to what storing it in `dtype` keeps.
double round_to(double v, DType dtype) {
  if (dtype == DType::f64 || !is_float(dtype)) return v;
  if (dtype == DType::f32) return static_cast<double>(static_cast<float>(v));
  Tensor t = Tensor::from_vector<float>({1}, {static_cast<float>(v)}).cast(dtype);
  return t.get_f64(0);
}

}  // namespace

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
