// linearize-attention pass (see linearize_attention.h): find A·V whose A is a scaled, optionally causally
// zero-masked Q'K'ᵀ, then emit LinearAttention (causal) or Q'(K'ᵀV) (non-causal) and move Y's and the row
// sum's users onto the new values; dead-code removal drops the quadratic nodes.
#include "passes/linearize_attention.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ir/infer.h"
#include "passes/causal_zero_mask.h"
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

// One matched quadratic attention.
struct Quadratic {
  Node* av = nullptr;      // Y = MatMul(A, V)
  Node* rowsum = nullptr;  // ReduceSum(A, [-1], keepdims 1), optional
  Value* q = nullptr;      // Q' [..., Sq, dk]
  Value* kt = nullptr;     // K'ᵀ [..., dk, T]
  Value* v = nullptr;      // V [..., T, dv]
  double scale = 1.0;
  bool causal = false;
  int rank = 0;
};

// Emits nodes named after one base name; output types are inferred as they are added.
struct Emitter {
  Graph& graph;
  std::string base;

  Value* node(const std::string& op, const std::vector<Value*>& inputs,
              std::map<std::string, Attribute> attrs = {}) {
    Node* n = graph.add_node(op, inputs, 1, std::move(attrs), {graph.unique_name(base + "_" + op)});
    Status st = infer_node_types(*n);  // the pass manager re-infers and verifies after the pass
    (void)st;
    return n->output(0);
  }
  Value* ints(const std::vector<int64_t>& values) { return add_i64_constant(graph, base + "_axes", values); }
  Value* scalar(double x, DType dtype) {
    Tensor t = Tensor::scalar<double>(x).cast(dtype);
    return graph.add_constant(graph.unique_name(base + "_scale"), t);
  }
  // x transposed by perm; a Transpose producer is composed with it (and vanishes when the result is the
  // identity), so Transpose(Reshape(...), [0, 2, 1, 3]) feeds the packed layout without a round trip.
  Value* transpose(Value* x, const std::vector<int64_t>& perm) {
    std::vector<int64_t> composed = perm;
    Value* source = x;
    if (Node* t = producer(x, "Transpose")) {
      const std::vector<int64_t> inner = transpose_perm(t);
      if (inner.size() == perm.size()) {
        for (size_t i = 0; i < perm.size(); ++i) composed[i] = inner[perm[i]];
        source = t->input(0);
      }
    }
    bool identity = true;
    for (size_t i = 0; i < composed.size(); ++i)
      identity = identity && composed[i] == static_cast<int64_t>(i);
    if (identity) return source;
    return node("Transpose", {source}, {{"perm", composed}});
  }
};

// Peels scalar Mul/Div factors and at most one causal zero mask off A, down to the scores MatMul.
bool match_scores(Value* a, ShapeReasoner& shapes, Quadratic* out) {
  Value* v = a;
  bool masked = false;
  for (int depth = 0; depth < 8; ++depth) {
    if (v != a && !single_use(v)) return false;
    Node* n = producer(v);
    if (n == nullptr) return false;
    if (n->op() == "MatMul") {
      out->q = n->input(0);
      out->kt = n->input(1);
      out->causal = masked;
      return true;
    }
    if ((n->op() == "Mul" || n->op() == "Div") && n->num_inputs() == 2) {
      bool peeled = false;
      for (int side = 1; side >= 0 && !peeled; --side) {
        if (n->op() == "Div" && side == 0) break;  // c / s is not a scaling of s
        Value* c = n->input(side);
        Value* s = n->input(1 - side);
        if (c == s || ShapeReasoner::rank(c) < 0 || ShapeReasoner::rank(c) > ShapeReasoner::rank(s)) continue;
        auto value = shapes.constant_value(c);
        if (!value || *value == 0.0 || !std::isfinite(*value)) continue;
        out->scale = n->op() == "Mul" ? out->scale * *value : out->scale / *value;
        v = s;
        peeled = true;
      }
      if (peeled) continue;
    }
    CausalZeroMask mask;
    if (!masked && match_causal_zero_mask(v, shapes, &mask)) {
      masked = true;
      v = mask.scores;
      continue;
    }
    return false;
  }
  return false;
}

// ReduceSum(A) over the last axis with keepdims = 1.
bool is_row_sum(const Node* n, int rank, ShapeReasoner& shapes) {
  if (n->op() != "ReduceSum" || n->get_int("keepdims", 1) != 1 || n->num_captures() > 0) return false;
  if (n->input(1) == nullptr) return false;
  auto axes = shapes.elements(n->input(1));
  if (!axes || axes->size() != 1 || !(*axes)[0].is_static()) return false;
  const int64_t axis = (*axes)[0].value();
  return axis == -1 || axis == rank - 1;
}

bool all_equal(const std::vector<SymDim>& dims) {
  for (const SymDim& d : dims) {
    if (!d.known() || d != dims[0]) return false;
  }
  return true;
}

std::optional<Quadratic> match_quadratic(Node* av, ShapeReasoner& shapes) {
  if (av->op() != "MatMul" || av->num_captures() > 0) return std::nullopt;
  Value* a = av->input(0);
  Value* y = av->output(0);
  if (a == av->input(1) || a->is_graph_output() || (y->uses().empty() && !y->is_graph_output())) {
    return std::nullopt;
  }
  if (!is_float(a->type().dtype())) return std::nullopt;
  Quadratic m;
  m.av = av;
  m.v = av->input(1);
  m.rank = ShapeReasoner::rank(a);
  if (m.rank < 2 || ShapeReasoner::rank(m.v) != m.rank) return std::nullopt;
  for (const Use& use : a->uses()) {
    if (use.node == av) continue;
    if (m.rowsum != nullptr || use.input_index != 0 || !is_row_sum(use.node, m.rank, shapes))
      return std::nullopt;
    m.rowsum = use.node;
  }
  if (!match_scores(a, shapes, &m)) return std::nullopt;
  if (ShapeReasoner::rank(m.q) != m.rank || ShapeReasoner::rank(m.kt) != m.rank) return std::nullopt;
  const SymDim dk = shapes.dim(m.q, -1), dv = shapes.dim(m.v, -1), keys = shapes.dim(m.kt, -1);
  if (keys.is_static()) {  // worth it only when the quadratic form is not provably cheaper
    if (!dk.is_static() || !dv.is_static() ||
        keys.value() * (dk.value() + dv.value()) <= 2 * dk.value() * dv.value()) {
      return std::nullopt;
    }
  }
  if (!m.causal) return m;
  // LinearAttention: rank 3 [N, T, d] or rank 4 [B, H, T, d] with a static H, the same batch dims everywhere.
  if (m.rank != 3 && m.rank != 4) return std::nullopt;
  if (!(shapes.dim(m.q, -2) == keys) || !keys.known()) return std::nullopt;
  for (int axis = 0; axis < m.rank - 2; ++axis) {
    if (!all_equal({shapes.dim(m.q, axis), shapes.dim(m.kt, axis), shapes.dim(m.v, axis)}))
      return std::nullopt;
  }
  if (m.rank == 4 && !shapes.dim(m.q, 1).is_static()) return std::nullopt;
  return m;
}

}  // namespace

LinearAttentionForm emit_linear_attention(Graph& graph, const std::string& base, Value* q, Value* kt,
                                          Value* v, const LinearAttentionSpec& spec) {
  Emitter e{graph, base};
  LinearAttentionForm out;
  if (!spec.causal) {  // Q'(K'ᵀV) and Q'·ReduceSum(K'ᵀ, -1), times the scale
    out.num = e.node("MatMul", {q, e.node("MatMul", {kt, v})});
    if (spec.scale != 1.0) out.num = e.node("Mul", {out.num, e.scalar(spec.scale, spec.dtype)});
    if (spec.row_sums) {
      Value* key_sum = e.node("ReduceSum", {kt, e.ints({-1})}, {{"keepdims", int64_t{1}}});
      out.den = e.node("MatMul", {q, key_sum});
      if (spec.scale != 1.0) out.den = e.node("Mul", {out.den, e.scalar(spec.scale, spec.dtype)});
    }
    return out;
  }
  // One LinearAttention over [N, T, H·d]; the row sums are the last value column of ones.
  std::vector<int64_t> swap_last(spec.rank);
  for (int i = 0; i < spec.rank; ++i) swap_last[i] = i;
  std::swap(swap_last[spec.rank - 1], swap_last[spec.rank - 2]);
  Value* k = e.transpose(kt, swap_last);
  if (spec.row_sums) {
    Value* lead = e.node("Shape", {v}, {{"end", int64_t{-1}}});
    Value* ones_shape = e.node("Concat", {lead, e.ints({1})}, {{"axis", int64_t{0}}});
    Value* ones = e.node("ConstantOfShape", {ones_shape},
                         {{"value", Tensor::from_vector<float>({1}, {1.0f}).cast(spec.dtype)}});
    v = e.node("Concat", {v, ones}, {{"axis", int64_t{-1}}});
  }
  auto pack = [&](Value* x) {
    if (spec.rank == 3) return x;
    return e.node("Reshape", {e.transpose(x, {0, 2, 1, 3}), e.ints({0, 0, -1})});
  };
  Value* o = e.node("LinearAttention", {pack(q), pack(k), pack(v)},
                    {{"q_num_heads", spec.heads},
                     {"kv_num_heads", spec.heads},
                     {"update_rule", "linear"},
                     {"scale", static_cast<float>(spec.scale)}});
  if (spec.rank == 4) {
    o = e.node("Reshape", {o, e.ints({0, 0, spec.heads, -1})});
    o = e.node("Transpose", {o}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  }
  out.num = o;
  if (spec.row_sums) {
    out.num = e.node("Slice", {o, e.ints({0}), e.ints({-1}), e.ints({-1})});
    out.den = e.node("Slice", {o, e.ints({-1}), e.ints({INT64_MAX}), e.ints({-1})});
  }
  return out;
}

Result<bool> LinearizeAttentionPass::run(Graph& graph) {
  ShapeReasoner shapes;
  bool changed = false;
  for (Node* node : graph.nodes()) {
    std::optional<Quadratic> m = match_quadratic(node, shapes);
    if (!m) continue;
    Value* y = m->av->output(0);
    LinearAttentionSpec spec;
    spec.causal = m->causal;
    spec.row_sums = m->rowsum != nullptr;
    spec.scale = m->scale;
    spec.rank = m->rank;
    spec.heads = m->causal && m->rank == 4 ? shapes.dim(m->q, 1).value() : 1;
    spec.dtype = y->type().dtype();
    LinearAttentionForm form = emit_linear_attention(graph, y->name() + "_linear", m->q, m->kt, m->v, spec);
    if (m->rowsum != nullptr) take_place_of(graph, m->rowsum->output(0), form.den);
    take_place_of(graph, y, form.num);
    shapes.clear();
    changed = true;
  }
  if (!changed) return false;
  graph.remove_dead_code();
  SEQRUN_TRY(graph.sort_topologically());
  return true;
}

}  // namespace seqrun::passes
