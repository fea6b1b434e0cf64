// Private to backends/cpu: the fast kernels' factory functions, one per op family, each defined in
// the topic file named beside it and registered by cpu_kernels.cpp.
//
// A factory returns null (declines) for anything it does not handle (dtype, attributes, shapes),
// so the reference fallback takes the node. Plain function pointers keep registration free of
// AVX2 code: cpu_kernels.cpp is compiled without -mavx2 and only calls these after checking the CPU.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace seqrun::backends::cpu {

using KernelFactoryFn = std::unique_ptr<Kernel> (*)(const KernelInfo& info);

// onednn_matmul.cpp
std::unique_ptr<Kernel> make_matmul_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_gemm_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_linear_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_fused_linear_kernel(const KernelInfo& info);
// gemv.cpp: small-M products (decode steps) with a 2-D weight; the onednn_matmul.cpp factories try these
// first and build a oneDNN primitive when they decline (large M, other layouts, SEQRUN_CPU_GEMV=0).
std::unique_ptr<Kernel> make_gemv_linear_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_gemv_fused_linear_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_gemv_matmul_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_gemv_gemm_kernel(const KernelInfo& info);
// expand.cpp: Expand (broadcast copy, any element size)
std::unique_ptr<Kernel> make_expand_kernel(const KernelInfo& info);
// onednn_conv.cpp
std::unique_ptr<Kernel> make_conv_kernel(const KernelInfo& info);
// avx2_depthwise_conv1d.cpp: 1-D depthwise Conv with stride 1 (preferred over oneDNN for that shape)
std::unique_ptr<Kernel> make_depthwise_conv1d_kernel(const KernelInfo& info);
// deform_conv.cpp
std::unique_ptr<Kernel> make_deform_conv_kernel(const KernelInfo& info);
// onednn_softmax.cpp: Softmax and LogSoftmax (preferred)
std::unique_ptr<Kernel> make_onednn_softmax_kernel(const KernelInfo& info);
// avx2_softmax_norm.cpp: Softmax and LogSoftmax (fallback); LayerNormalization; RMSNormalization
std::unique_ptr<Kernel> make_softmax_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_layer_norm_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_rms_norm_kernel(const KernelInfo& info);
// avx2_elementwise.cpp: unary activations/math (dispatch on the op name), Add/Sub/Mul/Div, Pow, Where
std::unique_ptr<Kernel> make_unary_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_binary_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_pow_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_where_kernel(const KernelInfo& info);
// avx2_reduce.cpp: ReduceSum, ReduceMean, ReduceMax
std::unique_ptr<Kernel> make_reduce_kernel(const KernelInfo& info);
// gather_transpose.cpp
std::unique_ptr<Kernel> make_gather_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_transpose_kernel(const KernelInfo& info);
// chunked_attention.cpp: ChunkedAttention; Attention on 4-D inputs without KV cache and extra outputs
std::unique_ptr<Kernel> make_chunked_attention_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_attention_kernel(const KernelInfo& info);
// cached_attention.cpp: CachedAttention (decode steps and prefill over a KV cache)
std::unique_ptr<Kernel> make_cached_attention_kernel(const KernelInfo& info);
// Lets tests run the attention kernels' AVX2 paths (block products, online softmax) on a CPU with AVX-512;
// `enabled` = true restores the CPU's choice (block_gemm.h).
void set_attention_avx512(bool enabled);
// linear_attention.cpp: LinearAttention, linear and gated rules (with or without the RWKV bonus)
std::unique_ptr<Kernel> make_linear_attention_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_mixed_chunk_attention_kernel(const KernelInfo& info);
// concat_split_slice.cpp
std::unique_ptr<Kernel> make_concat_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_split_kernel(const KernelInfo& info);
std::unique_ptr<Kernel> make_slice_kernel(const KernelInfo& info);

// selective_scan.cpp: SelectiveScan (Mamba)
std::unique_ptr<Kernel> make_selective_scan_kernel(const KernelInfo& info);
// causal_conv.cpp: CausalConvWithState (depthwise causal conv1d with state, optional SiLU)
std::unique_ptr<Kernel> make_causal_conv_kernel(const KernelInfo& info);
// linear_recurrence.cpp: LinearRecurrence
std::unique_ptr<Kernel> make_linear_recurrence_kernel(const KernelInfo& info);
// token_shift.cpp: TokenShift
std::unique_ptr<Kernel> make_token_shift_kernel(const KernelInfo& info);
// lti_scan.cpp: LTIScan (recurrent or FFT convolution, lti_fft.h)
std::unique_ptr<Kernel> make_lti_scan_kernel(const KernelInfo& info);

// The unary ops make_unary_kernel handles.
extern const char* const kUnaryOps[];
extern const int kNumUnaryOps;

}  // namespace seqrun::backends::cpu
