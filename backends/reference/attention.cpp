// Reference kernels: attention family.
#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

void register_attention_kernels(KernelRegistry& r) { (void)r; }

}  // namespace seqrun::reference
