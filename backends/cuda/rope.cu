// CUDA RotaryEmbedding (ONNX 23): rotates the first rotary_dim channels of every head by the
// (cos, sin) cache row of its token and copies the other channels.
//
// Layout: x [B, H, S, D] or packed [B, S, H*D]; caches [rows, width] indexed by position_ids [B, S], or
// per token (row b*S + s) without them. Parallel split: one thread per (b, s, h, item), where an item is
// a rotated pair (half the rotary dims) or a copied channel. Memory-bound.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

template <typename T>
__global__ void rope_kernel(RopeParams p) {
  const T* x = static_cast<const T*>(p.x);
  const T* cos_cache = static_cast<const T*>(p.cos_cache);
  const T* sin_cache = static_cast<const T*>(p.sin_cache);
  T* y = static_cast<T*>(p.y);
  const int64_t half = p.rotary_dim / 2;
  const int64_t items = half + (p.head_size - p.rotary_dim);  // per head
  const int64_t n = p.batch * p.seq * p.heads * items;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t item = i % items;
    const int64_t h = (i / items) % p.heads;
    const int64_t s = (i / (items * p.heads)) % p.seq;
    const int64_t b = i / (items * p.heads * p.seq);
    const int64_t off = p.packed ? (b * p.seq + s) * p.heads * p.head_size + h * p.head_size
                                 : ((b * p.heads + h) * p.seq + s) * p.head_size;
    if (item >= half) {  // a channel past the rotary dims: copied
      const int64_t c = p.rotary_dim + (item - half);
      y[off + c] = x[off + c];
      continue;
    }
    int64_t row = b * p.seq + s;
    if (p.positions != nullptr) {
      row = p.positions_i64 ? static_cast<const int64_t*>(p.positions)[b * p.seq + s]
                            : static_cast<int64_t>(static_cast<const int32_t*>(p.positions)[b * p.seq + s]);
    }
    const int64_t i1 = p.interleaved ? 2 * item : item;
    const int64_t i2 = p.interleaved ? 2 * item + 1 : item + half;
    if (row < 0 || row >= p.cache_rows) {
      y[off + i1] = from_float<T>(0.0f);
      y[off + i2] = from_float<T>(0.0f);
      report_error(p.sink);
      continue;
    }
    const float c = to_float(cos_cache[row * p.cache_width + item]);
    const float sn = to_float(sin_cache[row * p.cache_width + item]);
    const float x1 = to_float(x[off + i1]), x2 = to_float(x[off + i2]);
    y[off + i1] = from_float<T>(c * x1 - sn * x2);
    y[off + i2] = from_float<T>(sn * x1 + c * x2);
  }
}

}  // namespace

cudaError_t launch_rope(const RopeParams& p, cudaStream_t stream) {
  if (p.rotary_dim % 2 != 0 || p.rotary_dim > p.head_size || p.cache_width < p.rotary_dim / 2) {
    return cudaErrorInvalidValue;
  }
  const int64_t n = p.batch * p.seq * p.heads * (p.rotary_dim / 2 + p.head_size - p.rotary_dim);
  if (n == 0) return cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (rope_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(p)));
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
