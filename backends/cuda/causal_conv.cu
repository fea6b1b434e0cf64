// CUDA CausalConvWithState (ONNX 27): depthwise causal convolution with an explicit state.
//
// For each (b, c) the sequence is concat(past[b, c, 0:K-1], x[b, c, 0:L]) (zeros without past);
// y[t] = act(bias[c] + sum_j w[c, j] * seq[t + j]) and present = the last K-1 entries of the sequence.
// Layout [B, C, L], weight [C, 1, K]. Parallel split: one thread per output element (and one per present
// element in a second small kernel). Memory-bound.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

// Element `pos` of the concatenated (past, x) sequence of channel row `row` = b * C + c.
template <typename T>
__device__ __forceinline__ float sequence_at(const CausalConvParams& p, int64_t row, int64_t pos) {
  const int64_t past_len = p.kernel_size - 1;
  if (pos < past_len) {
    return p.past == nullptr ? 0.0f : to_float(static_cast<const T*>(p.past)[row * past_len + pos]);
  }
  return to_float(static_cast<const T*>(p.x)[row * p.length + (pos - past_len)]);
}

template <typename T>
__global__ void causal_conv_kernel(CausalConvParams p) {
  const T* w = static_cast<const T*>(p.weight);
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.y);
  const int64_t n = p.batch * p.channels * p.length;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t t = i % p.length;
    const int64_t row = i / p.length;
    const int64_t c = row % p.channels;
    float acc = bias != nullptr ? to_float(bias[c]) : 0.0f;
    for (int64_t j = 0; j < p.kernel_size; ++j)
      acc += to_float(w[c * p.kernel_size + j]) * sequence_at<T>(p, row, t + j);
    if (p.silu) acc = acc / (1.0f + expf(-acc));
    y[i] = from_float<T>(acc);
  }
}

template <typename T>
__global__ void causal_conv_state_kernel(CausalConvParams p) {
  T* present = static_cast<T*>(p.present);
  const int64_t past_len = p.kernel_size - 1;
  const int64_t n = p.batch * p.channels * past_len;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t k = i % past_len;
    const int64_t row = i / past_len;
    present[i] = from_float<T>(sequence_at<T>(p, row, p.length + k));
  }
}

}  // namespace

cudaError_t launch_causal_conv(const CausalConvParams& p, cudaStream_t stream) {
  if (p.kernel_size < 1) return cudaErrorInvalidValue;
  const int64_t n = p.batch * p.channels * p.length;
  const int64_t state_n = p.batch * p.channels * (p.kernel_size - 1);
  if (n > 0) {
    SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (causal_conv_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(p)));
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (p.present != nullptr && state_n > 0) {
    SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T,
                               (causal_conv_state_kernel<T><<<grid_for(state_n), kThreads, 0, stream>>>(p)));
  }
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
