// CUDA LinearAttention (ONNX 27), recurrent form: the state S [dk, dv] of each (batch, kv head) is
// updated token by token, in f32, with the update rules of the reference kernel:
//   linear       S = S + k vᵀ
//   gated        S = exp(g) ⊙ S + k vᵀ              (g per key channel or per head, log-space)
//   delta        S = S + β k (v − Sᵀk)ᵀ
//   gated_delta  the gate first, then the delta update
// and o_t = scale · q_tᵀ S_t for every query head of the group.
//
// Every column S[:, c] evolves independently of the others (each rule only mixes rows), so the
// parallel split is one thread per (batch, kv head, value column c), holding its column of dk floats
// in shared memory (one column per lane: conflict-free). The key, query, decay and beta values of a
// step are the same for every lane and come from global memory as broadcast loads. Latency-bound along
// the sequence (correct before fast: the chunkwise form is the fast one for long prefill).
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

constexpr int kColumnsPerBlock = 32;

template <typename T>
__global__ void linear_attention_recurrent_kernel(LinearAttentionParams p) {
  extern __shared__ float columns[];  // [dk][kColumnsPerBlock]
  const int lane = threadIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnsPerBlock + lane;
  const int64_t b = blockIdx.y / p.kv_heads, h = blockIdx.y % p.kv_heads;
  if (c >= p.value_size) return;  // no block-wide synchronization below: each thread owns its column
  const int64_t dk = p.key_size, dv = p.value_size, T_len = p.seq;
  const int64_t group = p.q_heads / p.kv_heads;
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  const T* decay = static_cast<const T*>(p.decay);
  const T* beta = static_cast<const T*>(p.beta);
  T* y = static_cast<T*>(p.y);
  float* s = columns + lane;  // s[r * kColumnsPerBlock] is S[r, c]

  const int64_t state_base = (b * p.kv_heads + h) * dk * dv + c;
  for (int64_t r = 0; r < dk; ++r) {
    s[r * kColumnsPerBlock] =
        p.past_state != nullptr ? to_float(static_cast<const T*>(p.past_state)[state_base + r * dv]) : 0.0f;
  }
  for (int64_t t = 0; t < T_len; ++t) {
    const int64_t token = b * T_len + t;
    const T* kt = k + (token * p.kv_heads + h) * dk;
    const float vc = to_float(v[(token * p.kv_heads + h) * dv + c]);
    if (p.gated) {
      const T* g = decay + token * p.decay_width;
      if (p.decay_width == p.kv_heads) {
        const float factor = expf(to_float(g[h]));
        for (int64_t r = 0; r < dk; ++r) s[r * kColumnsPerBlock] *= factor;
      } else {
        for (int64_t r = 0; r < dk; ++r) s[r * kColumnsPerBlock] *= expf(to_float(g[h * dk + r]));
      }
    }
    float update = vc;
    if (p.delta) {
      const float bt = to_float(beta[token * p.beta_width + (p.beta_width == 1 ? 0 : h)]);
      float retrieved = 0.0f;
      for (int64_t r = 0; r < dk; ++r) retrieved += s[r * kColumnsPerBlock] * to_float(kt[r]);
      update = bt * (vc - retrieved);
    }
    for (int64_t r = 0; r < dk; ++r) s[r * kColumnsPerBlock] += to_float(kt[r]) * update;
    for (int64_t g = 0; g < group; ++g) {
      const int64_t qh = h * group + g;
      const T* qt = q + (token * p.q_heads + qh) * dk;
      float acc = 0.0f;
      for (int64_t r = 0; r < dk; ++r) acc += to_float(qt[r]) * s[r * kColumnsPerBlock];
      y[(token * p.q_heads + qh) * dv + c] = from_float<T>(p.scale * acc);
    }
  }
  if (p.present != nullptr) {
    T* present = static_cast<T*>(p.present);
    for (int64_t r = 0; r < dk; ++r) present[state_base + r * dv] = from_float<T>(s[r * kColumnsPerBlock]);
  }
}

}  // namespace

cudaError_t launch_linear_attention(const LinearAttentionParams& p, cudaStream_t stream) {
  if (p.key_size < 1 || p.key_size > kLinearAttentionMaxKeySize || p.value_size < 1 || p.kv_heads < 1 ||
      p.q_heads % p.kv_heads != 0 || (p.gated && p.decay == nullptr) || (p.delta && p.beta == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (p.batch * p.kv_heads > 65535) return cudaErrorInvalidValue;
  if (p.batch == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((p.value_size + kColumnsPerBlock - 1) / kColumnsPerBlock),
                  static_cast<unsigned>(p.batch * p.kv_heads));
  const size_t smem = static_cast<size_t>(p.key_size) * kColumnsPerBlock * sizeof(float);
  SEQRUN_CUDA_FLOAT_DISPATCH(
      p.type, T, (linear_attention_recurrent_kernel<T><<<grid, kColumnsPerBlock, smem, stream>>>(p)));
  return cudaGetLastError();
}

}  // namespace seqrun::backends::cuda
