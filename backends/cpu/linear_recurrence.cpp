// LinearRecurrence: h_t = a_t ⊙ h_{t-1} + b_t along `axis`, h_{-1} = h0 (or 0), with the last state
// as an optional second output (semantics: ir/ops/nn.cpp), AVX2 + FMA, OpenMP.
//
// Layout: a, b, h [outer..., L, inner...]; h0 and the last state [outer..., inner...]. With inner > 1
// (the unfused SSM scan [B, L, D, N] along axis 1) a work item is one outer index and a slice of at most
// kSliceFloats inner positions, walked step by step: h[t] = a[t] · h[t-1] + b[t] on 8 lanes, h[t-1] read
// back from the output just written (the slice is 4 KiB: L1). Steps stride by `inner`, slices are
// contiguous, so every stream is read sequentially within a step. With inner = 1 (the scan axis last)
// rows are contiguous and a work item scans 8 rows side by side, so 8 independent FMA chains hide the
// latency. Parallel split: the work items, statically. Memory-bound (read a and b, write h once).
// L = 1 with h0 fed back is the one-step form. In place: h may overwrite a or b (each element is read
// before its slot is written).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kSliceFloats = 1024;  // inner positions per work item
constexpr int64_t kRowsPerItem = 8;     // rows per work item when the scan axis is last

class LinearRecurrenceKernel : public Kernel {
 public:
  LinearRecurrenceKernel(int64_t outer, int64_t steps, int64_t inner, bool has_h0, bool has_last)
      : outer_(outer), steps_(steps), inner_(inner), has_h0_(has_h0), has_last_(has_last) {}
  bool can_run_in_place(int output, int input) const override {
    return output == 0 && (input == 0 || input == 1);
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* a = inputs[0].as<const float>();
    const float* b = inputs[1].as<const float>();
    const float* h0 = has_h0_ ? inputs[2].as<const float>() : nullptr;
    float* h = outputs[0].as<float>();
    float* last = has_last_ ? outputs[1].as<float>() : nullptr;
    const bool parallel = outer_ * steps_ * inner_ >= kParallelMinElements;
    if (inner_ == 1) {
      const int64_t items = (outer_ + kRowsPerItem - 1) / kRowsPerItem;
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t first = item * kRowsPerItem, count = std::min(kRowsPerItem, outer_ - first);
        scan_rows(a + first * steps_, b + first * steps_, h0 != nullptr ? h0 + first : nullptr,
                  h + first * steps_, last != nullptr ? last + first : nullptr, count);
      }
      return Status::ok();
    }
    const int64_t slices = (inner_ + kSliceFloats - 1) / kSliceFloats;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t item = 0; item < outer_ * slices; ++item) {
      const int64_t o = item / slices, begin = (item % slices) * kSliceFloats;
      const int64_t width = std::min(kSliceFloats, inner_ - begin);
      const int64_t base = o * steps_ * inner_ + begin;  // element (o, 0, begin)
      scan_slice(a + base, b + base, h0 != nullptr ? h0 + o * inner_ + begin : nullptr, h + base,
                 last != nullptr ? last + o * inner_ + begin : nullptr, width);
    }
    return Status::ok();
  }
  std::string label() const override {
    return "avx2:linear_recurrence";
  }

 private:
  // `width` inner positions of one outer index; pointers at step 0.
  void scan_slice(const float* a, const float* b, const float* h0, float* h, float* last,
                  int64_t width) const {
    for (int64_t t = 0; t < steps_; ++t) {
      const int64_t at = t * inner_;
      const float* prev = t > 0 ? h + at - inner_ : h0;  // null: the zero state
      int64_t i = 0;
      for (; i + 8 <= width; i += 8) {
        const __m256 p = prev != nullptr ? _mm256_loadu_ps(prev + i) : _mm256_setzero_ps();
        _mm256_storeu_ps(h + at + i,
                         _mm256_fmadd_ps(_mm256_loadu_ps(a + at + i), p, _mm256_loadu_ps(b + at + i)));
      }
      if (i < width) {
        const __m256i mask = vec::tail_mask(width - i);
        const __m256 p = prev != nullptr ? _mm256_maskload_ps(prev + i, mask) : _mm256_setzero_ps();
        const __m256 r =
            _mm256_fmadd_ps(_mm256_maskload_ps(a + at + i, mask), p, _mm256_maskload_ps(b + at + i, mask));
        _mm256_maskstore_ps(h + at + i, mask, r);
      }
    }
    if (last == nullptr) return;
    if (steps_ > 0) {
      std::memcpy(last, h + (steps_ - 1) * inner_, sizeof(float) * width);
    } else if (h0 != nullptr) {
      std::memcpy(last, h0, sizeof(float) * width);
    } else {
      std::fill(last, last + width, 0.0f);
    }
  }

  // `count` (<= 8) contiguous rows of length L, scanned side by side.
  void scan_rows(const float* a, const float* b, const float* h0, float* h, float* last,
                 int64_t count) const {
    float state[kRowsPerItem] = {};
    for (int64_t r = 0; r < count; ++r) state[r] = h0 != nullptr ? h0[r] : 0.0f;
    for (int64_t t = 0; t < steps_; ++t) {
      for (int64_t r = 0; r < count; ++r) {
        const int64_t at = r * steps_ + t;
        state[r] = a[at] * state[r] + b[at];
        h[at] = state[r];
      }
    }
    if (last != nullptr) {
      for (int64_t r = 0; r < count; ++r) last[r] = state[r];
    }
  }

  int64_t outer_, steps_, inner_;
  bool has_h0_, has_last_;
};

}  // namespace

std::unique_ptr<Kernel> make_linear_recurrence_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.size() < 2 || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  if (!info.input_present(0) || !info.input_present(1)) return nullptr;
  const Shape& shape = info.inputs[1].shape;
  if (info.inputs[0].shape != shape || shape.size() < 2) return nullptr;
  const int rank = static_cast<int>(shape.size());
  const int axis = normalize_axis(info.node->get_int("axis", 1), rank);
  if (axis < 0) return nullptr;
  Shape state = shape;
  state.erase(state.begin() + axis);
  if (info.input_present(2) && info.inputs[2].shape != state) return nullptr;
  if (info.outputs[0].shape != shape || (info.outputs.size() == 2 && info.outputs[1].shape != state))
    return nullptr;
  return std::make_unique<LinearRecurrenceKernel>(product(shape, 0, axis), shape[axis],
                                                  product(shape, axis + 1, shape.size()),
                                                  info.input_present(2), info.outputs.size() == 2);
}

}  // namespace seqrun::backends::cpu
