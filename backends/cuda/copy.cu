// CUDA strided copy: the one kernel behind Slice, Split and Concat (copy_ops.cpp).
//
// Copies whole 1/2/4/8-byte elements between two strided views of the same index space. Parallel split: one
// thread per element (grid-stride), the index decomposed over the dims from the last one, so consecutive
// threads touch consecutive elements of the innermost dim on both sides when it is contiguous (the common
// case: a slice or concat on an outer axis). Memory-bound.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

template <typename Word>
__global__ void strided_copy_kernel(StridedCopyParams p) {
  const Word* src = static_cast<const Word*>(p.src);
  Word* dst = static_cast<Word*>(p.dst);
  for (int64_t i = global_thread(); i < p.n; i += grid_stride()) {
    int64_t rest = i, from = p.src_offset, to = p.dst_offset;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t c = rest % p.dims[d];
      rest /= p.dims[d];
      from += c * p.src_strides[d];
      to += c * p.dst_strides[d];
    }
    dst[to] = src[from];
  }
}

}  // namespace

cudaError_t launch_strided_copy(const StridedCopyParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  if (p.rank < 1 || p.rank > kMaxRank) return cudaErrorInvalidValue;
  switch (p.elem_size) {
    case 1:
      strided_copy_kernel<uint8_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 2:
      strided_copy_kernel<uint16_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 4:
      strided_copy_kernel<uint32_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 8:
      strided_copy_kernel<uint64_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
