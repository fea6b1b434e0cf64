// ONNX -> ir::Graph importer (opsets 1..28 of the default domain, plus ai.onnx.preview ops).
//
// Every node becomes the IR op of the same name with the newest opset's semantics: attributes that
// older opsets had and newer ones take as inputs (Split/Squeeze/Unsqueeze/Reduce* axes, Pad pads,
// Slice starts/ends, Clip min/max, ...) become constant inputs; old Softmax/LogSoftmax/Hardmax
// (opset < 13, 2-D coercion) are rewritten with Flatten + Reshape. Initializers become constants
// (raw_data, typed fields, or external data files next to the model). Nested graphs (Scan, Loop,
// If) import recursively; values a body reads from the enclosing graph become captures.
// Anything unsupported is one error: op type, domain, opset and node name.
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "ir/status.h"

namespace seqrun::onnx_import {

struct ImportOptions {
  // Directory for external data files; defaults to the model file's directory.
  std::string external_data_dir;
};

Result<std::unique_ptr<Graph>> import_onnx_file(const std::string& path, const ImportOptions& options = {});
Result<std::unique_ptr<Graph>> import_onnx_bytes(const std::string& bytes, const std::string& name,
                                                 const ImportOptions& options = {});
// Reads a serialized onnx TensorProto (the test_data_set_*/input_N.pb files).
Result<Tensor> read_tensor_proto_file(const std::string& path, std::string* name = nullptr);

}  // namespace seqrun::onnx_import
