// fuse-ssm-scan's matcher, the recurrence's three homes (see ssm_match.h): a LinearRecurrence node, the
// body of an ONNX Loop (torch.jit.script for-loops: step slices by Gather at the iteration number, the
// output written into a loop-carried buffer by ScatterND, or a scan output), and the body of an ONNX Scan.
#include <algorithm>

#include "passes/ssm_match.h"

namespace seqrun::passes::ssm {
namespace {

bool all_zero_constant(const Value* v) {
  if (v == nullptr || !v->is_constant()) return false;
  const Tensor& t = v->constant();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (t.get_f64(i) != 0.0) return false;
  }
  return true;
}

bool known_dims(const TensorType& t) {
  if (!t.has_rank()) return false;
  return std::none_of(t.dims().begin(), t.dims().end(), [](const Dim& d) { return d.is_unknown(); });
}

// Static size-1 dims are labelled '1' (they carry no axis).
Labels normalized(Labels l, const TensorType& t) {
  for (int i = 0; i < t.rank() && i < static_cast<int>(l.size()); ++i) {
    if (t.dim(i).is_static() && t.dim(i).value() == 1) l[i] = '1';
  }
  return l;
}

int index_of(const std::vector<Value*>& values, const Value* v) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] == v) return static_cast<int>(i);
  }
  return -1;
}

// The trip count as a dim: a constant, or Gather(Shape(x), k) (the sequence length of x).
std::optional<Dim> trip_count_dim(const Value* m, const std::optional<std::vector<int64_t>>& constant) {
  if (constant) {
    if (constant->size() != 1 || (*constant)[0] < 0) return std::nullopt;
    return Dim((*constant)[0]);
  }
  const Node* gather = producer_op(m, "Gather");
  if (gather == nullptr || gather->get_int("axis", 0) != 0) return std::nullopt;
  const Node* shape = producer_op(gather->input(0), "Shape");
  const Value* idx = gather->input(1);
  if (shape == nullptr || shape->has_attr("start") || shape->has_attr("end") || !idx->is_constant() ||
      idx->constant().numel() != 1) {
    return std::nullopt;
  }
  const TensorType& xt = shape->input(0)->type();
  int64_t k = idx->constant().get_i64(0);
  if (!xt.has_rank()) return std::nullopt;
  if (k < 0) k += xt.rank();
  if (k < 0 || k >= xt.rank() || xt.dim(static_cast<int>(k)).is_unknown()) return std::nullopt;
  return xt.dim(static_cast<int>(k));
}

}  // namespace

std::optional<SsmMatch> Matcher::match(Node* node) {
  if (node->op() == "LinearRecurrence") return match_linear_recurrence(node);
  if (node->op() == "Loop") return match_loop(node);
  if (node->op() == "Scan") return match_scan(node);
  return std::nullopt;
}

std::optional<SsmMatch> Matcher::match_linear_recurrence(Node* node) {
  if (node->num_captures() != 0 || node->num_inputs() < 2) return std::nullopt;
  Value* states = node->output(0);
  const TensorType& t = states->type();
  if (!known_dims(t) || t.rank() != 4 || !is_float(t.dtype())) return std::nullopt;
  int axis = static_cast<int>(node->get_int("axis", 1));
  if (axis < 0) axis += 4;
  if (axis < 0 || axis >= 4) return std::nullopt;
  Labels order = "BDN";
  do {
    Labels labels;
    for (int i = 0, k = 0; i < 4; ++i) labels += i == axis ? 'L' : order[k++];
    Attempt at;
    cur_ = &at;
    at.m.dtype = t.dtype();
    for (int i = 0; i < 4; ++i) at.m.sizes[labels[i]] = t.dim(i);
    labels = normalized(labels, t);
    Labels state = labels;
    state.erase(axis, 1);
    auto la = operand_labels(labels, node->input(0));
    auto lb = operand_labels(labels, node->input(1));
    bool ok =
        la && lb &&
        match_terms(at, {node->input(0), *la, &top_scope_, false}, {node->input(1), *lb, &top_scope_, false});
    if (ok && node->has_input(2)) {
      Ref h0 = strip({node->input(2), state, &top_scope_, false}, &at.optional);
      ok = check_leaf(h0, "BDN", at.m.sizes);
      if (ok && !all_zero_constant(node->input(2))) at.m.h0 = h0;
    }
    if (ok && node->num_outputs() > 1) {
      Value* last = node->output(1);
      if (!last->uses().empty() || last->is_graph_output()) at.m.h = Ref{last, state, &top_scope_, false};
    }
    at.required.push_back(node);
    std::optional<Ref> y = ok ? match_readout(at, {states, labels, &top_scope_, false}) : std::nullopt;
    if (y) {
      Stage first;
      first.root = *y;
      if (settle(at, walk_epilogues(at, first).stages)) {
        fold_softplus(at);
        cur_ = nullptr;
        return at.m;
      }
    }
    cur_ = nullptr;
  } while (std::next_permutation(order.begin(), order.end()));
  return std::nullopt;
}

std::optional<SsmMatch> Matcher::match_loop(Node* node) {
  const Graph* body = node->get_graph("body");
  const int carried = node->num_explicit_inputs() - 2;
  if (body == nullptr || carried < 1 || static_cast<int>(body->inputs().size()) != 2 + carried ||
      static_cast<int>(body->outputs().size()) < 1 + carried) {
    return std::nullopt;
  }
  // The loop runs exactly the sequence length: a trip count we can read, no early exit.
  Value* trip = node->input(0);
  if (trip == nullptr) return std::nullopt;
  auto info_len = trip_count_dim(trip, constant_ints(trip, &top_scope_));
  if (!info_len) return std::nullopt;
  if (node->has_input(1)) {
    auto cond = constant_ints(node->input(1), &top_scope_);
    if (!cond || cond->size() != 1 || (*cond)[0] == 0) return std::nullopt;
  }
  auto scope = std::make_unique<Scope>();
  scope->graph = body;
  scope->owner = node;
  scope->outer = &top_scope_;
  scope->iteration = body->inputs()[0];
  const Scope* sp = scope.get();
  body_scopes_.push_back(std::move(scope));
  const Value* cond_out = body->outputs()[0];
  while (const Node* id = producer_op(cond_out, "Identity")) cond_out = id->input(0);
  if (cond_out != body->inputs()[1]) {
    auto c = constant_ints(cond_out, sp);
    if (!c || c->size() != 1 || (*c)[0] == 0) return std::nullopt;
  }
  BodyInfo info{true, carried, *info_len};
  for (int i = 0; i < carried; ++i) {
    auto m = match_body(node, *sp, info, body->inputs()[2 + i], body->outputs()[1 + i], node->input(2 + i),
                        node->output(i));
    if (m) return m;
  }
  return std::nullopt;
}

std::optional<SsmMatch> Matcher::match_scan(Node* node) {
  const Graph* body = node->get_graph("body");
  const int scan_inputs = static_cast<int>(node->get_int("num_scan_inputs", 0));
  const int states = node->num_explicit_inputs() - scan_inputs;
  if (body == nullptr || scan_inputs < 1 || states < 1 ||
      static_cast<int>(body->inputs().size()) != node->num_explicit_inputs()) {
    return std::nullopt;
  }
  for (const char* key : {"scan_input_directions", "scan_output_directions"}) {
    for (int64_t d : node->get_ints(key)) {
      if (d != 0) return std::nullopt;
    }
  }
  const std::vector<int64_t> axes = node->get_ints("scan_input_axes");
  if (!axes.empty() && static_cast<int>(axes.size()) != scan_inputs) return std::nullopt;
  auto scope = std::make_unique<Scope>();
  scope->graph = body;
  scope->owner = node;
  scope->outer = &top_scope_;
  Dim seq_len = Dim::unknown();
  for (int j = 0; j < scan_inputs; ++j) {
    Value* outer = node->input(states + j);
    const TensorType& ot = outer->type();
    if (!ot.has_rank() || ot.rank() < 1) return std::nullopt;
    int axis = axes.empty() ? 0 : static_cast<int>(axes[j]);
    if (axis < 0) axis += ot.rank();
    if (axis < 0 || axis >= ot.rank()) return std::nullopt;
    scope->scan_slices[body->inputs()[states + j]] = {outer, axis};
    if (seq_len.is_unknown()) seq_len = ot.dim(axis);
  }
  if (seq_len.is_unknown()) return std::nullopt;
  const Scope* sp = scope.get();
  body_scopes_.push_back(std::move(scope));
  BodyInfo info{false, states, seq_len};
  for (int i = 0; i < states; ++i) {
    auto m =
        match_body(node, *sp, info, body->inputs()[i], body->outputs()[i], node->input(i), node->output(i));
    if (m) return m;
  }
  return std::nullopt;
}

std::optional<SsmMatch> Matcher::match_body(Node* node, const Scope& scope, const BodyInfo& info,
                                            Value* h_prev, Value* h_new, Value* h_init, Value* h_final) {
  // h_new = a ⊙ h_prev + b, in either operand order.
  Node* add = producer_op(h_new, "Add");
  const TensorType& t = h_new->type();
  if (add == nullptr || !known_dims(t) || t.rank() != 3 || !is_float(t.dtype()) || h_init == nullptr ||
      h_prev->type() != t) {
    return std::nullopt;
  }
  for (int k = 0; k < 2; ++k) {
    Node* mul = producer_op(add->input(k), "Mul");
    Value* a = mul != nullptr ? other_input(mul, h_prev) : nullptr;
    Value* b = add->input(1 - k);
    if (a == nullptr || b == nullptr || mul->output(0)->uses().size() != 1) continue;
    Labels order = "BDN";
    do {
      Attempt at;
      cur_ = &at;
      at.m.dtype = t.dtype();
      for (int i = 0; i < 3; ++i) at.m.sizes[order[i]] = t.dim(i);
      at.m.sizes['L'] = info.seq_len;
      const Labels labels = normalized(order, t);
      std::optional<SsmMatch> result;
      auto la = operand_labels(labels, a);
      auto lb = operand_labels(labels, b);
      std::optional<Ref> y;
      if (la && lb && match_terms(at, {a, *la, &scope, false}, {b, *lb, &scope, false})) {
        y = match_readout(at, {h_new, labels, &scope, false});
      }
      std::optional<Ref> y_top;
      Walk inner;
      if (y) {
        Stage first;
        first.root = *y;
        inner = walk_epilogues(at, first);
        y_top = body_result(node, scope, info, inner.end);
      }
      // Every other output of the node must be unused: the rewrite removes the node.
      bool ok = y_top.has_value();
      for (int o = 0; ok && o < node->num_outputs(); ++o) {
        Value* out = node->output(o);
        if (out == y_top->value || out == h_final) continue;
        if (!out->uses().empty() || out->is_graph_output()) ok = false;
      }
      if (ok && !all_zero_constant(h_init)) {
        Ref h0 = strip({h_init, labels, &top_scope_, false}, &at.optional);
        ok = check_leaf(h0, "BDN", at.m.sizes);
        at.m.h0 = h0;
      }
      if (ok) {
        if (!h_final->uses().empty() || h_final->is_graph_output())
          at.m.h = Ref{h_final, labels, &top_scope_, false};
        at.required.push_back(node);
        Stage first;
        first.root = *y_top;
        for (const Stage& s : inner.stages) {
          first.level = s.level;
          if (s.dskip) first.dskip = s.dskip;
          if (s.z) first.z = s.z;
        }
        if (settle(at, walk_epilogues(at, first).stages)) {
          fold_softplus(at);
          result = at.m;
        }
      }
      cur_ = nullptr;
      if (result) return result;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  return std::nullopt;
}

std::optional<Ref> Matcher::body_result(Node* node, const Scope& scope, const BodyInfo& info,
                                        const Ref& end) {
  const Graph* body = scope.graph;
  // A scan output: stacked along axis 0 (Loop) or scan_output_axes (Scan).
  const int first_scan_output = info.is_loop ? 1 + info.num_carried : info.num_carried;
  const int k = index_of(body->outputs(), end.value);
  if (k >= first_scan_output) {
    const int j = k - first_scan_output;
    const int out_rank = static_cast<int>(end.labels.size()) + 1;
    int axis = 0;
    if (!info.is_loop) {
      const std::vector<int64_t> axes = node->get_ints("scan_output_axes");
      if (!axes.empty() && j >= static_cast<int>(axes.size())) return std::nullopt;
      axis = axes.empty() ? 0 : static_cast<int>(axes[j] < 0 ? axes[j] + out_rank : axes[j]);
      if (axis < 0 || axis >= out_rank) return std::nullopt;
    }
    Labels labels = end.labels;
    labels.insert(labels.begin() + axis, 'L');
    return Ref{node->output(info.num_carried + j), labels, &top_scope_, false};
  }
  if (!info.is_loop || k >= 0) return std::nullopt;
  // ScatterND(buffer, indices(t), y_t) into a carried buffer: prove from the indices that step t
  // writes exactly the buffer's slice t along one axis, element p of y_t at its own position.
  std::vector<Node*> users = node_users(end.value);
  if (users.size() != 1) return std::nullopt;
  Node* sc = users[0];
  if (sc->op() != "ScatterND" || sc->num_inputs() != 3 || sc->input(2) != end.value ||
      sc->get_string("reduction", "none") != "none") {
    return std::nullopt;
  }
  const int slot = index_of(body->inputs(), sc->input(0)) - 2;
  if (slot < 0 || slot >= info.num_carried || body->outputs()[1 + slot] != sc->output(0)) return std::nullopt;
  auto buffer_dims = sc->input(0)->type().static_shape();
  auto upd_shape = shape_of(end, cur_->m.sizes);
  auto it = evaluators_.find(&scope);
  if (it == evaluators_.end()) it = evaluators_.emplace(&scope, AffineEvaluator(scope.iteration)).first;
  auto idx = it->second.eval(sc->input(1));
  if (!buffer_dims || !upd_shape || !idx || idx->shape.empty() || !info.seq_len.is_static())
    return std::nullopt;
  const Shape buffer(buffer_dims->begin(), buffer_dims->end());
  const int K = static_cast<int>(idx->shape.back());
  const Shape P(idx->shape.begin(), idx->shape.end() - 1);
  if (K < 1 || K > static_cast<int>(buffer.size())) return std::nullopt;
  Shape expected_upd = P;
  expected_upd.insert(expected_upd.end(), buffer.begin() + K, buffer.end());
  if (expected_upd != *upd_shape) return std::nullopt;
  int64_t np = 1;
  for (int64_t d : P) np *= d;
  std::vector<std::vector<int64_t>> pos(static_cast<size_t>(np), std::vector<int64_t>(P.size(), 0));
  for (int64_t p = 0; p < np; ++p) {
    int64_t rest = p;
    for (int m = static_cast<int>(P.size()) - 1; m >= 0; --m) {
      pos[p][m] = rest % P[m];
      rest /= P[m];
    }
  }
  int time_axis = -1;
  std::vector<int> source(K, -1);  // buffer axis j < K: the update axis its index copies (-2: constant 0)
  std::vector<bool> used(P.size(), false);
  for (int j = 0; j < K; ++j) {
    bool is_time = true, t_free = true, zero = true;
    for (int64_t p = 0; p < np; ++p) {
      const int64_t c0 = idx->c0[p * K + j], c1 = idx->c1[p * K + j];
      is_time = is_time && c0 == 0 && c1 == 1;
      t_free = t_free && c1 == 0;
      zero = zero && c0 == 0 && c1 == 0;
    }
    if (is_time) {
      if (time_axis >= 0) return std::nullopt;
      time_axis = j;
      continue;
    }
    if (!t_free) return std::nullopt;
    for (size_t m = 0; m < P.size() && source[j] == -1; ++m) {
      if (used[m] || P[m] != buffer[j]) continue;
      bool copies = true;
      for (int64_t p = 0; p < np && copies; ++p) copies = idx->c0[p * K + j] == pos[p][m];
      if (copies) {
        source[j] = static_cast<int>(m);
        used[m] = true;
      }
    }
    if (source[j] == -1 && buffer[j] == 1 && zero) source[j] = -2;
    if (source[j] == -1) return std::nullopt;
  }
  if (time_axis < 0 || buffer[time_axis] != info.seq_len.value()) return std::nullopt;
  for (size_t m = 0; m < P.size(); ++m) {
    if (!used[m] && P[m] != 1) return std::nullopt;
  }
  Labels labels(buffer.size(), '1');
  for (int j = 0; j < static_cast<int>(buffer.size()); ++j) {
    if (j == time_axis) {
      labels[j] = 'L';
    } else if (j >= K) {
      labels[j] = end.labels[P.size() + (j - K)];
    } else if (source[j] >= 0) {
      labels[j] = end.labels[source[j]];
    }
    if (buffer[j] == 1) labels[j] = '1';
  }
  return Ref{node->output(slot), labels, &top_scope_, false};
}

}  // namespace seqrun::passes::ssm
