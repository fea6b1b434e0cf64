// Symbolic shape reasoning for pattern-matching passes: what a pass can prove about tensor sizes and
// small integer tensors (shape vectors) when the graph's types say '?'.
//
// Exported graphs compute head splits, masks and repeats from Shape -> Gather -> Concat chains, so after
// import many types are f32[?, ?, ?, ?] even where every size is a known expression of the inputs
// (`seq`, 4, 16). ShapeReasoner recovers those expressions: `dim(v, axis)` follows a value's producers
// (Transpose, Reshape with a computed target, broadcasting, MatMul, Expand, ...), and `elements(v)`
// evaluates the small i64 tensors that feed Reshape/Expand/Range/ConstantOfShape.
//
// A SymDim is either unknown or coefficient × product of atoms, where an atom is a named symbol of the
// graph ("seq") or an opaque size of one value ("%k:2"). Two known SymDims that compare equal are equal
// at run time (whenever the graph runs without error): that is the proof a rewrite may rely on. Unknown
// never equals anything, not even unknown.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"

namespace seqrun::passes {

class SymDim {
 public:
  SymDim() = default;  // unknown
  static SymDim of(int64_t value);
  static SymDim atom(std::string key);

  bool known() const { return known_; }
  bool is_static() const { return known_ && atoms_.empty(); }
  bool is(int64_t v) const { return is_static() && coeff_ == v; }
  int64_t value() const { return coeff_; }  // the size, for static dims; the coefficient otherwise
  const std::vector<std::string>& atoms() const { return atoms_; }
  // Products and exact quotients; sums of like terms (2·seq + seq) or statics. Unknown otherwise.
  SymDim times(const SymDim& o) const;
  SymDim divided_by(const SymDim& o) const;
  SymDim plus(const SymDim& o) const;
  SymDim minus(const SymDim& o) const;
  bool operator==(const SymDim& o) const;
  bool operator!=(const SymDim& o) const { return !(*this == o); }
  std::string to_string() const;  // "?", "8", "seq", "2*%k:1"

 private:
  bool known_ = false;
  int64_t coeff_ = 0;
  std::vector<std::string> atoms_;  // sorted
};

class ShapeReasoner {
 public:
  // The rank of v from its type (-1 when unknown).
  static int rank(const Value* v);
  // Every dim of v (rank must be known); each dim is the type's when static or symbolic, else derived.
  std::optional<std::vector<SymDim>> dims(const Value* v);
  SymDim dim(const Value* v, int axis);  // axis may be negative; unknown when out of range
  // The elements of a small (<= 4096 elements) integer, bool or integral-float tensor, row-major.
  std::optional<std::vector<SymDim>> elements(const Value* v);
  // The one element of a one-element tensor, symbolically.
  std::optional<SymDim> scalar(const Value* v);
  // The value of a one-element float (or integer) tensor computed from constants only, rounded to
  // the value's dtype after every step as the graph would compute it (Cast, Sqrt, Div, Mul, ...).
  std::optional<double> constant_value(const Value* v);
  // Forgets everything derived so far; call after editing the graph.
  void clear();

 private:
  SymDim derive_dim(const Value* v, int axis, int rank);
  std::optional<std::vector<SymDim>> derive_elements(const Value* v);
  std::optional<double> derive_constant(const Value* v);
  std::unordered_map<const Value*, std::vector<SymDim>> dims_memo_;
  std::unordered_map<const Value*, std::optional<std::vector<SymDim>>> elements_memo_;
  int depth_ = 0;
};

// Numpy broadcasting of one aligned axis: the common size when it is provable, else unknown.
SymDim broadcast_dim(const std::vector<SymDim>& sizes);

}  // namespace seqrun::passes
