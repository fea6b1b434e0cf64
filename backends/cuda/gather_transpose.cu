// CUDA data-movement kernels: Gather along one axis and Transpose (any permutation up to rank 8).
//
// Both copy whole elements as 1/2/4/8-byte words, so they serve every dtype. Parallel split: one thread
// per output element (grid-stride). Memory-bound; Gather reads are coalesced along the inner dims,
// Transpose writes are coalesced and its reads follow the permuted strides.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

template <typename Word>
__global__ void gather_kernel(GatherParams p) {
  const Word* data = static_cast<const Word*>(p.data);
  Word* y = static_cast<Word*>(p.y);
  const int64_t n = p.outer * p.num_indices * p.inner;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t in = i % p.inner;
    const int64_t k = (i / p.inner) % p.num_indices;
    const int64_t o = i / (p.inner * p.num_indices);
    int64_t index = p.indices_i64 ? static_cast<const int64_t*>(p.indices)[k]
                                  : static_cast<int64_t>(static_cast<const int32_t*>(p.indices)[k]);
    if (index < 0) index += p.axis_dim;
    if (index < 0 || index >= p.axis_dim) {
      y[i] = Word(0);
      report_error(p.sink);
      continue;
    }
    y[i] = data[(o * p.axis_dim + index) * p.inner + in];
  }
}

template <typename Word>
__global__ void transpose_kernel(TransposeParams p) {
  const Word* x = static_cast<const Word*>(p.x);
  Word* y = static_cast<Word*>(p.y);
  for (int64_t i = global_thread(); i < p.n; i += grid_stride()) {
    int64_t rest = i, off = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t c = rest % p.out_dims[d];
      rest /= p.out_dims[d];
      off += c * p.in_strides[d];
    }
    y[i] = x[off];
  }
}

}  // namespace

cudaError_t launch_gather(const GatherParams& p, cudaStream_t stream) {
  const int64_t n = p.outer * p.num_indices * p.inner;
  if (n == 0) return cudaSuccess;
  switch (p.elem_size) {
    case 1:
      gather_kernel<uint8_t><<<grid_for(n), kThreads, 0, stream>>>(p);
      break;
    case 2:
      gather_kernel<uint16_t><<<grid_for(n), kThreads, 0, stream>>>(p);
      break;
    case 4:
      gather_kernel<uint32_t><<<grid_for(n), kThreads, 0, stream>>>(p);
      break;
    case 8:
      gather_kernel<uint64_t><<<grid_for(n), kThreads, 0, stream>>>(p);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t launch_transpose(const TransposeParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  if (p.rank < 1 || p.rank > kMaxRank) return cudaErrorInvalidValue;
  switch (p.elem_size) {
    case 1:
      transpose_kernel<uint8_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 2:
      transpose_kernel<uint16_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 4:
      transpose_kernel<uint32_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 8:
      transpose_kernel<uint64_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
