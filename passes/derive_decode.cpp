// derive-decode: the step graph of a full-sequence graph (see derive_decode.h for the contract).
#include "passes/derive_decode.h"

#include <limits>
#include <map>
#include <set>
#include <vector>

#include "ir/infer.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

namespace {

// How an op carries its state: (state input index, new-state output index, name suffix) pairs, and the
// input that takes the position (-1: none).
struct StepForm {
  std::vector<std::tuple<int, int, const char*>> pairs;
  int position_input = -1;
};

const StepForm* step_form(const std::string& op) {
  static const std::map<std::string, StepForm> forms = {
      {"SelectiveScan", {{{8, 1, "ssm"}}, -1}},
      {"CausalConvWithState", {{{3, 1, "conv"}}, -1}},
      {"LinearAttention", {{{3, 1, "kv"}}, -1}},
      {"TokenShift", {{{1, 1, "shift"}}, -1}},
      {"RWKV4WKV", {{{4, 1, "wkv"}}, -1}},
      {"LinearRecurrence", {{{2, 1, "h"}}, -1}},
      {"LTIScan", {{{8, 1, "lti_re"}, {9, 2, "lti_im"}}, -1}},
      {"MixedChunkAttention", {{{6, 1, "lin"}, {7, 2, "quad_k"}, {8, 3, "lin_k"}, {9, 4, "v"}}, 10}},
  };
  auto it = forms.find(op);
  return it == forms.end() ? nullptr : &it->second;
}

// Ops that mix positions along the sequence and have no step form here: any sequence-long input is an error.
const std::set<std::string>& unsupported_mixers() {
  static const std::set<std::string> ops = {"Scan",
                                            "Loop",
                                            "If",
                                            "RNN",
                                            "LSTM",
                                            "GRU",
                                            "FlexAttention",
                                            "CumSum",
                                            "Conv",
                                            "ConvTranspose",
                                            "ConvInteger",
                                            "DeformConv",
                                            "MaxPool",
                                            "AveragePool",
                                            "LpPool",
                                            "DFT",
                                            "STFT",
                                            "Attention",
                                            "ChunkedAttention",
                                            "GlobalAveragePool",
                                            "GlobalMaxPool",
                                            "GlobalLpPool",
                                            "Unique",
                                            "NonZero",
                                            "TopK",
                                            "ScatterND",
                                            "ScatterElements",
                                            "GatherND",
                                            "GatherElements",
                                            "Compress",
                                            "ReverseSequence"};
  return ops;
}

// The ONNX TensorProto code of the dtypes a Range may produce (Cast's `to`).
int64_t onnx_type_of(DType t) {
  switch (t) {
    case DType::f32:
      return 1;
    case DType::i32:
      return 6;
    case DType::i16:
      return 5;
    case DType::f64:
      return 11;
    case DType::f16:
      return 10;
    case DType::bf16:
      return 16;
    default:
      return 7;  // i64
  }
}

class Deriver {
 public:
  explicit Deriver(Graph& g) : g_(g) {}

  Result<bool> run() {
    for (const Value* in : g_.inputs()) {
      if (in->name().rfind("state.", 0) == 0) return false;  // already a step graph
    }
    SEQRUN_TRY(find_tokens());
    SEQRUN_TRY(rewrite_positions());
    for (Node* node : g_.nodes()) {
      const std::string& op = node->op();
      if (op == "Attention" || op == "ChunkedAttention") {
        SEQRUN_TRY(rewrite_attention(node));
      } else if (const StepForm* form = step_form(op)) {
        SEQRUN_TRY(rewrite_stateful(node, *form));
      }
    }
    if (carried_ == 0 && position_ == nullptr) {
      return make_error(
          "derive-decode: graph '{}' has no sequence-mixing op with a step form and no positions; "
          "nothing to carry between steps",
          g_.name());
    }
    shapes_.clear();
    SEQRUN_TRY(check_no_mixing());
    SEQRUN_TRY(slice_logits());
    g_.remove_dead_code();
    SEQRUN_TRY(g_.sort_topologically());
    return true;
  }

 private:
  Status find_tokens() {
    for (Value* in : g_.inputs()) {
      const TensorType& t = in->type();
      if ((t.dtype() == DType::i64 || t.dtype() == DType::i32) && t.has_rank() && t.rank() == 2) {
        if (tokens_ != nullptr) {
          return make_error(
              "derive-decode: graph '{}' has two token-like inputs ('{}' and '{}'); a decoder graph "
              "takes one, the token ids [batch, seq]",
              g_.name(), tokens_->name(), in->name());
        }
        tokens_ = in;
      }
    }
    if (tokens_ == nullptr) {
      return make_error("derive-decode: graph '{}' has no token-id input (i64 or i32 [batch, seq])",
                        g_.name());
    }
    batch_ = tokens_->type().dim(0);
    seq_ = shapes_.dim(tokens_, 1);
    if (!seq_.known() || seq_.is_static()) {
      return make_error("derive-decode: token input '{}' has type {}; its sequence dim must be symbolic",
                        tokens_->name(), tokens_->type().to_string());
    }
    return Status::ok();
  }

  Value* position() {
    if (position_ == nullptr) position_ = g_.add_input(kPositionInputName, TensorType(DType::i64, {}));
    return position_;
  }

  std::string key_of(const Node* node) {
    std::string key = node->output(0)->name();
    if (key.empty()) key = node->op() + std::to_string(carried_);
    return key;
  }

  // Range(0, seq, 1): the positions of the tokens; in a step graph they start at `position`, so every use
  // reads Range(0, seq, 1) + position instead (the Range itself still folds to a constant of static shape
  // once the token count is bound, so the plan keeps static shapes).
  Status rewrite_positions() {
    for (Node* node : g_.nodes()) {
      if (node->op() != "Range" || node->num_inputs() != 3) continue;
      auto start = shapes_.scalar(node->input(0));
      auto limit = shapes_.scalar(node->input(1));
      auto delta = shapes_.scalar(node->input(2));
      if (!start || !limit || !delta || !start->is(0) || !delta->is(1) || *limit != seq_) continue;
      Value* range = node->output(0);
      if (range->uses().empty() && !range->is_graph_output()) continue;
      Node* after = nullptr;  // the node after `node`, to insert in front of
      const std::vector<Node*> nodes = g_.nodes();
      for (size_t i = 0; i + 1 < nodes.size(); ++i) {
        if (nodes[i] == node) after = nodes[i + 1];
      }
      Value* pos = position();
      const DType dtype = range->type().dtype();
      if (dtype != DType::i64) {
        Node* cast = g_.add_node("Cast", {pos}, 1, {{"to", Attribute(onnx_type_of(dtype))}},
                                 {g_.unique_name("position." + std::string(dtype_name(dtype)))}, after);
        SEQRUN_TRY(infer_node_types(*cast));
        pos = cast->output(0);
      }
      Node* shifted =
          g_.add_node("Add", {range, pos}, 1, {}, {g_.unique_name(range->name() + ".from_position")}, after);
      SEQRUN_TRY(infer_node_types(*shifted));
      g_.replace_all_uses(range, shifted->output(0));
      shifted->set_input(0, range);  // replace_all_uses rewired this node's own input too
    }
    shapes_.clear();
    return Status::ok();
  }

  Status require_unused_outputs(const Node* node, int from) {
    for (int o = from; o < node->num_outputs(); ++o) {
      const Value* v = node->output(o);
      if (v != nullptr && (!v->uses().empty() || v->is_graph_output())) {
        return make_error("derive-decode: {} already uses its output #{} ('{}'); cannot carry its state",
                          node->describe(), o, v->name());
      }
    }
    return Status::ok();
  }

  // A state input of `type` with its batch dim set to the token input's.
  Result<Value*> state_input(const std::string& name, const Node* node, TensorType type) {
    if (!type.has_rank() || type.rank() < 1) {
      return make_error("derive-decode: {}: the type of its state ({}) is unknown", node->describe(),
                        type.to_string());
    }
    std::vector<Dim> dims = type.dims();
    dims[0] = batch_;
    for (size_t d = 1; d < dims.size(); ++d) {
      if (!dims[d].is_static() && !(dims[d].is_symbol() && dims[d].to_string() == kKvCapacityDim)) {
        return make_error("derive-decode: {}: its state has type {}; every dim but the batch must be static",
                          node->describe(), type.to_string());
      }
    }
    return g_.add_input(g_.unique_name(name), TensorType(type.dtype(), dims));
  }

  void expose(Value* out, const Value* in) {
    g_.rename_value(out, g_.unique_name("new_" + in->name()));
    g_.add_output(out);
  }

  // Causal self-attention over the tokens of this call -> CachedAttention over a KV cache.
  Status rewrite_attention(Node* node) {
    const bool chunked = node->op() == "ChunkedAttention";
    for (int i = 3; i < node->num_inputs(); ++i) {  // Q, K, V only: no mask, no past KV
      if (node->has_input(i)) {
        return make_error(
            "derive-decode: {} has input #{} ('{}', a mask or cache); only causal attention "
            "without a mask has a step form",
            node->describe(), i, node->input(i)->name());
      }
    }
    SEQRUN_TRY(require_unused_outputs(node, 1));
    if (node->get_int("is_causal", 0) != 1) {
      return make_error("derive-decode: {} is not causal; a decoder attends to earlier tokens only",
                        node->describe());
    }
    if (chunked && node->get_int("sparse_block", 0) != 0) {
      return make_error("derive-decode: {} has a block-sparse layout, which has no step form",
                        node->describe());
    }
    const TensorType& k = node->input(1)->type();
    const TensorType& v = node->input(2)->type();
    const TensorType& q = node->input(0)->type();
    if (!q.has_rank() || q.rank() != 4 || !k.has_rank() || k.rank() != 4 || !v.has_rank() || v.rank() != 4) {
      return make_error(
          "derive-decode: {} has 3-D or unknown-rank inputs; the step form needs 4-D [B, H, S, D]",
          node->describe());
    }
    for (int i = 0; i < 3; ++i) {
      const TensorType& t = node->input(i)->type();
      if (shapes_.dim(node->input(i), 2) != seq_) {
        return make_error("derive-decode: {}: input #{} ({}) does not run along the token sequence",
                          node->describe(), i, t.to_string());
      }
    }
    const std::string key = key_of(node);
    const Dim cap = Dim::symbol(kKvCapacityDim);
    // Heads and head sizes: the types', or what the shape reasoner proves (exports often say '?').
    auto size = [&](int input, int axis) {
      const SymDim d = shapes_.dim(node->input(input), axis);
      return d.is_static() ? Dim(d.value()) : node->input(input)->type().dim(axis);
    };
    SEQRUN_ASSIGN(Value * k_cache, state_input("state." + key + ".k", node,
                                               TensorType(k.dtype(), {batch_, size(1, 1), cap, size(1, 3)})));
    SEQRUN_ASSIGN(Value * v_cache, state_input("state." + key + ".v", node,
                                               TensorType(v.dtype(), {batch_, size(2, 1), cap, size(2, 3)})));
    std::map<std::string, Attribute> attrs;
    if (node->has_attr("scale")) attrs["scale"] = *node->attr("scale");
    attrs["softcap"] = Attribute(node->get_float("softcap", 0.0f));
    attrs["window"] = Attribute(chunked ? node->get_int("window", -1) : int64_t{-1});
    Node* step = g_.add_node("CachedAttention",
                             {node->input(0), node->input(1), node->input(2), k_cache, v_cache, position()},
                             3, attrs, {g_.unique_name(node->output(0)->name() + ".step")}, node);
    step->set_name(node->name());
    g_.replace_all_uses(node->output(0), step->output(0));
    g_.erase_node(node);
    SEQRUN_TRY(infer_node_types(*step));
    expose(step->output(1), k_cache);
    expose(step->output(2), v_cache);
    ++carried_;
    return Status::ok();
  }

  // An op with its own state input/output pair(s): add them.
  Status rewrite_stateful(Node* node, const StepForm& form) {
    int num_inputs = node->num_inputs(), num_outputs = 1;
    for (const auto& [in, out, suffix] : form.pairs) {
      if (node->has_input(in)) {
        return make_error("derive-decode: {} already takes a state (input #{}, '{}')", node->describe(), in,
                          node->input(in)->name());
      }
      num_inputs = std::max(num_inputs, in + 1);
      num_outputs = std::max(num_outputs, out + 1);
    }
    if (form.position_input >= 0) num_inputs = std::max(num_inputs, form.position_input + 1);
    SEQRUN_TRY(require_unused_outputs(node, 1));
    std::vector<Value*> inputs = node->inputs();
    inputs.resize(num_inputs, nullptr);
    std::vector<std::string> names = {g_.unique_name(node->output(0)->name() + ".step")};
    for (int o = 1; o < num_outputs; ++o) names.push_back(g_.unique_name(node->output(0)->name() + ".state"));
    Node* step = g_.add_node(node->op(), inputs, num_outputs, node->attrs(), names, node);
    step->set_name(node->name());
    // Inference without the state inputs gives the state outputs' types: the state inputs get the same.
    SEQRUN_TRY(infer_node_types(*step));
    const std::string key = key_of(node);
    for (const auto& [in, out, suffix] : form.pairs) {
      SEQRUN_ASSIGN(Value * state,
                    state_input("state." + key + "." + suffix, node, step->output(out)->type()));
      step->set_input(in, state);
      expose(step->output(out), state);
    }
    if (form.position_input >= 0) step->set_input(form.position_input, position());
    g_.replace_all_uses(node->output(0), step->output(0));
    g_.erase_node(node);
    SEQRUN_TRY(infer_node_types(*step));
    ++carried_;
    return Status::ok();
  }

  bool has_seq(const Value* v) {
    if (v == nullptr || ShapeReasoner::rank(v) < 0) return false;
    for (int a = 0; a < ShapeReasoner::rank(v); ++a) {
      if (shapes_.dim(v, a) == seq_) return true;
    }
    return false;
  }

  // A Conv with a 1 x ... x 1 kernel, stride 1 and no padding mixes channels only, never positions.
  static bool pointwise_conv(const Node* node) {
    const Value* w = node->num_inputs() > 1 ? node->input(1) : nullptr;
    if (w == nullptr || !w->type().has_rank() || w->type().rank() < 3) return false;
    for (int a = 2; a < w->type().rank(); ++a) {
      if (!(w->type().dim(a) == Dim(1))) return false;
    }
    for (int64_t v : node->get_ints("strides")) {
      if (v != 1) return false;
    }
    for (int64_t v : node->get_ints("pads")) {
      if (v != 0) return false;
    }
    const std::string pad = node->get_string("auto_pad", "NOTSET");
    return pad == "NOTSET" || pad == "VALID";
  }

  int norm_axis(int64_t axis, int rank) { return static_cast<int>(axis < 0 ? axis + rank : axis); }

  bool axis_is_seq(const Value* v, int64_t axis) {
    const int rank = ShapeReasoner::rank(v);
    if (rank < 0) return false;
    const int a = norm_axis(axis, rank);
    return a >= 0 && a < rank && shapes_.dim(v, a) == seq_;
  }

  Status mixing_error(const Node* node, const std::string& why) {
    return make_error("derive-decode: {} {}; it has no step form, so no exact step graph exists",
                      node->describe(), why);
  }

  // Fails on a node that may combine different positions of the sequence (see derive_decode.h).
  Status check_no_mixing() {
    for (const Node* node : g_.nodes()) {
      const std::string& op = node->op();
      const Value* x = node->num_inputs() > 0 ? node->input(0) : nullptr;
      if (op == "Conv" && pointwise_conv(node)) continue;
      if (unsupported_mixers().count(op) > 0) {
        for (const Value* in : node->inputs()) {
          if (has_seq(in)) return mixing_error(node, "mixes positions along the sequence");
        }
      } else if (op == "MatMul" || op == "Einsum" || op == "MatMulInteger" || op == "QLinearMatMul") {
        int long_operands = 0;
        for (const Value* in : node->inputs()) long_operands += has_seq(in) ? 1 : 0;
        if (long_operands >= 2) return mixing_error(node, "multiplies two sequence-long operands");
      } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax" || op == "ArgMax" ||
                 op == "ArgMin") {
        if (axis_is_seq(x, node->get_int("axis", op == "ArgMax" || op == "ArgMin" ? 0 : -1)))
          return mixing_error(node, "works along the sequence axis");
      } else if (op == "LayerNormalization" || op == "RMSNormalization") {
        const int rank = ShapeReasoner::rank(x);
        for (int a = rank < 0 ? 0 : norm_axis(node->get_int("axis", -1), rank); a < rank; ++a) {
          if (shapes_.dim(x, a) == seq_) return mixing_error(node, "normalizes over the sequence axis");
        }
      } else if (op.rfind("Reduce", 0) == 0) {
        std::vector<int64_t> axes = node->get_ints("axes");
        if (axes.empty() && node->num_inputs() > 1 && node->has_input(1)) {
          auto e = shapes_.elements(node->input(1));
          if (!e) return mixing_error(node, "reduces over axes that are not constant");
          for (const SymDim& d : *e) axes.push_back(d.value());
        }
        if (axes.empty()) {
          if (has_seq(x) && node->get_int("noop_with_empty_axes", 0) == 0)
            return mixing_error(node, "reduces over every axis, the sequence included");
        }
        for (int64_t a : axes) {
          if (axis_is_seq(x, a)) return mixing_error(node, "reduces over the sequence axis");
        }
      } else if (op == "Split" || op == "Gather" || op == "Flip") {
        if (axis_is_seq(x, node->get_int("axis", 0)))
          return mixing_error(node, "selects along the sequence axis");
      } else if (op == "Concat") {
        for (const Value* in : node->inputs()) {
          if (axis_is_seq(in, node->get_int("axis", 0)))
            return mixing_error(node, "concatenates along the sequence");
        }
      } else if (op == "Slice" || op == "Pad") {
        if (!has_seq(x)) continue;
        const int rank = ShapeReasoner::rank(x);
        const int axes_input = 3;  // Slice(data, starts, ends, axes, steps), Pad(data, pads, value, axes)
        std::vector<int64_t> axes;
        if (node->num_inputs() > axes_input && node->has_input(axes_input)) {
          auto e = shapes_.elements(node->input(axes_input));
          if (!e) return mixing_error(node, "works on axes that are not constant");
          for (const SymDim& d : *e) axes.push_back(d.value());
        } else {
          for (int a = 0; a < rank; ++a) axes.push_back(a);
        }
        if (op == "Pad") {
          auto pads =
              node->num_inputs() > 1 && node->has_input(1) ? shapes_.elements(node->input(1)) : std::nullopt;
          if (!pads) return mixing_error(node, "pads by amounts that are not constant");
          for (size_t i = 0; i < axes.size(); ++i) {
            const bool padded = !(*pads)[i].is(0) || !(*pads)[i + axes.size()].is(0);
            if (padded && axis_is_seq(x, axes[i]))
              return mixing_error(node, "pads the sequence axis (a shift)");
          }
        } else {
          for (int64_t a : axes) {
            if (axis_is_seq(x, a) &&
                !(node->output(0) != nullptr && shapes_.dim(node->output(0), norm_axis(a, rank)) == seq_))
              return mixing_error(node, "slices the sequence axis");
          }
        }
      }
    }
    return Status::ok();
  }

  // The logits of the last new token only: Slice [.., -1:, ..] in front of the final projection.
  Status slice_logits() {
    Value* logits = nullptr;
    for (Value* out : g_.outputs()) {
      if (out->name().rfind("new_state.", 0) == 0) continue;
      if (logits == nullptr || out->name() == "logits") logits = out;
    }
    if (logits == nullptr || logits->producer() == nullptr) return Status::ok();
    Node* head = logits->producer();
    const std::string& op = head->op();
    if (op != "Linear" && op != "FusedLinear" && op != "MatMul" && op != "Gemm") return Status::ok();
    Value* x = head->input(0);
    if (ShapeReasoner::rank(x) != 3 || shapes_.dim(x, 1) != seq_) return Status::ok();
    for (int i = 1; i < head->num_inputs(); ++i) {
      if (head->has_input(i) && !head->input(i)->is_constant()) return Status::ok();
    }
    const std::string base = x->name() + ".last";
    Value* starts =
        g_.add_constant(g_.unique_name(base + ".starts"), Tensor::from_vector<int64_t>({1}, {-1}));
    Value* ends = g_.add_constant(g_.unique_name(base + ".ends"),
                                  Tensor::from_vector<int64_t>({1}, {std::numeric_limits<int64_t>::max()}));
    Value* axes = g_.add_constant(g_.unique_name(base + ".axes"), Tensor::from_vector<int64_t>({1}, {1}));
    Node* slice = g_.add_node("Slice", {x, starts, ends, axes}, 1, {}, {g_.unique_name(base)}, head);
    // Slice's inference cannot size [-1:] of a symbolic dim: it is 1.
    std::vector<Dim> dims = x->type().dims();
    dims[1] = Dim(1);
    g_.set_value_type(slice->output(0), TensorType(x->type().dtype(), dims));
    head->set_input(0, slice->output(0));
    for (Value* out : head->outputs()) g_.set_value_type(out, TensorType::unknown_rank(out->type().dtype()));
    return infer_node_types(*head);
  }

  Graph& g_;
  ShapeReasoner shapes_;
  Value* tokens_ = nullptr;
  Value* position_ = nullptr;
  Dim batch_;
  SymDim seq_;
  int carried_ = 0;
};

}  // namespace

Result<bool> DeriveDecodePass::run(Graph& graph) {
  return Deriver(graph).run();
}

}  // namespace seqrun::passes
