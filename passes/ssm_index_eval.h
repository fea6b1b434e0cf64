// Affine evaluation of the small integer subgraphs a loop body builds its indices and shapes with.
//
// torch.onnx writes `y[:, :, t] = v` inside a scripted loop as ScatterND whose index tensor is computed
// from the iteration number t through Unsqueeze, Expand, Concat, Shape, ConstantOfShape, Where, ...
// fuse-ssm-scan needs to know what that tensor holds for every t without running anything. Each
// element of an integer tensor here is c0 + c1·t: evaluating the subgraph once, symbolically in t,
// proves what the body writes at every step. Anything the evaluator cannot express (a product of two
// t-dependent values, a comparison involving t, a non-integer value, an unknown shape) is "unknown",
// and the caller leaves the graph alone.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "ir/graph.h"

namespace seqrun::passes::ssm {

// An integer (or bool, stored as 0/1) tensor whose element i is c0[i] + c1[i]·t.
struct AffineTensor {
  Shape shape;
  std::vector<int64_t> c0;
  std::vector<int64_t> c1;
  bool depends_on_t() const;
};

class AffineEvaluator {
 public:
  // `iteration` is the loop body's iteration-number input (t); null outside a loop body.
  explicit AffineEvaluator(const Value* iteration) : iteration_(iteration) {}

  // The value as an affine tensor in t, or nullopt when it is not expressible.
  std::optional<AffineTensor> eval(const Value* v);
  // The value when it does not depend on t (shape tensors, axes, trip counts).
  std::optional<std::vector<int64_t>> eval_constant(const Value* v);
  // The static shape of any value: from its type when static, else from evaluating it.
  std::optional<Shape> static_shape(const Value* v);

 private:
  std::optional<AffineTensor> compute(const Value* v);
  const Value* iteration_;
  std::map<const Value*, std::optional<AffineTensor>> memo_;
  int depth_ = 0;
};

}  // namespace seqrun::passes::ssm
