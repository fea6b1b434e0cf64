// fuse-scan-body, linear attention: a Scan whose body is the `linear`, `gated`, `delta` or `gated_delta`
// linear-attention recurrence (the ONNX LinearAttention function body) becomes one LinearAttention node.
//
//   Scan(S0, Q4, K4, V4[, G4]) with X4 = Transpose{[1, 0, 2, 3]}(Reshape(x [B, T, H*D] -> [B, T, H, D]))
//   body:  S' = S + (k ⊗ v)                      (linear)
//          S' = S ⊙ exp(g)[..., None] + (k ⊗ v)  (gated)
//          delta rules: (k ⊗ v) becomes k ⊗ (beta · (v - Pᵀk)), P the (decayed) previous state
//          o  = scale · squeeze(q[None] @ S')
//   out:   Reshape(Transpose{[1, 0, 2, 3]}(O), [B, T, H*Dv]), final state S'
//
// Only f32 queries; q_num_heads == kv_num_heads, or the grouped-query read of the expanded function body
// (each kv state repeated Hq/Hkv times before the read, see grouped_read_ok);
// the initial state is zeros (no past_state) or a value of the state layout [B, H, dk, dv].
#include <set>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "passes/fuse_scan_body.h"
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

// Reads a Scan body, mapping body captures to the enclosing graph's values.
class BodyReader {
 public:
  BodyReader(const Node* scan, const Graph& body, ShapeReasoner& outer_shapes)
      : scan_(scan), body_(body), shapes_(outer_shapes) {}

  // The enclosing graph's value a body capture stands for (other values: themselves).
  const Value* outer(const Value* v) const {
    if (v == nullptr || v->role() != Value::Role::Capture) return v;
    const std::vector<Value*>& caps = body_.captures();
    for (size_t i = 0; i < caps.size(); ++i) {
      if (caps[i] == v) return scan_->input(scan_->num_explicit_inputs() + static_cast<int>(i));
    }
    return nullptr;
  }

  // The single axis in `axes`, normalized against `rank`; -1000 when not a constant single axis.
  int64_t axis(const Value* axes, int64_t rank) const {
    const Value* o = outer(axes);
    if (o == nullptr) return -1000;
    std::optional<std::vector<SymDim>> e = shapes_.elements(o);
    if (!e || e->size() != 1 || !(*e)[0].is_static()) return -1000;
    const int64_t a = (*e)[0].value();
    return a < 0 ? a + rank : a;
  }

  std::optional<double> constant(const Value* v) const {
    const Value* o = outer(v);
    if (o == nullptr) return std::nullopt;
    return shapes_.constant_value(o);
  }

  // The node producing v with op `op` inside the body, or null.
  static Node* made_by(const Value* v, const std::string& op) {
    if (v == nullptr || v->producer() == nullptr || v->producer()->op() != op) return nullptr;
    return v->producer();
  }

  // v with float Casts (and CastLike) looked through.
  static const Value* uncast(const Value* v) {
    for (int i = 0; v != nullptr && i < 3; ++i) {
      Node* n = v->producer();
      // Body values are untyped: a Cast to f32 of the (checked) f32 operands is the identity.
      const bool to_f32 = n != nullptr && n->op() == "Cast" && n->get_int("to", 0) == 1;
      if (n == nullptr || !(to_f32 || is_float_cast(n) || n->op() == "CastLike")) break;
      v = n->input(0);
    }
    return v;
  }

  // Unsqueeze(x, axis) of a rank-3 per-token value (output rank 4): x, else null.
  const Value* unsqueezed(const Value* v, int64_t want_axis) const {
    Node* n = made_by(v, "Unsqueeze");
    if (n == nullptr || n->num_inputs() != 2 || axis(n->input(1), 4) != want_axis) return nullptr;
    return uncast(n->input(0));
  }

 private:
  const Node* scan_;
  const Graph& body_;
  ShapeReasoner& shapes_;
};

struct LinearAttentionBody {
  std::string rule;  // "linear", "gated", "delta" or "gated_delta"
  double scale = 0;
  int q = -1, k = -1, v = -1, decay = -1, beta = -1;  // body input index of each per-token operand
  // Grouped-query read: Reshape(Expand(Unsqueeze(S', 2), [B, Hkv, G, dk, dv]), [B, Hq, dk, dv]); the
  // outer values of the Expand and Reshape targets, checked once the head counts are known.
  const Value* expand_shape = nullptr;
  const Value* read_shape = nullptr;
};

int input_index(const Graph& body, const Value* v) {
  const std::vector<Value*>& ins = body.inputs();
  for (size_t i = 0; i < ins.size(); ++i) {
    if (ins[i] == v) return static_cast<int>(i);
  }
  return -1;
}

// The delta rule's write row beta * (v - Squeeze(MatMul(Transpose{[0, 1, 3, 2]}(prev), Unsqueeze(k, -1)),
// -1)): the body input index of v (beta's in *beta), or -1.
int match_delta_write(const BodyReader& r, const Graph& body, const Value* write, const Value* prev, int k,
                      int* beta) {
  Node* mul = BodyReader::made_by(write, "Mul");
  if (mul == nullptr || mul->num_inputs() != 2 || k < 1) return -1;
  for (int i = 0; i < 2; ++i) {
    Node* sub = BodyReader::made_by(mul->input(i), "Sub");
    if (sub == nullptr || sub->num_inputs() != 2) continue;
    Node* squeeze = BodyReader::made_by(sub->input(1), "Squeeze");
    if (squeeze == nullptr || squeeze->num_inputs() != 2 || r.axis(squeeze->input(1), 4) != 3) continue;
    Node* retrieve = BodyReader::made_by(squeeze->input(0), "MatMul");
    if (retrieve == nullptr || input_index(body, r.unsqueezed(retrieve->input(1), 3)) != k) continue;
    Node* t = BodyReader::made_by(retrieve->input(0), "Transpose");
    if (t == nullptr || t->input(0) != prev || transpose_perm(t) != std::vector<int64_t>{0, 1, 3, 2})
      continue;
    *beta = input_index(body, BodyReader::uncast(mul->input(1 - i)));
    const int v = input_index(body, BodyReader::uncast(sub->input(0)));
    if (*beta >= 1 && v >= 1) return v;
  }
  return -1;
}

// Matches the body (inputs: state, then per-token operands; outputs: state, per-token output).
bool match_body(const BodyReader& r, const Graph& body, LinearAttentionBody* m) {
  if (body.inputs().size() < 4 || body.outputs().size() != 2) return false;
  const Value* state_in = body.inputs()[0];
  const Value* state_out = body.outputs()[0];
  // o = scale * Squeeze(MatMul(Unsqueeze(q, -2), state_out), -2)
  Node* mul = BodyReader::made_by(BodyReader::uncast(body.outputs()[1]), "Mul");
  if (mul == nullptr || mul->num_inputs() != 2) return false;
  Node* squeeze = nullptr;
  for (int i = 0; i < 2 && squeeze == nullptr; ++i) {
    Node* s = BodyReader::made_by(mul->input(i), "Squeeze");
    std::optional<double> c = r.constant(mul->input(1 - i));
    if (s != nullptr && c) squeeze = s, m->scale = *c;
  }
  if (squeeze == nullptr || squeeze->num_inputs() != 2 || r.axis(squeeze->input(1), 4) != 2) return false;
  Node* read = BodyReader::made_by(squeeze->input(0), "MatMul");
  if (read == nullptr) return false;
  if (read->input(1) != state_out) {
    Node* reshape = BodyReader::made_by(read->input(1), "Reshape");
    Node* expand = reshape ? BodyReader::made_by(reshape->input(0), "Expand") : nullptr;
    Node* unsq = expand ? BodyReader::made_by(expand->input(0), "Unsqueeze") : nullptr;
    if (unsq == nullptr || unsq->input(0) != state_out || r.axis(unsq->input(1), 5) != 2) return false;
    if (reshape->get_int("allowzero", 0) != 0) return false;
    m->expand_shape = r.outer(expand->input(1));
    m->read_shape = r.outer(reshape->input(1));
    if (m->expand_shape == nullptr || m->read_shape == nullptr) return false;
  }
  m->q = input_index(body, r.unsqueezed(read->input(0), 2));
  // state_out = prev + MatMul(Unsqueeze(k, -1), Unsqueeze(v, -2))
  Node* add = BodyReader::made_by(state_out, "Add");
  if (add == nullptr || add->num_inputs() != 2) return false;
  for (int i = 0; i < 2; ++i) {
    Node* outer = BodyReader::made_by(add->input(i), "MatMul");
    if (outer == nullptr) continue;
    const Value* prev = add->input(1 - i);
    const int k = input_index(body, r.unsqueezed(outer->input(0), 3));
    const Value* write = r.unsqueezed(outer->input(1), 2);
    int v = input_index(body, write);
    bool delta = false;
    if (v < 1) {  // delta rule: write = beta * (v - Squeeze(MatMul(Transpose(prev), Unsqueeze(k, -1)), -1))
      v = match_delta_write(r, body, write, prev, k, &m->beta);
      delta = true;
    }
    if (k < 1 || v < 1) continue;
    m->k = k, m->v = v;
    if (prev == state_in) {
      m->rule = delta ? "delta" : "linear";
    } else if (Node* decayed = BodyReader::made_by(prev, "Mul")) {
      for (int j = 0; j < 2; ++j) {
        Node* e = BodyReader::made_by(r.unsqueezed(decayed->input(1 - j), 3), "Exp");
        if (decayed->input(j) != state_in || e == nullptr) continue;
        m->decay = input_index(body, BodyReader::uncast(e->input(0)));
        if (m->decay >= 1) m->rule = delta ? "gated_delta" : "gated";
      }
    }
    break;
  }
  if (m->rule.empty() || m->q < 1) return false;
  const size_t want_inputs = 4 + (m->decay >= 1 ? 1 : 0) + (m->beta >= 1 ? 1 : 0);
  const std::set<int> distinct = {m->q, m->k, m->v, m->decay, m->beta};
  return body.inputs().size() == want_inputs &&
         distinct.size() == want_inputs - 1 + (m->decay < 1 || m->beta < 1 ? 1 : 0);
}

// Transpose{[1, 0, 2, 3]}(Reshape(x [B, T, H*D] -> [B, T, H, D])): x, H (and D), else null.
Value* packed_input(Value* x4, ShapeReasoner& shapes, int64_t* heads, SymDim* head_dim = nullptr) {
  Node* t = producer(x4, "Transpose");
  if (t == nullptr || transpose_perm(t) != std::vector<int64_t>{1, 0, 2, 3}) return nullptr;
  Node* reshape = producer(t->input(0), "Reshape");
  if (reshape == nullptr) return nullptr;
  Value* x = reshape->input(0);
  if (ShapeReasoner::rank(x) != 3 || x->type().dtype() != DType::f32) return nullptr;
  std::optional<std::vector<SymDim>> d = shapes.dims(reshape->output(0));
  if (!d || d->size() != 4 || !(*d)[2].is_static() || (*d)[2].value() < 1) return nullptr;
  if (!shapes.dim(x, 0).known() || (*d)[0] != shapes.dim(x, 0) || (*d)[1] != shapes.dim(x, 1)) return nullptr;
  *heads = (*d)[2].value();
  if (head_dim != nullptr) *head_dim = (*d)[3];
  return x;
}

// The grouped-query read repeats each kv head's state G = Hq / Hkv times, kv head-major, so query head h
// reads kv head h / G (LinearAttention's grouping): Expand to [B|1, Hkv|1, G, dk|1, dv|1] after the
// Unsqueeze at axis 2, then Reshape to [B|0, Hq, dk, dv] (one of the last two may be -1).
bool grouped_read_ok(const LinearAttentionBody& m, ShapeReasoner& shapes, Value* q, int64_t hq, int64_t hkv,
                     const SymDim& dk, const SymDim& dv) {
  if (hkv < 1 || hq % hkv != 0 || !dk.known() || !dv.known()) return false;
  auto e = shapes.elements(m.expand_shape);
  auto r = shapes.elements(m.read_shape);
  if (!e || !r || e->size() != 5 || r->size() != 4) return false;
  const SymDim batch = shapes.dim(q, 0);
  auto one_or = [](const SymDim& x, const SymDim& want) { return x.is(1) || (want.known() && x == want); };
  if (!one_or((*e)[0], batch) || !one_or((*e)[1], SymDim::of(hkv)) || !(*e)[2].is(hq / hkv) ||
      !one_or((*e)[3], dk) || !one_or((*e)[4], dv)) {
    return false;
  }
  const bool r0 = (*r)[0].is(0) || (batch.known() && (*r)[0] == batch);
  const bool r23 = ((*r)[2] == dk && ((*r)[3] == dv || (*r)[3].is(-1))) || ((*r)[2].is(-1) && (*r)[3] == dv);
  return r0 && (*r)[1].is(hq) && r23;
}

}  // namespace

Result<bool> fuse_linear_attention_scan(Graph& graph, Node* scan, ShapeReasoner& shapes) {
  if (scan->op() != "Scan" || scan->num_outputs() != 2 || scan->num_explicit_inputs() < 4) return false;
  const Attribute* body_attr = scan->attr("body");
  if (body_attr == nullptr || body_attr->type() != AttrType::Graph) return false;
  const int n_scan = static_cast<int>(scan->get_int("num_scan_inputs", 0));
  if (n_scan + 1 != scan->num_explicit_inputs()) return false;
  for (const char* key :
       {"scan_input_axes", "scan_output_axes", "scan_input_directions", "scan_output_directions"}) {
    for (int64_t a : scan->get_ints(key, {})) {
      if (a != 0) return false;
    }
  }
  const Graph& body = *body_attr->graph();
  BodyReader reader(scan, body, shapes);
  LinearAttentionBody m;
  if (!match_body(reader, body, &m)) return false;

  int64_t hq = 0, hk = 0, hv = 0, hg = 0, hb = 0;
  SymDim dk, dv;
  Value* q = packed_input(scan->input(m.q), shapes, &hq, &dk);
  Value* k = packed_input(scan->input(m.k), shapes, &hk);
  Value* v = packed_input(scan->input(m.v), shapes, &hv, &dv);
  Value* g = m.decay >= 1 ? packed_input(scan->input(m.decay), shapes, &hg) : nullptr;
  Value* beta = m.beta >= 1 ? packed_input(scan->input(m.beta), shapes, &hb) : nullptr;
  if (q == nullptr || k == nullptr || v == nullptr || (m.decay >= 1 && g == nullptr)) return false;
  if (m.beta >= 1 && beta == nullptr) return false;
  if (hk != hv || (g != nullptr && hg != hk) || (beta != nullptr && hb != hk)) return false;
  if (m.expand_shape == nullptr ? hq != hk : !grouped_read_ok(m, shapes, q, hq, hk, dk, dv)) return false;

  // Outputs: Reshape(Transpose{[1, 0, 2, 3]}(per-token outputs)) -> [B, T, H*Dv]; the final state.
  Value* accum = scan->output(1);
  if (accum->uses().size() != 1 || accum->is_graph_output()) return false;
  Node* t = accum->uses()[0].node;
  if (t->op() != "Transpose" || transpose_perm(t) != std::vector<int64_t>{1, 0, 2, 3}) return false;
  if (t->output(0)->uses().size() != 1 || t->output(0)->is_graph_output()) return false;
  Node* reshape = t->output(0)->uses()[0].node;
  if (reshape->op() != "Reshape" || reshape->input(0) != t->output(0)) return false;
  std::optional<std::vector<SymDim>> od = shapes.dims(reshape->output(0));
  if (!od || od->size() != 3 || (*od)[0] != shapes.dim(q, 0) || (*od)[1] != shapes.dim(q, 1)) return false;
  if (reshape->output(0)->type().dtype() != DType::f32 || scan->output(0)->type().dtype() != DType::f32) {
    return false;
  }

  Value* state0 = scan->input(0);
  Value* past = nullptr;
  std::optional<double> zero = uniform_value(state0);
  if (!(zero && *zero == 0.0)) {
    past = state0;
    Node* c = producer(state0);
    if (c != nullptr && is_float_cast(c)) past = c->input(0);
    if (past->type().dtype() != DType::f32 || ShapeReasoner::rank(past) != 4) return false;
  }

  std::vector<Value*> inputs = {q, k, v, past, g, beta};
  while (!inputs.empty() && inputs.back() == nullptr) inputs.pop_back();
  std::map<std::string, Attribute> attrs = {{"q_num_heads", Attribute(hq)},
                                            {"kv_num_heads", Attribute(hk)},
                                            {"update_rule", Attribute(m.rule)},
                                            {"scale", Attribute(m.scale)}};
  const std::vector<std::string> names = {graph.unique_name(reshape->output(0)->name() + "_linear_attention"),
                                          graph.unique_name(scan->output(0)->name() + "_linear_attention")};
  Node* fused = graph.add_node("LinearAttention", inputs, 2, attrs, names, scan);
  fused->set_name(scan->name());
  SEQRUN_TRY(infer_node_types(*fused));
  take_place_of(graph, reshape->output(0), fused->output(0));
  take_place_of(graph, scan->output(0), fused->output(1));
  return true;
}

}  // namespace seqrun::passes
