// Temporary: factories not written yet decline (removed once every topic file exists).
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
std::unique_ptr<Kernel> make_conv_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_deform_conv_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_softmax_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_layer_norm_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_rms_norm_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_unary_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_binary_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_pow_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_where_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_reduce_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_gather_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_transpose_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_concat_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_split_kernel(const KernelInfo&) { return nullptr; }
std::unique_ptr<Kernel> make_slice_kernel(const KernelInfo&) { return nullptr; }
const char* const kUnaryOps[] = {"Relu"};
const int kNumUnaryOps = 1;
}  // namespace seqrun::backends::cpu
