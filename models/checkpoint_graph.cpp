// The builders' shared graph toolkit: checked weights, shared constants, head split/merge, sequence
// positions (interface: models/checkpoint_graph.h).
#include "models/checkpoint_graph.h"

#include <utility>

#include "ir/infer.h"
#include "ir/verify.h"

namespace seqrun::models {

CheckpointGraph::CheckpointGraph(const Checkpoint& checkpoint, const std::string& graph_name)
    : checkpoint_(checkpoint), graph_(std::make_unique<Graph>(graph_name)) {
  input_ids_ =
      graph_->add_input("input_ids", TensorType(DType::i64, {Dim::symbol("batch"), Dim::symbol("seq")}));
}

Result<Value*> CheckpointGraph::weight(const std::string& name, const Shape& shape) {
  auto it = weights_.find(name);
  if (it != weights_.end()) {
    const auto& have = it->second->constant().shape();
    if (have != shape) {
      return make_error("{}: used as {} and as {}", checkpoint_.describe(name), shape_to_string(have),
                        shape_to_string(shape));
    }
    return it->second;
  }
  SEQRUN_ASSIGN(Tensor t, checkpoint_.f32(name, shape));
  used_.insert(name);
  Value* v = graph_->add_constant(graph_->unique_name(name), std::move(t));
  weights_[name] = v;
  return v;
}

Result<Value*> CheckpointGraph::optional_weight(const std::string& name, const Shape& shape) {
  if (!has(name)) return static_cast<Value*>(nullptr);
  return weight(name, shape);
}

Status CheckpointGraph::check_all_used(const std::string& what) const {
  for (const std::string& name : checkpoint_.names()) {
    if (!used_.count(name))
      return make_error("{}: unexpected (not part of {})", checkpoint_.describe(name), what);
  }
  return Status::ok();
}

Value* CheckpointGraph::shared(const std::string& key, Tensor t) {
  auto it = shared_constants_.find(key);
  if (it != shared_constants_.end()) return it->second;
  Value* v = graph_->add_constant(graph_->unique_name(key), std::move(t));
  shared_constants_[key] = v;
  return v;
}

Value* CheckpointGraph::ints(const std::vector<int64_t>& values) {
  std::string key = "const_i64";
  for (int64_t v : values) key += "_" + (v < 0 ? "m" + std::to_string(-v) : std::to_string(v));
  return shared(key, Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values));
}

Value* CheckpointGraph::int_scalar(int64_t value) {
  return shared("scalar_i64_" + (value < 0 ? "m" + std::to_string(-value) : std::to_string(value)),
                Tensor::scalar<int64_t>(value));
}

Value* CheckpointGraph::float_scalar(float value) {
  return shared(fmt::format("scalar_f32_{:.9g}", value), Tensor::scalar<float>(value));
}

Value* CheckpointGraph::float_vector(const std::string& name, const std::vector<float>& values) {
  return graph_->add_constant(graph_->unique_name(name),
                              Tensor::from_vector<float>({static_cast<int64_t>(values.size())}, values));
}

std::vector<Value*> CheckpointGraph::ops(const std::string& op_name, const std::vector<Value*>& inputs,
                                         int num_outputs, const std::string& name,
                                         std::map<std::string, Attribute> attrs) {
  std::vector<std::string> names;
  for (int i = 0; i < num_outputs; ++i) {
    names.push_back(graph_->unique_name(i == 0 ? name : name + "." + std::to_string(i)));
  }
  Node* n = graph_->add_node(op_name, inputs, num_outputs, std::move(attrs), names);
  n->set_name(names[0]);
  return n->outputs();
}

Value* CheckpointGraph::op(const std::string& op_name, const std::vector<Value*>& inputs,
                           const std::string& name, std::map<std::string, Attribute> attrs) {
  return ops(op_name, inputs, 1, name, std::move(attrs))[0];
}

Value* CheckpointGraph::reshape(Value* x, const std::vector<int64_t>& dims, const std::string& name) {
  return op("Reshape", {x, ints(dims)}, name);
}

Value* CheckpointGraph::transpose(Value* x, const std::vector<int64_t>& perm, const std::string& name) {
  return op("Transpose", {x}, name, {{"perm", perm}});
}

Value* CheckpointGraph::unsqueeze(Value* x, const std::vector<int64_t>& axes, const std::string& name) {
  return op("Unsqueeze", {x, ints(axes)}, name);
}

Value* CheckpointGraph::slice(Value* x, int64_t begin, int64_t end, int64_t axis, const std::string& name) {
  return op("Slice", {x, ints({begin}), ints({end}), ints({axis})}, name);
}

std::vector<Value*> CheckpointGraph::split_last(Value* x, const std::vector<int64_t>& sizes,
                                                const std::string& name) {
  return ops("Split", {x, ints(sizes)}, static_cast<int>(sizes.size()), name, {{"axis", int64_t{-1}}});
}

Value* CheckpointGraph::linear(Value* x, Value* w, Value* b, const std::string& name) {
  if (b == nullptr) return op("Linear", {x, w}, name);
  return op("Linear", {x, w, b}, name);
}

Value* CheckpointGraph::layer_norm(Value* x, Value* scale, Value* bias, float eps, const std::string& name) {
  return op("LayerNormalization", {x, scale, bias}, name, {{"axis", int64_t{-1}}, {"epsilon", eps}});
}

Value* CheckpointGraph::rms_norm(Value* x, Value* scale, float eps, const std::string& name) {
  return op("RMSNormalization", {x, scale}, name, {{"axis", int64_t{-1}}, {"epsilon", eps}});
}

Result<Value*> CheckpointGraph::activation(const std::string& kind, Value* x, const std::string& where,
                                           const std::string& name) {
  if (kind == "gelu_new" || kind == "gelu_pytorch_tanh" || kind == "gelu_fast") {
    return op("Gelu", {x}, name, {{"approximate", "tanh"}});
  }
  if (kind == "gelu" || kind == "gelu_python") return op("Gelu", {x}, name);
  if (kind == "relu") return op("Relu", {x}, name);
  if (kind == "silu" || kind == "swish") return op("Silu", {x}, name);
  if (kind == "tanh") return op("Tanh", {x}, name);
  if (kind == "sigmoid") return op("Sigmoid", {x}, name);
  if (kind == "quick_gelu") {  // x * sigmoid(1.702 x)
    Value* scaled = op("Mul", {x, float_scalar(1.702f)}, name + ".scaled");
    return op("Mul", {x, op("Sigmoid", {scaled}, name + ".gate")}, name);
  }
  return make_error(
      "{}: activation '{}' is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, "
      "silu, swish, tanh, sigmoid, quick_gelu)",
      where, kind);
}

Value* CheckpointGraph::split_heads(Value* x, int64_t heads, int64_t head_dim, const std::string& name) {
  Value* r = reshape(x, {0, 0, heads, head_dim}, name + ".heads");
  return transpose(r, {0, 2, 1, 3}, name);
}

Value* CheckpointGraph::merge_heads(Value* x, int64_t width, const std::string& name) {
  Value* t = transpose(x, {0, 2, 1, 3}, name + ".tokens");
  return reshape(t, {0, 0, width}, name);
}

Value* CheckpointGraph::seq_len() {
  if (seq_len_ == nullptr) {
    Value* shape = op("Shape", {input_ids_}, "input_ids.shape");
    seq_len_ = op("Gather", {shape, int_scalar(1)}, "seq_len", {{"axis", int64_t{0}}});
  }
  return seq_len_;
}

Value* CheckpointGraph::positions() {
  if (positions_ == nullptr) positions_ = op("Range", {int_scalar(0), seq_len(), int_scalar(1)}, "positions");
  return positions_;
}

Value* CheckpointGraph::seq_by_seq_shape() {
  if (seq_by_seq_ == nullptr) {
    Value* one = unsqueeze(seq_len(), {0}, "seq_len.1d");
    seq_by_seq_ = op("Concat", {one, one}, "seq_by_seq", {{"axis", int64_t{0}}});
  }
  return seq_by_seq_;
}

Result<std::unique_ptr<Graph>> CheckpointGraph::finish(Value* logits) {
  const std::string context =
      checkpoint_.files().empty() ? std::string("checkpoint") : checkpoint_.files()[0].path;
  graph_->rename_value(logits, "logits");
  graph_->set_outputs({logits});
  SEQRUN_TRY(infer_graph_types(*graph_).with_context(context));
  SEQRUN_TRY(verify_graph(*graph_).with_context(context));
  return std::move(graph_);
}

Status add_token_metadata(const HfConfig& config, std::map<std::string, std::string>& metadata) {
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
    SEQRUN_ASSIGN(std::vector<int64_t> ids, config.get_int_list(key));
    if (ids.empty()) continue;
    std::string joined;
    for (size_t i = 0; i < ids.size(); ++i) joined += (i ? "," : "") + std::to_string(ids[i]);
    metadata[key] = joined;
  }
  return Status::ok();
}

}  // namespace seqrun::models
