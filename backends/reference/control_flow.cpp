// Reference kernels: control_flow family.
#include "backends/reference/kernel.h"
#include "backends/reference/util.h"

namespace seqrun::reference {

void register_control_flow_kernels(KernelRegistry& r) { (void)r; }

}  // namespace seqrun::reference
