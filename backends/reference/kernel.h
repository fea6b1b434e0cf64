// The reference CPU kernels: plain loops that define what every op computes.
//
// Each op has one RefKernel. The executor hands it the node, the input tensors (null for absent
// optional inputs; captured values last) and expects `outputs` filled with freshly allocated
// tensors of the right shapes. Kernels validate what shape inference could not (runtime shapes,
// index ranges) and return an error naming the node rather than reading out of bounds.
//
// `compute_in_f32`: the executor converts f16/bf16/f64 inputs to f32 before the call and converts
// float outputs back to the dtype the graph declares, so such kernels only handle f32 (plus the
// integer/bool types they accept). Ops that must see the real dtype (Cast, shape ops) leave it off.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::reference {

struct KernelContext {
  const Node& node;
  std::vector<const Tensor*> inputs;  // explicit inputs then captures; null = absent
  std::vector<Tensor> outputs;        // filled by the kernel, one per node output
  // Runs a nested graph (control-flow bodies): body inputs, then its captures.
  std::function<Result<std::vector<Tensor>>(const Graph& body, const std::vector<Tensor>& inputs,
                                            const std::vector<Tensor>& captures)>
      run_graph;

  int num_inputs() const { return node.num_explicit_inputs(); }
  bool has_input(int i) const { return i < num_inputs() && inputs[i] != nullptr; }
  const Tensor& input(int i) const { return *inputs[i]; }
  // The captured tensors (the node's last num_captures inputs), copied as handles.
  std::vector<Tensor> captures() const;
  // Error prefixed with the node's description.
  template <typename... Args>
  Status error(fmt::format_string<Args...> format, Args&&... args) const {
    return Status::error(node.describe() + ": " + fmt::format(format, std::forward<Args>(args)...));
  }
};

using KernelFn = std::function<Status(KernelContext&)>;

struct KernelEntry {
  KernelFn fn;
  bool compute_in_f32 = false;
};

class KernelRegistry {
 public:
  static const KernelRegistry& global();
  const KernelEntry* find(const std::string& op) const;
  void add(const std::string& op, KernelFn fn, bool compute_in_f32 = false);
  std::vector<std::string> op_names() const;

 private:
  std::vector<std::pair<std::string, KernelEntry>> entries_;
};

void register_elementwise_kernels(KernelRegistry& r);
void register_reduce_kernels(KernelRegistry& r);
void register_shape_kernels(KernelRegistry& r);
void register_nn_kernels(KernelRegistry& r);      // also calls the four below
void register_conv_kernels(KernelRegistry& r);    // nn_conv.cpp: Conv, ConvTranspose, DeformConv
void register_pool_kernels(KernelRegistry& r);    // nn_pool.cpp
void register_norm_kernels(KernelRegistry& r);    // nn_norm.cpp
void register_resize_kernels(KernelRegistry& r);  // nn_resize.cpp: Resize, Upsample
void register_attention_kernels(KernelRegistry& r);
void register_linear_attention_kernels(KernelRegistry& r);  // called by register_attention_kernels
void register_control_flow_kernels(KernelRegistry& r);
void register_fused_kernels(KernelRegistry& r);       // fused.cpp: FusedLinear
void register_ssm_kernels(KernelRegistry& r);         // ssm.cpp: SelectiveScan
void register_recurrent_kernels(KernelRegistry& r);   // recurrent.cpp: RNN, LSTM, GRU
void register_misc_kernels(KernelRegistry& r);        // misc*.cpp: quantization, GridSample, DFT, ...
void register_recurrence_kernels(KernelRegistry& r);  // recurrence.cpp: TokenShift, RWKV4WKV
void register_mixed_chunk_attention_kernels(KernelRegistry& r);  // mixed_chunk_attention.cpp
void register_chunked_attention_kernels(KernelRegistry& r);      // chunked_attention.cpp: ChunkedAttention
void register_lti_kernels(KernelRegistry& r);                    // lti_scan.cpp: LTIScan
void register_cached_attention_kernels(KernelRegistry& r);       // cached_attention.cpp: CachedAttention

}  // namespace seqrun::reference
