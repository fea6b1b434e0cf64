// Arena memory planner: packs buffer lifetimes into one arena (greedy by size, best-fit gaps, in-place
// chains).
//
// Contract kept here (see memory_plan.h): every buffer of non-zero size gets a 64-byte aligned offset such
// that buffers whose lifetimes [first_step, last_step] overlap never share bytes of their 64-rounded extents,
// except an in-place pair, which shares one offset. Zero-size buffers get offset 0 and take no space.
//
// How: in-place links are first resolved into chains (a buffer and the buffers written over it, one after the
// other); a chain is placed as one item at one offset, with each member keeping its own lifetime and size.
// Items are placed largest first into the smallest gap that fits among the already placed buffers whose
// lifetimes overlap, else at the end. Finding the gap scans the placed buffers in offset order, so one item
// costs O(placed) and the whole plan O(n^2) at worst. When the result is above the lower bound, the same
// greedy runs once more in first-step order and the smaller arena wins.
#include "runtime/memory_plan.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace seqrun::runtime {
namespace {

uint64_t round_up_to_alignment(uint64_t bytes) {
  return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

// A lifetime with last_step < first_step is read as the single step first_step.
int last_step_of(const TensorLifetime& t) {
  return std::max(t.first_step, t.last_step);
}

bool lifetimes_overlap(int a_first, int a_last, int b_first, int b_last) {
  return a_first <= b_last && b_first <= a_last;
}

// The buffer `writer` may overwrite in place, or -1: its inplace_of names another non-empty buffer, that
// buffer's last step is the writer's first step, and the writer is not larger.
int inplace_reader_of(const std::vector<TensorLifetime>& tensors, int writer) {
  const TensorLifetime& w = tensors[writer];
  const int reader = w.inplace_of;
  if (reader < 0 || reader >= static_cast<int>(tensors.size()) || reader == writer) return -1;
  const TensorLifetime& r = tensors[reader];
  if (w.size_bytes == 0 || r.size_bytes == 0 || w.size_bytes > r.size_bytes) return -1;
  if (last_step_of(r) != w.first_step) return -1;
  return reader;
}

// One unit of placement: an in-place chain, head first (one buffer when it has no in-place links).
struct PlacementItem {
  std::vector<int> members;
  uint64_t largest_bytes = 0;  // raw size of the head, the largest member
  int first_step = 0;
  int last_step = 0;
};

// Chooses at most one in-place writer per reader (the largest eligible one; ties by lower index) and builds
// the chains. A member in the middle of a chain must live more than one step, or its reader and its writer
// would be live at the same step on the same bytes. Returns the chain child of every buffer (-1 for none).
std::vector<int> choose_inplace_links(const std::vector<TensorLifetime>& tensors, int* link_count) {
  const int n = static_cast<int>(tensors.size());
  std::vector<std::pair<int, int>> candidates;  // (writer, reader)
  for (int w = 0; w < n; ++w) {
    const int r = inplace_reader_of(tensors, w);
    if (r >= 0) candidates.emplace_back(w, r);
  }
  std::sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) {
    if (tensors[a.first].size_bytes != tensors[b.first].size_bytes) {
      return tensors[a.first].size_bytes > tensors[b.first].size_bytes;
    }
    return a.first < b.first;
  });
  std::vector<int> child(n, -1);
  std::vector<int> parent(n, -1);
  *link_count = 0;
  for (const auto& [w, r] : candidates) {
    if (child[r] >= 0) continue;
    const TensorLifetime& rt = tensors[r];
    const TensorLifetime& wt = tensors[w];
    if (parent[r] >= 0 && rt.first_step == last_step_of(rt)) continue;
    if (child[w] >= 0 && wt.first_step == last_step_of(wt)) continue;
    child[r] = w;
    parent[w] = r;
    ++*link_count;
  }
  return child;
}

std::vector<PlacementItem> build_items(const std::vector<TensorLifetime>& tensors,
                                       const std::vector<int>& chain_child) {
  const int n = static_cast<int>(tensors.size());
  std::vector<char> is_child(n, 0);
  for (int i = 0; i < n; ++i) {
    if (chain_child[i] >= 0) is_child[chain_child[i]] = 1;
  }
  std::vector<PlacementItem> items;
  for (int head = 0; head < n; ++head) {
    if (is_child[head] || tensors[head].size_bytes == 0) continue;
    PlacementItem item;
    item.largest_bytes = tensors[head].size_bytes;
    item.first_step = tensors[head].first_step;
    item.last_step = last_step_of(tensors[head]);
    // Chains cannot cycle: a cycle would need every member to live one step and sit in the middle.
    for (int m = head; m >= 0; m = chain_child[m]) {
      item.members.push_back(m);
      item.first_step = std::min(item.first_step, tensors[m].first_step);
      item.last_step = std::max(item.last_step, last_step_of(tensors[m]));
    }
    items.push_back(std::move(item));
  }
  return items;
}

// Places the items in the given order; writes offsets of all members and returns the arena size.
uint64_t place_items(const std::vector<TensorLifetime>& tensors, const std::vector<PlacementItem>& items,
                     const std::vector<int>& order, std::vector<uint64_t>* offsets) {
  // Placed buffers, in placement order; `by_offset` lists them sorted by offset.
  std::vector<int> placed_first;
  std::vector<int> placed_last;
  std::vector<int64_t> placed_offset;
  std::vector<int64_t> placed_end;
  std::vector<int> by_offset;
  // Offsets X the current item may not take: X in [lo, hi) would overlap some placed buffer.
  std::vector<std::pair<int64_t, int64_t>> forbidden;
  uint64_t arena_bytes = 0;

  for (int item_index : order) {
    const PlacementItem& item = items[item_index];
    forbidden.clear();
    for (int slot : by_offset) {
      if (!lifetimes_overlap(placed_first[slot], placed_last[slot], item.first_step, item.last_step))
        continue;
      for (int m : item.members) {
        const TensorLifetime& t = tensors[m];
        if (!lifetimes_overlap(placed_first[slot], placed_last[slot], t.first_step, last_step_of(t)))
          continue;
        const int64_t size = static_cast<int64_t>(round_up_to_alignment(t.size_bytes));
        forbidden.emplace_back(placed_offset[slot] - size + 1, placed_end[slot]);
      }
    }
    // One member: already in order of lo because placed buffers were visited in offset order.
    if (item.members.size() > 1) std::sort(forbidden.begin(), forbidden.end());

    // Sweep the forbidden ranges: each stretch of allowed offsets [cursor, lo - 1] is a gap; its slack
    // (allowed offsets beyond the first) is the gap's size minus the item's size. Smallest slack wins.
    int64_t cursor = 0;
    int64_t best_offset = -1;
    int64_t best_slack = std::numeric_limits<int64_t>::max();
    for (const auto& [lo, hi] : forbidden) {
      if (lo > cursor && lo - 1 - cursor < best_slack) {
        best_slack = lo - 1 - cursor;
        best_offset = cursor;
      }
      cursor = std::max(cursor, hi);
    }
    if (best_offset < 0) best_offset = cursor;

    for (int m : item.members) {
      const TensorLifetime& t = tensors[m];
      const uint64_t size = round_up_to_alignment(t.size_bytes);
      (*offsets)[m] = static_cast<uint64_t>(best_offset);
      arena_bytes = std::max(arena_bytes, static_cast<uint64_t>(best_offset) + size);
      const int slot = static_cast<int>(placed_first.size());
      placed_first.push_back(t.first_step);
      placed_last.push_back(last_step_of(t));
      placed_offset.push_back(best_offset);
      placed_end.push_back(best_offset + static_cast<int64_t>(size));
      auto at = std::upper_bound(by_offset.begin(), by_offset.end(), best_offset,
                                 [&](int64_t offset, int other) { return offset < placed_offset[other]; });
      by_offset.insert(at, slot);
    }
  }
  return arena_bytes;
}

// Largest total of rounded sizes live at one step, where an eligible in-place pair at its shared step counts
// once (any plan may let the writer reuse the reader's bytes there, and a reader lends them to one writer).
uint64_t live_bytes_lower_bound(const std::vector<TensorLifetime>& tensors) {
  const int n = static_cast<int>(tensors.size());
  std::vector<uint64_t> shared_bytes(n, 0);  // per reader: the largest eligible writer
  for (int w = 0; w < n; ++w) {
    const int r = inplace_reader_of(tensors, w);
    if (r >= 0) shared_bytes[r] = std::max(shared_bytes[r], round_up_to_alignment(tensors[w].size_bytes));
  }
  // (step, signed change of live bytes); int64 steps so last_step + 1 cannot overflow.
  std::vector<std::pair<int64_t, int64_t>> events;
  for (int i = 0; i < n; ++i) {
    const TensorLifetime& t = tensors[i];
    if (t.size_bytes == 0) continue;
    const int64_t size = static_cast<int64_t>(round_up_to_alignment(t.size_bytes));
    events.emplace_back(t.first_step, size);
    events.emplace_back(static_cast<int64_t>(last_step_of(t)) + 1, -size);
    if (shared_bytes[i] > 0) {
      const int64_t step = last_step_of(t);
      events.emplace_back(step, -static_cast<int64_t>(shared_bytes[i]));
      events.emplace_back(step + 1, static_cast<int64_t>(shared_bytes[i]));
    }
  }
  std::sort(events.begin(), events.end());
  int64_t live = 0;
  int64_t peak = 0;
  for (size_t e = 0; e < events.size();) {
    const int64_t step = events[e].first;
    for (; e < events.size() && events[e].first == step; ++e) live += events[e].second;
    peak = std::max(peak, live);
  }
  return static_cast<uint64_t>(peak);
}

}  // namespace

MemoryPlan plan_arena_offsets(const std::vector<TensorLifetime>& tensors) {
  MemoryPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  for (const TensorLifetime& t : tensors) plan.no_reuse_bytes += round_up_to_alignment(t.size_bytes);
  plan.lower_bound_bytes = live_bytes_lower_bound(tensors);

  const std::vector<int> chain_child = choose_inplace_links(tensors, &plan.inplace_count);
  const std::vector<PlacementItem> items = build_items(tensors, chain_child);

  std::vector<int> by_size(items.size());
  for (size_t i = 0; i < items.size(); ++i) by_size[i] = static_cast<int>(i);
  std::stable_sort(by_size.begin(), by_size.end(), [&](int a, int b) {
    if (items[a].largest_bytes != items[b].largest_bytes)
      return items[a].largest_bytes > items[b].largest_bytes;
    return items[a].first_step < items[b].first_step;
  });
  plan.arena_bytes = place_items(tensors, items, by_size, &plan.offsets);
  if (plan.arena_bytes <= plan.lower_bound_bytes) return plan;

  // Size order leaves gaps on some schedules that first-step order (left edge first) closes; keep the better.
  std::vector<int> by_first_step = by_size;
  std::stable_sort(by_first_step.begin(), by_first_step.end(),
                   [&](int a, int b) { return items[a].first_step < items[b].first_step; });
  std::vector<uint64_t> other_offsets(tensors.size(), 0);
  const uint64_t other_arena = place_items(tensors, items, by_first_step, &other_offsets);
  if (other_arena < plan.arena_bytes) {
    plan.arena_bytes = other_arena;
    plan.offsets = std::move(other_offsets);
  }
  return plan;
}

bool plan_is_valid(const std::vector<TensorLifetime>& tensors, const MemoryPlan& plan) {
  const int n = static_cast<int>(tensors.size());
  if (static_cast<int>(plan.offsets.size()) != n) return false;
  for (int i = 0; i < n; ++i) {
    if (plan.offsets[i] % kArenaAlignment != 0) return false;
    const uint64_t size = round_up_to_alignment(tensors[i].size_bytes);
    if (size > 0 && (plan.offsets[i] > plan.arena_bytes || size > plan.arena_bytes - plan.offsets[i])) {
      return false;
    }
  }
  // An in-place pair may share bytes only by sharing the offset: the writer overwrites its reader exactly.
  auto may_share = [&](int a, int b) {
    return (inplace_reader_of(tensors, a) == b || inplace_reader_of(tensors, b) == a) &&
           plan.offsets[a] == plan.offsets[b];
  };
  // Sweep in first-step order; `live` holds the buffers still live at the current first step.
  std::vector<int> by_first(n);
  for (int i = 0; i < n; ++i) by_first[i] = i;
  std::stable_sort(by_first.begin(), by_first.end(),
                   [&](int a, int b) { return tensors[a].first_step < tensors[b].first_step; });
  std::vector<int> live;
  for (int b : by_first) {
    if (tensors[b].size_bytes == 0) continue;
    const int step = tensors[b].first_step;
    live.erase(
        std::remove_if(live.begin(), live.end(), [&](int a) { return last_step_of(tensors[a]) < step; }),
        live.end());
    const uint64_t b_begin = plan.offsets[b];
    const uint64_t b_end = b_begin + round_up_to_alignment(tensors[b].size_bytes);
    for (int a : live) {
      const uint64_t a_begin = plan.offsets[a];
      const uint64_t a_end = a_begin + round_up_to_alignment(tensors[a].size_bytes);
      if (a_begin < b_end && b_begin < a_end && !may_share(a, b)) return false;
    }
    live.push_back(b);
  }
  return true;
}

}  // namespace seqrun::runtime
