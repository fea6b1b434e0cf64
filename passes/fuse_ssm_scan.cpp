// fuse-ssm-scan pass (see fuse_ssm_scan.h): match each LinearRecurrence/Loop/Scan (ssm_match.h), then
// emit the layout ops that bring each leaf into SelectiveScan's layout, the SelectiveScan node, and the
// layout ops that bring its outputs back to the values they replace; dead-code removal drops the rest.
#include "passes/fuse_ssm_scan.h"

#include <set>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "passes/ssm_match.h"

namespace seqrun::passes {
namespace {

using ssm::Labels;
using ssm::Ref;
using ssm::SsmMatch;

// Adds nodes before `anchor`, each with inferred types, and keeps the labels <-> layout bookkeeping.
class Emitter {
 public:
  Emitter(Graph& graph, Node* anchor, const std::map<char, Dim>& sizes)
      : graph_(graph), anchor_(anchor), sizes_(sizes) {}

  Result<Value*> node(const std::string& op, const std::vector<Value*>& inputs, const std::string& base,
                      std::map<std::string, Attribute> attrs = {}) {
    Node* n = graph_.add_node(op, inputs, 1, std::move(attrs), {graph_.unique_name(base)}, anchor_);
    SEQRUN_TRY(infer_node_types(*n));
    return n->output(0);
  }

  Value* ints(const std::vector<int64_t>& values, const std::string& base) {
    return graph_.add_constant(graph_.unique_name(base),
                               Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values));
  }

  // SelectiveScan's layout for `target` ("BDL", "DN", ...), with size-1 axes labelled '1'.
  Labels canonical(const std::string& target) const {
    Labels l;
    for (char c : target) {
      const Dim& d = sizes_.at(c);
      l += d.is_static() && d.value() == 1 ? '1' : c;
    }
    return l;
  }

  // `v` (labelled `from`) rearranged to `to`. When the axes keep their order only size-1 dims are
  // squeezed or inserted (as few as possible); otherwise: squeeze every 1, transpose, unsqueeze the 1s of
  // `to`.
  Result<Value*> relabel(Value* v, const Labels& from, const Labels& to, const std::string& base) {
    if (from == to) return v;
    std::vector<int64_t> squeeze, unsqueeze, perm;
    Labels rest, want;
    for (char c : from) {
      if (c != '1') rest += c;
    }
    for (char c : to) {
      if (c != '1') want += c;
    }
    if (rest.size() != want.size()) return make_error("fuse-ssm-scan: cannot lay out {} as {}", from, to);
    bool identity = true;
    for (size_t i = 0; i < want.size(); ++i) {
      const size_t at = rest.find(want[i]);
      if (at == Labels::npos) return make_error("fuse-ssm-scan: cannot lay out {} as {}", from, to);
      perm.push_back(static_cast<int64_t>(at));
      identity = identity && at == i;
    }
    if (!identity && from.size() == to.size()) {
      // Same rank: one Transpose, size-1 dims moving in order.
      std::vector<int64_t> full;
      size_t next_one = 0;
      for (char c : to) {
        if (c == '1') {
          next_one = from.find('1', next_one);
          full.push_back(static_cast<int64_t>(next_one++));
        } else {
          full.push_back(static_cast<int64_t>(from.find(c)));
        }
      }
      return node("Transpose", {v}, base, {{"perm", full}});
    }
    if (identity) {
      // Gap g holds the 1s before the g-th axis (the last gap: after every axis). Drop the surplus 1s
      // of `from` in each gap, then insert what `to` has more.
      const std::vector<std::vector<int64_t>> from_gaps = gaps(from), to_gaps = gaps(to);
      for (size_t g = 0; g < from_gaps.size(); ++g) {
        for (size_t k = to_gaps[g].size(); k < from_gaps[g].size(); ++k) squeeze.push_back(from_gaps[g][k]);
        for (size_t k = from_gaps[g].size(); k < to_gaps[g].size(); ++k) unsqueeze.push_back(to_gaps[g][k]);
      }
    } else {
      for (size_t i = 0; i < from.size(); ++i) {
        if (from[i] == '1') squeeze.push_back(static_cast<int64_t>(i));
      }
      for (size_t i = 0; i < to.size(); ++i) {
        if (to[i] == '1') unsqueeze.push_back(static_cast<int64_t>(i));
      }
    }
    if (!squeeze.empty()) {
      SEQRUN_ASSIGN(v, node("Squeeze", {v, ints(squeeze, base + "_axes")}, base));
    }
    if (!identity) {
      SEQRUN_ASSIGN(v, node("Transpose", {v}, base, {{"perm", perm}}));
    }
    if (!unsqueeze.empty()) {
      SEQRUN_ASSIGN(v, node("Unsqueeze", {v, ints(unsqueeze, base + "_axes")}, base));
    }
    return v;
  }

  // Positions of the size-1 dims of `l`, grouped by how many real axes come before them.
  static std::vector<std::vector<int64_t>> gaps(const Labels& l) {
    std::vector<std::vector<int64_t>> g(1);
    for (size_t i = 0; i < l.size(); ++i) {
      if (l[i] == '1') {
        g.back().push_back(static_cast<int64_t>(i));
      } else {
        g.emplace_back();
      }
    }
    return g;
  }

  // A leaf as a top-graph value in the layout `target` (constants of a loop body are copied out).
  Result<Value*> leaf(const Ref& r, const std::string& target, const std::string& base) {
    Value* v = r.value;
    if (!r.scope->is_top()) v = graph_.add_constant(graph_.unique_name(base), v->constant());
    return relabel(v, r.labels, canonical(target), base);
  }

 private:
  Graph& graph_;
  Node* anchor_;
  const std::map<char, Dim>& sizes_;
};

// Points every use of `old_value` (graph outputs included) at `new_value`, which takes over its name.
void replace_value(Graph& graph, Value* old_value, Value* new_value) {
  const std::string name = old_value->name();
  graph.replace_all_uses(old_value, new_value);
  graph.rename_value(old_value, graph.unique_name(name + "_unfused"));
  graph.rename_value(new_value, name);
}

// Rewrites one match; false (graph untouched) when no [B, D, L] input has a fully known shape to
// broadcast the others against.
Result<bool> rewrite(Graph& graph, const SsmMatch& m) {
  const std::vector<const Ref*> expanding = {&m.u, &m.delta, m.z ? &*m.z : nullptr};
  const Ref* shape_source = !m.u.expand ? &m.u : !m.delta.expand ? &m.delta : nullptr;
  for (const Ref* r : expanding) {
    if (r != nullptr && r->expand && shape_source == nullptr) return false;
  }
  Node* anchor = m.y.value->producer();
  if (anchor == nullptr) return false;
  const std::string base = m.y.value->name() + "_ssm";
  Emitter e(graph, anchor, m.sizes);

  SEQRUN_ASSIGN(Value * u, e.leaf(m.u, "BDL", base + "_u"));
  SEQRUN_ASSIGN(Value * delta, e.leaf(m.delta, "BDL", base + "_delta"));
  SEQRUN_ASSIGN(Value * A, e.leaf(m.A, "DN", base + "_A"));
  if (m.negate_A) {
    SEQRUN_ASSIGN(A, e.node("Neg", {A}, base + "_A"));
  }
  SEQRUN_ASSIGN(Value * Bm, e.leaf(m.Bm, "BNL", base + "_B"));
  SEQRUN_ASSIGN(Value * Cm, e.leaf(m.Cm, "BNL", base + "_C"));
  std::vector<Value*> inputs = {u, delta, A, Bm, Cm, nullptr, nullptr, nullptr, nullptr};
  if (m.dskip) {
    SEQRUN_ASSIGN(inputs[5], e.leaf(*m.dskip, "D", base + "_D"));
  }
  if (m.z) {
    SEQRUN_ASSIGN(inputs[6], e.leaf(*m.z, "BDL", base + "_z"));
  }
  if (m.delta_bias) {
    SEQRUN_ASSIGN(inputs[7], e.leaf(*m.delta_bias, "D", base + "_delta_bias"));
  }
  if (m.h0) {
    SEQRUN_ASSIGN(inputs[8], e.leaf(*m.h0, "BDN", base + "_h0"));
  }
  // Inputs whose size along some axis is unknown are broadcast explicitly to u's (or Δ's) shape, which
  // is what the graph's elementwise ops did.
  Value* shape = nullptr;
  const Ref* refs[9] = {&m.u,    &m.delta, nullptr, nullptr, nullptr, nullptr, m.z ? &*m.z : nullptr,
                        nullptr, nullptr};
  for (int i = 0; i < 9; ++i) {
    if (refs[i] == nullptr || !refs[i]->expand) continue;
    if (shape == nullptr) {
      SEQRUN_ASSIGN(shape, e.node("Shape", {shape_source == &m.u ? u : delta}, base + "_shape"));
    }
    SEQRUN_ASSIGN(inputs[i], e.node("Expand", {inputs[i], shape}, base + "_expand"));
  }
  while (inputs.back() == nullptr) inputs.pop_back();

  const int outputs = m.h ? 2 : 1;
  Node* scan =
      graph.add_node("SelectiveScan", inputs, outputs, {{"delta_softplus", m.delta_softplus ? 1 : 0}},
                     {graph.unique_name(base), graph.unique_name(base + "_state")}, anchor);
  if (!anchor->name().empty()) scan->set_name(anchor->name() + "/SelectiveScan");
  SEQRUN_TRY(infer_node_types(*scan));
  SEQRUN_ASSIGN(Value * y, e.relabel(scan->output(0), e.canonical("BDL"), m.y.labels, base + "_y"));
  replace_value(graph, m.y.value, y);
  if (m.h) {
    SEQRUN_ASSIGN(Value * h, e.relabel(scan->output(1), e.canonical("BDN"), m.h->labels, base + "_h"));
    replace_value(graph, m.h->value, h);
  }
  return true;
}

}  // namespace

Result<bool> FuseSsmScanPass::run(Graph& graph) {
  ssm::Matcher matcher(graph);
  std::set<const Node*> consumed;
  bool changed = false;
  for (Node* node : graph.nodes()) {
    const std::string& op = node->op();
    if (consumed.count(node) > 0 || (op != "LinearRecurrence" && op != "Loop" && op != "Scan")) continue;
    std::optional<SsmMatch> m = matcher.match(node);
    if (!m) continue;
    bool overlaps = false;
    for (const Node* n : m->nodes) overlaps = overlaps || consumed.count(n) > 0;
    if (overlaps) continue;
    SEQRUN_ASSIGN(bool rewritten, rewrite(graph, *m));
    if (!rewritten) continue;
    consumed.insert(m->nodes.begin(), m->nodes.end());
    changed = true;
  }
  if (changed) {
    graph.remove_dead_code();
    SEQRUN_TRY(graph.sort_topologically());
  }
  return changed;
}

}  // namespace seqrun::passes
