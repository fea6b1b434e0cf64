// Model: a loaded, verified, pass-optimized graph that any number of Sessions share read-only.
//
// A Model is built once (from a .seqrun file — whose weights stay zero-copy views into the read-only
// mapping — or from an ir::Graph), has its types inferred, is verified, rewritten by the pass pipeline
// the options ask for, and verified again. After that it is immutable: it is only ever handed out as
// `std::shared_ptr<const Model>`, and every Session made from it (Session::from_model) reads the same graph
// and the same mapped weights while keeping its own plans and arenas. So one Model may be used from many
// threads at once; it lives until the last Session (or other holder) lets go of it.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "passes/pass.h"

namespace seqrun::runtime {

struct ModelOptions {
  int opt_level = 1;                               // -O0 / -O1
  std::optional<std::vector<std::string>> passes;  // explicit list overrides opt_level
};

class Model {
 public:
  // Loads a .seqrun file (mmap, verified) and runs the pass pipeline.
  static Result<std::shared_ptr<const Model>> load(const std::string& path, const ModelOptions& options = {});
  // The same from the bytes of a .seqrun file, which are copied (64-byte aligned, like a mapping);
  // `name` stands for the file name in error messages.
  static Result<std::shared_ptr<const Model>> load_from_memory(const void* data, size_t size,
                                                               const std::string& name,
                                                               const ModelOptions& options = {});
  // Adopts a graph (e.g. from the ONNX importer or a builder) and runs the pass pipeline on it.
  static Result<std::shared_ptr<const Model>> from_graph(std::unique_ptr<Graph> graph,
                                                         const ModelOptions& options = {},
                                                         std::map<std::string, std::string> metadata = {});

  const Graph& graph() const { return *graph_; }
  const std::vector<passes::PassReport>& pass_reports() const { return pass_reports_; }
  // The file's metadata plus "producer" (for a model made from a graph: what from_graph was given).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

 private:
  Model() = default;
  std::unique_ptr<Graph> graph_;
  std::vector<passes::PassReport> pass_reports_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace seqrun::runtime
