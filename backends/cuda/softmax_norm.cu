// CUDA row kernels: Softmax / LogSoftmax, LayerNormalization / RMSNormalization, and the reductions
// ReduceSum / ReduceMean / ReduceMax.
//
// Layout: x viewed as [outer, n, inner] (softmax, reductions) or [rows, row_len] (norms).
// Parallel split: when the reduced dim is contiguous (inner == 1) one block (softmax, norms) or one
// warp (reductions) per row, with shuffle reductions; otherwise one thread per (outer, inner) column
// walking the reduced dim (coalesced across threads). Memory-bound; f32 accumulation.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

// One block per row of n contiguous elements: max, sum of exp, then the outputs.
template <typename T>
__global__ void softmax_rows_kernel(SoftmaxParams p) {
  __shared__ float scratch[32];
  const T* x = static_cast<const T*>(p.x) + blockIdx.x * p.n;
  T* y = static_cast<T*>(p.y) + blockIdx.x * p.n;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < p.n; j += blockDim.x) m = max_nan(m, to_float(x[j]));
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < p.n; j += blockDim.x) s += expf(to_float(x[j]) - m);
  s = block_sum(s, scratch);
  if (p.log) {
    const float log_sum = logf(s);
    for (int64_t j = threadIdx.x; j < p.n; j += blockDim.x)
      y[j] = from_float<T>(to_float(x[j]) - m - log_sum);
  } else {
    const float inv = 1.0f / s;
    for (int64_t j = threadIdx.x; j < p.n; j += blockDim.x)
      y[j] = from_float<T>(expf(to_float(x[j]) - m) * inv);
  }
}

// One thread per (outer, inner) column, walking the n elements at stride inner.
template <typename T>
__global__ void softmax_columns_kernel(SoftmaxParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t columns = p.outer * p.inner;
  for (int64_t c = global_thread(); c < columns; c += grid_stride()) {
    const int64_t o = c / p.inner, in = c % p.inner;
    const int64_t base = o * p.n * p.inner + in;
    float m = -INFINITY;
    for (int64_t j = 0; j < p.n; ++j) m = max_nan(m, to_float(x[base + j * p.inner]));
    float s = 0.0f;
    for (int64_t j = 0; j < p.n; ++j) s += expf(to_float(x[base + j * p.inner]) - m);
    const float log_sum = logf(s), inv = 1.0f / s;
    for (int64_t j = 0; j < p.n; ++j) {
      const float v = to_float(x[base + j * p.inner]) - m;
      y[base + j * p.inner] = from_float<T>(p.log ? v - log_sum : expf(v) * inv);
    }
  }
}

// One block per row: mean (LayerNorm) in a first pass, the centered second moment (or the mean
// square for RMSNorm) in a second, then the normalized, scaled, shifted outputs.
template <typename T>
__global__ void norm_kernel(NormParams p) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.row_len;
  T* y = static_cast<T*>(p.y) + row * p.row_len;
  const T* scale = static_cast<const T*>(p.scale);
  const T* bias = static_cast<const T*>(p.bias);
  const float count = static_cast<float>(p.row_len);
  float mean = 0.0f;
  if (!p.rms) {
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < p.row_len; j += blockDim.x) s += to_float(x[j]);
    mean = block_sum(s, scratch) / count;
  }
  float sq = 0.0f;
  for (int64_t j = threadIdx.x; j < p.row_len; j += blockDim.x) {
    const float d = to_float(x[j]) - mean;
    sq += d * d;
  }
  const float var = block_sum(sq, scratch) / count;
  const float inv_std = rsqrtf(var + p.epsilon);
  for (int64_t j = threadIdx.x; j < p.row_len; j += blockDim.x) {
    float v = (to_float(x[j]) - mean) * inv_std * to_float(scale[j]);
    if (bias != nullptr) v += to_float(bias[j]);
    y[j] = from_float<T>(v);
  }
  if (threadIdx.x == 0) {
    if (p.mean != nullptr) p.mean[row] = mean;
    if (p.inv_std != nullptr) p.inv_std[row] = inv_std;
  }
}

__device__ __forceinline__ float reduce_init(ReduceOp op) {
  return op == ReduceOp::Max ? -INFINITY : 0.0f;
}
__device__ __forceinline__ float reduce_step(ReduceOp op, float acc, float v) {
  return op == ReduceOp::Max ? max_nan(acc, v) : acc + v;
}

// inner == 1: one warp per output, lanes stride over the r contiguous elements.
template <typename T>
__global__ void reduce_rows_kernel(ReduceParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t row = global_thread() >> 5; row < p.outer; row += warps) {
    float acc = reduce_init(p.op);
    for (int64_t j = lane; j < p.r; j += 32) acc = reduce_step(p.op, acc, to_float(x[row * p.r + j]));
    acc = p.op == ReduceOp::Max ? warp_max(acc) : warp_sum(acc);
    if (p.op == ReduceOp::Mean) acc /= static_cast<float>(p.r);
    if (lane == 0) y[row] = from_float<T>(acc);
  }
}

template <typename T>
__global__ void reduce_columns_kernel(ReduceParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t columns = p.outer * p.inner;
  for (int64_t c = global_thread(); c < columns; c += grid_stride()) {
    const int64_t o = c / p.inner, in = c % p.inner;
    const T* base = x + o * p.r * p.inner + in;
    float acc = reduce_init(p.op);
    for (int64_t j = 0; j < p.r; ++j) acc = reduce_step(p.op, acc, to_float(base[j * p.inner]));
    if (p.op == ReduceOp::Mean) acc /= static_cast<float>(p.r);
    y[c] = from_float<T>(acc);
  }
}

int row_threads(int64_t n) {
  if (n >= 1024) return 256;
  if (n >= 256) return 128;
  return 64;
}

}  // namespace

cudaError_t launch_softmax(const SoftmaxParams& p, cudaStream_t stream) {
  if (p.outer * p.n * p.inner == 0) return cudaSuccess;
  if (p.inner == 1) {
    if (p.outer > 2147483647) return cudaErrorInvalidValue;
    const unsigned blocks = static_cast<unsigned>(p.outer);
    SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T,
                               (softmax_rows_kernel<T><<<blocks, row_threads(p.n), 0, stream>>>(p)));
  } else {
    SEQRUN_CUDA_FLOAT_DISPATCH(
        p.type, T, (softmax_columns_kernel<T><<<grid_for(p.outer * p.inner), kThreads, 0, stream>>>(p)));
  }
  return cudaGetLastError();
}

cudaError_t launch_norm(const NormParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.row_len == 0) return cudaSuccess;
  if (p.rows > 2147483647 || p.scale == nullptr) return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(p.rows);
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (norm_kernel<T><<<blocks, row_threads(p.row_len), 0, stream>>>(p)));
  return cudaGetLastError();
}

cudaError_t launch_reduce(const ReduceParams& p, cudaStream_t stream) {
  if (p.outer * p.inner == 0) return cudaSuccess;
  if (p.r <= 0) return cudaErrorInvalidValue;
  if (p.inner == 1) {
    SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T,
                               (reduce_rows_kernel<T><<<grid_for(p.outer * 32), kThreads, 0, stream>>>(p)));
  } else {
    SEQRUN_CUDA_FLOAT_DISPATCH(
        p.type, T, (reduce_columns_kernel<T><<<grid_for(p.outer * p.inner), kThreads, 0, stream>>>(p)));
  }
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
