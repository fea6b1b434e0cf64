// CheckpointGraph: the graph-building toolkit the checkpoint builders (gpt2, llama, mamba) share.
//
// It owns the graph under construction and hands out the checkpoint's weights as f32 constants — one
// Value per tensor name, so a tied embedding is one constant used twice — checking each shape and
// recording which tensors were used: a tensor the builder neither used nor declared ignorable is an error
// at the end (a checkpoint we do not fully understand must not load as something else). Nodes are the
// primitive forms an ONNX export of the PyTorch model has (Reshape/Transpose head splits, MatMul
// attention, ...), so the optimization passes, not the builders, produce fused ops.
//
// Dynamic sizes: graphs take input_ids i64[batch, seq]; anything that depends on seq (positions, causal
// masks, rotary tables) is computed in the graph from Shape(input_ids), which shape specialization folds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "models/hf_config.h"
#include "models/safetensors.h"

namespace seqrun::models {

// A built model: its graph, and what a saved model should record about it (architecture, vocab_size,
// bos/eos token ids, ...), as the metadata map of ir/serialize.h's SaveOptions.
struct BuiltModel {
  std::unique_ptr<Graph> graph;
  std::map<std::string, std::string> metadata;
};

class CheckpointGraph {
 public:
  CheckpointGraph(const Checkpoint& checkpoint, const std::string& graph_name);

  Graph& graph() { return *graph_; }
  const Checkpoint& checkpoint() const { return checkpoint_; }

  // --- weights ---
  // The tensor as an f32 constant of exactly `shape`; the same Value for every call with one name.
  Result<Value*> weight(const std::string& name, const Shape& shape);
  // Like weight, but null (and no error) when the checkpoint does not hold the tensor.
  Result<Value*> optional_weight(const std::string& name, const Shape& shape);
  bool has(const std::string& name) const { return checkpoint_.contains(name); }
  // Marks a tensor as known but unused (registered buffers such as GPT-2's attn.bias).
  void ignore(const std::string& name) { used_.insert(name); }
  // Error naming the first tensor that no builder step used, with `what` describing the model.
  Status check_all_used(const std::string& what) const;

  // --- constants ---
  Value* ints(const std::vector<int64_t>& values);  // i64[n], shared per value list
  Value* int_scalar(int64_t value);                 // i64[], shared
  Value* float_scalar(float value);                 // f32[], shared
  Value* float_vector(const std::string& name, const std::vector<float>& values);

  // --- nodes ---
  // Adds `op_name` and returns its outputs, named `name` (+ ".1", ".2", ... for later outputs).
  std::vector<Value*> ops(const std::string& op_name, const std::vector<Value*>& inputs, int num_outputs,
                          const std::string& name, std::map<std::string, Attribute> attrs = {});
  Value* op(const std::string& op_name, const std::vector<Value*>& inputs, const std::string& name,
            std::map<std::string, Attribute> attrs = {});

  Value* reshape(Value* x, const std::vector<int64_t>& dims, const std::string& name);
  Value* transpose(Value* x, const std::vector<int64_t>& perm, const std::string& name);
  Value* unsqueeze(Value* x, const std::vector<int64_t>& axes, const std::string& name);
  // x[..., begin:end, ...] along `axis`.
  Value* slice(Value* x, int64_t begin, int64_t end, int64_t axis, const std::string& name);
  // Splits the last axis into pieces of the given sizes.
  std::vector<Value*> split_last(Value* x, const std::vector<int64_t>& sizes, const std::string& name);
  // x · Wᵀ (+ b), W [out, in] as nn.Linear stores it.
  Value* linear(Value* x, Value* w, Value* b, const std::string& name);

  // Normalizations over the last axis.
  Value* layer_norm(Value* x, Value* scale, Value* bias, float eps, const std::string& name);
  Value* rms_norm(Value* x, Value* scale, float eps, const std::string& name);
  // A transformers activation by its config name (gelu_new, gelu_pytorch_tanh, gelu_fast -> tanh Gelu;
  // gelu -> erf Gelu; relu; silu / swish; tanh; sigmoid; quick_gelu); errors name the config key `where`.
  Result<Value*> activation(const std::string& kind, Value* x, const std::string& where,
                            const std::string& name);

  // [batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim] and back.
  Value* split_heads(Value* x, int64_t heads, int64_t head_dim, const std::string& name);
  Value* merge_heads(Value* x, int64_t width, const std::string& name);

  // --- sequence-dependent pieces (from Shape(input_ids), computed once) ---
  Value* input_ids() const { return input_ids_; }
  Value* seq_len();           // i64[] scalar
  Value* positions();         // i64[seq] = 0, 1, ..., seq - 1
  Value* seq_by_seq_shape();  // i64[2] = [seq, seq]

  // Sets the graph output, infers types and verifies; errors name the checkpoint.
  Result<std::unique_ptr<Graph>> finish(Value* logits);

 private:
  Value* shared(const std::string& key, Tensor t);
  const Checkpoint& checkpoint_;
  std::unique_ptr<Graph> graph_;
  Value* input_ids_ = nullptr;
  Value* seq_len_ = nullptr;
  Value* positions_ = nullptr;
  Value* seq_by_seq_ = nullptr;
  std::set<std::string> used_;
  std::map<std::string, Value*> weights_;
  std::map<std::string, Value*> shared_constants_;
};

// Metadata every builder records: token ids when the config has them ("bos_token_id", "eos_token_id" as a
// comma-separated list, "pad_token_id").
Status add_token_metadata(const HfConfig& config, std::map<std::string, std::string>& metadata);

}  // namespace seqrun::models
