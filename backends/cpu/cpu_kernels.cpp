// Registration of the CPU backend's fast kernels (oneDNN + own AVX2/OpenMP kernels).
//
// Compiled without -mavx2 (unlike the rest of backends/cpu), so it is safe to run on any x86-64:
// the factories it registers first check the CPU and decline without AVX2 and FMA, leaving every
// node to the reference fallback.
#include "backends/cpu/cpu_kernels.h"

#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {

namespace {

bool cpu_has_avx2_fma() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}

void add(KernelFactoryRegistry& registry, const char* op, KernelFactoryFn factory) {
  registry.add(op, [factory](const KernelInfo& info) -> std::unique_ptr<Kernel> {
    if (!cpu_has_avx2_fma()) return nullptr;
    return factory(info);
  });
}

}  // namespace

void register_cpu_kernels(KernelFactoryRegistry& registry) {
#if SEQRUN_HAVE_ONEDNN  // the factories in the oneDNN files (SEQRUN_ONEDNN=OFF leaves those files out)
  add(registry, "MatMul", make_matmul_kernel);
  add(registry, "Gemm", make_gemm_kernel);
  add(registry, "Linear", make_linear_kernel);
  add(registry, "FusedLinear", make_fused_linear_kernel);
  add(registry, "Conv", make_depthwise_conv1d_kernel);  // faster than oneDNN for that shape
  add(registry, "Conv", make_conv_kernel);
  add(registry, "DeformConv", make_deform_conv_kernel);
#endif
  for (const char* op : {"Softmax", "LogSoftmax"}) {
#if SEQRUN_HAVE_ONEDNN
    add(registry, op, make_onednn_softmax_kernel);  // faster where oneDNN has AVX-512
#endif
    add(registry, op, make_softmax_kernel);
  }
  add(registry, "LayerNormalization", make_layer_norm_kernel);
  add(registry, "RMSNormalization", make_rms_norm_kernel);
  for (int i = 0; i < kNumUnaryOps; ++i) add(registry, kUnaryOps[i], make_unary_kernel);
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) add(registry, op, make_binary_kernel);
  add(registry, "Pow", make_pow_kernel);
  add(registry, "Where", make_where_kernel);
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) add(registry, op, make_reduce_kernel);
  add(registry, "Gather", make_gather_kernel);
  add(registry, "Transpose", make_transpose_kernel);
  add(registry, "Concat", make_concat_kernel);
  add(registry, "Split", make_split_kernel);
  add(registry, "Slice", make_slice_kernel);
  add(registry, "Expand", make_expand_kernel);
  add(registry, "ChunkedAttention", make_chunked_attention_kernel);
  add(registry, "Attention", make_attention_kernel);
  add(registry, "CachedAttention", make_cached_attention_kernel);
  add(registry, "LinearAttention", make_linear_attention_kernel);
  add(registry, "MixedChunkAttention", make_mixed_chunk_attention_kernel);
  add(registry, "SelectiveScan", make_selective_scan_kernel);
  add(registry, "CausalConvWithState", make_causal_conv_kernel);
  add(registry, "LinearRecurrence", make_linear_recurrence_kernel);
  add(registry, "TokenShift", make_token_shift_kernel);
  add(registry, "LTIScan", make_lti_scan_kernel);
}

}  // namespace seqrun::backends::cpu
