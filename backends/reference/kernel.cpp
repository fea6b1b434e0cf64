// The reference kernel registry.
#include "backends/reference/kernel.h"

#include <algorithm>

namespace seqrun::reference {

std::vector<Tensor> KernelContext::captures() const {
  std::vector<Tensor> out;
  for (int i = num_inputs(); i < static_cast<int>(inputs.size()); ++i) out.push_back(*inputs[i]);
  return out;
}

const KernelRegistry& KernelRegistry::global() {
  static KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    register_elementwise_kernels(*r);
    register_reduce_kernels(*r);
    register_shape_kernels(*r);
    register_nn_kernels(*r);
    register_attention_kernels(*r);
    register_control_flow_kernels(*r);
    register_fused_kernels(*r);
    register_ssm_kernels(*r);
    register_recurrent_kernels(*r);
    register_misc_kernels(*r);
    register_recurrence_kernels(*r);
    register_mixed_chunk_attention_kernels(*r);
    register_chunked_attention_kernels(*r);
    register_lti_kernels(*r);
    register_cached_attention_kernels(*r);
    std::sort(r->entries_.begin(), r->entries_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return r;
  }();
  return *registry;
}

const KernelEntry* KernelRegistry::find(const std::string& op) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), op,
                             [](const auto& e, const std::string& key) { return e.first < key; });
  if (it == entries_.end() || it->first != op) return nullptr;
  return &it->second;
}

void KernelRegistry::add(const std::string& op, KernelFn fn, bool compute_in_f32) {
  entries_.push_back({op, KernelEntry{std::move(fn), compute_in_f32}});
}

std::vector<std::string> KernelRegistry::op_names() const {
  std::vector<std::string> names;
  for (const auto& e : entries_) names.push_back(e.first);
  return names;
}

}  // namespace seqrun::reference
