// Shape proofs for chunked (GAU/FLASH-style) graphs: which Reshape splits [B, T, d] into chunks
// [B, G, C, d], sizes ShapeReasoner gives up on (a Concat target with one unprovable piece, a Slice with
// computed bounds), and small integer constants torch builds with Transpose/Slice (Pad's pads).
//
// ShapeReasoner (symbolic_dims.h) derives a whole Reshape target or nothing; torch computes the chunk count
// G = T // C, which has no exact symbolic form, so the target [B, G, C, d] would be lost although B, C and d
// are provable. These helpers read such targets piece by piece. Every size they return is one the graph
// provably has whenever it runs without error.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

// A small integer tensor computed from constants only.
struct IntTensor {
  Shape shape;
  std::vector<int64_t> data;
};
// Folds v through Identity, integer Cast, Reshape/Unsqueeze/Squeeze (static result shapes), Transpose of a
// matrix, Concat of vectors, Slice along axis 0 (any step) and ConstantOfShape; at most 64 elements.
std::optional<IntTensor> fold_ints(const Value* v, ShapeReasoner& shapes);

// Size `axis` of a Reshape's output, also read from the piece of a Concat target that holds it (0 copies
// the input's size, allowzero 0).
SymDim reshape_dim(Node* reshape, int axis, ShapeReasoner& shapes);
// Size `axis` of v, also through Slices whose starts and ends are computed but provable (torch's chunk(2)).
SymDim provable_dim(Value* v, int axis, ShapeReasoner& shapes);

// x4 = Reshape(flat [B, T, d]) -> [B, G, C, d] with B and d provably kept and C static: the row-major
// split of T into chunks of C.
struct Chunked {
  Value* flat = nullptr;
  int64_t chunk = 0;
};
std::optional<Chunked> chunked(Value* x4, ShapeReasoner& shapes);

}  // namespace seqrun::passes
