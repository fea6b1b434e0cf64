// CUDA elementwise kernels: unary math and activations, broadcasting binary ops, Where, SwiGLU, float
// casts and the bias + activation epilogue of matrix products.
//
// Layout: flat contiguous tensors; broadcasting maps each output index to operand offsets through the
// output's dims and per-operand strides (BroadcastMap). Parallel split: one thread per output element,
// grid-stride loops. Memory-bound; values are computed in f32 whatever the storage type.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__device__ float apply_unary(UnaryOp op, float x, float alpha, float beta) {
  switch (op) {
    case UnaryOp::Identity:
      return x;
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Abs:
      return fabsf(x);
    case UnaryOp::Relu:
      return x < 0.0f ? 0.0f : x;  // NaN passes through, like the reference
    case UnaryOp::Exp:
      return expf(x);
    case UnaryOp::Log:
      return logf(x);
    case UnaryOp::Sqrt:
      return sqrtf(x);
    case UnaryOp::Rsqrt:
      return 1.0f / sqrtf(x);
    case UnaryOp::Reciprocal:
      return 1.0f / x;
    case UnaryOp::Sigmoid:
      return sigmoidf(x);
    case UnaryOp::Tanh:
      return tanhf(x);
    case UnaryOp::Softplus:
      return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
    case UnaryOp::Softsign:
      return x / (1.0f + fabsf(x));
    case UnaryOp::Gelu:
      return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case UnaryOp::GeluTanh: {
      const float k = 0.79788456080286535588f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case UnaryOp::Erf:
      return erff(x);
    case UnaryOp::Sin:
      return sinf(x);
    case UnaryOp::Cos:
      return cosf(x);
    case UnaryOp::Silu:
      return x * sigmoidf(x);
    case UnaryOp::Swish:
      return x * sigmoidf(alpha * x);
    case UnaryOp::Elu:
      return x >= 0.0f ? x : alpha * expm1f(x);
    case UnaryOp::LeakyRelu:
      return x >= 0.0f ? x : alpha * x;
    case UnaryOp::HardSigmoid:
      return fmaxf(0.0f, fminf(1.0f, alpha * x + beta));
    case UnaryOp::HardSwish:
      return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
    case UnaryOp::Floor:
      return floorf(x);
    case UnaryOp::Ceil:
      return ceilf(x);
  }
  return x;
}

__device__ __forceinline__ float apply_activation(Activation act, float x) {
  switch (act) {
    case Activation::None:
      return x;
    case Activation::Relu:
      return x < 0.0f ? 0.0f : x;
    case Activation::Gelu:
      return apply_unary(UnaryOp::Gelu, x, 0.0f, 0.0f);
    case Activation::GeluTanh:
      return apply_unary(UnaryOp::GeluTanh, x, 0.0f, 0.0f);
    case Activation::Silu:
      return x * sigmoidf(x);
    case Activation::Sigmoid:
      return sigmoidf(x);
    case Activation::Tanh:
      return tanhf(x);
  }
  return x;
}

__device__ __forceinline__ float apply_binary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
    case BinaryOp::Pow:
      return powf(a, b);
    case BinaryOp::Max:
      return max_nan(a, b);
    case BinaryOp::Min:
      return (a != a || b != b) ? __int_as_float(0x7fc00000) : fminf(a, b);
  }
  return a;
}

// Offsets of output element i in each of the first `operands` operands.
template <int kOperands>
__device__ __forceinline__ void broadcast_offsets(const BroadcastMap& m, int64_t i, int64_t* off) {
#pragma unroll
  for (int k = 0; k < kOperands; ++k) off[k] = 0;
  for (int d = m.rank - 1; d >= 0; --d) {
    const int64_t dim = m.out_dims[d];
    const int64_t c = i % dim;
    i /= dim;
#pragma unroll
    for (int k = 0; k < kOperands; ++k) off[k] += c * m.strides[k][d];
  }
}

template <typename T>
__global__ void unary_kernel(UnaryParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  for (int64_t i = global_thread(); i < p.n; i += grid_stride()) {
    y[i] = from_float<T>(apply_unary(p.op, to_float(x[i]), p.alpha, p.beta));
  }
}

template <typename T>
__global__ void binary_kernel(BinaryParams p) {
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  for (int64_t i = global_thread(); i < p.n; i += grid_stride()) {
    int64_t off[2] = {i, i};
    if (!p.contiguous) broadcast_offsets<2>(p.map, i, off);
    y[i] = from_float<T>(apply_binary(p.op, to_float(a[off[0]]), to_float(b[off[1]])));
  }
}

template <typename Word>
__global__ void where_kernel(WhereParams p) {
  const Word* x = static_cast<const Word*>(p.x);
  const Word* y = static_cast<const Word*>(p.y);
  Word* out = static_cast<Word*>(p.out);
  for (int64_t i = global_thread(); i < p.n; i += grid_stride()) {
    int64_t off[3];
    broadcast_offsets<3>(p.map, i, off);
    out[i] = p.cond[off[0]] != 0 ? x[off[1]] : y[off[2]];
  }
}

template <typename T>
__global__ void swiglu_kernel(SwigluParams p) {
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  for (int64_t i = global_thread(); i < p.n; i += grid_stride()) {
    const float av = to_float(a[i]);
    y[i] = from_float<T>(av * sigmoidf(p.alpha * av) * to_float(b[i]));
  }
}

template <typename From, typename To>
__global__ void cast_kernel(int64_t n, const From* x, To* y) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) y[i] = from_float<To>(to_float(x[i]));
}

template <typename T>
__global__ void bias_activation_kernel(BiasActivationParams p) {
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.y);
  const int64_t n = p.rows * p.cols;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    float v = to_float(y[i]);
    if (bias != nullptr) v += to_float(bias[i % p.cols]);
    y[i] = from_float<T>(apply_activation(p.act, v));
  }
}

template <typename From>
cudaError_t launch_cast_from(const CastParams& p, cudaStream_t stream) {
  const From* x = static_cast<const From*>(p.x);
  SEQRUN_CUDA_FLOAT_DISPATCH(
      p.to, To,
      (cast_kernel<From, To><<<grid_for(p.n), kThreads, 0, stream>>>(p.n, x, static_cast<To*>(p.y))));
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_unary(const UnaryParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (unary_kernel<T><<<grid_for(p.n), kThreads, 0, stream>>>(p)));
  return cudaGetLastError();
}

cudaError_t launch_binary(const BinaryParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  if (!p.contiguous && (p.map.rank < 1 || p.map.rank > kMaxRank)) return cudaErrorInvalidValue;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (binary_kernel<T><<<grid_for(p.n), kThreads, 0, stream>>>(p)));
  return cudaGetLastError();
}

cudaError_t launch_where(const WhereParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  if (p.map.rank < 1 || p.map.rank > kMaxRank) return cudaErrorInvalidValue;
  switch (p.elem_size) {
    case 1:
      where_kernel<uint8_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 2:
      where_kernel<uint16_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 4:
      where_kernel<uint32_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    case 8:
      where_kernel<uint64_t><<<grid_for(p.n), kThreads, 0, stream>>>(p);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t launch_swiglu(const SwigluParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (swiglu_kernel<T><<<grid_for(p.n), kThreads, 0, stream>>>(p)));
  return cudaGetLastError();
}

cudaError_t launch_cast(const CastParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  switch (p.from) {
    case ElemType::f32:
      return launch_cast_from<float>(p, stream);
    case ElemType::f16:
      return launch_cast_from<__half>(p, stream);
    case ElemType::bf16:
      return launch_cast_from<__nv_bfloat16>(p, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t launch_bias_activation(const BiasActivationParams& p, cudaStream_t stream) {
  const int64_t n = p.rows * p.cols;
  if (n == 0) return cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, (bias_activation_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(p)));
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
