// Registration of the misc-family reference kernels, which live in misc_*.cpp (see misc.h).
#include "backends/reference/misc.h"

namespace seqrun::reference {

void register_misc_kernels(KernelRegistry& r) {
  register_misc_quant_kernels(r);
  register_misc_spatial_kernels(r);
  register_misc_signal_kernels(r);
  register_misc_tensor_kernels(r);
}

}  // namespace seqrun::reference
