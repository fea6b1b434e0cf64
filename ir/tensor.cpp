// Tensor storage, element access in any dtype, and dtype conversion.
#include "ir/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace seqrun {

Result<int64_t> checked_num_elements(const Shape& shape, size_t elem_bytes, uint64_t limit_bytes) {
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return make_error("negative dimension {} in shape {}", d, shape_to_string(shape));
    if (d == 0) return int64_t{0};
  }
  for (int64_t d : shape) {
    uint64_t ud = static_cast<uint64_t>(d);
    if (count > limit_bytes / ud) {
      return make_error("shape {} has too many elements (overflows {} bytes)", shape_to_string(shape),
                        limit_bytes);
    }
    count *= ud;
  }
  if (elem_bytes > 0 && count > limit_bytes / elem_bytes) {
    return make_error("shape {} of {}-byte elements exceeds {} bytes", shape_to_string(shape), elem_bytes,
                      limit_bytes);
  }
  return static_cast<int64_t>(count);
}

int64_t num_elements(const Shape& shape) {
  for (int64_t d : shape) {
    if (d == 0) return 0;  // before multiplying: [huge, huge, 0] must not overflow
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  size_t bytes = std::max<size_t>(t.nbytes(), 1);
  // 64-byte aligned, zero-filled: kernels may assume aligned rows and defined padding.
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  t.data_ = p;
  t.keepalive_ = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data, std::shared_ptr<const void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.keepalive_ = std::move(keepalive);
  return t;
}

template <>
Tensor Tensor::from_vector<bool>(Shape shape, const std::vector<bool>& values) {
  Tensor t = empty(DType::boolean, std::move(shape));
  for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.numel()); ++i) {
    t.data<uint8_t>()[i] = values[i] ? 1 : 0;
  }
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(t.data_, data_, nbytes());
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

double Tensor::get_f64(int64_t i) const {
  switch (dtype_) {
    case DType::f32:
      return data<float>()[i];
    case DType::f64:
      return data<double>()[i];
    case DType::f16:
      return f16_to_f32(data<uint16_t>()[i]);
    case DType::bf16:
      return bf16_to_f32(data<uint16_t>()[i]);
    case DType::i64:
      return static_cast<double>(data<int64_t>()[i]);
    case DType::i32:
      return data<int32_t>()[i];
    case DType::i16:
      return data<int16_t>()[i];
    case DType::i8:
      return data<int8_t>()[i];
    case DType::u8:
      return data<uint8_t>()[i];
    case DType::u16:
      return data<uint16_t>()[i];
    case DType::u32:
      return data<uint32_t>()[i];
    case DType::u64:
      return static_cast<double>(data<uint64_t>()[i]);
    case DType::boolean:
      return data<uint8_t>()[i] ? 1.0 : 0.0;
    case DType::undefined:
      break;
  }
  return 0.0;
}

int64_t Tensor::get_i64(int64_t i) const {
  switch (dtype_) {
    case DType::i64:
      return data<int64_t>()[i];
    case DType::i32:
      return data<int32_t>()[i];
    case DType::i16:
      return data<int16_t>()[i];
    case DType::i8:
      return data<int8_t>()[i];
    case DType::u8:
      return data<uint8_t>()[i];
    case DType::u16:
      return data<uint16_t>()[i];
    case DType::u32:
      return data<uint32_t>()[i];
    case DType::u64:
      return static_cast<int64_t>(data<uint64_t>()[i]);
    case DType::boolean:
      return data<uint8_t>()[i] ? 1 : 0;
    default: {
      double v = get_f64(i);
      if (!std::isfinite(v)) return 0;
      return static_cast<int64_t>(v);
    }
  }
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[i] = get_i64(i);
  return out;
}

std::vector<float> Tensor::to_f32_vector() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[i] = static_cast<float>(get_f64(i));
  return out;
}

namespace {
template <typename T>
void store_from_double(void* dst, int64_t i, double v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (std::isnan(v)) {
      static_cast<T*>(dst)[i] = 0;
      return;
    }
    // Saturate to avoid UB on out-of-range float -> int (ONNX leaves the result undefined).
    double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    double hi = static_cast<double>(std::numeric_limits<T>::max());
    if (v <= lo) {
      static_cast<T*>(dst)[i] = std::numeric_limits<T>::lowest();
    } else if (v >= hi) {
      static_cast<T*>(dst)[i] = std::numeric_limits<T>::max();
    } else {
      static_cast<T*>(dst)[i] = static_cast<T>(v);
    }
  } else {
    static_cast<T*>(dst)[i] = static_cast<T>(v);
  }
}
}  // namespace

Tensor Tensor::cast(DType to) const {
  if (to == dtype_) return clone();
  Tensor out = empty(to, shape_);
  const int64_t n = numel();
  const bool int_src = is_integer(dtype_) || dtype_ == DType::boolean;
  for (int64_t i = 0; i < n; ++i) {
    void* d = out.data_;
    if (int_src && is_integer(to)) {  // exact integer path (i64 values beyond 2^53)
      int64_t v = get_i64(i);
      switch (to) {
        case DType::i64:
          static_cast<int64_t*>(d)[i] = v;
          break;
        case DType::i32:
          static_cast<int32_t*>(d)[i] = static_cast<int32_t>(v);
          break;
        case DType::i16:
          static_cast<int16_t*>(d)[i] = static_cast<int16_t>(v);
          break;
        case DType::i8:
          static_cast<int8_t*>(d)[i] = static_cast<int8_t>(v);
          break;
        case DType::u8:
          static_cast<uint8_t*>(d)[i] = static_cast<uint8_t>(v);
          break;
        case DType::u16:
          static_cast<uint16_t*>(d)[i] = static_cast<uint16_t>(v);
          break;
        case DType::u32:
          static_cast<uint32_t*>(d)[i] = static_cast<uint32_t>(v);
          break;
        case DType::u64:
          static_cast<uint64_t*>(d)[i] = static_cast<uint64_t>(v);
          break;
        default:
          break;
      }
      continue;
    }
    double v = get_f64(i);
    switch (to) {
      case DType::f32:
        store_from_double<float>(d, i, v);
        break;
      case DType::f64:
        store_from_double<double>(d, i, v);
        break;
      case DType::f16:
        static_cast<uint16_t*>(d)[i] = f32_to_f16(static_cast<float>(v));
        break;
      case DType::bf16:
        static_cast<uint16_t*>(d)[i] = f32_to_bf16(static_cast<float>(v));
        break;
      case DType::i64:
        store_from_double<int64_t>(d, i, v);
        break;
      case DType::i32:
        store_from_double<int32_t>(d, i, v);
        break;
      case DType::i16:
        store_from_double<int16_t>(d, i, v);
        break;
      case DType::i8:
        store_from_double<int8_t>(d, i, v);
        break;
      case DType::u8:
        store_from_double<uint8_t>(d, i, v);
        break;
      case DType::u16:
        store_from_double<uint16_t>(d, i, v);
        break;
      case DType::u32:
        store_from_double<uint32_t>(d, i, v);
        break;
      case DType::u64:
        store_from_double<uint64_t>(d, i, v);
        break;
      case DType::boolean:
        static_cast<uint8_t*>(d)[i] = (v != 0.0) ? 1 : 0;
        break;
      case DType::undefined:
        break;
    }
  }
  return out;
}

bool Tensor::same_bytes(const Tensor& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ && std::memcmp(data_, other.data_, nbytes()) == 0;
}

}  // namespace seqrun
