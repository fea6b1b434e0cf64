// Tensor-core and asynchronous-copy primitives for the CUDA backend's f16/bf16 kernels (inline PTX, sm_80
// and later): packing two 16-bit values into one register, mma.sync m16n8k16 with f32 accumulation,
// ldmatrix (plain and transposed) from shared memory, cp.async 16-byte copies from global to shared
// memory with zero fill, and exp2 on the special-function unit.
//
// Fragment coordinates (PTX ISA, mma.m16n8k16; lane = 4 * g + t):
//   A (16x16): reg0 = (row g, cols 2t, 2t+1), reg1 = (row g+8, same cols), reg2 = (row g, cols 2t+8, 2t+9),
//              reg3 = (row g+8, cols 2t+8, 2t+9)
//   B (16x8):  reg0 = (rows k = 2t, 2t+1; col n = g), reg1 = (rows 2t+8, 2t+9; col g)
//   C (16x8):  c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g+8, cols 2t, 2t+1)
// ldmatrix.x4: lanes 8i..8i+7 give the addresses of the 8 rows (16 bytes each) of matrix i; register i of
// lane l receives row l/4, elements 2(l%4) and 2(l%4)+1 of matrix i (.trans: row 2(l%4) and 2(l%4)+1 of
// column l/4, i.e. of the transposed matrix).
#pragma once

#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

template <typename T>
__device__ __forceinline__ uint16_t bits_of(T x);
template <>
__device__ __forceinline__ uint16_t bits_of<__half>(__half x) {
  return __half_as_ushort(x);
}
template <>
__device__ __forceinline__ uint16_t bits_of<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat16_as_ushort(x);
}

// Two elements in one 32-bit register, the first in the low half (the mma fragment convention).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(T lo, T hi) {
  return static_cast<uint32_t>(bits_of<T>(lo)) | (static_cast<uint32_t>(bits_of<T>(hi)) << 16);
}
template <typename T>
__device__ __forceinline__ uint32_t pack_floats(float lo, float hi) {
  return pack_pair<T>(from_float<T>(lo), from_float<T>(hi));
}

// d += a · b for one m16n8k16 tile: a = 4 registers (16x16, row-major fragment), b = 2 registers
// (16x8, column-major fragment), d = 4 f32 accumulators. The last argument selects the element type.
__device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1, __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1,
                                          __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x on the special-function unit, denormal results flushed to zero (softmax probabilities that small
// are zero to f32 accumulation anyway); 2^-inf = 0.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 matrices of 16-bit elements from shared memory (see the lane mapping above).
__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}

// Copies 16 bytes from global `src` to shared `dst` asynchronously; with `valid` false it writes 16 zero
// bytes instead (and reads nothing; `src` must still be a valid address). Completes at cp_async_wait.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
// Closes the group of cp.async copies this thread issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most `kPending` of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

}  // namespace seqrun::backends::cuda
