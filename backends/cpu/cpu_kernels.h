// Registration of the CPU backend's fast kernels (oneDNN + own AVX2/OpenMP kernels).
#pragma once

#include "backends/backend.h"

namespace seqrun::backends::cpu {

// Adds the fast CPU kernel factories to `registry`; each factory declines (returns null) for
// dtypes/shapes/attributes it does not handle, so the reference fallback picks those up.
void register_cpu_kernels(KernelFactoryRegistry& registry);

}  // namespace seqrun::backends::cpu
