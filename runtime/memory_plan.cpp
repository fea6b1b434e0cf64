// Arena memory planner: packs buffer lifetimes into one arena (greedy by size, best-fit gaps, in-place
// chains).
//
// Contract kept here (see memory_plan.h): every buffer of non-zero size gets a 64-byte aligned offset such
// that buffers whose lifetimes [first_step, last_step] overlap never share bytes of their 64-rounded extents,
// except an in-place pair, which shares one offset. Zero-size buffers get offset 0 and take no space.
//
// How: in-place links are first resolved into chains (a buffer and the buffers written over it, one after the
// other); a chain is placed as one item at one offset, each member keeping its own lifetime and size. Items
// are placed largest first into the smallest gap that fits among the placed buffers whose lifetimes overlap,
// else above them. Placed buffers are indexed by time, so an item costs about the number of buffers live with
// it, and O(placed) at worst: the greedy is O(n^2) at worst and near O(n log n) on real schedules. When the
// greedy ends above the lower bound, a bounded iterated greedy (reorder one item, re-place all, keep if not
// worse) closes most of the gap; its work budget keeps the whole plan well under a second at 20k buffers.
#include "runtime/memory_plan.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
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

// One placed buffer: its lifetime and its bytes [offset, end).
struct PlacedBuffer {
  int first_step = 0;
  int last_step = 0;
  int64_t offset = 0;
  int64_t end = 0;
};

// The buffers placed so far. Indexed by time, so that finding the ones live during an interval costs about
// the number found rather than the number placed: a segment tree over the distinct steps answers "live at
// step f" and a per-step list answers "first written in (f, l]". When that would find too many, a scan of
// all placed buffers kept in offset order is as cheap, and bounds one query by O(placed).
class PlacedBuffers {
 public:
  explicit PlacedBuffers(const std::vector<int>* steps)
      : steps_(steps), leaves_(static_cast<int>(steps->size())), tree_(2 * leaves_), starting_at_(leaves_) {}

  const PlacedBuffer& operator[](int slot) const { return placed_[slot]; }

  void add(const PlacedBuffer& buffer) {
    const int slot = static_cast<int>(placed_.size());
    placed_.push_back(buffer);
    lifetimes_.push_back({buffer.first_step, buffer.last_step});
    not_in_offset_order_.push_back(slot);
    const int a = step_index(buffer.first_step);
    starting_at_[a].push_back(slot);
    // Store the slot at the canonical nodes covering [a, b].
    for (int lo = a + leaves_, hi = step_index(buffer.last_step) + leaves_ + 1; lo < hi; lo >>= 1, hi >>= 1) {
      if (lo & 1) tree_[lo++].push_back(slot);
      if (hi & 1) tree_[--hi].push_back(slot);
    }
  }

  // Writes the slots of the placed buffers live at some step of [first_step, last_step], in offset order.
  // Returns the work done (buffers and steps visited, and the sort), for the caller's budget.
  int64_t live_during(int first_step, int last_step, std::vector<int>* out) {
    out->clear();
    const int placed = static_cast<int>(placed_.size());
    const int limit = 64 + placed / 16;
    const int a = step_index(first_step);
    const int b = step_index(last_step);
    int64_t work = 0;
    bool too_many = b - a > limit;
    for (int node = a + leaves_; node >= 1 && !too_many; node >>= 1) {
      out->insert(out->end(), tree_[node].begin(), tree_[node].end());
      too_many = static_cast<int>(out->size()) > limit;
      ++work;
    }
    for (int i = a + 1; i <= b && !too_many; ++i) {
      out->insert(out->end(), starting_at_[i].begin(), starting_at_[i].end());
      too_many = static_cast<int>(out->size()) > limit;
      ++work;
    }
    if (!too_many) {
      std::sort(out->begin(), out->end(),
                [&](int x, int y) { return placed_[x].offset < placed_[y].offset; });
      const int64_t found = static_cast<int64_t>(out->size());
      work += found;
      for (int64_t k = found; k > 1; k >>= 1) work += found;  // the sort: found * log2(found)
      return work;
    }
    // Many live buffers: go through all of them in offset order. The filter is branch-free because the
    // overlap test is then a coin flip for the branch predictor.
    update_offset_order();
    out->resize(by_offset_.size());
    size_t count = 0;
    for (int slot : by_offset_) {
      (*out)[count] = slot;
      const Lifetime& t = lifetimes_[slot];
      count += lifetimes_overlap(t.first_step, t.last_step, first_step, last_step) ? 1 : 0;
    }
    out->resize(count);
    return work + placed;
  }

 private:
  struct Lifetime {
    int first_step;
    int last_step;
  };

  int step_index(int step) const {
    return static_cast<int>(std::lower_bound(steps_->begin(), steps_->end(), step) - steps_->begin());
  }

  // by_offset_ is brought up to date only when a query needs it; one insertion costs O(placed).
  void update_offset_order() {
    for (int slot : not_in_offset_order_) {
      auto at = std::upper_bound(by_offset_.begin(), by_offset_.end(), placed_[slot].offset,
                                 [&](int64_t offset, int other) { return offset < placed_[other].offset; });
      by_offset_.insert(at, slot);
    }
    not_in_offset_order_.clear();
  }

  const std::vector<int>* steps_;  // distinct first and last steps, sorted
  int leaves_;
  std::vector<std::vector<int>> tree_;         // slots stored at the nodes covering their lifetime
  std::vector<std::vector<int>> starting_at_;  // slots by the index of their first step
  std::vector<PlacedBuffer> placed_;           // by slot (placement order)
  std::vector<Lifetime> lifetimes_;            // by slot, packed for the scan
  std::vector<int> by_offset_;                 // slots sorted by offset, but for not_in_offset_order_
  std::vector<int> not_in_offset_order_;
};

// Places whole items in a given order; each item goes to the smallest gap that fits among the placed buffers
// live with any of its members (else to the end of those).
class ArenaPacker {
 public:
  ArenaPacker(const std::vector<TensorLifetime>& tensors, const std::vector<PlacementItem>& items)
      : tensors_(tensors), items_(items) {
    for (const PlacementItem& item : items) {
      for (int m : item.members) {
        steps_.push_back(tensors[m].first_step);
        steps_.push_back(last_step_of(tensors[m]));
      }
    }
    std::sort(steps_.begin(), steps_.end());
    steps_.erase(std::unique(steps_.begin(), steps_.end()), steps_.end());
  }

  // Writes the offsets of all members of all items; returns the arena size. Adds the work done to *work.
  uint64_t place(const std::vector<int>& order, std::vector<uint64_t>* offsets, int64_t* work) {
    PlacedBuffers placed(&steps_);
    std::vector<int> live;
    // Offsets X the current item may not take: X in [lo, hi) would overlap some placed buffer.
    std::vector<std::pair<int64_t, int64_t>> forbidden;
    uint64_t arena_bytes = 0;
    for (int item_index : order) {
      const PlacementItem& item = items_[item_index];
      // A fixed charge per item stands for the lookups and the sort that visiting buffers does not count.
      *work += 16 + placed.live_during(item.first_step, item.last_step, &live);
      forbidden.clear();
      if (item.members.size() == 1) {
        // Every buffer in `live` overlaps the one member, and `live` is in offset order, hence in order of
        // lo.
        const int64_t size = static_cast<int64_t>(round_up_to_alignment(item.largest_bytes));
        for (int slot : live) forbidden.emplace_back(placed[slot].offset - size + 1, placed[slot].end);
      } else {
        for (int slot : live) {
          const PlacedBuffer& other = placed[slot];
          for (int m : item.members) {
            const TensorLifetime& t = tensors_[m];
            if (!lifetimes_overlap(other.first_step, other.last_step, t.first_step, last_step_of(t)))
              continue;
            const int64_t size = static_cast<int64_t>(round_up_to_alignment(t.size_bytes));
            forbidden.emplace_back(other.offset - size + 1, other.end);
          }
        }
        std::sort(forbidden.begin(), forbidden.end());
      }

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
        const TensorLifetime& t = tensors_[m];
        const uint64_t size = round_up_to_alignment(t.size_bytes);
        (*offsets)[m] = static_cast<uint64_t>(best_offset);
        arena_bytes = std::max(arena_bytes, static_cast<uint64_t>(best_offset) + size);
        placed.add({t.first_step, last_step_of(t), best_offset, best_offset + static_cast<int64_t>(size)});
      }
    }
    return arena_bytes;
  }

 private:
  const std::vector<TensorLifetime>& tensors_;
  const std::vector<PlacementItem>& items_;
  std::vector<int> steps_;
};

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

// Bounds on the improvement rounds after the greedy: a count, and the work (roughly, placed buffers visited)
// they may spend in all. A round re-places everything, so a graph whose one placement costs more than the
// budget gets none; the budget is about 0.1 s of one core, whatever the graph.
constexpr int kImprovementRounds = 4000;
constexpr int64_t kImprovementWorkBudget = 8'000'000;

MemoryPlan plan_arena_offsets(const std::vector<TensorLifetime>& tensors) {
  MemoryPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  for (const TensorLifetime& t : tensors) plan.no_reuse_bytes += round_up_to_alignment(t.size_bytes);
  plan.lower_bound_bytes = live_bytes_lower_bound(tensors);

  const std::vector<int> chain_child = choose_inplace_links(tensors, &plan.inplace_count);
  const std::vector<PlacementItem> items = build_items(tensors, chain_child);
  const int item_count = static_cast<int>(items.size());
  ArenaPacker packer(tensors, items);

  // Greedy by size: largest first, ties by earlier first step.
  std::vector<int> order(item_count);
  for (int i = 0; i < item_count; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (items[a].largest_bytes != items[b].largest_bytes)
      return items[a].largest_bytes > items[b].largest_bytes;
    return items[a].first_step < items[b].first_step;
  });
  int64_t placement_work = 0;
  plan.arena_bytes = packer.place(order, &plan.offsets, &placement_work);

  // Iterated greedy. Greedy by size strands small long-lived buffers (residuals) above big short-lived ones
  // and leaves gaps the windows of a layer chain cannot use. Each round moves one item earlier in the order:
  // on even rounds an item that reaches the top of the arena, on odd rounds any item to anywhere; it
  // re-places everything and keeps the new order unless the arena grew. It stops at the lower bound.
  // Deterministic: a fixed-seed generator and a budget counted in work, not time.
  std::mt19937 rng(0x5eedu);
  std::vector<int> candidate;
  std::vector<uint64_t> candidate_offsets(tensors.size(), 0);
  std::vector<int> at_top;
  int64_t work = 0;
  for (int round = 0;
       round < kImprovementRounds && item_count > 1 && plan.arena_bytes > plan.lower_bound_bytes &&
       work + placement_work <= kImprovementWorkBudget;
       ++round) {
    at_top.clear();
    for (int position = 1; position < item_count; ++position) {
      const int head = items[order[position]].members.front();
      const uint64_t end = plan.offsets[head] + round_up_to_alignment(tensors[head].size_bytes);
      if (end == plan.arena_bytes) at_top.push_back(position);
    }
    const bool lower_the_top = round % 2 == 0 && !at_top.empty();
    const int from = lower_the_top ? at_top[rng() % at_top.size()]
                                   : static_cast<int>(rng() % static_cast<uint32_t>(item_count));
    const int to = static_cast<int>(rng() % static_cast<uint32_t>(lower_the_top ? from : item_count));
    candidate = order;
    const int moved = candidate[from];
    candidate.erase(candidate.begin() + from);
    candidate.insert(candidate.begin() + to, moved);
    const uint64_t arena_bytes = packer.place(candidate, &candidate_offsets, &work);
    if (arena_bytes <= plan.arena_bytes) {
      plan.arena_bytes = arena_bytes;
      order.swap(candidate);
      plan.offsets.swap(candidate_offsets);
    }
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
