// Internal header of the misc-family reference kernels (misc*.cpp): the per-file registration
// functions register_misc_kernels calls, and the scalar-input readers several of them share.
#pragma once

#include <cstdint>

#include "backends/reference/kernel.h"

namespace seqrun::reference {

void register_misc_quant_kernels(KernelRegistry& r);  // misc_quant.cpp: quantization ops
void register_misc_spatial_kernels(
    KernelRegistry& r);  // misc_spatial.cpp: GridSample, RoiAlign, MaxUnpool, NMS
void register_misc_signal_kernels(KernelRegistry& r);  // misc_signal.cpp: DFT, STFT, windows, MelWeightMatrix
void register_misc_tensor_kernels(KernelRegistry& r);  // misc_tensor.cpp: Unique, Det

namespace misc_detail {

// Input i as one integer (a scalar or a one-element tensor of an integer dtype).
inline Result<int64_t> scalar_int(const KernelContext& ctx, int i, const char* what) {
  if (!ctx.has_input(i)) return ctx.error("required input {} ({}) is missing", i, what);
  const Tensor& t = ctx.input(i);
  if (!is_integer(t.dtype()) || t.numel() != 1) {
    return ctx.error("{} must be one integer, got {}{}", what, dtype_name(t.dtype()),
                     shape_to_string(t.shape()));
  }
  return t.get_i64(0);
}

// Input i as one number (a scalar or a one-element tensor of any numeric dtype).
inline Result<double> scalar_number(const KernelContext& ctx, int i, const char* what) {
  if (!ctx.has_input(i)) return ctx.error("required input {} ({}) is missing", i, what);
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1 || t.dtype() == DType::boolean) {
    return ctx.error("{} must be one number, got {}{}", what, dtype_name(t.dtype()),
                     shape_to_string(t.shape()));
  }
  return t.get_f64(0);
}

}  // namespace misc_detail
}  // namespace seqrun::reference
