// CUDA TokenShift (RWKV's mix with the previous token, semantics in ir/ops/recurrence_ops.cpp): y[b, t] =
// x[b, t-1], y[b, 0] = state[b] (zeros without a state), new_state[b] = x[b, T-1].
//
// Layout x, y [B, T, C], states [B, C]. Bit copies (2- or 4-byte elements, so f16/bf16/f32 stay exact).
// Parallel split: one thread per output element (grid-stride), then one per new-state element.
// Memory-bound.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

template <typename E>
__global__ void token_shift_kernel(TokenShiftParams p) {
  const E* x = static_cast<const E*>(p.x);
  const E* state = static_cast<const E*>(p.state);
  E* y = static_cast<E*>(p.y);
  const int64_t C = p.channels, T = p.length;
  const int64_t n = p.batch * T * C;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t c = i % C, t = (i / C) % T, b = i / (C * T);
    if (t > 0) {
      y[i] = x[i - C];
    } else {
      y[i] = state != nullptr ? state[b * C + c] : E(0);
    }
  }
}

template <typename E>
__global__ void token_shift_state_kernel(TokenShiftParams p) {
  const E* x = static_cast<const E*>(p.x);
  const E* state = static_cast<const E*>(p.state);
  E* out = static_cast<E*>(p.new_state);
  const int64_t C = p.channels, T = p.length;
  const int64_t n = p.batch * C;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t c = i % C, b = i / C;
    if (T > 0) {
      out[i] = x[(b * T + T - 1) * C + c];
    } else {
      out[i] = state != nullptr ? state[i] : E(0);
    }
  }
}

template <typename E>
cudaError_t launch_typed(const TokenShiftParams& p, cudaStream_t stream) {
  const int64_t n = p.batch * p.length * p.channels;
  if (n > 0) token_shift_kernel<E><<<grid_for(n), kThreads, 0, stream>>>(p);
  const int64_t state_n = p.batch * p.channels;
  if (p.new_state != nullptr && state_n > 0)
    token_shift_state_kernel<E><<<grid_for(state_n), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_token_shift(const TokenShiftParams& p, cudaStream_t stream) {
  if (p.batch < 0 || p.length < 0 || p.channels < 0) return cudaErrorInvalidValue;
  if (p.elem_size == 2) return launch_typed<uint16_t>(p, stream);
  if (p.elem_size == 4) return launch_typed<uint32_t>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace seqrun::backends::cuda
