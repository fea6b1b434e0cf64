// fuse-ssm-scan's matcher (see ssm_match.h): the decay and input terms of the recurrence, the C readout,
// the D skip and SiLU(z) gate, and the choice of how much of that chain a rewrite may take over.
// Where the recurrence itself sits (LinearRecurrence, Loop, Scan) is in ssm_match_loops.cpp.
#include <algorithm>
#include <set>

#include "passes/ssm_match.h"

namespace seqrun::passes::ssm {

std::vector<Node*> node_users(const Value* v) {
  std::vector<Node*> users;
  for (const Use& u : v->uses()) {
    if (std::find(users.begin(), users.end(), u.node) == users.end()) users.push_back(u.node);
  }
  return users;
}

Node* producer_op(const Value* v, const char* op) {
  Node* n = v == nullptr ? nullptr : v->producer();
  return n != nullptr && n->op() == op && n->num_captures() == 0 ? n : nullptr;
}

Value* other_input(const Node* n, const Value* v) {
  if (n == nullptr || n->num_inputs() != 2) return nullptr;
  if (n->input(0) == v && n->input(1) != v) return n->input(1);
  if (n->input(1) == v && n->input(0) != v) return n->input(0);
  return nullptr;
}

bool Matcher::match_terms(Attempt& at, const Ref& a, const Ref& b) {
  // Decay: a = exp(Δ · A) (a product of exactly two leaves, possibly negated: exp(-Δ·A') with A = -A').
  Ref sa = strip(a, &at.optional);
  Node* exp = producer_op(sa.value, "Exp");
  if (exp == nullptr) return false;
  if (sa.scope->is_top()) at.required.push_back(exp);
  bool found = false;
  for (const Factoring& f : factorings({exp->input(0), sa.labels, sa.scope, false}, 2)) {
    for (int i = 0; i < 2 && !found && f.leaves.size() == 2; ++i) {
      Ref A = f.leaves[i], delta = f.leaves[1 - i];
      if (check_leaf(A, "DN", at.m.sizes) && has_label(A.labels, 'N') &&
          check_leaf(delta, "BDL", at.m.sizes)) {
        at.m.A = A;
        at.m.delta = delta;
        at.m.negate_A = f.negative;
        at.required.insert(at.required.end(), f.nodes.begin(), f.nodes.end());
        found = true;
      }
    }
    if (found) break;
  }
  if (!found) return false;
  // Input: b = Δ · u · B (three leaves, one of them the decay's Δ).
  for (const Factoring& f : factorings(b, 3)) {
    if (f.negative || f.leaves.size() != 3) continue;
    for (int i = 0; i < 3; ++i) {
      Ref delta = f.leaves[i];
      if (!check_leaf(delta, "BDL", at.m.sizes) || !same_leaf(delta, at.m.delta)) continue;
      for (int j = 0; j < 3; ++j) {
        if (j == i) continue;
        Ref Bm = f.leaves[j], u = f.leaves[3 - i - j];
        if (check_leaf(Bm, "BNL", at.m.sizes) && has_label(Bm.labels, 'N') &&
            check_leaf(u, "BDL", at.m.sizes)) {
          at.m.Bm = Bm;
          at.m.u = u;
          at.required.insert(at.required.end(), f.nodes.begin(), f.nodes.end());
          return true;
        }
      }
    }
  }
  return false;
}

std::optional<Ref> Matcher::match_readout(Attempt& at, const Ref& h) {
  if (h.scope->is_top() && h.value->is_graph_output()) return std::nullopt;
  std::vector<Node*> users = node_users(h.value);
  if (users.size() != 1) return std::nullopt;
  Node* r = users[0];
  const bool top = h.scope->is_top();
  const size_t n_axis = h.labels.find('N');
  if (r->num_captures() > 0 || r->num_outputs() != 1 || n_axis == Labels::npos) return std::nullopt;
  Ref c_ref;
  Ref y{nullptr, h.labels, h.scope, false};
  if (r->op() == "Mul") {
    // Σ_N h·C: the product, then a ReduceSum over exactly the N axis.
    Value* c = other_input(r, h.value);
    if (c == nullptr) return std::nullopt;
    auto cl = operand_labels(h.labels, c);
    if (!cl) return std::nullopt;
    c_ref = {c, *cl, h.scope, false};
    Value* p = r->output(0);
    std::vector<Node*> p_users = node_users(p);
    if (p->is_graph_output() || p_users.size() != 1) return std::nullopt;
    Node* sum = p_users[0];
    if (sum->op() != "ReduceSum" || sum->input(0) != p || sum->num_outputs() != 1) return std::nullopt;
    auto axes = constant_ints(sum->input(1), h.scope);
    const int rank = static_cast<int>(h.labels.size());
    if (!axes || axes->size() != 1) return std::nullopt;
    const int64_t axis = (*axes)[0] < 0 ? (*axes)[0] + rank : (*axes)[0];
    if (axis != static_cast<int64_t>(n_axis)) return std::nullopt;
    if (sum->get_int("keepdims", 1) != 0) {
      y.labels[n_axis] = '1';
    } else {
      y.labels.erase(n_axis, 1);
    }
    y.value = sum->output(0);
    if (top) at.required.insert(at.required.end(), {r, sum});
  } else if (r->op() == "MatMul" && r->input(0) == h.value && r->input(1) != h.value) {
    // h @ C with C [..., N, 1]: the contraction runs over h's last axis, which must be N.
    Value* c = r->input(1);
    const TensorType& ct = c->type();
    const int hr = static_cast<int>(h.labels.size());
    if (n_axis != static_cast<size_t>(hr - 1) || !ct.has_rank() || ct.rank() < 2 || ct.rank() > hr) {
      return std::nullopt;
    }
    if (!ct.dim(-1).is_static() || ct.dim(-1).value() != 1) return std::nullopt;
    Labels cl;
    for (int i = 0; i < ct.rank() - 2; ++i) {
      const Dim& d = ct.dim(i);
      const char hl = h.labels[hr - ct.rank() + i];
      if (d.is_static() && d.value() == 1) {
        cl += '1';
      } else if (hl == '1') {
        return std::nullopt;
      } else {
        cl += hl;
      }
    }
    c_ref = {c, cl + "N1", h.scope, false};
    y.labels.back() = '1';
    y.value = r->output(0);
    if (top) at.required.push_back(r);
  } else {
    return std::nullopt;
  }
  Ref C = strip(c_ref, &at.optional);
  if (!check_leaf(C, "BNL", at.m.sizes) || !has_label(C.labels, 'N')) return std::nullopt;
  at.m.Cm = C;
  return y;
}

std::optional<Ref> Matcher::match_gate(Attempt& at, const Ref& g, std::vector<Node*>* side) {
  Ref s = strip(g, &at.optional);
  Node* n = s.value->producer();
  if (n == nullptr || n->num_captures() > 0) return std::nullopt;
  const bool top = s.scope->is_top();
  if (n->op() == "Silu" || (n->op() == "Swish" && n->get_float("alpha", 1.0f) == 1.0f)) {
    Ref z = strip({n->input(0), s.labels, s.scope, false}, &at.optional);
    if (!check_leaf(z, "BDL", at.m.sizes)) return std::nullopt;
    if (top && side != nullptr) side->push_back(n);
    return z;
  }
  if (n->op() != "Mul" || n->num_inputs() != 2) return std::nullopt;
  for (int k = 0; k < 2; ++k) {
    auto lp = operand_labels(s.labels, n->input(k));
    auto lq = operand_labels(s.labels, n->input(1 - k));
    if (!lp || !lq) continue;
    Ref sq = strip({n->input(1 - k), *lq, s.scope, false}, &at.optional);
    Node* sig = producer_op(sq.value, "Sigmoid");
    if (sig == nullptr) continue;
    Ref z1 = strip({sig->input(0), sq.labels, sq.scope, false}, &at.optional);
    Ref z2 = strip({n->input(k), *lp, s.scope, false}, &at.optional);
    if (!check_leaf(z1, "BDL", at.m.sizes) || !check_leaf(z2, "BDL", at.m.sizes) || !same_leaf(z1, z2))
      continue;
    if (side != nullptr) {
      if (top) side->push_back(n);
      if (sq.scope->is_top()) side->push_back(sig);
    }
    return z2;
  }
  return std::nullopt;
}

std::optional<Stage> Matcher::step_epilogue(Attempt& at, int level, const Ref& y, Node* user) {
  if (user->num_captures() > 0 || user->num_outputs() != 1 || user->num_inputs() != 2) return std::nullopt;
  Value* o = other_input(user, y.value);
  if (o == nullptr) return std::nullopt;
  auto ol = operand_labels(y.labels, o);
  if (!ol) return std::nullopt;
  const bool top = y.scope->is_top();
  Stage st;
  st.root = {user->output(0), y.labels, y.scope, false};
  if (user->op() == "Add" && level == 0) {
    // D skip: y + D·u, with the u of the input term.
    for (const Factoring& f : factorings({o, *ol, y.scope, false}, 2)) {
      if (f.negative || f.leaves.size() != 2) continue;
      for (int i = 0; i < 2; ++i) {
        Ref u = f.leaves[i], d = f.leaves[1 - i];
        if (check_leaf(u, "BDL", at.m.sizes) && same_leaf(u, at.m.u) && check_leaf(d, "D", at.m.sizes)) {
          st.level = 1;
          st.dskip = d;
          if (top) {
            st.chain.push_back(user);
            st.side = f.nodes;
          }
          return st;
        }
      }
    }
    return std::nullopt;
  }
  if (user->op() == "Mul" && level <= 1) {
    auto z = match_gate(at, {o, *ol, y.scope, false}, top ? &st.side : nullptr);
    if (!z) return std::nullopt;
    st.level = 2;
    st.z = z;
    if (top) st.chain.push_back(user);
    return st;
  }
  return std::nullopt;
}

Matcher::Walk Matcher::walk_epilogues(Attempt& at, const Stage& first) {
  Walk w;
  w.stages.push_back(first);
  Ref cur = first.root;
  std::vector<Node*> pending;  // layout ops since the last stage (top graph only)
  for (int step = 0; step < 32; ++step) {
    if (cur.value->is_graph_output()) break;
    std::vector<Node*> users = node_users(cur.value);
    if (users.size() != 1) break;
    Node* user = users[0];
    if (auto next = forward_layout(cur, user)) {
      if (cur.scope->is_top()) pending.push_back(user);
      cur = *next;
      continue;
    }
    auto st = step_epilogue(at, w.stages.back().level, cur, user);
    if (!st) break;
    st->chain.insert(st->chain.begin(), pending.begin(), pending.end());
    pending.clear();
    w.stages.push_back(*st);
    cur = st->root;
  }
  w.end = cur;
  return w;
}

bool Matcher::all_die(const std::vector<Node*>& must, const std::vector<Node*>& pattern,
                      const std::vector<Value*>& replaced) const {
  const std::set<const Node*> in_pattern(pattern.begin(), pattern.end());
  const std::set<const Value*> gone(replaced.begin(), replaced.end());
  std::set<const Node*> dead;
  for (bool grew = true; grew;) {
    grew = false;
    for (const Node* n : in_pattern) {
      if (dead.count(n) > 0) continue;
      bool unused = true;
      for (const Value* o : n->outputs()) {
        if (gone.count(o) > 0) continue;
        if (o->is_graph_output()) unused = false;
        for (const Use& u : o->uses()) {
          if (dead.count(u.node) == 0) unused = false;
        }
      }
      if (unused) {
        dead.insert(n);
        grew = true;
      }
    }
  }
  return std::all_of(must.begin(), must.end(), [&](const Node* n) { return dead.count(n) > 0; });
}

bool Matcher::settle(Attempt& at, const std::vector<Stage>& stages) {
  for (int k = static_cast<int>(stages.size()) - 1; k >= 0; --k) {
    std::vector<Node*> pattern = at.required, must = at.required;
    pattern.insert(pattern.end(), at.optional.begin(), at.optional.end());
    for (int i = 0; i <= k; ++i) {
      pattern.insert(pattern.end(), stages[i].chain.begin(), stages[i].chain.end());
      pattern.insert(pattern.end(), stages[i].side.begin(), stages[i].side.end());
      must.insert(must.end(), stages[i].chain.begin(), stages[i].chain.end());
    }
    std::vector<Value*> replaced = {stages[k].root.value};
    if (at.m.h) replaced.push_back(at.m.h->value);
    if (!all_die(must, pattern, replaced)) continue;
    at.m.y = stages[k].root;
    at.m.dskip.reset();
    at.m.z.reset();
    for (int i = 0; i <= k; ++i) {
      if (stages[i].dskip) at.m.dskip = stages[i].dskip;
      if (stages[i].z) at.m.z = stages[i].z;
    }
    at.m.nodes = pattern;
    return true;
  }
  return false;
}

void Matcher::fold_softplus(Attempt& at) {
  at.m.delta_softplus = false;
  Node* sp = at.m.delta.scope->is_top() ? producer_op(at.m.delta.value, "Softplus") : nullptr;
  if (sp == nullptr) return;
  std::vector<Value*> replaced = {at.m.y.value};
  if (at.m.h) replaced.push_back(at.m.h->value);
  std::vector<Node*> pattern = at.m.nodes;
  pattern.push_back(sp);
  if (!all_die({sp}, pattern, replaced)) return;
  at.m.delta_softplus = true;
  at.m.nodes.push_back(sp);
  const Labels labels = at.m.delta.labels;
  at.m.delta = {sp->input(0), labels, &top_scope_, at.m.delta.expand};
  // Δ + bias with a per-channel bias: the bias becomes delta_bias.
  Node* add = producer_op(sp->input(0), "Add");
  if (add == nullptr) return;
  for (int k = 0; k < 2; ++k) {
    Value* x = add->input(k);
    Value* bias = add->input(1 - k);
    if (x == nullptr || bias == nullptr || x->type() != sp->input(0)->type()) continue;
    auto bl = operand_labels(labels, bias);
    if (!bl) continue;
    Ref b = strip({bias, *bl, &top_scope_, false}, &at.optional);
    Ref d{x, labels, &top_scope_, false};
    if (!check_leaf(b, "D", at.m.sizes) || !check_leaf(d, "BDL", at.m.sizes)) continue;
    pattern = at.m.nodes;
    pattern.push_back(add);
    if (!all_die({add}, pattern, replaced)) return;
    at.m.nodes.push_back(add);
    at.m.delta = d;
    at.m.delta_bias = b;
    return;
  }
}

}  // namespace seqrun::passes::ssm
