// Helpers shared by the ShapeReasoner's two halves (symbolic_dims.cpp: sizes; symbolic_values.cpp: small
// tensor values): op families, the recursion guard, producers. Internal to passes/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace seqrun::passes::symbolic {

constexpr int kMaxDepth = 256;          // producer chains longer than this give up
constexpr int64_t kMaxElements = 4096;  // larger tensors are not evaluated

// RAII depth counter: long producer chains give up instead of overflowing the stack.
class DepthGuard {
 public:
  explicit DepthGuard(int* depth) : depth_(depth) { ++*depth_; }
  ~DepthGuard() { --*depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  bool too_deep() const { return *depth_ > kMaxDepth; }

 private:
  int* depth_;
};

// v's producer, when it is an intermediate of a node without nested graphs.
inline const Node* producer_of(const Value* v) {
  if (v == nullptr || v->role() != Value::Role::Intermediate) return nullptr;
  const Node* n = v->producer();
  return n != nullptr && n->num_captures() == 0 ? n : nullptr;
}

// A small constant integer tensor's values.
inline std::optional<std::vector<int64_t>> const_ints(const Value* v) {
  if (v == nullptr || !v->is_constant()) return std::nullopt;
  const Tensor& t = v->constant();
  if (!is_integer(t.dtype()) || t.numel() > kMaxElements) return std::nullopt;
  return t.to_i64_vector();
}

// Ops whose output 0 has the shape of input 0 (unary elementwise, norms, Softmax, Cast, ...).
bool same_shape_as_first_input(const std::string& op);
// Elementwise ops with numpy broadcasting over all their explicit inputs.
bool broadcasting_elementwise(const std::string& op);

}  // namespace seqrun::passes::symbolic
