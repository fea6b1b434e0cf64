// Reading and writing .seqrun model files (layout in ir/seqrun.fbs).
//
// Loading maps the file read-only and trusts nothing: the header, the FlatBuffers verifier, every
// tensor's dtype/shape/offset/size against the file and against each other (no overlap), every
// value/node index, op names and attribute types against the registry, and acyclicity. Any
// failure is one error line "FILE: <part>: <problem>". Constant tensors are zero-copy views
// into the mapping, which the returned graph keeps alive.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "ir/graph.h"
#include "ir/status.h"

namespace seqrun {

constexpr uint32_t kFormatVersion = 1;
constexpr char kFileMagic[4] = {'S', 'E', 'Q', 'R'};

struct ModelFile {
  std::unique_ptr<Graph> graph;
  std::string producer;
  std::map<std::string, std::string> metadata;
};

struct SaveOptions {
  std::string producer = "seqrun";
  std::map<std::string, std::string> metadata;
};

Status save_model(const Graph& graph, const std::string& path, const SaveOptions& options = {});
// Serializes to memory (same bytes as the file).
std::string serialize_model(const Graph& graph, const SaveOptions& options = {});

Result<ModelFile> load_model(const std::string& path);
// Loads from bytes the caller keeps alive through `keepalive` (tests, fuzzing). `name` is used
// in error messages in place of the file name.
Result<ModelFile> load_model_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                         std::shared_ptr<const void> keepalive);

}  // namespace seqrun
