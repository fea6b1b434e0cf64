// convert-dtype: runs part of a graph in f16 or bf16 — the float constants feeding the converted nodes are
// converted once (at load or plan time), the activations between converted nodes stay in the low dtype, and a
// Cast is inserted wherever a value crosses between a converted node and an unconverted one, at graph inputs
// and at graph outputs (outputs keep their f32 type and name, so the caller sees no change but precision).
//
// Which nodes convert: a node that
// - computes on activations: at least one float input derives from a graph input (through any ops), or it
//   looks a float constant up with data (Gather of an embedding by token ids). Values computed only from
//   constants and integers (rotary positions Cast from a Range, cos/sin tables, masks) stay f32: positions
//   above 256 are not even representable in bf16, and PyTorch's autocast keeps them f32 for the same reason;
// - has every float input and output in f32 and at least one float output (so Cast(x: f32 -> i64),
//   comparisons and ArgMax keep their exact f32 inputs), no nested graph, and is not a Cast/CastLike;
// - and is accepted by the caller's predicate, asked with the dtypes the node would get (the session asks
//   its backends: convert exactly what a CUDA kernel will run in the low dtype; the CPU stays f32). Views
//   (Reshape, Squeeze, Unsqueeze, Flatten, Identity: aliases in a plan, no kernel) are not asked: they
//   convert exactly when the node producing their data input does.
// A few inputs stay f32 even on a converted node because the kernels take them in f32 and the model
// is sensitive to them: SelectiveScan's A, D and delta_bias (Mamba keeps them f32 next to bf16 activations).
//
// The pipeline entry "convert-dtype=bf16" (or "=f16") runs the pass with no predicate (every eligible node),
// for inspection and CPU tests; it is in no -O level. The rewrite is deterministic.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "passes/pass.h"

namespace seqrun::passes {

// The dtypes a node would have after conversion: one per input (undefined for absent inputs) and output.
struct ProposedTypes {
  std::vector<DType> inputs;
  std::vector<DType> outputs;
};
// Whether to convert `node` given the dtypes it would get. Null: every eligible node converts.
using ConvertPredicate = std::function<bool(const Node& node, const ProposedTypes& types)>;

struct ConvertDTypeOptions {
  DType dtype = DType::bf16;  // f16 or bf16
  ConvertPredicate predicate;
};

struct ConvertDTypeReport {
  int converted_nodes = 0;
  int converted_constants = 0;  // new low-dtype constants (one per f32 constant a converted node reads)
  int casts = 0;                // Cast nodes inserted (boundaries, graph inputs and outputs)
};

// Rewrites `graph` in place (types re-inferred for the nodes it touches). Error for a dtype other than f16
// or bf16; a graph with nothing to convert is left unchanged.
Result<ConvertDTypeReport> convert_float_dtype(Graph& graph, const ConvertDTypeOptions& options);

class ConvertDTypePass : public Pass {
 public:
  explicit ConvertDTypePass(ConvertDTypeOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "convert-dtype"; }
  std::string description() const override {
    return "opt-in: run the float computation on activations in f16/bf16 (constants converted, Casts at "
           "the boundaries, outputs stay f32)";
  }
  Result<bool> run(Graph& graph) override;

 private:
  ConvertDTypeOptions options_;
};

// The pass for a pipeline entry "convert-dtype=bf16" / "convert-dtype=f16" (the text after '='); null when
// the text names another dtype.
std::unique_ptr<Pass> create_convert_dtype_pass(const std::string& spec);

// "f16" / "bf16" -> the dtype (also "f32" -> f32, meaning no conversion); an error naming the text otherwise.
Result<DType> parse_execution_dtype(const std::string& text);

}  // namespace seqrun::passes
