// Tensor: a dense, row-major n-d array with a dtype and concrete shape, and the bytes behind it.
//
// The bytes are either owned (allocated by Tensor::empty / zeros) or a view into memory some
// other object keeps alive (the mapped model file, an arena); `keepalive_` holds that owner.
// Copying a Tensor copies the handle, not the bytes (like a shared_ptr); use clone() for a deep copy.
// Element counts and byte sizes are computed with overflow checks by the factories that take
// untrusted shapes (checked_num_elements).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/status.h"

namespace seqrun {

using Shape = std::vector<int64_t>;

// Product of dims, or an error when a dim is negative or the product (times elem_bytes) overflows
// `limit_bytes`. Used wherever a shape comes from a file or a user.
Result<int64_t> checked_num_elements(const Shape& shape, size_t elem_bytes,
                                     uint64_t limit_bytes = (uint64_t{1} << 46));
int64_t num_elements(const Shape& shape);  // trusted shapes only
std::string shape_to_string(const Shape& shape);  // "[2, 3]"

class Tensor {
 public:
  Tensor() = default;
  // Owned, uninitialized (zero-filled) storage.
  static Tensor empty(DType dtype, Shape shape);
  static Tensor zeros(DType dtype, Shape shape) { return empty(dtype, std::move(shape)); }
  // A view of `data`, kept alive by `keepalive` (may be null when the caller guarantees lifetime).
  static Tensor view(DType dtype, Shape shape, void* data, std::shared_ptr<const void> keepalive);
  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  template <typename T>
  static Tensor scalar(T value) {
    return from_vector<T>({}, std::vector<T>{value});
  }

  bool defined() const { return dtype_ != DType::undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int64_t numel() const { return num_elements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }

  Tensor clone() const;
  // Same bytes, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // Element i converted to double / int64 (any dtype); for shape math and printing.
  double get_f64(int64_t i) const;
  int64_t get_i64(int64_t i) const;
  // Reads the whole tensor as int64 values (any integer dtype); for shape tensors.
  std::vector<int64_t> to_i64_vector() const;
  std::vector<float> to_f32_vector() const;
  // Converts to another dtype (float <-> int conversions truncate toward zero, like ONNX Cast).
  Tensor cast(DType to) const;

  bool same_bytes(const Tensor& other) const;

 private:
  DType dtype_ = DType::undefined;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<const void> keepalive_;
};

template <typename T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t = empty(dtype_of<T>::value, std::move(shape));
  for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.numel()); ++i) t.data<T>()[i] = values[i];
  return t;
}

template <>
Tensor Tensor::from_vector<bool>(Shape shape, const std::vector<bool>& values);

}  // namespace seqrun
