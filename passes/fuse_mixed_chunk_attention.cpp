// fuse-mixed-chunk-attention pass (see fuse_mixed_chunk_attention.h): from each Reshape of Add(quad, lin),
// match the quadratic and the linear half, prove the chunk reshapes and the exclusive prefix sum, and
// replace the Reshape's output with one MixedChunkAttention node.
#include "passes/fuse_mixed_chunk_attention.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "passes/causal_zero_mask.h"
#include "passes/chunk_reshape.h"
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

// Transpose(x, [0, 1, 3, 2]) -> x.
Value* untranspose_last_two(Value* v) {
  Node* t = producer(v, "Transpose");
  if (t == nullptr || transpose_perm(t) != std::vector<int64_t>{0, 1, 3, 2}) return nullptr;
  return t->input(0);
}

// Peels Mul/Div by one-element constants off v (each peeled value must have no other user).
Value* peel_scales(Value* v, ShapeReasoner& shapes, double* scale, std::vector<Value*>* inner) {
  for (int depth = 0; depth < 8; ++depth) {
    Node* n = producer(v);
    if (n == nullptr || (n->op() != "Mul" && n->op() != "Div") || n->num_inputs() != 2) return v;
    bool peeled = false;
    for (int side = 1; side >= 0 && !peeled; --side) {
      if (n->op() == "Div" && side == 0) break;
      Value* c = n->input(side);
      Value* x = n->input(1 - side);
      if (c == x || ShapeReasoner::rank(c) < 0 || ShapeReasoner::rank(c) > ShapeReasoner::rank(x)) continue;
      auto value = shapes.constant_value(c);
      if (!value || *value == 0.0 || !std::isfinite(*value)) continue;
      *scale = n->op() == "Mul" ? *scale * *value : *scale / *value;
      inner->push_back(v);
      v = x;
      peeled = true;
    }
    if (!peeled) return v;
  }
  return v;
}

bool is_axis_one(const Value* axis_value, ShapeReasoner& shapes) {
  auto s = shapes.scalar(axis_value);
  return s && (s->is(1) || s->is(-3));
}

// CumSum(x, axis 1), inclusive and forward.
Node* inclusive_cumsum(Value* v) {
  Node* c = producer(v, "CumSum");
  if (c == nullptr || c->get_int("exclusive", 0) != 0 || c->get_int("reverse", 0) != 0) return nullptr;
  return c;
}

// The exclusive prefix sum over chunks of some x: returns x.
Value* exclusive_prefix_sum(Value* v, ShapeReasoner& shapes, std::vector<Value*>* inner) {
  if (Node* c = producer(v, "CumSum")) {  // CumSum {exclusive = 1}
    if (c->get_int("exclusive", 0) == 1 && c->get_int("reverse", 0) == 0 &&
        is_axis_one(c->input(1), shapes)) {
      inner->push_back(v);
      return c->input(0);
    }
    return nullptr;
  }
  if (Node* sub = producer(v, "Sub")) {  // CumSum(x) - x
    Node* c = inclusive_cumsum(sub->input(0));
    if (c == nullptr || c->input(0) != sub->input(1) || !is_axis_one(c->input(1), shapes)) return nullptr;
    inner->push_back(v);
    inner->push_back(sub->input(0));
    return c->input(0);
  }
  Node* slice = producer(v, "Slice");  // Slice(Pad(CumSum(x), [0, 1, 0, 0, 0, 0, 0, 0]), [0], [-1], [1])
  if (slice == nullptr) return nullptr;
  auto starts = constant_ints(slice->input(1));
  auto ends = constant_ints(slice->input(2));
  std::optional<std::vector<int64_t>> axes;
  if (slice->input(3) != nullptr) axes = constant_ints(slice->input(3));
  if (!starts || !ends || !axes || *starts != std::vector<int64_t>{0} || *ends != std::vector<int64_t>{-1} ||
      (*axes != std::vector<int64_t>{1} && *axes != std::vector<int64_t>{-3})) {
    return nullptr;
  }
  if (slice->input(4) != nullptr && constant_ints(slice->input(4)) != std::vector<int64_t>{1}) return nullptr;
  Node* pad = producer(slice->input(0), "Pad");
  if (pad == nullptr || pad->get_string("mode", "constant") != "constant" || pad->input(3) != nullptr)
    return nullptr;
  if (pad->input(2) != nullptr) {
    auto fill = shapes.constant_value(pad->input(2));
    if (!fill || *fill != 0.0) return nullptr;
  }
  auto pads = fold_ints(pad->input(1), shapes);
  if (!pads || pads->data != std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 0}) return nullptr;
  Node* c = inclusive_cumsum(pad->input(0));
  if (c == nullptr || !is_axis_one(c->input(1), shapes)) return nullptr;
  inner->push_back(v);
  inner->push_back(slice->input(0));
  inner->push_back(pad->input(0));
  return c->input(0);
}

struct MixedChunk {
  Value* quad_q = nullptr;
  Value* quad_k = nullptr;
  Value* lin_q = nullptr;
  Value* lin_k = nullptr;
  Value* v = nullptr;
  Value* bias = nullptr;
  int64_t chunk = 0;
  bool causal = false;
  double quad_scale = 1.0, lin_scale = 1.0;
  std::vector<Value*> inner;  // values the rewrite makes dead: no users outside the pattern's nodes
};

// quad = MatMul(mask?(relu(scale·QK + bias)²), v·c); fills quad_* and v.
bool match_quadratic(Value* quad, ShapeReasoner& shapes, MixedChunk* m, bool* masked) {
  Node* av = producer(quad, "MatMul");
  if (av == nullptr) return false;
  m->inner.push_back(quad);
  auto vc = chunked(av->input(1), shapes);
  if (!vc) return false;
  m->v = vc->flat;
  m->chunk = vc->chunk;
  Value* kernel = av->input(0);
  m->inner.push_back(kernel);
  CausalZeroMask mask;
  *masked = match_causal_zero_mask(kernel, shapes, &mask);
  if (*masked) {
    kernel = mask.scores;
    m->inner.push_back(kernel);
  }
  Value* relu_out = nullptr;
  if (Node* pow = producer(kernel, "Pow")) {
    auto exponent = shapes.constant_value(pow->input(1));
    if (!exponent || *exponent != 2.0) return false;
    relu_out = pow->input(0);
  } else if (Node* mul = producer(kernel, "Mul")) {
    if (mul->input(0) != mul->input(1)) return false;
    relu_out = mul->input(0);
  } else {
    return false;
  }
  Node* relu = producer(relu_out, "Relu");
  if (relu == nullptr) return false;
  m->inner.push_back(relu_out);
  Value* x = relu->input(0);
  m->inner.push_back(x);
  if (Node* add = producer(x, "Add")) {  // + bias: the operand that is not a scaled MatMul
    for (int side = 0; side < 2 && m->bias == nullptr; ++side) {
      double scale = 1.0;
      std::vector<Value*> peeled;
      Value* s = peel_scales(add->input(side), shapes, &scale, &peeled);
      if (producer(s, "MatMul") != nullptr) {
        m->bias = add->input(1 - side);
        x = add->input(side);
      }
    }
    if (m->bias == nullptr) return false;
    m->inner.push_back(x);
  }
  Value* s = peel_scales(x, shapes, &m->quad_scale, &m->inner);
  Node* qk = producer(s, "MatMul");
  if (qk == nullptr) return false;
  m->inner.push_back(s);
  Value* kc = untranspose_last_two(qk->input(1));
  if (kc == nullptr) return false;
  m->inner.push_back(qk->input(1));
  auto qc = chunked(qk->input(0), shapes);
  auto kcc = chunked(kc, shapes);
  if (!qc || !kcc || qc->chunk != m->chunk || kcc->chunk != m->chunk) return false;
  m->quad_q = qc->flat;
  m->quad_k = kcc->flat;
  if (m->bias != nullptr) {  // [C, C] after broadcasting, independent of the scores
    auto bd = shapes.dims(m->bias);
    if (!bd || bd->size() > 4 || depends_on({m->bias}, s)) return false;
    for (size_t a = 0; a < bd->size(); ++a) {
      const bool last_two = a + 2 >= bd->size();
      if (!((*bd)[a].is(1) || (last_two && (*bd)[a].is(m->chunk)))) return false;
    }
  }
  return true;
}

// lin = MatMul(lin_q·c, KVx), KVx the (exclusive) prefix sum or the total of KV = lin_kᵀ v over chunks.
bool match_linear(Value* lin, ShapeReasoner& shapes, MixedChunk* m, bool causal) {
  Value* x = peel_scales(lin, shapes, &m->lin_scale, &m->inner);
  Node* out = producer(x, "MatMul");
  if (out == nullptr) return false;
  m->inner.push_back(x);
  auto lq = chunked(out->input(0), shapes);
  if (!lq || lq->chunk != m->chunk) return false;
  m->lin_q = lq->flat;
  Value* kvx = peel_scales(out->input(1), shapes, &m->lin_scale, &m->inner);
  m->inner.push_back(kvx);
  Value* kv = nullptr;
  if (causal) {
    kv = exclusive_prefix_sum(kvx, shapes, &m->inner);
  } else if (Node* sum = producer(kvx, "ReduceSum")) {
    std::optional<std::vector<SymDim>> axes;
    if (sum->input(1) != nullptr) axes = shapes.elements(sum->input(1));
    if (sum->get_int("keepdims", 1) == 1 && axes && axes->size() == 1 &&
        ((*axes)[0].is(1) || (*axes)[0].is(-3))) {
      kv = sum->input(0);
    }
  }
  if (kv == nullptr) return false;
  kv = peel_scales(kv, shapes, &m->lin_scale, &m->inner);
  Node* kv_node = producer(kv, "MatMul");
  if (kv_node == nullptr) return false;
  m->inner.push_back(kv);
  Value* lkc = untranspose_last_two(kv_node->input(0));
  if (lkc == nullptr) return false;
  m->inner.push_back(kv_node->input(0));
  auto lk = chunked(lkc, shapes);
  auto vc = chunked(kv_node->input(1), shapes);
  if (!lk || !vc || lk->chunk != m->chunk || vc->flat != m->v || vc->chunk != m->chunk) return false;
  m->lin_k = lk->flat;
  return true;
}

// Every value the rewrite makes dead is used only by the pattern's own nodes (CumSum(x) - x uses x twice)
// and is not a graph output.
bool pattern_is_closed(const std::vector<Value*>& inner, const Node* reshape) {
  std::set<const Node*> nodes = {reshape};
  for (const Value* v : inner) nodes.insert(v->producer());
  for (const Value* v : inner) {
    if (v->is_graph_output()) return false;
    for (const Use& use : v->uses()) {
      if (nodes.count(use.node) == 0) return false;
    }
  }
  return true;
}

std::optional<MixedChunk> match_mixed_chunk(Node* reshape, ShapeReasoner& shapes) {
  if (reshape->op() != "Reshape" || ShapeReasoner::rank(reshape->output(0)) != 3) return std::nullopt;
  Value* sum = reshape->input(0);
  Node* add = producer(sum, "Add");
  if (add == nullptr || ShapeReasoner::rank(sum) != 4 || !is_float(sum->type().dtype())) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    MixedChunk m;
    m.inner.push_back(sum);
    bool masked = false;
    if (!match_quadratic(add->input(side), shapes, &m, &masked)) continue;
    m.causal = masked;
    if (!match_linear(add->input(1 - side), shapes, &m, masked)) continue;
    // One [B, T] grid for every input, and the output reshape merges the chunks back into [B, T, E]. The sum
    // is [B, G, C, E] by construction: every operand is a product of chunk reshapes of that grid, and the
    // bias, mask and scales only broadcast over [C, C] or are one-element.
    const SymDim b = shapes.dim(m.v, 0), t = shapes.dim(m.v, 1), e = provable_dim(m.v, 2, shapes);
    bool ok = b.known() && t.known() && e.known();
    for (Value* x : {m.quad_q, m.quad_k, m.lin_q, m.lin_k}) {
      ok = ok && shapes.dim(x, 0) == b && shapes.dim(x, 1) == t;
    }
    ok = ok && reshape_dim(reshape, 0, shapes) == b && reshape_dim(reshape, 2, shapes) == e;
    if (ok && pattern_is_closed(m.inner, reshape)) return m;
  }
  return std::nullopt;
}

void rewrite(Graph& graph, const MixedChunk& m, Node* reshape) {
  Value* y = reshape->output(0);
  const std::string base = y->name() + "_mixed_chunk";
  auto emit = [&](const std::string& op, const std::vector<Value*>& inputs,
                  std::map<std::string, Attribute> attrs) {
    Node* n = graph.add_node(op, inputs, 1, std::move(attrs), {graph.unique_name(base + "_" + op)});
    Status st = infer_node_types(*n);  // the pass manager re-infers and verifies after the pass
    (void)st;
    return n->output(0);
  };
  Value* bias = m.bias;
  if (bias != nullptr && !(bias->type().has_rank() && bias->type().rank() == 2 &&
                           bias->type().dim(0).is_static() && bias->type().dim(0).value() == m.chunk &&
                           bias->type().dim(1).is_static() && bias->type().dim(1).value() == m.chunk)) {
    const int rank = std::max(2, ShapeReasoner::rank(bias));
    std::vector<int64_t> full(rank, 1);
    full[rank - 2] = full[rank - 1] = m.chunk;
    bias = emit("Expand", {bias, add_i64_constant(graph, base + "_shape", full)}, {});
    bias = emit("Reshape", {bias, add_i64_constant(graph, base + "_shape", {m.chunk, m.chunk})}, {});
  }
  std::vector<Value*> inputs = {m.quad_q, m.quad_k, m.lin_q, m.lin_k, m.v};
  if (bias != nullptr) inputs.push_back(bias);
  Value* out = emit("MixedChunkAttention", inputs,
                    {{"chunk_size", m.chunk},
                     {"causal", int64_t{m.causal ? 1 : 0}},
                     {"quad_scale", static_cast<float>(m.quad_scale)},
                     {"lin_scale", static_cast<float>(m.lin_scale)}});
  take_place_of(graph, y, out);
}

}  // namespace

Result<bool> FuseMixedChunkAttentionPass::run(Graph& graph) {
  ShapeReasoner shapes;
  bool changed = false;
  for (Node* node : graph.nodes()) {
    std::optional<MixedChunk> m = match_mixed_chunk(node, shapes);
    if (!m) continue;
    rewrite(graph, *m, node);
    shapes.clear();
    changed = true;
  }
  if (!changed) return false;
  graph.remove_dead_code();
  SEQRUN_TRY(graph.sort_topologically());
  return true;
}

}  // namespace seqrun::passes
