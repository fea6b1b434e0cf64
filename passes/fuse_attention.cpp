// fuse-attention pass (see fuse_attention.h): SoftmaxAttentionPattern matches the chain around each
// Softmax, proves its operands and masks, and rewrites it into one Attention node.
#include "passes/fuse_attention.h"

#include <cmath>
#include <limits>
#include <optional>

#include "ir/infer.h"
#include "passes/attention_heads.h"
#include "passes/attention_mask.h"
#include "passes/pattern.h"

namespace seqrun::passes {

namespace {

constexpr double kMaskedFill = -65504.0;  // see attention_mask.h

// A value of the scores/probs chain and the qk_matmul_output mode it equals (-1: none).
struct ChainValue {
  Value* value = nullptr;
  int mode = -1;
};

// The backward walk from the Softmax to the scores MatMul.
struct ScoreChain {
  struct Visited {
    Value* value;
    int masks_below;
    bool softcap_below;
    int scales_below;
  };
  std::vector<Visited> visited;
  std::vector<Value*> biases;
  struct Fill {
    Value* condition;
    bool masked_where_true;
    bool neg_inf;  // the fill is -inf (else a finite value <= -65504)
  };
  std::vector<Fill> fills;
  std::optional<double> softcap;
  double scale = 1.0;
  int scales = 0;
  int masks = 0;
  Node* matmul = nullptr;
};

struct AttentionMatch {
  Node* softmax = nullptr;
  Node* output = nullptr;  // MatMul(probs, V)
  Node* guard = nullptr;   // Where(all-masked row, 0, probs), when present
  int rank = 4;
  HeadOperand q, k;
  Value* k_fed = nullptr;  // K read as is (un-repeated / new part); null: k.base through k.perm
  Value* v_fed = nullptr;
  std::optional<PastConcat> past_k, past_v;
  double scale = 1.0;
  std::optional<double> softcap;
  MaskPlan mask;
  std::vector<Value*> observed;  // chain values the rewrite replaces with qk_matmul_output
  int mode = -1;
  SymDim q_heads, kv_heads;
};

std::optional<double> fill_value(Value* v, ShapeReasoner& shapes) {
  std::optional<double> x = uniform_value(v);
  if (!x) x = shapes.constant_value(v);
  return x;
}

// The rewrite of one softmax attention. match() walks back from a Softmax to the scores MatMul and
// forward to MatMul(probs, V), proves operands, heads and masks, and fills an AttentionMatch without
// touching the graph; rewrite() inserts the Attention node (and the few Transpose / Not / Unsqueeze nodes
// it needs) before MatMul(probs, V) and moves every use of the replaced values to it. The old chain is
// left for dead-code removal.
class SoftmaxAttentionPattern {
 public:
  explicit SoftmaxAttentionPattern(ShapeReasoner& shapes) : shapes_(shapes) {}

  bool match(Node* softmax, AttentionMatch* m) {
    if (softmax->op() != "Softmax" || softmax->num_captures() > 0) return false;
    Value* x = softmax->input(0);
    const int rank = ShapeReasoner::rank(x);
    if ((rank != 3 && rank != 4) || !is_float(x->type().dtype())) return false;
    int64_t axis = softmax->get_int("axis", -1);
    if (axis < 0) axis += rank;
    if (axis != rank - 1) return false;  // softmax over the keys only
    m->softmax = softmax;
    m->rank = rank;
    ScoreChain chain;
    if (!walk_scores(x, /*masks_allowed=*/true, ScoreChain(), &chain, 0)) return false;
    Node* scores = chain.matmul;
    if (ShapeReasoner::rank(scores->input(0)) != rank || ShapeReasoner::rank(scores->input(1)) != rank)
      return false;
    Value* guard_bias = nullptr;
    std::vector<ChainValue> values;
    for (const ScoreChain::Visited& v : chain.visited) {
      int mode = -1;
      if (v.scales_below == 0) {  // after every scale factor
        mode = (chain.softcap && v.softcap_below) ? 0 : v.masks_below > 0 ? 1 : 2;
      }
      values.push_back({v.value, mode});
    }
    if (!walk_probs(softmax->output(0), &values, &guard_bias, m)) return false;
    m->softcap = chain.softcap;
    // Operands.
    m->q = peel_query(scores->input(0), shapes_);
    std::optional<HeadOperand> k = peel_key(scores->input(1), shapes_);
    if (!k) return false;
    m->k = *k;
    m->scale = m->q.scale * m->k.scale * chain.scale;
    Value* v = m->output->input(1);
    if (!same_dtypes({m->q.base, m->k.base, v, m->output->output(0)})) return false;
    if (!check_heads(scores, v, m)) return false;
    // Masks, in the coordinates of the scores.
    ScoreFrame frame;
    if (!frame_of(scores, m, &frame)) return false;
    MaskAnalyzer masks(shapes_, frame);
    for (Value* b : chain.biases) masks.add_bias(b);
    for (const ScoreChain::Fill& f : chain.fills) masks.add_fill(f.condition, f.masked_where_true, f.neg_inf);
    if (!masks.finish(&m->mask)) return false;
    if (guard_bias != nullptr) {
      // The row guard is Attention's rule only when it reads the whole bias.
      if (m->mask.fills != 0 || m->mask.bias_values.size() != 1 || m->mask.bias_values[0] != guard_bias)
        return false;
    }
    // Chain values used elsewhere: allowed when they are one qk_matmul_output mode.
    for (const ChainValue& c : values) {
      if (outside_uses(c.value, m) == 0) continue;
      if (c.mode < 0 || (m->mode >= 0 && m->mode != c.mode) || rank != 4 ||
          c.value->type().dtype() != m->q.base->type().dtype()) {
        return false;
      }
      m->mode = c.mode;
      m->observed.push_back(c.value);
    }
    return no_cycles(m);
  }

  void rewrite(Graph& graph, const AttentionMatch& m) {
    Node* before = m.output;
    const std::string base = m.output->output(0)->name();
    auto add = [&](const std::string& op, std::vector<Value*> inputs, std::map<std::string, Attribute> attrs,
                   const std::string& name, int outputs = 1) {
      std::vector<std::string> names;
      for (int i = 0; i < outputs; ++i)
        names.push_back(graph.unique_name(name + (i ? "_" + std::to_string(i) : "")));
      Node* n = graph.add_node(op, inputs, outputs, std::move(attrs), names, before);
      (void)infer_node_types(*n);
      return n;
    };
    auto unsqueeze0 = [&](Value* v) {
      if (m.rank == 4) return v;
      Value* axes = add_i64_constant(graph, base + "_axes", {0});
      return add("Unsqueeze", {v, axes}, {}, v->name() + "_4d")->output(0);
    };
    Value* q = unsqueeze0(m.q.base);
    Value* k = m.k_fed;
    if (k == nullptr) {
      k = m.k.base;
      if (!m.k.perm.empty()) k = add("Transpose", {k}, {{"perm", m.k.perm}}, base + "_key")->output(0);
    }
    k = unsqueeze0(k);
    Value* v = unsqueeze0(m.v_fed);
    Value* mask = m.mask.tensor;
    if (mask != nullptr && m.mask.tensor_needs_not) mask = add("Not", {mask}, {}, base + "_keep")->output(0);
    if (mask != nullptr && m.mask.is_causal && m.mask.nonpad != nullptr && m.mask.tensor_rank == 3) {
      Value* axes = add_i64_constant(graph, base + "_axes", {0});
      mask = add("Unsqueeze", {mask, axes}, {}, base + "_mask4d")->output(0);
    }
    std::vector<Value*> inputs = {q,
                                  k,
                                  v,
                                  mask,
                                  m.past_k ? m.past_k->past : nullptr,
                                  m.past_v ? m.past_v->past : nullptr,
                                  m.mask.nonpad};
    while (inputs.back() == nullptr) inputs.pop_back();
    std::map<std::string, Attribute> attrs;
    attrs["scale"] = Attribute(static_cast<float>(m.scale));
    if (m.mask.is_causal) attrs["is_causal"] = Attribute(int64_t{1});
    if (m.softcap) attrs["softcap"] = Attribute(static_cast<float>(*m.softcap));
    if (m.q_heads.is_static()) attrs["q_num_heads"] = Attribute(m.q_heads.value());
    if (m.kv_heads.is_static()) attrs["kv_num_heads"] = Attribute(m.kv_heads.value());
    if (m.mode >= 0) attrs["qk_matmul_output_mode"] = Attribute(int64_t{m.mode});
    const int outputs = m.mode >= 0 ? 4 : m.past_k ? 3 : 1;
    Node* att = add("Attention", inputs, std::move(attrs), base + "_attention", outputs);
    Value* y = att->output(0);
    if (m.rank == 3) {
      Value* axes = add_i64_constant(graph, base + "_axes", {0});
      y = add("Squeeze", {y, axes}, {}, base + "_3d")->output(0);
    }
    take_place_of(graph, m.output->output(0), y);
    if (m.past_k) {
      take_place_of(graph, m.past_k->concat->output(0), att->output(1));
      take_place_of(graph, m.past_v->concat->output(0), att->output(2));
    }
    for (size_t i = 0; i < m.observed.size(); ++i) {
      if (i == 0) {
        take_place_of(graph, m.observed[i], att->output(3));
      } else {
        graph.replace_all_uses(m.observed[i], att->output(3));
      }
    }
  }

 private:
  // Backward from the Softmax input: casts, masks (Add / Where fills), softcap, scalar factors, MatMul.
  bool walk_scores(Value* x, bool masks_allowed, ScoreChain st, ScoreChain* out, int depth) {
    if (depth > 32) return false;
    st.visited.push_back({x, st.masks, st.softcap.has_value(), st.scales});
    Node* n = producer(x);
    if (n == nullptr) return false;
    if (is_float_cast(n)) return walk_scores(n->input(0), masks_allowed, st, out, depth + 1);
    if (n->op() == "MatMul") {
      st.matmul = n;
      *out = std::move(st);
      return true;
    }
    if (masks_allowed && n->op() == "Add") {
      for (int i = 0; i < 2; ++i) {
        ScoreChain next = st;
        next.biases.push_back(n->input(1 - i));
        ++next.masks;
        if (walk_scores(n->input(i), true, next, out, depth + 1)) return true;
      }
      return false;
    }
    if (masks_allowed && n->op() == "Where") {
      for (int fill_at : {1, 2}) {
        std::optional<double> f = fill_value(n->input(fill_at), shapes_);
        if (!f || *f > kMaskedFill || ShapeReasoner::rank(n->input(fill_at)) > ShapeReasoner::rank(x))
          continue;
        ScoreChain next = st;
        next.fills.push_back({n->input(0), fill_at == 1, std::isinf(*f)});
        ++next.masks;
        if (walk_scores(n->input(fill_at == 1 ? 2 : 1), true, next, out, depth + 1)) return true;
      }
      return false;
    }
    if (masks_allowed) {
      // softcap: Mul(Tanh(Div(y, cap)), cap), or with Mul(y, 1/cap) inside.
      Match sm;
      Pattern div_form =
          commutative("Mul", op("Tanh", {op("Div", {any("y"), scalar("cap")})}), scalar("cap"));
      Pattern mul_form =
          commutative("Mul", op("Tanh", {commutative("Mul", any("y"), scalar("inv"))}), scalar("cap"));
      bool found = match_pattern(div_form, x, shapes_, &sm);
      if (!found) {
        sm = Match();
        found = match_pattern(mul_form, x, shapes_, &sm) &&
                std::fabs(sm.scalars["inv"] * sm.scalars["cap"] - 1.0) < 1e-6;
      }
      if (found && sm.scalars["cap"] > 0.0 && std::isfinite(sm.scalars["cap"])) {
        for (Node* inner : sm.nodes) {
          if (inner->output(0) != x && !single_use(inner->output(0))) return false;
        }
        ScoreChain next = st;
        next.softcap = sm.scalars["cap"];
        return walk_scores(sm["y"], false, next, out, depth + 1);
      }
    }
    for (int i = 0; i < 2 && i < n->num_inputs(); ++i) {
      std::optional<double> f = scalar_factor(n, n->input(i), shapes_);
      if (!f) continue;
      ScoreChain next = st;
      next.scale *= *f;
      ++next.scales;
      return walk_scores(n->input(i), false, next, out, depth + 1);
    }
    return false;
  }

  // Forward from the Softmax output: casts, the all-masked-row guard, then MatMul(probs, V).
  bool walk_probs(Value* p, std::vector<ChainValue>* values, Value** guard_bias, AttentionMatch* m) {
    size_t first_post = values->size();
    bool guarded = false;
    for (int depth = 0; depth < 16; ++depth) {
      values->push_back({p, 3});
      Node* next = nullptr;
      for (const Use& u : p->uses()) {
        Node* n = u.node;
        if (n->num_captures() > 0) continue;
        const bool step =
            is_float_cast(n) || (n->op() == "MatMul" && u.input_index == 0) ||
            (n->op() == "Where" && u.input_index == 2 && !guarded && is_row_guard(n, guard_bias));
        if (!step) continue;
        if (next != nullptr) return false;  // two ways forward: not one chain
        next = n;
      }
      if (next == nullptr) return false;
      if (next->op() == "Where") {
        guarded = true;
        m->guard = next;
        // Probabilities before the guard differ from Attention's on all-masked rows.
        for (size_t i = first_post; i < values->size(); ++i) (*values)[i].mode = -1;
      }
      if (next->op() == "MatMul") {
        m->output = next;
        return true;
      }
      p = next->output(0);
    }
    return false;
  }

  // Where(Equal(ReduceMax(bias, axes=[-1], keepdims=1), -inf), 0, probs).
  bool is_row_guard(Node* where, Value** guard_bias) {
    std::optional<double> zero = fill_value(where->input(1), shapes_);
    if (!zero || *zero != 0.0) return false;
    Match gm;
    Pattern p = commutative("Equal", op("ReduceMax", {any("bias"), any("axes")}),
                            scalar("ninf", -std::numeric_limits<double>::infinity()));
    Pattern p_attr_axes = commutative("Equal", op("ReduceMax", {any("bias")}),
                                      scalar("ninf", -std::numeric_limits<double>::infinity()));
    if (!match_pattern(p, where->input(0), shapes_, &gm)) {
      gm = Match();
      if (!match_pattern(p_attr_axes, where->input(0), shapes_, &gm)) return false;
    }
    Node* rm = nullptr;
    for (Node* n : gm.nodes) {
      if (n->op() == "ReduceMax") rm = n;
    }
    Value* bias = gm["bias"];
    const int rank = ShapeReasoner::rank(bias);
    if (rm == nullptr || rank < 1 || rm->get_int("keepdims", 1) != 1) return false;
    std::vector<int64_t> axes;
    if (Value* a = gm["axes"]) {
      auto ints = constant_ints(a);
      if (!ints) return false;
      axes = *ints;
    } else {
      axes = rm->get_ints("axes");
    }
    if (axes.size() != 1 || (axes[0] != -1 && axes[0] != rank - 1)) return false;
    *guard_bias = bias;
    return true;
  }

  // Uses of a chain value other than the chain's own next step and the row guard's type-only CastLike
  // (CastLike(0, probs) feeding the guard dies with the guard).
  int outside_uses(const Value* v, const AttentionMatch* m) {
    int count = v->is_graph_output() ? 1 : 0;
    bool chain_step_seen = false;
    for (const Use& u : v->uses()) {
      const Node* n = u.node;
      if (n->op() == "CastLike" && u.input_index == 1 && m->guard != nullptr) {
        bool feeds_guard_only = true;
        for (const Use& g : n->output(0)->uses()) feeds_guard_only = feeds_guard_only && g.node == m->guard;
        if (feeds_guard_only && !n->output(0)->is_graph_output()) continue;
      }
      if (!chain_step_seen) {
        chain_step_seen = true;  // the one use the chain itself makes
        continue;
      }
      ++count;
    }
    return count;
  }

  bool same_dtypes(const std::vector<Value*>& values) {
    const DType d = values[0]->type().dtype();
    if (!is_float(d)) return false;
    for (const Value* v : values) {
      if (v->type().dtype() != d) return false;
    }
    return true;
  }

  // Batch and head sizes must be proven compatible: Attention does not broadcast them like MatMul.
  // Also decides un-repeating (GQA) and past routing.
  bool check_heads(Node* scores, Value* v, AttentionMatch* m) {
    auto dq = shapes_.dims(scores->input(0));
    auto dkt = shapes_.dims(scores->input(1));
    auto dv = shapes_.dims(v);
    const int r = m->rank;
    if (!dq || !dkt || !dv || static_cast<int>(dv->size()) != r) return false;
    std::vector<SymDim> dk = *dkt;
    std::swap(dk[r - 1], dk[r - 2]);
    if (!(dk[0] == (*dq)[0]) || !(dv->at(0) == (*dq)[0])) return false;
    m->v_fed = v;
    if (r == 3) {
      m->q_heads = (*dq)[0];
      m->kv_heads = (*dq)[0];
      return true;
    }
    if (!(dk[1] == (*dq)[1] || dk[1].is(1)) || !(dv->at(1) == dk[1])) return false;
    m->q_heads = (*dq)[1];
    m->kv_heads = dk[1];
    if (!m->k.perm.empty()) return true;
    Value* k = m->k.base;
    std::optional<HeadRepeat> rk = match_head_repeat(k, shapes_);
    std::optional<HeadRepeat> rv = match_head_repeat(v, shapes_);
    if (rk && rv && rk->factor == rv->factor) {
      k = rk->unrepeated;
      v = rv->unrepeated;
      m->k_fed = k;
      m->v_fed = v;
      m->kv_heads = shapes_.dim(k, 1);
    }
    std::optional<PastConcat> pk = match_past_concat(k);
    std::optional<PastConcat> pv = match_past_concat(v);
    if (pk && pv) {
      m->past_k = pk;
      m->past_v = pv;
      m->k_fed = pk->fresh;
      m->v_fed = pv->fresh;
    }
    return true;
  }

  bool frame_of(Node* scores, const AttentionMatch* m, ScoreFrame* frame) {
    auto dq = shapes_.dims(scores->input(0));
    auto dkt = shapes_.dims(scores->input(1));
    if (!dq || !dkt) return false;
    frame->dims = *dq;
    frame->dims.back() = dkt->back();  // [.., Sq, T]
    frame->allow_nonpad = m->rank == 4 && !m->past_k;
    if (m->past_k) frame->causal_offset = shapes_.dim(m->past_k->past, 2);
    return true;
  }

  // Rerouting present/qk outputs must not make an input of the fused node depend on its own output.
  bool no_cycles(const AttentionMatch* m) {
    std::vector<Value*> inputs = {m->q.base, m->k_fed ? m->k_fed : m->k.base, m->v_fed, m->mask.tensor,
                                  m->mask.nonpad};
    if (m->past_k) {
      inputs.push_back(m->past_k->past);
      inputs.push_back(m->past_v->past);
    }
    std::vector<const Value*> rerouted(m->observed.begin(), m->observed.end());
    if (m->past_k) {
      rerouted.push_back(m->past_k->concat->output(0));
      rerouted.push_back(m->past_v->concat->output(0));
    }
    for (Node* n : ancestors(inputs)) {
      for (const Value* in : n->inputs()) {
        for (const Value* r : rerouted) {
          if (in == r) return false;
        }
      }
    }
    for (const Value* in : inputs) {
      for (const Value* r : rerouted) {
        if (in == r) return false;
      }
    }
    return true;
  }

  ShapeReasoner& shapes_;
};

}  // namespace

Result<bool> FuseAttentionPass::run(Graph& graph) {
  ShapeReasoner shapes;
  SoftmaxAttentionPattern pattern(shapes);
  bool changed = false;
  for (Node* node : graph.nodes()) {
    if (node->op() != "Softmax") continue;
    AttentionMatch m;
    if (!pattern.match(node, &m)) continue;
    pattern.rewrite(graph, m);
    shapes.clear();
    changed = true;
  }
  if (!changed) return false;
  graph.remove_dead_code();
  SEQRUN_TRY(graph.sort_topologically());
  return true;
}

}  // namespace seqrun::passes
