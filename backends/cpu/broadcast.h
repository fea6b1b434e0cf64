// BroadcastPlan: walks a numpy-broadcast output and its inputs as contiguous runs, in parallel.
//
// The output is collapsed into as few dims as every input's layout allows (size-1 output dims
// dropped, neighbours merged where each input is contiguous across them or broadcast along both).
// In the innermost collapsed dim each input then has stride 1 (contiguous) or 0 (one repeated
// value), so the caller's run function is a plain vector loop. Runs are split into chunks so a
// single long run still spreads over the OpenMP team.
#pragma once

#include <algorithm>
#include <optional>
#include <vector>

#include "backends/cpu/cpu_common.h"

namespace seqrun::backends::cpu {

class BroadcastPlan {
 public:
  static constexpr int kMaxInputs = 4;
  static constexpr int64_t kChunk = 8192;  // elements per work item along a run

  // Null when an input does not broadcast to `out` (or there are too many inputs).
  static std::optional<BroadcastPlan> make(const Shape& out, const std::vector<Shape>& ins) {
    if (ins.empty() || ins.size() > kMaxInputs) return std::nullopt;
    const size_t rank = out.size();
    BroadcastPlan plan;
    plan.inputs_ = static_cast<int>(ins.size());
    plan.total_ = num_elements(out);
    std::vector<std::vector<int64_t>> aligned(ins.size(), std::vector<int64_t>(rank, 0));
    for (size_t k = 0; k < ins.size(); ++k) {
      const Shape& s = ins[k];
      if (s.size() > rank) return std::nullopt;
      int64_t stride = 1;
      for (size_t i = s.size(); i-- > 0;) {
        const size_t d = rank - s.size() + i;
        if (s[i] != 1 && s[i] != out[d]) return std::nullopt;
        aligned[k][d] = s[i] == 1 ? 0 : stride;
        stride *= s[i];
      }
    }
    plan.strides_.assign(ins.size(), {});
    for (size_t d = 0; d < rank; ++d) {
      if (out[d] == 1) continue;
      bool merge = !plan.dims_.empty();
      for (size_t k = 0; merge && k < ins.size(); ++k) {
        merge = plan.strides_[k].back() == aligned[k][d] * out[d];
      }
      if (merge) {
        plan.dims_.back() *= out[d];
        for (size_t k = 0; k < ins.size(); ++k) plan.strides_[k].back() = aligned[k][d];
      } else {
        plan.dims_.push_back(out[d]);
        for (size_t k = 0; k < ins.size(); ++k) plan.strides_[k].push_back(aligned[k][d]);
      }
    }
    if (plan.dims_.empty()) {
      plan.dims_.push_back(1);
      for (auto& st : plan.strides_) st.push_back(0);
    }
    return plan;
  }

  // Stride (0 or 1) of input k along a run.
  int64_t inner_stride(int k) const { return strides_[k].back(); }

  // Calls fn(out_offset, in_offsets, n) for runs covering the whole output; in_offsets[k] is the
  // element offset into input k. Runs may be called from several threads at once.
  template <typename Fn>
  void for_each_run(Fn&& fn) const {
    if (total_ == 0) return;
    const int outer_rank = static_cast<int>(dims_.size()) - 1;
    const int64_t run = dims_.back();
    const int64_t chunks = (run + kChunk - 1) / kChunk;
    const int64_t rows = total_ / run;
    const int64_t items = rows * chunks;
#pragma omp parallel for schedule(static) if (total_ >= kParallelMinElements && items > 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t row = item / chunks, chunk = item % chunks;
      int64_t offsets[kMaxInputs] = {0, 0, 0, 0};
      int64_t rest = row;
      for (int d = outer_rank - 1; d >= 0; --d) {
        const int64_t i = rest % dims_[d];
        rest /= dims_[d];
        for (int k = 0; k < inputs_; ++k) offsets[k] += i * strides_[k][d];
      }
      const int64_t begin = chunk * kChunk;
      for (int k = 0; k < inputs_; ++k) offsets[k] += begin * strides_[k].back();
      fn(row * run + begin, offsets, std::min(kChunk, run - begin));
    }
  }

 private:
  int inputs_ = 0;
  int64_t total_ = 0;
  std::vector<int64_t> dims_;                  // collapsed output dims; the last one is the run
  std::vector<std::vector<int64_t>> strides_;  // per input, per collapsed dim (elements)
};

}  // namespace seqrun::backends::cpu
