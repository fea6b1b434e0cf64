// Arena memory planner: hand-solved cases, random instances checked by a brute-force pairwise checker written
// here, packing quality on sequence-model shaped schedules, and planning time for 20k buffers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "runtime/memory_plan.h"

using seqrun::runtime::MemoryPlan;
using seqrun::runtime::plan_arena_offsets;
using seqrun::runtime::plan_is_valid;
using seqrun::runtime::TensorLifetime;

namespace {

TensorLifetime buffer(uint64_t size_bytes, int first_step, int last_step, int inplace_of = -1) {
  TensorLifetime t;
  t.size_bytes = size_bytes;
  t.first_step = first_step;
  t.last_step = last_step;
  t.inplace_of = inplace_of;
  return t;
}

uint64_t rounded(uint64_t bytes) {
  return (bytes + 63) / 64 * 64;
}

// True when `w` names `r` as the buffer it overwrites and the header's precondition holds.
bool is_inplace_pair(const std::vector<TensorLifetime>& ts, int w, int r) {
  if (r < 0 || r >= static_cast<int>(ts.size())) return false;
  return w != r && ts[w].inplace_of == r && ts[w].size_bytes > 0 && ts[r].size_bytes > 0 &&
         ts[w].size_bytes <= ts[r].size_bytes && ts[r].last_step == ts[w].first_step;
}

// Independent checker: every pair of buffers, plain interval arithmetic.
bool brute_force_valid(const std::vector<TensorLifetime>& ts, const MemoryPlan& plan) {
  const size_t n = ts.size();
  if (plan.offsets.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (plan.offsets[i] % 64 != 0) return false;
    if (ts[i].size_bytes > 0 && plan.offsets[i] + rounded(ts[i].size_bytes) > plan.arena_bytes) return false;
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (ts[i].size_bytes == 0 || ts[j].size_bytes == 0) continue;
      const bool live_together = ts[i].first_step <= ts[j].last_step && ts[j].first_step <= ts[i].last_step;
      if (!live_together) continue;
      const uint64_t i_end = plan.offsets[i] + rounded(ts[i].size_bytes);
      const uint64_t j_end = plan.offsets[j] + rounded(ts[j].size_bytes);
      const bool bytes_overlap = plan.offsets[i] < j_end && plan.offsets[j] < i_end;
      if (!bytes_overlap) continue;
      const int a = static_cast<int>(i);
      const int b = static_cast<int>(j);
      const bool inplace =
          (is_inplace_pair(ts, a, b) || is_inplace_pair(ts, b, a)) && plan.offsets[i] == plan.offsets[j];
      if (!inplace) return false;
    }
  }
  return true;
}

// Naive lower bound: walk every step, add up the live rounded sizes, and count each reader's largest
// in-place writer once at the step they share.
uint64_t naive_lower_bound(const std::vector<TensorLifetime>& ts) {
  if (ts.empty()) return 0;
  int lo = ts[0].first_step;
  int hi = ts[0].last_step;
  for (const TensorLifetime& t : ts) {
    lo = std::min(lo, t.first_step);
    hi = std::max(hi, t.last_step);
  }
  uint64_t best = 0;
  for (int s = lo; s <= hi; ++s) {
    uint64_t live = 0;
    for (const TensorLifetime& t : ts) {
      if (t.first_step <= s && s <= t.last_step) live += rounded(t.size_bytes);
    }
    for (size_t r = 0; r < ts.size(); ++r) {
      if (ts[r].last_step != s) continue;
      uint64_t shared = 0;
      for (size_t w = 0; w < ts.size(); ++w) {
        if (is_inplace_pair(ts, static_cast<int>(w), static_cast<int>(r))) {
          shared = std::max(shared, rounded(ts[w].size_bytes));
        }
      }
      live -= shared;
    }
    best = std::max(best, live);
  }
  return best;
}

int count_shared_inplace(const std::vector<TensorLifetime>& ts, const MemoryPlan& plan) {
  int count = 0;
  for (size_t w = 0; w < ts.size(); ++w) {
    const int r = ts[w].inplace_of;
    if (r >= 0 && is_inplace_pair(ts, static_cast<int>(w), r) && plan.offsets[w] == plan.offsets[r]) ++count;
  }
  return count;
}

// Random sizes from 1 B to 1 MiB (log-uniform, plus some big ones and some empty buffers), random lifetimes
// (mostly short, some long), and in-place links that satisfy the precondition (chains and several writers
// per reader included).
std::vector<TensorLifetime> random_instance(uint32_t seed, int max_buffers, int max_steps) {
  std::mt19937 rng(seed);
  const int n = 1 + static_cast<int>(rng() % max_buffers);
  const int steps = 1 + static_cast<int>(rng() % max_steps);
  std::vector<TensorLifetime> ts;
  for (int i = 0; i < n; ++i) {
    TensorLifetime t;
    const uint32_t kind = rng() % 100;
    if (kind < 5) {
      t.size_bytes = 0;
    } else if (kind < 15) {
      t.size_bytes = (512u << 10) + rng() % ((512u << 10) + 1);
    } else {
      const uint32_t bits = rng() % 21;  // one draw per statement: argument order is unspecified
      t.size_bytes = 1 + rng() % (1u << bits);
    }
    t.first_step = static_cast<int>(rng() % steps);
    const uint32_t span = rng() % 10;
    const int length = span < 6   ? static_cast<int>(rng() % 3)
                       : span < 9 ? static_cast<int>(rng() % 10)
                                  : static_cast<int>(rng() % steps);
    t.last_step = t.first_step + length;
    if (i > 0 && rng() % 10 < 3) {
      const int reader = static_cast<int>(rng() % i);
      t.inplace_of = reader;
      t.first_step = ts[reader].last_step;
      t.last_step = t.first_step + length;
      t.size_bytes = std::min(t.size_bytes, ts[reader].size_bytes);
      if (t.size_bytes > 0 && rng() % 4 == 0) t.size_bytes = ts[reader].size_bytes;
    }
    ts.push_back(t);
  }
  return ts;
}

// Sequence-model shaped schedule: blocks of ops, each op's output read by the next two steps, a residual
// stream that lives across a whole block, attention-score sized and MLP sized temporaries, and elementwise
// ops that overwrite their input in place.
std::vector<TensorLifetime> sequence_model_instance(uint32_t seed) {
  std::mt19937 rng(seed);
  const uint64_t hidden_bytes = 64 * (1 + rng() % 4096);
  const uint64_t score_bytes = 64 * (1 + rng() % 16384);
  const int layers = 2 + static_cast<int>(rng() % 23);
  std::vector<TensorLifetime> ts;
  int step = 0;
  ts.push_back(buffer(hidden_bytes, step, step));  // residual stream entering layer 0
  int residual = 0;
  for (int layer = 0; layer < layers; ++layer) {
    const int ops = 4 + static_cast<int>(rng() % 8);
    int previous = -1;
    for (int op = 0; op < ops; ++op) {
      ++step;
      const uint32_t kind = rng() % 10;
      if (previous >= 0 && kind < 2) {  // elementwise, in place over the previous output
        ts[previous].last_step = step;
        ts.push_back(buffer(ts[previous].size_bytes, step, step + 2, previous));
      } else {
        const uint64_t bytes = kind < 5   ? hidden_bytes
                               : kind < 7 ? 3 * hidden_bytes
                               : kind < 9 ? 4 * hidden_bytes
                                          : score_bytes;
        ts.push_back(buffer(bytes, step, step + 2));
      }
      previous = static_cast<int>(ts.size()) - 1;
    }
    ++step;  // residual add closes the block
    ts[residual].last_step = std::max(ts[residual].last_step, step);
    ts.push_back(buffer(hidden_bytes, step, step));
    residual = static_cast<int>(ts.size()) - 1;
  }
  ts[residual].last_step = step + 1;  // the model output
  return ts;
}

void check_plan(const std::vector<TensorLifetime>& ts, const MemoryPlan& plan) {
  REQUIRE(plan.offsets.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    REQUIRE(plan.offsets[i] % 64 == 0);
    if (ts[i].size_bytes == 0) REQUIRE(plan.offsets[i] == 0);
  }
  REQUIRE(brute_force_valid(ts, plan));
  REQUIRE(plan_is_valid(ts, plan));
  REQUIRE(plan.arena_bytes >= plan.lower_bound_bytes);
  REQUIRE(plan.arena_bytes <= plan.no_reuse_bytes);
  uint64_t sum = 0;
  for (const TensorLifetime& t : ts) sum += rounded(t.size_bytes);
  REQUIRE(plan.no_reuse_bytes == sum);
  REQUIRE(plan.inplace_count == count_shared_inplace(ts, plan));
}

}  // namespace

TEST_CASE("memory plan: a chain of equal buffers needs two slots", "[memory_plan]") {
  // a -> b -> c: a is read by the step that writes b, b by the step that writes c.
  const std::vector<TensorLifetime> ts = {buffer(1000, 0, 1), buffer(1000, 1, 2), buffer(1000, 2, 3)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.lower_bound_bytes == 2048);
  CHECK(plan.arena_bytes == 2048);
  CHECK(plan.no_reuse_bytes == 3072);
  CHECK(plan.offsets[0] == plan.offsets[2]);
  CHECK(plan.offsets[0] != plan.offsets[1]);
  CHECK(plan.inplace_count == 0);
}

TEST_CASE("memory plan: diamond", "[memory_plan]") {
  // a feeds b (step 1) and c (step 2); b and c feed d (step 3). d can take a's bytes.
  const std::vector<TensorLifetime> ts = {buffer(256, 0, 2), buffer(128, 1, 3), buffer(128, 2, 3),
                                          buffer(256, 3, 4)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.lower_bound_bytes == 512);
  CHECK(plan.arena_bytes == 512);
  CHECK(plan.no_reuse_bytes == 768);
  CHECK(plan.offsets[0] == plan.offsets[3]);
}

TEST_CASE("memory plan: an in-place chain needs one slot", "[memory_plan]") {
  // x -> relu(x) in place -> sigmoid(.) in place -> a smaller in-place write.
  const std::vector<TensorLifetime> ts = {buffer(4096, 0, 1), buffer(4096, 1, 2, 0), buffer(4000, 2, 3, 1),
                                          buffer(100, 3, 5, 2)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.inplace_count == 3);
  CHECK(plan.lower_bound_bytes == 4096);
  CHECK(plan.arena_bytes == 4096);
  CHECK(plan.offsets == std::vector<uint64_t>{0, 0, 0, 0});
}

TEST_CASE("memory plan: in-place links that break the precondition are ignored", "[memory_plan]") {
  const std::vector<TensorLifetime> ts = {
      buffer(1024, 0, 1),     // 0
      buffer(2048, 1, 2, 0),  // 1: larger than its reader
      buffer(512, 0, 3),      // 2
      buffer(256, 2, 4, 2),   // 3: reader 2 still live after step 2
      buffer(64, 4, 5, 99),   // 4: reader out of range
      buffer(64, 5, 6, 5),    // 5: itself
      buffer(0, 3, 4, 3),     // 6: empty
  };
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.inplace_count == 0);
  // Step 1 holds 1024 + 2048 + 512 bytes; nothing may share.
  CHECK(plan.lower_bound_bytes == 3584);
  CHECK(plan.arena_bytes == 3584);
}

TEST_CASE("memory plan: a reader lends its bytes to one writer only", "[memory_plan]") {
  // Two ops both want to overwrite buffer 0 at step 1; the larger one gets it.
  const std::vector<TensorLifetime> ts = {buffer(1024, 0, 1), buffer(512, 1, 2, 0), buffer(1024, 1, 2, 0)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.inplace_count == 1);
  CHECK(plan.offsets[2] == plan.offsets[0]);
  CHECK(plan.lower_bound_bytes == 1536);
  CHECK(plan.arena_bytes == 1536);
}

TEST_CASE("memory plan: a one-step buffer is not the middle of an in-place chain", "[memory_plan]") {
  // 1 lives only at step 1: if both 0 -> 1 and 1 -> 2 were in place, 0 and 2 would share bytes at step 1.
  const std::vector<TensorLifetime> ts = {buffer(640, 0, 1), buffer(640, 1, 1, 0), buffer(640, 1, 2, 1)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.inplace_count == 1);
  CHECK(plan.arena_bytes == 1280);
}

TEST_CASE("memory plan: empty buffers take offset 0 and no space", "[memory_plan]") {
  const std::vector<TensorLifetime> ts = {buffer(0, 0, 5), buffer(128, 0, 5), buffer(0, 2, 3),
                                          buffer(64, 1, 4)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.offsets[0] == 0);
  CHECK(plan.offsets[2] == 0);
  CHECK(plan.arena_bytes == 192);
  CHECK(plan.lower_bound_bytes == 192);
  CHECK(plan.no_reuse_bytes == 192);

  const MemoryPlan empty = plan_arena_offsets({});
  CHECK(empty.offsets.empty());
  CHECK(empty.arena_bytes == 0);
  CHECK(empty.lower_bound_bytes == 0);
  CHECK(plan_is_valid({}, empty));
}

TEST_CASE("memory plan: a lifetime that ends before it starts is one step", "[memory_plan]") {
  // Buffer 0 says [2, 1]: it is read as step 2, where buffer 1 is live too.
  const std::vector<TensorLifetime> ts = {buffer(128, 2, 1), buffer(128, 2, 4), buffer(128, 0, 1)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  CHECK(plan_is_valid(ts, plan));
  CHECK(plan.offsets[0] != plan.offsets[1]);
  CHECK(plan.lower_bound_bytes == 256);
  CHECK(plan.arena_bytes == 256);
}

TEST_CASE("memory plan: sizes and offsets are rounded to 64 bytes", "[memory_plan]") {
  const std::vector<TensorLifetime> ts = {buffer(1, 0, 2), buffer(65, 0, 2), buffer(100, 1, 2)};
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.no_reuse_bytes == 64 + 128 + 128);
  CHECK(plan.lower_bound_bytes == 320);
  CHECK(plan.arena_bytes == 320);
}

TEST_CASE("memory plan: best fit takes the smallest gap that fits", "[memory_plan]") {
  // After A..E are placed, steps 4..9 see free gaps [1024, 1536) (512 B) and [1792, 1920) (128 B).
  // F (64 B, steps 5..6) goes into the 128 B gap, not the lower 512 B one.
  const std::vector<TensorLifetime> ts = {
      buffer(1024, 0, 9),  // A -> 0
      buffer(512, 0, 3),   // B -> 1024
      buffer(256, 0, 9),   // C -> 1536
      buffer(128, 0, 3),   // D -> 1792
      buffer(128, 0, 9),   // E -> 1920
      buffer(64, 5, 6),    // F
  };
  const MemoryPlan plan = plan_arena_offsets(ts);
  check_plan(ts, plan);
  CHECK(plan.offsets == std::vector<uint64_t>{0, 1024, 1536, 1792, 1920, 1792});
  CHECK(plan.arena_bytes == 2048);
  CHECK(plan.lower_bound_bytes == 2048);
}

TEST_CASE("memory plan: the validators reject overlapping live buffers", "[memory_plan]") {
  const std::vector<TensorLifetime> ts = {buffer(128, 0, 2), buffer(128, 1, 3), buffer(128, 2, 3, 0)};
  MemoryPlan plan;
  plan.arena_bytes = 256;
  plan.offsets = {0, 128, 0};  // 2 overwrites 0 in place at step 2: allowed
  CHECK(plan_is_valid(ts, plan));
  CHECK(brute_force_valid(ts, plan));
  plan.offsets = {0, 64, 128};  // 0 and 1 overlap at steps 1..2
  CHECK_FALSE(plan_is_valid(ts, plan));
  CHECK_FALSE(brute_force_valid(ts, plan));
  plan.offsets = {64, 192, 0};  // in-place pair overlapping at different offsets
  CHECK_FALSE(plan_is_valid(ts, plan));
  CHECK_FALSE(brute_force_valid(ts, plan));
  plan.offsets = {0, 128, 256};  // past the arena end
  CHECK_FALSE(plan_is_valid(ts, plan));
  CHECK_FALSE(brute_force_valid(ts, plan));
  plan.arena_bytes = 320;
  plan.offsets = {0, 160, 0};  // misaligned
  CHECK_FALSE(plan_is_valid(ts, plan));
  CHECK_FALSE(brute_force_valid(ts, plan));
  plan.offsets = {0, 128};  // wrong count
  CHECK_FALSE(plan_is_valid(ts, plan));
}

TEST_CASE("memory plan: random instances are valid and within the bounds", "[memory_plan]") {
  for (uint32_t seed = 1; seed <= 500; ++seed) {
    INFO("seed " << seed);
    const std::vector<TensorLifetime> ts = random_instance(seed, 200, 60);
    const MemoryPlan plan = plan_arena_offsets(ts);
    check_plan(ts, plan);
    REQUIRE(plan.lower_bound_bytes == naive_lower_bound(ts));

    // Break the plan: move a buffer onto another one live with it (not its in-place partner). Both checkers
    // must notice.
    for (size_t i = 0; i < ts.size(); ++i) {
      bool broken = false;
      for (size_t j = 0; j < ts.size() && !broken; ++j) {
        const int a = static_cast<int>(i);
        const int b = static_cast<int>(j);
        if (i == j || ts[i].size_bytes == 0 || ts[j].size_bytes == 0) continue;
        if (is_inplace_pair(ts, a, b) || is_inplace_pair(ts, b, a)) continue;
        if (ts[i].first_step > ts[j].last_step || ts[j].first_step > ts[i].last_step) continue;
        MemoryPlan bad = plan;
        bad.offsets[j] = bad.offsets[i];
        bad.arena_bytes = std::max(bad.arena_bytes, bad.offsets[j] + rounded(ts[j].size_bytes));
        REQUIRE_FALSE(brute_force_valid(ts, bad));
        REQUIRE_FALSE(plan_is_valid(ts, bad));
        broken = true;
      }
      if (broken) break;
    }
  }
}

TEST_CASE("memory plan: sequence-model schedules pack within 1.1x of the lower bound", "[memory_plan]") {
  double worst = 1.0;
  double total = 0.0;
  const int instances = 200;
  for (uint32_t seed = 1; seed <= instances; ++seed) {
    INFO("seed " << seed);
    const std::vector<TensorLifetime> ts = sequence_model_instance(seed);
    const MemoryPlan plan = plan_arena_offsets(ts);
    check_plan(ts, plan);
    REQUIRE(plan.lower_bound_bytes == naive_lower_bound(ts));
    const double ratio = static_cast<double>(plan.arena_bytes) / static_cast<double>(plan.lower_bound_bytes);
    CHECK(ratio <= 1.10);
    worst = std::max(worst, ratio);
    total += ratio;
  }
  std::printf("memory plan: sequence-model arena / lower bound: mean %.4f, worst %.4f over %d schedules\n",
              total / instances, worst, instances);
}

TEST_CASE("memory plan: 20k buffers plan quickly", "[memory_plan]") {
  // A 20k-node schedule: mostly short lifetimes, some long ones, in-place links.
  std::mt19937 rng(2024);
  const int n = 20000;
  std::vector<TensorLifetime> ts;
  for (int i = 0; i < n; ++i) {
    TensorLifetime t;
    const uint32_t bits = rng() % 21;
    t.size_bytes = 1 + rng() % (1u << bits);
    t.first_step = i;
    const uint32_t span = rng() % 100;
    t.last_step = i + (span < 90   ? static_cast<int>(rng() % 4)
                       : span < 99 ? static_cast<int>(rng() % 64)
                                   : static_cast<int>(rng() % 5000));
    if (i > 0 && rng() % 5 == 0 && ts[i - 1].last_step >= i) {
      ts[i - 1].last_step = i;
      t.inplace_of = i - 1;
      t.size_bytes = ts[i - 1].size_bytes;
    }
    ts.push_back(t);
  }
  const auto start = std::chrono::steady_clock::now();
  const MemoryPlan plan = plan_arena_offsets(ts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("memory plan: %d buffers in %.3f s, arena %.2f x lower bound, %d in place\n", n, seconds,
              static_cast<double>(plan.arena_bytes) / static_cast<double>(plan.lower_bound_bytes),
              plan.inplace_count);
  REQUIRE(plan_is_valid(ts, plan));
  REQUIRE(plan.arena_bytes >= plan.lower_bound_bytes);
  // Generous bound for a loaded 2-core CI machine; it is meant to catch a complexity regression.
  CHECK(seconds < 2.0);
}
