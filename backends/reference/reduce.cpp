// Reference kernels: reduce family.
#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

void register_reduce_kernels(KernelRegistry& r) { (void)r; }

}  // namespace seqrun::reference
