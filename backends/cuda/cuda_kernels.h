// The CUDA backend's device launchers: one plain parameter struct and one launch function per kernel
// family.
//
// This header is the seam between the two compilers: the .cu files (nvcc) define the kernels and the
// launchers, the *_ops.cpp files (g++) define the Kernel classes that fill the structs at plan time and
// call the launchers at run time. It therefore includes nothing of seqrun (whose headers use fmt) and
// only the CUDA runtime API. Every launcher enqueues work on `stream`, never synchronizes, never
// allocates, and returns the launch's cudaError_t (cudaErrorInvalidValue for a parameter it does not
// handle); errors inside a running kernel surface at the backend's next synchronization.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace seqrun::backends::cuda {

// Element types as the kernels see them; u8 also stores bool.
enum class ElemType : int32_t { f32 = 0, f16 = 1, bf16 = 2, i64 = 3, i32 = 4, u8 = 5 };

constexpr int kMaxRank = 8;

// Where a kernel reports bad data it cannot turn into a Status itself (an index out of range): it stores
// its kernel id in *flag (the first report wins) and the backend turns that into an error naming the node
// at its next synchronization. `flag` is host memory mapped into the device.
struct ErrorSink {
  int* flag = nullptr;
  int32_t kernel_id = 0;
};

// ---- elementwise.cu ----------------------------------------------------------------------------------

enum class UnaryOp : int32_t {
  Identity,
  Neg,
  Abs,
  Relu,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Reciprocal,
  Sigmoid,
  Tanh,
  Softplus,
  Softsign,
  Gelu,
  GeluTanh,
  Erf,
  Sin,
  Cos,
  Silu,
  Swish,
  Elu,
  LeakyRelu,
  HardSigmoid,
  HardSwish,
  Floor,
  Ceil,
};

// y[i] = op(x[i]) for float types; y may be x.
struct UnaryParams {
  ElemType type = ElemType::f32;
  UnaryOp op = UnaryOp::Identity;
  float alpha = 0.0f;
  float beta = 0.0f;
  int64_t n = 0;
  const void* x = nullptr;
  void* y = nullptr;
};
cudaError_t launch_unary(const UnaryParams& p, cudaStream_t stream);

enum class BinaryOp : int32_t { Add, Sub, Mul, Div, Pow, Max, Min };

// Output element index -> operand element offsets: the output's dims, and for each operand (up to 3) the
// element stride of every output dim in that operand (0 where the operand broadcasts).
struct BroadcastMap {
  int32_t rank = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};
};

// y = a op b with numpy broadcasting, float types. `contiguous`: both operands have the output's shape.
struct BinaryParams {
  ElemType type = ElemType::f32;
  BinaryOp op = BinaryOp::Add;
  int64_t n = 0;
  bool contiguous = false;
  BroadcastMap map;
  const void* a = nullptr;
  const void* b = nullptr;
  void* y = nullptr;
};
cudaError_t launch_binary(const BinaryParams& p, cudaStream_t stream);

// out = cond ? x : y with broadcasting (operands 0, 1, 2 of the map); any element size 1, 2, 4 or 8.
struct WhereParams {
  int32_t elem_size = 4;
  int64_t n = 0;
  BroadcastMap map;
  const uint8_t* cond = nullptr;
  const void* x = nullptr;
  const void* y = nullptr;
  void* out = nullptr;
};
cudaError_t launch_where(const WhereParams& p, cudaStream_t stream);

// y = a * sigmoid(alpha * a) * b (SwiGLU), a and b of one shape.
struct SwigluParams {
  ElemType type = ElemType::f32;
  float alpha = 1.0f;
  int64_t n = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* y = nullptr;
};
cudaError_t launch_swiglu(const SwigluParams& p, cudaStream_t stream);

// Float-to-float conversion (f32, f16, bf16), round to nearest even.
struct CastParams {
  ElemType from = ElemType::f32;
  ElemType to = ElemType::f32;
  int64_t n = 0;
  const void* x = nullptr;
  void* y = nullptr;
};
cudaError_t launch_cast(const CastParams& p, cudaStream_t stream);

// The epilogue of a matrix product when cuBLASLt cannot fuse it: y[r, c] = act(y[r, c] + bias[c]).
enum class Activation : int32_t { None, Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh };
struct BiasActivationParams {
  ElemType type = ElemType::f32;
  Activation act = Activation::None;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* bias = nullptr;  // [cols], may be null
  void* y = nullptr;
};
cudaError_t launch_bias_activation(const BiasActivationParams& p, cudaStream_t stream);

// ---- softmax_norm.cu ---------------------------------------------------------------------------------

// Softmax / LogSoftmax over the middle dim of x viewed as [outer, n, inner].
struct SoftmaxParams {
  ElemType type = ElemType::f32;
  bool log = false;
  int64_t outer = 0;
  int64_t n = 0;
  int64_t inner = 0;
  const void* x = nullptr;
  void* y = nullptr;
};
cudaError_t launch_softmax(const SoftmaxParams& p, cudaStream_t stream);

// LayerNormalization (rms = false) or RMSNormalization over rows of `row_len` contiguous elements;
// scale and bias have `row_len` elements; mean / inv_std (f32, may be null) get one value per row.
struct NormParams {
  ElemType type = ElemType::f32;
  bool rms = false;
  float epsilon = 1e-5f;
  int64_t rows = 0;
  int64_t row_len = 0;
  const void* x = nullptr;
  const void* scale = nullptr;
  const void* bias = nullptr;
  void* y = nullptr;
  float* mean = nullptr;
  float* inv_std = nullptr;
};
cudaError_t launch_norm(const NormParams& p, cudaStream_t stream);

enum class ReduceOp : int32_t { Sum, Mean, Max };
// Reduces the middle dim of x viewed as [outer, r, inner] into y [outer, inner].
struct ReduceParams {
  ElemType type = ElemType::f32;
  ReduceOp op = ReduceOp::Sum;
  int64_t outer = 0;
  int64_t r = 0;
  int64_t inner = 0;
  const void* x = nullptr;
  void* y = nullptr;
};
cudaError_t launch_reduce(const ReduceParams& p, cudaStream_t stream);

// ---- gather_transpose.cu -----------------------------------------------------------------------------

// y[o, i, in] = data[o, indices[i], in] (data viewed as [outer, axis_dim, inner]); negative indices count
// from the end; an index out of range writes zeros and reports to `sink`.
struct GatherParams {
  int32_t elem_size = 4;
  int64_t outer = 0;
  int64_t axis_dim = 0;
  int64_t inner = 0;
  int64_t num_indices = 0;
  bool indices_i64 = true;
  const void* indices = nullptr;
  const void* data = nullptr;
  void* y = nullptr;
  ErrorSink sink;
};
cudaError_t launch_gather(const GatherParams& p, cudaStream_t stream);

// y = x with permuted dims: output dim d has size out_dims[d] and input element stride in_strides[d].
struct TransposeParams {
  int32_t elem_size = 4;
  int32_t rank = 0;
  int64_t n = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t in_strides[kMaxRank] = {};
  const void* x = nullptr;
  void* y = nullptr;
};
cudaError_t launch_transpose(const TransposeParams& p, cudaStream_t stream);

// ---- rope.cu -----------------------------------------------------------------------------------------

// RotaryEmbedding (ONNX 23): x [B, H, S, D] or packed [B, S, H*D]; the first rotary_dim channels of each
// head rotate by the cache row of the token (positions[b, s] or, without positions, row b*S + s).
struct RopeParams {
  ElemType type = ElemType::f32;  // x, y and the caches
  int64_t batch = 0;
  int64_t heads = 0;
  int64_t seq = 0;
  int64_t head_size = 0;
  int64_t rotary_dim = 0;
  bool packed = false;
  bool interleaved = false;
  int64_t cache_width = 0;  // elements per cache row (>= rotary_dim / 2)
  int64_t cache_rows = 0;   // rows in the caches (max position + 1 with positions)
  const void* x = nullptr;
  const void* cos_cache = nullptr;
  const void* sin_cache = nullptr;
  const void* positions = nullptr;  // [B, S] i64 or i32, may be null
  bool positions_i64 = true;
  void* y = nullptr;
  ErrorSink sink;
};
cudaError_t launch_rope(const RopeParams& p, cudaStream_t stream);

// ---- attention.cu ------------------------------------------------------------------------------------

// ONNX Attention (23/24) without the qk output: Q [B, Hq, Sq, D] or packed [B, Sq, Hq*D]; K/V new tokens
// in the same layout as Q (Hkv heads), optional past_k/past_v [B, Hkv, P, D|Dv] in front of them; Y like Q
// with Dv; present_k/present_v [B, Hkv, P+Skv, D|Dv] when not null. Scores are (q·k)*scale, then softcap,
// then the additive bias (mask, causal frontier, nonpad padding); rows masked everywhere give zeros.
struct AttentionParams {
  ElemType type = ElemType::f32;  // Q, K, V, past, Y, present
  int64_t batch = 0;
  int64_t q_heads = 0;
  int64_t kv_heads = 0;
  int64_t q_len = 0;
  int64_t kv_len = 0;  // new keys
  int64_t past_len = 0;
  int64_t head_size = 0;
  int64_t v_head_size = 0;
  bool packed = false;
  bool causal = false;
  float scale = 1.0f;
  float softcap = 0.0f;  // 0: none
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* past_k = nullptr;
  const void* past_v = nullptr;
  void* y = nullptr;
  void* present_k = nullptr;
  void* present_v = nullptr;
  // Mask element (b, h, i, j) sits at b*mask_stride[0] + h*mask_stride[1] + i*mask_stride[2] + j for
  // j < mask_len; keys at j >= mask_len are masked out. Bool masks are u8 (0 = masked).
  const void* mask = nullptr;
  ElemType mask_type = ElemType::f32;
  int64_t mask_stride[3] = {0, 0, 0};
  int64_t mask_len = 0;
  // nonpad_kv_seqlen [B] (i64 or i32), may be null; with `causal` and no past it also sets the causal
  // frontier of each batch (external KV cache).
  const void* nonpad = nullptr;
  bool nonpad_i64 = true;
  // 0: pick the fastest eligible kernel; 1: the CUDA-core kernel; 2: the tensor-core kernel; 3: the first
  // tensor-core kernel (mma-v1, the known-good fallback).
  int32_t variant = 0;
};
cudaError_t launch_attention(const AttentionParams& p, cudaStream_t stream);
// Whether the tensor-core kernel handles these parameters (f16/bf16, D == Dv in {64, 128}); pointers
// must also be 16-byte aligned at run time, else the launcher uses the CUDA-core kernel.
bool attention_tensor_core_eligible(const AttentionParams& p);

// ---- linear_attention.cu -----------------------------------------------------------------------------

// ONNX LinearAttention (27), recurrent form: query [B, T, Hq*dk], key [B, T, Hkv*dk], value
// [B, T, Hkv*dv], past_state / present [B, Hkv, dk, dv], decay [B, T, Hkv*dk | Hkv] (log-space),
// beta [B, T, Hkv | 1]; y [B, T, Hq*dv].
struct LinearAttentionParams {
  ElemType type = ElemType::f32;
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t q_heads = 0;
  int64_t kv_heads = 0;
  int64_t key_size = 0;
  int64_t value_size = 0;
  bool gated = false;
  bool delta = false;
  int64_t decay_width = 0;
  int64_t beta_width = 0;
  float scale = 1.0f;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* past_state = nullptr;
  const void* decay = nullptr;
  const void* beta = nullptr;
  void* y = nullptr;
  void* present = nullptr;  // may be null
};
cudaError_t launch_linear_attention(const LinearAttentionParams& p, cudaStream_t stream);
// Largest key size the recurrent kernel takes (its state column lives in shared memory).
constexpr int64_t kLinearAttentionMaxKeySize = 256;

// The chunkwise form of the same op (linear_attention_chunked.cu) for update rules linear and gated with one
// decay per head (decay_width == kv_heads): the sequence in chunks of kLinearAttentionChunk tokens,
// quadratic inside a chunk, the state carried between chunks. Same parameters; key_size at most
// kLinearAttentionChunkedMaxKeySize.
cudaError_t launch_linear_attention_chunked(const LinearAttentionParams& p, cudaStream_t stream);
constexpr int64_t kLinearAttentionChunk = 64;
constexpr int64_t kLinearAttentionChunkedMaxKeySize = 128;
// Whether the chunkwise kernel takes these parameters (rule, decay form, key size).
bool linear_attention_chunked_eligible(const LinearAttentionParams& p);

// ---- cached_attention.cu ------------------------------------------------------------------------------

// CachedAttention (seqrun op, ir/ops/cached_attention.cpp): Q [B, Hq, T, Dk], K [B, Hkv, T, Dk], V [B, Hkv,
// T, Dv], caches [B, Hkv, C, Dk|Dv], position (i64, on the device) = P. The new caches get rows P .. P+T-1
// from K/V and the other rows from the old caches (only the new rows are written when a new cache is the
// old one's memory); Y [B, Hq, T, Dv] is causal softmax attention of query i over the keys
// max(0, P+i-window) .. P+i of the new cache. P < 0 or P + T > C is reported to `sink` (outputs invalid).
// The keys of a query row are split into `splits` ranges of `keys_per_split` cache rows (flash-decoding):
// partial results go to `workspace` (cached_attention_workspace_bytes), a second kernel combines them.
struct CachedAttentionParams {
  ElemType type = ElemType::f32;  // Q, K, V, caches, Y
  int64_t batch = 0;
  int64_t q_heads = 0;
  int64_t kv_heads = 0;
  int64_t new_tokens = 0;  // T
  int64_t capacity = 0;    // C
  int64_t head_size = 0;
  int64_t v_head_size = 0;
  float scale = 1.0f;
  float softcap = 0.0f;  // 0: none
  int64_t window = -1;   // -1: none
  int32_t splits = 1;
  int64_t keys_per_split = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  const int64_t* position = nullptr;
  void* y = nullptr;
  void* new_k_cache = nullptr;
  void* new_v_cache = nullptr;
  float* workspace = nullptr;
  ErrorSink sink;
};
cudaError_t launch_cached_attention(const CachedAttentionParams& p, cudaStream_t stream);
// Bytes of f32 partial results for p.splits (at least 256).
size_t cached_attention_workspace_bytes(const CachedAttentionParams& p);
// Largest Dk / Dv the kernel takes (one register slice per lane of 32).
constexpr int64_t kCachedAttentionMaxHeadSize = 256;

// ---- copy.cu -----------------------------------------------------------------------------------------

// dst[dst_offset + sum_d i_d * dst_strides[d]] = src[src_offset + sum_d i_d * src_strides[d]] for every index
// i of `dims` (strides and offsets in elements, may be negative): Slice, Split and Concat as strided
// copies of 1/2/4/8-byte elements.
struct StridedCopyParams {
  int32_t elem_size = 4;
  int32_t rank = 0;
  int64_t n = 0;  // product of dims
  int64_t dims[kMaxRank] = {};
  int64_t src_strides[kMaxRank] = {};
  int64_t dst_strides[kMaxRank] = {};
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
  const void* src = nullptr;
  void* dst = nullptr;
};
cudaError_t launch_strided_copy(const StridedCopyParams& p, cudaStream_t stream);

// ---- causal_conv.cu ----------------------------------------------------------------------------------

// CausalConvWithState (ONNX 27): depthwise causal conv over x [B, C, L] with weight [C, 1, K], optional
// bias [C] and past_state [B, C, K-1]; y [B, C, L]; present [B, C, K-1] (may be null).
struct CausalConvParams {
  ElemType type = ElemType::f32;
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t length = 0;
  int64_t kernel_size = 0;
  bool silu = false;
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;
  const void* past = nullptr;
  void* y = nullptr;
  void* present = nullptr;
};
cudaError_t launch_causal_conv(const CausalConvParams& p, cudaStream_t stream);

// ---- selective_scan.cu -------------------------------------------------------------------------------

// SelectiveScan (Mamba; semantics in ir/ops/ssm.cpp): u, delta, z, y [B, D, L]; Bmat, Cmat [B, G, N, L]
// (G = 1 for the 3-D form); A [D, N]; Dskip, delta_bias [D]; h0, h_out [B, D, N]. u, delta, Bmat, Cmat,
// z, y and h_out have `type`; A, Dskip, delta_bias and h0 have their own float types (Mamba keeps A and D
// in f32 next to bf16 activations). Optional pointers may be null.
struct SelectiveScanParams {
  ElemType type = ElemType::f32;
  ElemType a_type = ElemType::f32;
  ElemType dskip_type = ElemType::f32;
  ElemType bias_type = ElemType::f32;
  ElemType h0_type = ElemType::f32;
  int64_t batch = 0;
  int64_t channels = 0;    // D
  int64_t length = 0;      // L
  int64_t state_size = 0;  // N
  int64_t groups = 1;      // G
  bool delta_softplus = true;
  const void* u = nullptr;
  const void* delta = nullptr;
  const void* a = nullptr;
  const void* bmat = nullptr;
  const void* cmat = nullptr;
  const void* dskip = nullptr;
  const void* z = nullptr;
  const void* delta_bias = nullptr;
  const void* h0 = nullptr;
  void* y = nullptr;
  void* h_out = nullptr;
};
cudaError_t launch_selective_scan(const SelectiveScanParams& p, cudaStream_t stream);
// Largest state size N the kernel takes (the state lives in registers).
constexpr int64_t kSelectiveScanMaxState = 64;

// ---- token_shift.cu ----------------------------------------------------------------------------------

// TokenShift (RWKV): y[b, t] = x[b, t-1], y[b, 0] = state[b] (zeros when state is null); new_state[b] =
// x[b, T-1] (the old state, or zeros, when T = 0). x, y [B, T, C]; state, new_state [B, C] (new_state may
// be null). Bit copies of 2- or 4-byte elements.
struct TokenShiftParams {
  int32_t elem_size = 4;
  int64_t batch = 0;
  int64_t length = 0;
  int64_t channels = 0;
  const void* x = nullptr;
  const void* state = nullptr;
  void* y = nullptr;
  void* new_state = nullptr;
};
cudaError_t launch_token_shift(const TokenShiftParams& p, cudaStream_t stream);

}  // namespace seqrun::backends::cuda
