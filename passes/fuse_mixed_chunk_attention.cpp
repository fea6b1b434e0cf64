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
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

// --- small integer tensors computed from constants (Pad's pads, torch builds them with Transpose) --------

struct IntTensor {
  Shape shape;
  std::vector<int64_t> data;
};

std::optional<IntTensor> fold_ints(const Value* v, ShapeReasoner& shapes, int depth = 0) {
  if (v == nullptr || depth > 16) return std::nullopt;
  if (v->is_constant()) {
    const Tensor& t = v->constant();
    if (!is_integer(t.dtype()) || t.numel() > 64) return std::nullopt;
    return IntTensor{t.shape(), t.to_i64_vector()};
  }
  Node* n = producer(v);
  if (n == nullptr) return std::nullopt;
  const std::string& op = n->op();
  if (op == "Identity" || (op == "Cast" && is_integer(v->type().dtype()))) {
    return fold_ints(n->input(0), shapes, depth + 1);
  }
  if (op == "Reshape" || op == "Unsqueeze" || op == "Squeeze" || op == "Transpose" || op == "Concat" ||
      op == "Slice") {
    auto in = fold_ints(n->input(0), shapes, depth + 1);
    if (!in) return std::nullopt;
    const int rank = static_cast<int>(in->shape.size());
    if (op == "Reshape" || op == "Unsqueeze" || op == "Squeeze") {  // same elements, the type's static shape
      auto out_dims = shapes.dims(v);
      if (!out_dims) return std::nullopt;
      Shape shape;
      for (const SymDim& d : *out_dims) {
        if (!d.is_static()) return std::nullopt;
        shape.push_back(d.value());
      }
      if (num_elements(shape) != static_cast<int64_t>(in->data.size())) return std::nullopt;
      return IntTensor{shape, in->data};
    }
    if (op == "Transpose") {
      std::vector<int64_t> perm = transpose_perm(n);
      if (static_cast<int>(perm.size()) != rank || rank != 2) return std::nullopt;  // matrices suffice
      if (perm[0] == 0) return in;
      IntTensor out{{in->shape[1], in->shape[0]}, {}};
      for (int64_t j = 0; j < in->shape[1]; ++j) {
        for (int64_t i = 0; i < in->shape[0]; ++i) out.data.push_back(in->data[i * in->shape[1] + j]);
      }
      return out;
    }
    if (op == "Concat") {  // 1-D pieces only
      if (rank != 1) return std::nullopt;
      IntTensor out = *in;
      for (int i = 1; i < n->num_explicit_inputs(); ++i) {
        auto piece = fold_ints(n->input(i), shapes, depth + 1);
        if (!piece || piece->shape.size() != 1) return std::nullopt;
        out.data.insert(out.data.end(), piece->data.begin(), piece->data.end());
      }
      out.shape = {static_cast<int64_t>(out.data.size())};
      return out;
    }
    // Slice along axis 0 of a matrix or vector, any step (torch reverses the pad pairs with step -1).
    auto starts = constant_ints(n->input(1));
    auto ends = constant_ints(n->input(2));
    if (!starts || !ends || starts->size() != 1 || ends->size() != 1 || rank < 1) return std::nullopt;
    if (n->input(3) != nullptr) {
      auto axes = constant_ints(n->input(3));
      if (!axes || axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -rank)) return std::nullopt;
    }
    int64_t step = 1;
    if (n->input(4) != nullptr) {
      auto steps = constant_ints(n->input(4));
      if (!steps || steps->size() != 1 || (*steps)[0] == 0) return std::nullopt;
      step = (*steps)[0];
    }
    const int64_t rows = in->shape[0],
                  row_size = rows == 0 ? 0 : static_cast<int64_t>(in->data.size()) / rows;
    int64_t s = (*starts)[0], e = (*ends)[0];
    if (s < 0) s += rows;
    if (e < 0) e += rows;
    IntTensor out{in->shape, {}};
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, rows);
      e = std::clamp<int64_t>(e, 0, rows);
    } else {
      s = std::clamp<int64_t>(s, -1, rows - 1);
      e = std::clamp<int64_t>(e, -1, rows - 1);
    }
    int64_t count = 0;
    for (int64_t i = s; step > 0 ? i < e : i > e; i += step, ++count) {
      out.data.insert(out.data.end(), in->data.begin() + i * row_size, in->data.begin() + (i + 1) * row_size);
    }
    out.shape[0] = count;
    return out;
  }
  if (op == "ConstantOfShape") {
    auto shape = shapes.elements(n->input(0));
    if (!shape) return std::nullopt;
    IntTensor out;
    for (const SymDim& d : *shape) {
      if (!d.is_static() || d.value() < 0 || d.value() > 64) return std::nullopt;
      out.shape.push_back(d.value());
    }
    int64_t fill = 0;
    if (const Attribute* a = n->attr("value")) {
      if (a->tensor().numel() != 1 || !is_integer(a->tensor().dtype())) return std::nullopt;
      fill = a->tensor().get_i64(0);
    }
    out.data.assign(num_elements(out.shape), fill);
    return out;
  }
  return std::nullopt;
}

// --- pieces of the pattern -----------------------------------------------------------------------------

// x4 = Reshape(flat [B, T, d]) -> [B, G, C, d].
struct Chunked {
  Value* flat = nullptr;
  int64_t chunk = 0;
};

// Size `axis` of a Reshape's output. ShapeReasoner gives up on a whole target when one element is unknown
// (torch computes G = T // C, which has no exact symbolic form), so a target built by Concat is also read
// piece by piece: the pieces that hold B, C and d stay provable. 0 copies the input's size (allowzero 0).
SymDim reshape_dim(Node* reshape, int axis, ShapeReasoner& shapes) {
  const SymDim derived = shapes.dim(reshape->output(0), axis);
  if (derived.is_static() || reshape->get_int("allowzero", 0) != 0) return derived;
  Node* concat = producer(reshape->input(1), "Concat");
  if (concat == nullptr) return derived;
  int64_t offset = 0;
  for (Value* piece : concat->inputs()) {
    if (piece == nullptr || !piece->type().has_rank() || piece->type().rank() != 1 ||
        !piece->type().dim(0).is_static()) {
      return derived;
    }
    const int64_t length = piece->type().dim(0).value();
    if (axis < offset + length) {
      auto e = shapes.elements(piece);
      if (!e || static_cast<int64_t>(e->size()) != length) return derived;
      const SymDim& d = (*e)[axis - offset];
      if (d.is(0)) return shapes.dim(reshape->input(0), axis);
      return d.known() && (!d.is_static() || d.value() > 0) ? d : derived;
    }
    offset += length;
  }
  return derived;
}

// Size `axis` of v, also through a Slice whose starts and ends are computed but provable (torch's
// chunk(2) slices [B, T, 2e] at e computed from Shape), which ShapeReasoner only reads from constants.
SymDim provable_dim(Value* v, int axis, ShapeReasoner& shapes, int depth = 0) {
  const SymDim known = shapes.dim(v, axis);
  Node* n = producer(v, "Slice");
  const int rank = ShapeReasoner::rank(v);
  if (known.known() || n == nullptr || depth > 8 || rank < 0) return known;
  if (axis < 0) axis += rank;
  auto starts = shapes.elements(n->input(1));
  auto ends = shapes.elements(n->input(2));
  std::optional<std::vector<SymDim>> axes, steps;
  if (n->input(3) != nullptr) axes = shapes.elements(n->input(3));
  if (n->input(4) != nullptr) steps = shapes.elements(n->input(4));
  if (!starts || !ends || ends->size() != starts->size() || (n->input(3) != nullptr && !axes) ||
      (n->input(4) != nullptr && !steps)) {
    return known;
  }
  for (size_t k = 0; k < starts->size(); ++k) {
    SymDim a = axes ? (*axes)[k] : SymDim::of(static_cast<int64_t>(k));
    if (!a.is_static()) return known;
    if ((a.value() < 0 ? a.value() + rank : a.value()) != axis) continue;
    const SymDim whole = provable_dim(n->input(0), axis, shapes, depth + 1);
    const SymDim& start = (*starts)[k];
    const SymDim& end = (*ends)[k];
    if (!whole.is_static() || !start.is_static() || !end.is_static() || (steps && !(*steps)[k].is(1)))
      return known;
    auto clamp_index = [&](int64_t x) {
      return std::clamp<int64_t>(x < 0 ? x + whole.value() : x, 0, whole.value());
    };
    const int64_t b = clamp_index(start.value()), e = clamp_index(end.value());
    return SymDim::of(std::max<int64_t>(e - b, 0));
  }
  return provable_dim(n->input(0), axis, shapes, depth + 1);
}

std::optional<Chunked> chunked(Value* x4, ShapeReasoner& shapes) {
  Node* n = producer(x4, "Reshape");
  if (n == nullptr || ShapeReasoner::rank(x4) != 4 || ShapeReasoner::rank(n->input(0)) != 3)
    return std::nullopt;
  Value* flat = n->input(0);
  const SymDim b = shapes.dim(flat, 0), d = provable_dim(flat, 2, shapes), c = reshape_dim(n, 2, shapes);
  if (!b.known() || !d.known() || !(reshape_dim(n, 0, shapes) == b) || !(reshape_dim(n, 3, shapes) == d)) {
    return std::nullopt;
  }
  if (!c.is_static() || c.value() <= 0) return std::nullopt;
  return Chunked{flat, c.value()};
}

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
