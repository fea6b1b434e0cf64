// TokenShift (RWKV's shift by one token with a one-token state; semantics: ir/ops/recurrence_ops.cpp):
// shifted[b, t] = x[b, t-1], shifted[b, 0] = state[b] (zeros without a state), new_state[b] = x[b, T-1]
// (the old state when T = 0). OpenMP.
//
// Layout: x, shifted [B, T, C]; state, new_state [B, C]. Per batch the shifted rows 1..T-1 are one
// contiguous copy of x's rows 0..T-2, cut into pieces of at most kPieceFloats so that long sequences
// spread over the threads; row 0 and the new state are one row copy each. T = 1 with the state fed back
// is the one-token step. Memory-bound (plain memcpy). Not in place: the output is x moved by one row.
#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kPieceFloats = 1 << 16;  // floats per copy work item (256 KiB)

class TokenShiftKernel : public Kernel {
 public:
  TokenShiftKernel(int64_t batch, int64_t steps, int64_t channels, bool has_state, bool has_new_state)
      : batch_(batch),
        steps_(steps),
        channels_(channels),
        has_state_(has_state),
        has_new_state_(has_new_state) {}

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* x = inputs[0].as<const float>();
    const float* state = has_state_ ? inputs[1].as<const float>() : nullptr;
    float* shifted = outputs[0].as<float>();
    float* new_state = has_new_state_ ? outputs[1].as<float>() : nullptr;
    const int64_t C = channels_, T = steps_;
    const size_t row_bytes = sizeof(float) * static_cast<size_t>(C);
    // Rows 0 and the new states (small: one row per batch).
    for (int64_t b = 0; b < batch_; ++b) {
      const float* prev = state != nullptr ? state + b * C : nullptr;
      if (T > 0) {
        if (prev != nullptr) {
          std::memcpy(shifted + b * T * C, prev, row_bytes);
        } else {
          std::fill(shifted + b * T * C, shifted + (b * T + 1) * C, 0.0f);
        }
      }
      if (new_state == nullptr) continue;
      if (T > 0) {
        std::memcpy(new_state + b * C, x + (b * T + T - 1) * C, row_bytes);
      } else if (prev != nullptr) {
        std::memcpy(new_state + b * C, prev, row_bytes);
      } else {
        std::fill(new_state + b * C, new_state + (b + 1) * C, 0.0f);
      }
    }
    // Rows 1..T-1 of each batch: (T-1)·C contiguous floats.
    const int64_t span = std::max<int64_t>(0, T - 1) * C;
    const int64_t pieces_per_batch = (span + kPieceFloats - 1) / kPieceFloats;
#pragma omp parallel for schedule(static) if (batch_ * span >= kParallelMinElements)
    for (int64_t item = 0; item < batch_ * pieces_per_batch; ++item) {
      const int64_t b = item / pieces_per_batch, begin = (item % pieces_per_batch) * kPieceFloats;
      const int64_t count = std::min(kPieceFloats, span - begin);
      std::memcpy(shifted + b * T * C + C + begin, x + b * T * C + begin, sizeof(float) * count);
    }
    return Status::ok();
  }
  std::string label() const override {
    return "cpu:token_shift";
  }

 private:
  int64_t batch_, steps_, channels_;
  bool has_state_, has_new_state_;
};

}  // namespace

std::unique_ptr<Kernel> make_token_shift_kernel(const KernelInfo& info) {
  if (!all_f32(info) || info.inputs.empty() || info.outputs.empty() || info.outputs.size() > 2)
    return nullptr;
  if (!info.input_present(0)) return nullptr;
  const Shape& x = info.inputs[0].shape;
  if (x.size() != 3) return nullptr;
  const Shape state = {x[0], x[2]};
  if (info.input_present(1) && info.inputs[1].shape != state) return nullptr;
  if (info.outputs[0].shape != x || (info.outputs.size() == 2 && info.outputs[1].shape != state))
    return nullptr;
  return std::make_unique<TokenShiftKernel>(x[0], x[1], x[2], info.input_present(1),
                                            info.outputs.size() == 2);
}

}  // namespace seqrun::backends::cpu
