// Reference kernels: nn family.
#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

void register_nn_kernels(KernelRegistry& r) { (void)r; }

}  // namespace seqrun::reference
