// Pieces every fast CPU kernel shares: argument checks for the factories, the workspace layout
// helper, the error prefix that names the node, and the parallel-loop thresholds.
//
// Factories are strict: anything unusual (another dtype, an attribute combination, a shape the
// kernel's fast path does not cover) makes them decline, so the reference fallback produces the
// result or the error message. Kernels therefore only check at run time what can change per run
// (index values).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace seqrun::backends::cpu {

// Element counts below this run on the calling thread: an OpenMP fork/join costs a few
// microseconds, which is more than a memory-bound pass over this many floats.
constexpr int64_t kParallelMinElements = 1 << 15;

// True when every present input and every output is f32.
inline bool all_f32(const KernelInfo& info) {
  for (const TensorArg& a : info.inputs) {
    if (a.dtype != DType::undefined && a.dtype != DType::f32) return false;
  }
  for (const TensorArg& a : info.outputs) {
    if (a.dtype != DType::f32) return false;
  }
  return true;
}

// True when input i is present and its bytes are known at plan time (a constant weight).
inline bool input_is_constant(const KernelInfo& info, int i) {
  return info.input_present(i) && info.inputs[i].data != nullptr;
}

inline int64_t product(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) p *= s[i];
  return p;
}

// Scratch regions of one kernel packed into its workspace, each 64-byte aligned.
class WorkspaceLayout {
 public:
  // Reserves `bytes` and returns the region's offset.
  size_t add(size_t bytes) {
    const size_t offset = total_;
    total_ += (bytes + 63) / 64 * 64;
    return offset;
  }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};

inline float* workspace_floats(void* workspace, size_t offset) {
  return reinterpret_cast<float*>(static_cast<char*>(workspace) + offset);
}

// "<node>: message" as an error Status.
template <typename... Args>
Status node_error(const Node* node, fmt::format_string<Args...> format, Args&&... args) {
  return Status::error(node->describe() + ": " + fmt::format(format, std::forward<Args>(args)...));
}

// The axis normalized against rank, or -1 when out of range.
inline int normalize_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return -1;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// The values of an integer constant input (i32/i64), or false when the input is not a constant.
inline bool constant_ints(const TensorArg& arg, std::vector<int64_t>& values) {
  if (arg.data == nullptr) return false;
  const int64_t n = arg.numel();
  values.resize(static_cast<size_t>(n));
  if (arg.dtype == DType::i64) {
    for (int64_t i = 0; i < n; ++i) values[i] = arg.as<const int64_t>()[i];
  } else if (arg.dtype == DType::i32) {
    for (int64_t i = 0; i < n; ++i) values[i] = arg.as<const int32_t>()[i];
  } else {
    return false;
  }
  return true;
}

}  // namespace seqrun::backends::cpu
