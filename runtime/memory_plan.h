// Memory planning: assigns every intermediate tensor an offset in one arena so that tensors whose
// lifetimes overlap never share bytes, and reports how good the packing is.
//
// Input: one TensorLifetime per buffer — its size in bytes and the first and last step (node index in
// execution order) at which it is live, inclusive. A buffer may name an `inplace_of` buffer whose
// last use is the step that defines it (an elementwise op writing over its input): the planner then
// gives it the same offset when sizes allow, which is how in-place execution is expressed.
// Output: offsets (64-byte aligned), the arena size, and two bounds for judging the plan:
// `lower_bound_bytes` (the largest total size of buffers live at one step — no plan can beat it) and
// `no_reuse_bytes` (the sum of all sizes: what a plan without reuse needs).
// Algorithm: greedy by size (largest first), each buffer placed in the smallest gap that fits (best fit)
// among already-placed buffers whose lifetimes overlap it; in-place chains share one offset. Then a
// short, budgeted improvement search (move one buffer earlier in the placement order, keep the result
// when the arena did not grow; fixed seed, so plans are reproducible) until the lower bound is reached
// or about 0.1 s is spent. In-place pairs must share the same offset, the writer no larger than the reader.
#pragma once

#include <cstdint>
#include <vector>

namespace seqrun::runtime {

struct TensorLifetime {
  uint64_t size_bytes = 0;
  int first_step = 0;   // step that writes it
  int last_step = 0;    // last step that reads it (>= first_step)
  int inplace_of = -1;  // index of a buffer it may overwrite in place, or -1
};

struct MemoryPlan {
  std::vector<uint64_t> offsets;  // one per TensorLifetime, 64-byte aligned
  uint64_t arena_bytes = 0;
  uint64_t lower_bound_bytes = 0;
  uint64_t no_reuse_bytes = 0;
  int inplace_count = 0;  // buffers that share their inplace_of buffer's offset
};

constexpr uint64_t kArenaAlignment = 64;

MemoryPlan plan_arena_offsets(const std::vector<TensorLifetime>& tensors);

// True when no two buffers with overlapping lifetimes overlap in [offset, offset+size) — except an
// in-place pair, where the writer's first step equals the reader's last step. For tests.
bool plan_is_valid(const std::vector<TensorLifetime>& tensors, const MemoryPlan& plan);

}  // namespace seqrun::runtime
