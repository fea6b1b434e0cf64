// Registration entry points of the built-in op families; OpRegistry::global() calls each once.
#pragma once

#include <cstdint>

#include "ir/dtype.h"
#include "ir/status.h"

namespace seqrun {
class OpRegistry;
namespace ops {
void register_elementwise_ops(OpRegistry& r);   // unary, binary, Where, Cast, Clip, comparisons, logic
void register_reduce_ops(OpRegistry& r);        // ReduceX, ArgMax/Min, CumSum, Softmax family
void register_shape_ops(OpRegistry& r);         // Reshape, Transpose, Slice, Concat, Gather*, Scatter*, ...
void register_nn_ops(OpRegistry& r);            // MatMul, Gemm, Einsum, Conv, DeformConv, pools, norms
void register_attention_ops(OpRegistry& r);     // Attention, LinearAttention, RotaryEmbedding, CausalConv...
void register_control_flow_ops(OpRegistry& r);  // Scan, Loop, If
void register_fused_ops(OpRegistry& r);         // ops produced by passes: FusedLinear, ...
void register_ssm_ops(OpRegistry& r);           // SelectiveScan (ssm.cpp)
void register_recurrent_ops(OpRegistry& r);     // RNN, LSTM, GRU
void register_misc_ops(OpRegistry& r);          // quantization, GridSample, RoiAlign, NMS, Unique, DFT, ...
void register_recurrence_ops(OpRegistry& r);    // TokenShift, RWKV4WKV (recurrence_ops.cpp)
void register_mixed_chunk_attention_ops(OpRegistry& r);  // MixedChunkAttention (mixed_chunk_attention.cpp)
void register_chunked_attention_ops(OpRegistry& r);      // ChunkedAttention (chunked_attention.cpp)
void register_lti_ops(OpRegistry& r);                    // LTIScan (lti_scan.cpp)
void register_cached_attention_ops(OpRegistry& r);       // CachedAttention (cached_attention.cpp)

// The seqrun dtype of an ONNX TensorProto data type number (Cast's `to`); the error names the
// ONNX type when seqrun has no such dtype (STRING, COMPLEX64, FLOAT8*, ...).
Result<DType> dtype_from_onnx_type(int64_t onnx_type);
}  // namespace ops
}  // namespace seqrun
