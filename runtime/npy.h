// NumPy .npy read/write (format versions 1.0-3.0, little-endian, C order) for f32, f64, f16, i64,
// i32, i8, u8 and bool tensors. Reading checks the header against the file size and rejects
// Fortran order, big-endian data and unsupported dtypes with an error naming the file.
#pragma once

#include <string>

#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::runtime {

Result<Tensor> read_npy(const std::string& path);
Status write_npy(const std::string& path, const Tensor& tensor);

}  // namespace seqrun::runtime
