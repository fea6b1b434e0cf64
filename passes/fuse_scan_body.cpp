// fuse-scan-body pass (see fuse_scan_body.h): the driver and the causal depthwise convolution rewrite.
#include "passes/fuse_scan_body.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

// True when the attribute is absent or every entry is 1 (strides, dilations).
bool all_ones(const Node* n, const std::string& key) {
  for (int64_t v : n->get_ints(key, {})) {
    if (v != 1) return false;
  }
  return true;
}

bool all_zero(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 0; });
}

// A Cast/CastLike between float dtypes (or any CastLike) looked through: the value it converts.
const Value* strip_casts(const Value* v) {
  for (int depth = 0; v != nullptr && depth < 4; ++depth) {
    Node* n = producer(v);
    if (n == nullptr || (n->op() != "CastLike" && !is_float_cast(n))) break;
    v = n->input(0);
  }
  return v;
}

// One-element axis lists: true when it names the time axis of a rank-3 value.
bool is_time_axis(const std::optional<std::vector<SymDim>>& axes) {
  return axes && axes->size() == 1 && ((*axes)[0].is(2) || (*axes)[0].is(-1));
}

// The causal convolution found around one Conv node.
struct CausalConv {
  Node* conv = nullptr;
  Value* x = nullptr;
  Value* weight = nullptr;
  Value* bias = nullptr;
  Value* past_state = nullptr;  // null: zero left padding
  Value* padded = nullptr;      // Concat(pad, x) output, when the padding is explicit
  Value* output = nullptr;      // the value the fused output replaces
  Value* state = nullptr;       // the Slice output the fused state replaces, if any
  bool silu = false;
};

// Is `slice` the last K-1 columns (axis 2) of `padded`, i.e. padded[:, :, L:L+K-1]?
bool is_state_slice(const Node* slice, const Value* padded, const Value* x, int64_t kernel,
                    ShapeReasoner& shapes) {
  if (slice->op() != "Slice" || slice->num_outputs() != 1 || slice->num_inputs() < 4) return false;
  if (slice->input(0) != padded || slice->num_captures() > 0) return false;
  if (!is_time_axis(shapes.elements(slice->input(3)))) return false;
  if (slice->num_inputs() > 4 && slice->input(4) != nullptr) {
    auto steps = shapes.elements(slice->input(4));
    if (!steps || steps->size() != 1 || !(*steps)[0].is(1)) return false;
  }
  auto starts = shapes.elements(slice->input(1));
  auto ends = shapes.elements(slice->input(2));
  if (!starts || !ends || starts->size() != 1 || ends->size() != 1) return false;
  const SymDim length = shapes.dim(x, 2);
  const SymDim padded_length = length.plus(SymDim::of(kernel - 1));
  const SymDim& start = (*starts)[0];
  const SymDim& end = (*ends)[0];
  const bool start_ok = (length.known() && start == length) || (kernel > 1 && start.is(-(kernel - 1)));
  const bool end_ok = (padded_length.known() && end == padded_length) ||
                      (end.is_static() && end.value() >= (int64_t{1} << 31));
  return start_ok && end_ok;
}

// With right padding the Conv yields L + right outputs; the first L (a Slice [0, L) on axis 2, as Mamba's
// `conv1d(x)[..., :L]`) are the causal ones. That Slice's output, or null.
Value* first_steps_slice(Value* conv_out, const Value* x, ShapeReasoner& shapes) {
  if (conv_out->uses().size() != 1 || conv_out->is_graph_output()) return nullptr;
  Node* slice = conv_out->uses()[0].node;
  if (slice->op() != "Slice" || slice->input(0) != conv_out || slice->num_inputs() < 4) return nullptr;
  if (!is_time_axis(shapes.elements(slice->input(3)))) return nullptr;
  if (slice->num_inputs() > 4 && slice->input(4) != nullptr) {
    auto steps = shapes.elements(slice->input(4));
    if (!steps || steps->size() != 1 || !(*steps)[0].is(1)) return nullptr;
  }
  auto starts = shapes.elements(slice->input(1));
  auto ends = shapes.elements(slice->input(2));
  const SymDim length = shapes.dim(x, 2);
  if (!starts || !ends || starts->size() != 1 || ends->size() != 1 || !(*starts)[0].is(0)) return nullptr;
  if (!length.known() || (*ends)[0] != length) return nullptr;
  return slice->output(0);
}

// Finds SiLU(y) = Mul(a, Sigmoid(a)) with y the causal output, a = y or a float Cast of it, optionally cast
// back to x's dtype. Every intermediate must be used only inside the pattern.
void match_silu(CausalConv& cc) {
  Value* conv_out = cc.output;
  const DType want = cc.x->type().dtype();
  std::set<const Node*> pattern;
  Value* a = conv_out;
  if (conv_out->uses().size() >= 1) {
    Node* first = conv_out->uses()[0].node;
    if (is_float_cast(first) && first->input(0) == conv_out) {
      a = first->output(0);
      pattern.insert(first);
    }
  }
  Node* sigmoid = nullptr;
  Node* mul = nullptr;
  for (const Use& u : a->uses()) {
    if (u.node->op() == "Sigmoid") sigmoid = u.node;
  }
  if (sigmoid == nullptr || sigmoid->output(0)->is_graph_output()) return;
  for (const Use& u : a->uses()) {
    const Node* n = u.node;
    if (n->op() != "Mul" || n->num_inputs() != 2) continue;
    if ((n->input(0) == a && n->input(1) == sigmoid->output(0)) ||
        (n->input(1) == a && n->input(0) == sigmoid->output(0))) {
      mul = u.node;
    }
  }
  if (mul == nullptr) return;
  pattern.insert(sigmoid);
  pattern.insert(mul);
  Value* final_value = mul->output(0);
  if (final_value->uses().size() == 1 && !final_value->is_graph_output()) {
    Node* back = final_value->uses()[0].node;
    if ((back->op() == "CastLike" || is_float_cast(back)) && back->input(0) == final_value &&
        back->output(0)->type().dtype() == want) {
      final_value = back->output(0);
      pattern.insert(back);
    }
  }
  if (final_value->type().dtype() != want) return;
  auto inside = [&](const Value* v) {
    if (v->is_graph_output()) return false;
    for (const Use& u : v->uses()) {
      if (pattern.count(u.node) == 0) return false;
    }
    return true;
  };
  if (!inside(conv_out) || !inside(a) || !inside(sigmoid->output(0))) return;
  if (final_value != mul->output(0) && !inside(mul->output(0))) return;
  cc.output = final_value;
  cc.silu = true;
}

// Recognises a causal depthwise Conv; false leaves the graph alone.
bool match_causal_conv(Node* conv, ShapeReasoner& shapes, CausalConv* cc) {
  if (conv->op() != "Conv" || conv->num_outputs() != 1 || conv->num_captures() > 0) return false;
  if (conv->num_inputs() < 2 || conv->input(0) == nullptr || conv->input(1) == nullptr) return false;
  if (conv->get_string("auto_pad", "NOTSET") != "NOTSET") return false;
  if (!all_ones(conv, "strides") || !all_ones(conv, "dilations")) return false;
  Value* w = conv->input(1);
  if (ShapeReasoner::rank(w) != 3 || ShapeReasoner::rank(conv->input(0)) != 3) return false;
  const SymDim channels = shapes.dim(w, 0);
  const SymDim kernel_dim = shapes.dim(w, 2);
  if (!channels.is_static() || !kernel_dim.is_static() || !shapes.dim(w, 1).is(1)) return false;
  const int64_t C = channels.value(), K = kernel_dim.value();
  if (K < 1 || conv->get_int("group", 1) != C) return false;
  const std::vector<int64_t> kernel_shape = conv->get_ints("kernel_shape", {});
  if (!kernel_shape.empty() && kernel_shape != std::vector<int64_t>{K}) return false;
  const std::vector<int64_t> pads = conv->get_ints("pads", {});
  if (!pads.empty() && pads.size() != 2) return false;

  cc->conv = conv;
  cc->weight = w;
  cc->bias = conv->num_inputs() > 2 ? conv->input(2) : nullptr;
  cc->output = conv->output(0);
  Value* in = conv->input(0);
  if (!pads.empty() && pads[0] == K - 1 && K > 1) {
    cc->x = in;  // Conv{pads = [K-1, right]}(x): zero left padding, no state to carry
    if (pads[1] != 0 && !(cc->output = first_steps_slice(conv->output(0), in, shapes))) return false;
  } else {
    if (!all_zero(pads)) return false;
    Node* concat = producer(in, "Concat");
    if (concat == nullptr || concat->num_inputs() != 2) return false;
    const int64_t axis = concat->get_int("axis", 0);
    if (axis != 2 && axis != -1) return false;
    Value* pad = concat->input(0);
    cc->x = concat->input(1);
    cc->padded = in;
    if (ShapeReasoner::rank(pad) != 3 || !shapes.dim(pad, 2).is(K - 1)) return false;
    std::optional<double> zero = uniform_value(strip_casts(pad));
    if (!(zero && *zero == 0.0)) cc->past_state = pad;
  }
  if (ShapeReasoner::rank(cc->x) != 3 || !shapes.dim(cc->x, 1).is(C)) return false;
  if (cc->padded != nullptr) {
    for (const Use& u : cc->padded->uses()) {
      if (u.node != conv && is_state_slice(u.node, cc->padded, cc->x, K, shapes)) {
        cc->state = u.node->output(0);
        break;
      }
    }
  }
  match_silu(*cc);
  return true;
}

Result<bool> fuse(Graph& graph, const CausalConv& cc) {
  std::vector<Value*> inputs = {cc.x, cc.weight, cc.bias, cc.past_state};
  while (!inputs.empty() && inputs.back() == nullptr) inputs.pop_back();
  const int num_outputs = cc.state != nullptr ? 2 : 1;
  std::vector<std::string> names = {graph.unique_name(cc.output->name() + "_causal_conv")};
  if (cc.state != nullptr) names.push_back(graph.unique_name(cc.state->name() + "_causal_conv"));
  std::map<std::string, Attribute> attrs = {{"activation", Attribute(cc.silu ? "silu" : "none")}};
  Node* fused = graph.add_node("CausalConvWithState", inputs, num_outputs, attrs, names, cc.conv);
  fused->set_name(cc.conv->name());
  SEQRUN_TRY(infer_node_types(*fused));
  take_place_of(graph, cc.output, fused->output(0));
  if (cc.state != nullptr) take_place_of(graph, cc.state, fused->output(1));
  return true;
}

}  // namespace

Result<bool> FuseScanBodyPass::run(Graph& graph) {
  bool changed = false;
  ShapeReasoner shapes;
  for (Node* node : graph.nodes()) {
    if (node->op() == "Scan") {
      SEQRUN_ASSIGN(bool fused, fuse_linear_attention_scan(graph, node, shapes));
      changed |= fused;
      if (fused) shapes.clear();
      continue;
    }
    if (node->op() != "Conv") continue;
    CausalConv cc;
    if (!match_causal_conv(node, shapes, &cc)) continue;
    SEQRUN_ASSIGN(bool fused, fuse(graph, cc));
    changed |= fused;
    shapes.clear();
  }
  if (changed) graph.remove_dead_code();
  return changed;
}

}  // namespace seqrun::passes
