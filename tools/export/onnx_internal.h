// Internals shared by the ONNX importer's files: dtype and tensor conversion, the per-node record
// that legacy-opset rewrites edit, and the emitter they add nodes through.
//
// Only tools/export/onnx_*.cpp include this (it needs the ONNX protobuf headers and the
// ONNX_ML / ONNX_NAMESPACE definitions that tools/CMakeLists.txt sets for seqrun_onnx).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::onnx_import::detail {

// Newest default-domain opset the importer knows the semantics of.
constexpr int kMaxDefaultOpset = 28;

// ONNX TensorProto.DataType -> DType; nullopt for element types seqrun has no dtype for.
std::optional<DType> dtype_from_onnx(int32_t onnx_type);
// "FLOAT", "STRING", "COMPLEX64", ... (or the number) for error messages.
std::string onnx_dtype_name(int32_t onnx_type);
// DType -> ONNX TensorProto.DataType.
int32_t onnx_from_dtype(DType dtype);

// Converts a TensorProto to a Tensor, checking every size against the dims. External data is read
// from files under `external_dir` (paths that leave it are rejected); with an empty `external_dir`
// external data is an error. Errors do not carry a prefix: the caller adds "<file>: <what>".
Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto, const std::string& external_dir);

// One ONNX node on its way into the IR: the IR op, explicit inputs already resolved to IR values
// (null for an absent optional input), converted attributes, and the ONNX output names ("" for an
// absent optional output). Legacy rewrites edit this record or emit replacement nodes.
struct NodeSpec {
  std::string op;
  std::string onnx_op;      // op_type as written in the file
  std::string onnx_domain;  // "ai.onnx" for the default domain
  std::string name;         // ONNX node name (may be empty)
  int index = 0;            // position in its ONNX graph
  int opset = 0;            // opset version of the node's domain
  std::vector<Value*> inputs;
  std::map<std::string, Attribute> attrs;
  std::vector<std::string> output_names;
  std::vector<Value*> captures;  // outer values the node's bodies read (appended after inputs)
};

// What a legacy rewrite may do to the graph being built. Implemented by the graph importer.
class NodeEmitter {
 public:
  virtual ~NodeEmitter() = default;
  // "<file>: node 'name' (#3)" (plus the enclosing bodies), the prefix of every node error.
  virtual std::string context(const NodeSpec& spec) const = 0;
  // A constant with a fresh name derived from `hint`.
  virtual Value* constant(const std::string& hint, Tensor data) = 0;
  // A helper node with fresh output names; its output types are inferred.
  virtual Result<Node*> helper(const NodeSpec& spec, const std::string& op, const std::vector<Value*>& inputs,
                               int num_outputs, std::map<std::string, Attribute> attrs = {}) = 0;
  // Emits `spec` as the node whose outputs carry the ONNX names (captures appended).
  virtual Result<std::vector<Value*>> emit(NodeSpec& spec) = 0;
  // "<context>: unsupported attribute '<attr>' of ai.onnx::Op (opset N): <why>".
  Status unsupported_attribute(const NodeSpec& spec, const std::string& attr, const std::string& why) const;
  // "<context>: unsupported op ai.onnx::Op (opset N)" plus an optional reason.
  Status unsupported_op(const NodeSpec& spec, const std::string& why = "") const;
};

// Rewrites the older opset forms of `spec` into the newest form (attributes that became inputs,
// removed attributes, renamed or replaced ops). Returns the node's outputs when it emitted the
// node(s) itself, or nullopt when the (edited) spec should be emitted as one node.
Result<std::optional<std::vector<Value*>>> upgrade_legacy_node(NodeSpec& spec, NodeEmitter& emitter);

}  // namespace seqrun::onnx_import::detail
