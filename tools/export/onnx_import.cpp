// ONNX importer (placeholder until implemented).
#include "tools/export/onnx_import.h"

namespace seqrun::onnx_import {
Result<std::unique_ptr<Graph>> import_onnx_file(const std::string& path, const ImportOptions&) {
  return Status::error(path + ": ONNX import not built yet");
}
Result<std::unique_ptr<Graph>> import_onnx_bytes(const std::string&, const std::string& name, const ImportOptions&) {
  return Status::error(name + ": ONNX import not built yet");
}
Result<Tensor> read_tensor_proto_file(const std::string& path, std::string*) {
  return Status::error(path + ": not built yet");
}
}  // namespace seqrun::onnx_import
