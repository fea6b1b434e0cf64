// fuse-ssm-scan's label walks (see ssm_match.h): follow a labelled value through layout ops and loop
// step slices down to its leaf, flatten products into factors, push labels forward through layout ops,
// and check a leaf against the SelectiveScan input it stands for.
#include <algorithm>

#include "passes/ssm_match.h"

namespace seqrun::passes::ssm {
namespace {

constexpr int kMaxStripSteps = 64;
constexpr int kMaxFactorDepth = 8;
constexpr size_t kMaxFactorings = 256;

int normalize_axis(int64_t axis, int rank) {
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Labels without_ones(const Labels& l) {
  Labels r;
  for (char c : l) {
    if (c != '1') r += c;
  }
  return r;
}

bool is_one(const Dim& d) {
  return d.is_static() && d.value() == 1;
}

// The position of `v` among `values`, or -1.
int index_of(const std::vector<Value*>& values, const Value* v) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] == v) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

bool has_label(const Labels& l, char c) {
  return l.find(c) != Labels::npos;
}

bool same_leaf(const Ref& a, const Ref& b) {
  return a.value == b.value && without_ones(a.labels) == without_ones(b.labels);
}

std::optional<Labels> operand_labels(const Labels& out, const Value* operand) {
  const TensorType& t = operand->type();
  if (!t.has_rank() || t.rank() > static_cast<int>(out.size())) return std::nullopt;
  const size_t offset = out.size() - static_cast<size_t>(t.rank());
  Labels l;
  for (int i = 0; i < t.rank(); ++i) {
    const char o = out[offset + i];
    if (is_one(t.dim(i))) {
      l += '1';
    } else if (o == '1') {
      return std::nullopt;  // the operand is larger than the result along this axis
    } else {
      l += o;
    }
  }
  return l;
}

std::optional<std::vector<int64_t>> Matcher::constant_ints(const Value* v, const Scope* scope) {
  if (v == nullptr) return std::nullopt;
  auto it = evaluators_.find(scope);
  if (it == evaluators_.end()) it = evaluators_.emplace(scope, AffineEvaluator(scope->iteration)).first;
  return it->second.eval_constant(v);
}

std::optional<Shape> Matcher::shape_of(const Ref& r, const std::map<char, Dim>& sizes) const {
  Shape s;
  for (char c : r.labels) {
    if (c == '1') {
      s.push_back(1);
      continue;
    }
    auto it = sizes.find(c);
    if (it == sizes.end() || !it->second.is_static()) return std::nullopt;
    s.push_back(it->second.value());
  }
  return s;
}

Ref Matcher::strip(Ref r, std::vector<Node*>* visited) {
  for (int step = 0; step < kMaxStripSteps; ++step) {
    Value* v = r.value;
    const Scope* s = r.scope;
    if (!s->is_top() && v->role() == Value::Role::Capture) {
      const int k = index_of(s->graph->captures(), v);
      if (k < 0) return r;
      r.value = s->owner->input(s->owner->num_explicit_inputs() + k);
      r.scope = s->outer;
      continue;
    }
    if (!s->is_top()) {
      auto slice = s->scan_slices.find(v);
      if (slice != s->scan_slices.end()) {
        const int axis = slice->second.second;
        if (axis < 0 || axis > static_cast<int>(r.labels.size())) return r;
        r.labels.insert(r.labels.begin() + axis, 'L');
        r.value = slice->second.first;
        r.scope = s->outer;
        continue;
      }
    }
    Node* n = v->producer();
    if (n == nullptr || n->num_captures() > 0 || n->num_outputs() != 1 || n->num_inputs() == 0) return r;
    Value* x = n->input(0);
    if (x == nullptr) return r;
    const TensorType& xt = x->type();
    const int out_rank = static_cast<int>(r.labels.size());
    Labels next;
    const std::string& op = n->op();
    if (op == "Identity") {
      next = r.labels;
    } else if (op == "Gather" && s->iteration != nullptr && n->input(1) == s->iteration) {
      // x[.., t, ..]: the step slice of a loop-invariant tensor.
      if (x->role() != Value::Role::Capture && !x->is_constant()) return r;
      const int axis = normalize_axis(n->get_int("axis", 0), out_rank + 1);
      if (axis < 0 || axis > out_rank) return r;
      next = r.labels;
      next.insert(next.begin() + axis, 'L');
    } else if (op == "Gather") {
      // x[.., 0, ..] on a size-1 axis is a squeeze.
      auto index = constant_ints(n->input(1), s);
      const Value* idx = n->input(1);
      if (!index || index->size() != 1 || !idx->type().has_rank() || idx->type().rank() != 0) return r;
      if (!xt.has_rank() || xt.rank() != out_rank + 1) return r;
      const int axis = normalize_axis(n->get_int("axis", 0), xt.rank());
      if (axis < 0 || axis >= xt.rank() || !is_one(xt.dim(axis)) || ((*index)[0] != 0 && (*index)[0] != -1)) {
        return r;
      }
      next = r.labels;
      next.insert(next.begin() + axis, '1');
    } else if (op == "Unsqueeze") {
      auto axes = constant_ints(n->input(1), s);
      if (!axes) return r;
      std::vector<bool> inserted(out_rank, false);
      for (int64_t a : *axes) {
        const int ax = normalize_axis(a, out_rank);
        if (ax < 0 || ax >= out_rank || inserted[ax] || r.labels[ax] != '1') return r;
        inserted[ax] = true;
      }
      for (int i = 0; i < out_rank; ++i) {
        if (!inserted[i]) next += r.labels[i];
      }
    } else if (op == "Squeeze") {
      if (!xt.has_rank()) return r;
      std::vector<bool> removed(xt.rank(), false);
      if (n->has_input(1)) {
        auto axes = constant_ints(n->input(1), s);
        if (!axes) return r;
        for (int64_t a : *axes) {
          const int ax = normalize_axis(a, xt.rank());
          if (ax < 0 || ax >= xt.rank()) return r;
          removed[ax] = true;
        }
      } else {
        for (int i = 0; i < xt.rank(); ++i) removed[i] = is_one(xt.dim(i));
      }
      size_t k = 0;
      for (int i = 0; i < xt.rank(); ++i)
        next += removed[i] ? '1' : (k < r.labels.size() ? r.labels[k++] : '?');
      if (k != r.labels.size() || has_label(next, '?')) return r;
    } else if (op == "Transpose") {
      std::vector<int64_t> perm = n->get_ints("perm");
      if (perm.empty()) {
        for (int i = out_rank - 1; i >= 0; --i) perm.push_back(i);
      }
      if (static_cast<int>(perm.size()) != out_rank) return r;
      next.assign(out_rank, '?');
      for (int i = 0; i < out_rank; ++i) {
        if (perm[i] < 0 || perm[i] >= out_rank) return r;
        next[perm[i]] = r.labels[i];
      }
      if (has_label(next, '?')) return r;
    } else if (op == "Expand") {
      auto l = operand_labels(r.labels, x);
      if (!l) return r;
      next = *l;
    } else if (op == "Reshape") {
      // Only a reshape that inserts or removes size-1 dims: the other dims, in order, are unchanged.
      if (!xt.has_rank() || !v->type().has_rank() || v->type().rank() != out_rank) return r;
      std::vector<Dim> in_big, out_big;
      Labels out_big_labels;
      for (const Dim& d : xt.dims()) {
        if (d.is_unknown()) return r;
        if (!is_one(d)) in_big.push_back(d);
      }
      for (int i = 0; i < out_rank; ++i) {
        const Dim& d = v->type().dim(i);
        if (d.is_unknown()) return r;
        if (!is_one(d)) {
          out_big.push_back(d);
          out_big_labels += r.labels[i];
        }
      }
      if (in_big != out_big) return r;
      size_t k = 0;
      for (const Dim& d : xt.dims()) next += is_one(d) ? '1' : out_big_labels[k++];
    } else {
      return r;
    }
    if (visited != nullptr && s->is_top()) visited->push_back(n);
    r.value = x;
    r.labels = next;
  }
  return r;
}

std::vector<Factoring> Matcher::factorings(const Ref& r, int max_leaves, int depth) {
  Ref s = strip(r, cur_ != nullptr ? &cur_->optional : nullptr);
  std::vector<Factoring> out = {Factoring{{s}, false, {}}};
  Node* n = s.value->producer();
  if (depth >= kMaxFactorDepth || n == nullptr || n->num_captures() > 0) return out;
  const bool top = s.scope->is_top();
  if (n->op() == "Mul" && n->num_inputs() == 2 && max_leaves >= 2) {
    auto l0 = operand_labels(s.labels, n->input(0));
    auto l1 = operand_labels(s.labels, n->input(1));
    if (!l0 || !l1) return out;
    for (const Factoring& f : factorings({n->input(0), *l0, s.scope, false}, max_leaves - 1, depth + 1)) {
      const int room = max_leaves - static_cast<int>(f.leaves.size());
      for (const Factoring& g : factorings({n->input(1), *l1, s.scope, false}, room, depth + 1)) {
        if (out.size() >= kMaxFactorings) return out;
        Factoring c = f;
        c.leaves.insert(c.leaves.end(), g.leaves.begin(), g.leaves.end());
        c.negative = f.negative != g.negative;
        if (top) c.nodes.push_back(n);
        c.nodes.insert(c.nodes.end(), g.nodes.begin(), g.nodes.end());
        out.push_back(std::move(c));
      }
    }
  } else if (n->op() == "Neg" && n->num_inputs() == 1) {
    for (Factoring f : factorings({n->input(0), s.labels, s.scope, false}, max_leaves, depth + 1)) {
      if (out.size() >= kMaxFactorings) return out;
      f.negative = !f.negative;
      if (top) f.nodes.push_back(n);
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::optional<Ref> Matcher::forward_layout(const Ref& r, Node* user) {
  if (user->num_captures() > 0 || user->num_outputs() != 1 || user->input(0) != r.value) return std::nullopt;
  const std::string& op = user->op();
  const int rank = static_cast<int>(r.labels.size());
  Ref out{user->output(0), r.labels, r.scope, false};
  if (op == "Identity") return out;
  if (op == "Unsqueeze") {
    auto axes = constant_ints(user->input(1), r.scope);
    if (!axes) return std::nullopt;
    const int out_rank = rank + static_cast<int>(axes->size());
    std::vector<bool> inserted(out_rank, false);
    for (int64_t a : *axes) {
      const int ax = normalize_axis(a, out_rank);
      if (ax < 0 || ax >= out_rank || inserted[ax]) return std::nullopt;
      inserted[ax] = true;
    }
    out.labels.clear();
    for (int i = 0, k = 0; i < out_rank; ++i) out.labels += inserted[i] ? '1' : r.labels[k++];
    return out;
  }
  if (op == "Squeeze") {
    std::vector<bool> removed(rank, false);
    if (user->has_input(1)) {
      auto axes = constant_ints(user->input(1), r.scope);
      if (!axes) return std::nullopt;
      for (int64_t a : *axes) {
        const int ax = normalize_axis(a, rank);
        if (ax < 0 || ax >= rank || r.labels[ax] != '1') return std::nullopt;
        removed[ax] = true;
      }
    } else {
      for (int i = 0; i < rank; ++i) removed[i] = r.labels[i] == '1';
    }
    out.labels.clear();
    for (int i = 0; i < rank; ++i) {
      if (!removed[i]) out.labels += r.labels[i];
    }
    return out;
  }
  if (op == "Transpose") {
    std::vector<int64_t> perm = user->get_ints("perm");
    if (perm.empty()) {
      for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
    }
    if (static_cast<int>(perm.size()) != rank) return std::nullopt;
    for (int i = 0; i < rank; ++i) {
      if (perm[i] < 0 || perm[i] >= rank) return std::nullopt;
      out.labels[i] = r.labels[perm[i]];
    }
    return out;
  }
  if (op == "Gather") {
    auto index = constant_ints(user->input(1), r.scope);
    const Value* idx = user->input(1);
    if (!index || index->size() != 1 || !idx->type().has_rank() || idx->type().rank() != 0)
      return std::nullopt;
    const int axis = normalize_axis(user->get_int("axis", 0), rank);
    if (axis < 0 || axis >= rank || r.labels[axis] != '1' || ((*index)[0] != 0 && (*index)[0] != -1)) {
      return std::nullopt;
    }
    out.labels.erase(out.labels.begin() + axis);
    return out;
  }
  if (op == "Reshape" || op == "Expand") {
    auto in_shape = shape_of(r, cur_->m.sizes);
    auto target = constant_ints(user->input(1), r.scope);
    if (!in_shape || !target) return std::nullopt;
    Shape shape(target->begin(), target->end());
    if (op == "Expand") {
      // Expand may only add leading size-1 dims or broadcast 1 to 1: the values stay where they are.
      const size_t rank_out = std::max(shape.size(), in_shape->size());
      for (size_t i = 0; i < rank_out; ++i) {
        const int64_t have =
            i + in_shape->size() >= rank_out ? (*in_shape)[i + in_shape->size() - rank_out] : 1;
        const int64_t want = i + shape.size() >= rank_out ? shape[i + shape.size() - rank_out] : 1;
        if (want != 1 && want != have) return std::nullopt;
      }
      out.labels = Labels(rank_out - in_shape->size(), '1') + r.labels;
      return out;
    }
    const bool allowzero = user->get_int("allowzero", 0) != 0;
    int infer_at = -1;
    int64_t known = 1, total = 1;
    for (int64_t d : *in_shape) total *= d;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && !allowzero) {
        if (i >= in_shape->size()) return std::nullopt;
        shape[i] = (*in_shape)[i];
      }
      if (shape[i] == -1) {
        if (infer_at >= 0) return std::nullopt;
        infer_at = static_cast<int>(i);
      } else if (shape[i] < 0) {
        return std::nullopt;
      } else {
        known *= shape[i];
      }
    }
    if (infer_at >= 0) {
      if (known == 0 || total % known != 0) return std::nullopt;
      shape[infer_at] = total / known;
    }
    Labels big;
    Shape in_big, out_big;
    for (size_t i = 0; i < in_shape->size(); ++i) {
      if ((*in_shape)[i] != 1) {
        in_big.push_back((*in_shape)[i]);
        big += r.labels[i];
      }
    }
    for (int64_t d : shape) {
      if (d != 1) out_big.push_back(d);
    }
    if (in_big != out_big) return std::nullopt;
    out.labels.clear();
    size_t k = 0;
    for (int64_t d : shape) out.labels += d == 1 ? '1' : big[k++];
    return out;
  }
  return std::nullopt;
}

bool Matcher::check_leaf(Ref& leaf, const std::string& target, const std::map<char, Dim>& sizes) const {
  const TensorType& t = leaf.value->type();
  if (!t.has_rank() || t.rank() != static_cast<int>(leaf.labels.size())) return false;
  if (t.dtype() != cur_->m.dtype) return false;
  if (!leaf.scope->is_top() && !leaf.value->is_constant()) return false;  // a body value: not loop-invariant
  leaf.expand = false;
  for (int i = 0; i < t.rank(); ++i) {
    const Dim& d = t.dim(i);
    char& c = leaf.labels[i];
    if (is_one(d)) {
      c = '1';
      continue;
    }
    if (c == '1' || target.find(c) == std::string::npos) return false;
    const Dim& want = sizes.at(c);
    if (d.is_unknown()) {
      if (target != "BDL") return false;
      leaf.expand = true;
    } else if (d != want) {
      return false;
    }
  }
  for (char c : target) {
    const size_t n = std::count(leaf.labels.begin(), leaf.labels.end(), c);
    if (n > 1) return false;
    if (n == 0 && !is_one(sizes.at(c))) return false;
  }
  return true;
}

}  // namespace seqrun::passes::ssm
