// canonicalize: the cleanup every pipeline starts with. Folds Shape/Size of statically shaped
// values into constants, forwards Identity, and removes nodes whose results nobody uses.
// Exact: never changes what the graph computes.
#pragma once

#include "passes/pass.h"

namespace seqrun::passes {

class CanonicalizePass : public Pass {
 public:
  std::string name() const override { return "canonicalize"; }
  std::string description() const override {
    return "fold static Shape/Size, forward Identity, remove dead nodes";
  }
  Result<bool> run(Graph& graph) override;
};

}  // namespace seqrun::passes
