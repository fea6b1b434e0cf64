// CUDA SelectiveScan (Mamba's selective scan, semantics in ir/ops/ssm.cpp): one pass over u, delta,
// Bmat, Cmat and z, the state h [N] of every (batch, channel) in registers, f32 math on f32/f16/bf16
// storage. L = 1 with h0 in and h_out out is the decode step.
//
// Parallel split: a block of 128 threads owns kChannels = 128 / kLanes channels of one batch (all in
// one group of a grouped Bmat/Cmat); the kLanes lanes of a channel each hold kStates entries of its
// state (state n = lane + s * kLanes). Time runs in rounds of kChunk steps:
//   1. stage: the block writes dt = softplus(delta + bias), dt·u and u of its channels, and Bmat/Cmat of
//      the round (shared by all its channels), into shared memory — loaded into registers during the
//      previous round's scan, coalesced along the time axis;
//   2. scan: each lane steps its states through the round and stores its part of the readout Σ C·h;
//   3. output: the block sums the parts of each (channel, step), adds D·u, applies the SiLU(z) gate and
//      writes y coalesced along time.
// Latency-bound along L (a dependent chain of kChunk FMAs per round); memory traffic is one read of
// each input and one write of y.
#include "backends/cuda/device_util.cuh"

namespace seqrun::backends::cuda {

namespace {

constexpr int kScanThreads = 128;
constexpr int kChunk = 32;  // time steps per round
constexpr float kScanLog2e = 1.4426950408889634f;

// PyTorch's softplus (beta 1, threshold 20), as the reference kernel.
__device__ __forceinline__ float softplus(float x) {
  return x > 20.0f ? x : log1pf(expf(x));
}

template <typename T, int kLanes, int kStates>
__global__ void __launch_bounds__(kScanThreads) selective_scan_kernel(SelectiveScanParams p) {
  constexpr int kChannels = kScanThreads / kLanes;            // channels per block
  constexpr int kMaxN = kLanes * kStates;                     // states a block can hold
  constexpr int kRowPer = kChannels * kChunk / kScanThreads;  // (channel, step) elements per thread
  constexpr int kStatePer = kMaxN * kChunk / kScanThreads;    // (state, step) elements per thread
  static_assert(kRowPer * kScanThreads == kChannels * kChunk, "staging split");
  static_assert(kStatePer * kScanThreads == kMaxN * kChunk, "staging split");
  // Rows padded by one word: the staging writes (consecutive steps) and the scan reads (consecutive
  // states, or one row per channel) fall in different banks.
  __shared__ float dt_s[kChannels][kChunk + 1];
  __shared__ float dtu_s[kChannels][kChunk + 1];
  __shared__ float u_s[kChannels][kChunk + 1];
  __shared__ float b_s[kChunk][kMaxN + 1];
  __shared__ float c_s[kChunk][kMaxN + 1];
  __shared__ float part_s[kChunk][kScanThreads + 1];
  __shared__ float bias_s[kChannels];
  __shared__ float skip_s[kChannels];

  const int64_t L = p.length, N = p.state_size;
  const int64_t b = blockIdx.y;
  const int64_t per_group = p.channels / p.groups;
  const int64_t blocks_per_group = (per_group + kChannels - 1) / kChannels;
  const int64_t g = blockIdx.x / blocks_per_group;
  const int64_t c0 = (blockIdx.x % blocks_per_group) * kChannels;  // first channel inside the group
  const int64_t d0 = g * per_group + c0;                           // first channel of the block
  const int valid_channels = static_cast<int>(per_group - c0 < kChannels ? per_group - c0 : kChannels);

  const T* u = static_cast<const T*>(p.u) + (b * p.channels + d0) * L;  // row of channel d0
  const T* delta = static_cast<const T*>(p.delta) + (b * p.channels + d0) * L;
  const T* bm = static_cast<const T*>(p.bmat) + (b * p.groups + g) * N * L;
  const T* cm = static_cast<const T*>(p.cmat) + (b * p.groups + g) * N * L;
  const T* z = p.z != nullptr ? static_cast<const T*>(p.z) + (b * p.channels + d0) * L : nullptr;
  T* y = static_cast<T*>(p.y) + (b * p.channels + d0) * L;

  if (threadIdx.x < kChannels) {
    const int cc = threadIdx.x;
    const bool ok = cc < valid_channels;
    bias_s[cc] = ok && p.delta_bias != nullptr ? load_as_float(p.delta_bias, p.bias_type, d0 + cc) : 0.0f;
    skip_s[cc] = ok && p.dskip != nullptr ? load_as_float(p.dskip, p.dskip_type, d0 + cc) : 0.0f;
  }

  // This lane's channel and states.
  const int c = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const bool channel_ok = c < valid_channels;
  const int64_t d = d0 + c;
  float h[kStates], a2[kStates];  // state, A·log2(e)
#pragma unroll
  for (int s = 0; s < kStates; ++s) {
    const int64_t n = lane + s * kLanes;
    const bool ok = channel_ok && n < N;
    a2[s] = ok ? load_as_float(p.a, p.a_type, d * N + n) * kScanLog2e : 0.0f;
    h[s] = ok && p.h0 != nullptr ? load_as_float(p.h0, p.h0_type, (b * p.channels + d) * N + n) : 0.0f;
  }

  // The next round's inputs, loaded while the current round is scanned. Element k of a thread is
  // idx = threadIdx.x + k * kScanThreads of the round's [channel][step] or [state][step] tile.
  float r_delta[kRowPer], r_u[kRowPer], r_b[kStatePer], r_c[kStatePer];
  auto load_round = [&](int64_t t0) {
#pragma unroll
    for (int k = 0; k < kRowPer; ++k) {
      const int idx = threadIdx.x + k * kScanThreads, cc = idx / kChunk;
      const int64_t t = t0 + idx % kChunk;
      const bool ok = cc < valid_channels && t < L;
      r_delta[k] = ok ? to_float(delta[cc * L + t]) : 0.0f;
      r_u[k] = ok ? to_float(u[cc * L + t]) : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kStatePer; ++k) {
      const int idx = threadIdx.x + k * kScanThreads, n = idx / kChunk;
      const int64_t t = t0 + idx % kChunk;
      const bool ok = n < N && t < L;
      r_b[k] = ok ? to_float(bm[n * L + t]) : 0.0f;
      r_c[k] = ok ? to_float(cm[n * L + t]) : 0.0f;
    }
  };
  // Invalid (channel, step) elements get dt = 0: their state stays as it is and their output is not
  // written; states n >= N get B = C = 0 and A = 0, so they stay 0 and add nothing.
  auto stage_round = [&](int64_t t0) {
#pragma unroll
    for (int k = 0; k < kRowPer; ++k) {
      const int idx = threadIdx.x + k * kScanThreads, cc = idx / kChunk, tt = idx % kChunk;
      const bool ok = cc < valid_channels && t0 + tt < L;
      float dt = r_delta[k] + bias_s[cc];
      if (p.delta_softplus) dt = softplus(dt);
      dt = ok ? dt : 0.0f;
      dt_s[cc][tt] = dt;
      dtu_s[cc][tt] = dt * r_u[k];
      u_s[cc][tt] = r_u[k];
    }
#pragma unroll
    for (int k = 0; k < kStatePer; ++k) {
      const int idx = threadIdx.x + k * kScanThreads, n = idx / kChunk, tt = idx % kChunk;
      b_s[tt][n] = r_b[k];
      c_s[tt][n] = r_c[k];
    }
  };

  if (L > 0) load_round(0);
  for (int64_t t0 = 0; t0 < L; t0 += kChunk) {
    __syncthreads();  // the previous round's output phase is done with the shared tiles (and bias_s is set)
    stage_round(t0);
    __syncthreads();
    if (t0 + kChunk < L) load_round(t0 + kChunk);
    const int steps = static_cast<int>(L - t0 < kChunk ? L - t0 : kChunk);

#pragma unroll 4
    for (int tt = 0; tt < steps; ++tt) {
      const float dt = dt_s[c][tt], dtu = dtu_s[c][tt];
      float part = 0.0f;
#pragma unroll
      for (int s = 0; s < kStates; ++s) {
        const int n = lane + s * kLanes;
        h[s] = exp2f(dt * a2[s]) * h[s] + dtu * b_s[tt][n];
        part += c_s[tt][n] * h[s];
      }
      part_s[tt][threadIdx.x] = part;
    }
    __syncthreads();

#pragma unroll
    for (int k = 0; k < kRowPer; ++k) {
      const int idx = threadIdx.x + k * kScanThreads, cc = idx / kChunk, tt = idx % kChunk;
      const int64_t t = t0 + tt;
      if (cc >= valid_channels || t >= L) continue;
      float out = 0.0f;
#pragma unroll
      for (int l = 0; l < kLanes; ++l) out += part_s[tt][cc * kLanes + l];
      out += skip_s[cc] * u_s[cc][tt];
      if (z != nullptr) {
        const float zv = to_float(z[cc * L + t]);
        out *= zv / (1.0f + expf(-zv));
      }
      y[cc * L + t] = from_float<T>(out);
    }
  }

  if (p.h_out != nullptr && channel_ok) {
    T* h_out = static_cast<T*>(p.h_out) + (b * p.channels + d) * N;
#pragma unroll
    for (int s = 0; s < kStates; ++s) {
      const int64_t n = lane + s * kLanes;
      if (n < N) h_out[n] = from_float<T>(h[s]);
    }
  }
}

template <typename T, int kLanes, int kStates>
cudaError_t launch_scan_typed(const SelectiveScanParams& p, cudaStream_t stream) {
  constexpr int kChannels = kScanThreads / kLanes;
  const int64_t per_group = p.channels / p.groups;
  const int64_t blocks = p.groups * ((per_group + kChannels - 1) / kChannels);
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(p.batch));
  selective_scan_kernel<T, kLanes, kStates><<<grid, kScanThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_scan_for_state(const SelectiveScanParams& p, cudaStream_t stream) {
  if (p.state_size <= 8) return launch_scan_typed<T, 8, 1>(p, stream);
  if (p.state_size <= 16) return launch_scan_typed<T, 16, 1>(p, stream);
  if (p.state_size <= 32) return launch_scan_typed<T, 16, 2>(p, stream);
  return launch_scan_typed<T, 16, 4>(p, stream);
}

}  // namespace

cudaError_t launch_selective_scan(const SelectiveScanParams& p, cudaStream_t stream) {
  if (p.batch < 0 || p.channels < 0 || p.length < 0 || p.state_size < 1 ||
      p.state_size > kSelectiveScanMaxState || p.groups < 1 || p.channels % p.groups != 0 ||
      p.batch > 65535) {
    return cudaErrorInvalidValue;
  }
  if (p.batch == 0 || p.channels == 0) return cudaSuccess;
  if (p.a == nullptr || (p.length > 0 && (p.u == nullptr || p.delta == nullptr || p.bmat == nullptr ||
                                          p.cmat == nullptr || p.y == nullptr))) {
    return cudaErrorInvalidValue;
  }
  cudaError_t err = cudaSuccess;
  SEQRUN_CUDA_FLOAT_DISPATCH(p.type, T, err = launch_scan_for_state<T>(p, stream));
  return err;
}

}  // namespace seqrun::backends::cuda
