// Device helpers shared by the CUDA backend's .cu files: f32 <-> storage conversions, the dtype
// dispatch of launchers, grid sizing for grid-stride loops, warp and block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/cuda_kernels.h"

namespace seqrun::backends::cuda {

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Loads element i of a float tensor of run-time type `type` (masks, caches of another dtype).
__device__ __forceinline__ float load_as_float(const void* p, ElemType type, int64_t i) {
  switch (type) {
    case ElemType::f32:
      return static_cast<const float*>(p)[i];
    case ElemType::f16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case ElemType::bf16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case ElemType::i64:
      return static_cast<float>(static_cast<const int64_t*>(p)[i]);
    case ElemType::i32:
      return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case ElemType::u8:
      return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
  }
  return 0.0f;
}

// Runs `body` with T bound to the C++ storage type of a float ElemType; other types return
// cudaErrorInvalidValue from the enclosing launcher.
#define SEQRUN_CUDA_FLOAT_DISPATCH(type, T, body) \
  switch (type) {                                 \
    case ElemType::f32: {                         \
      using T = float;                            \
      body;                                       \
      break;                                      \
    }                                             \
    case ElemType::f16: {                         \
      using T = __half;                           \
      body;                                       \
      break;                                      \
    }                                             \
    case ElemType::bf16: {                        \
      using T = __nv_bfloat16;                    \
      body;                                       \
      break;                                      \
    }                                             \
    default:                                      \
      return cudaErrorInvalidValue;               \
  }

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements (at least 1; capped, the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65536) blocks = 65536;
  return static_cast<unsigned>(blocks);
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
// Maximum that propagates NaN (a NaN anywhere makes the result NaN).
__device__ __forceinline__ float max_nan(float a, float b) {
  return (a != a || b != b) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats; the function syncs before returning so scratch can be reused.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < warps ? scratch[lane] : 0.0f;
  total = warp_sum(total);
  __syncthreads();
  return total;
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < warps ? scratch[lane] : -INFINITY;
  total = warp_max(total);
  __syncthreads();
  return total;
}

// Records a bad-data report. The flag is mapped host memory, where device atomics need not be
// supported: plain volatile stores, and when several kernels race any one of their ids is kept.
__device__ __forceinline__ void report_error(const ErrorSink& sink) {
  if (sink.flag == nullptr) return;
  volatile int* flag = sink.flag;
  if (*flag == 0) *flag = sink.kernel_id;
}

}  // namespace seqrun::backends::cuda
