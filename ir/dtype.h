// DType: the element types a seqrun tensor can hold, with their sizes, names and f16/bf16 conversion.
//
// The enum's numeric values are part of the file format (ir/seqrun.fbs stores them): append only.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace seqrun {

enum class DType : uint8_t {
  undefined = 0,
  f32 = 1,
  f16 = 2,
  bf16 = 3,
  i64 = 4,
  i32 = 5,
  i8 = 6,
  u8 = 7,
  boolean = 8,
  f64 = 9,
  i16 = 10,
  u16 = 11,
  u32 = 12,
  u64 = 13,
};
constexpr int kNumDTypes = 14;

// Bytes per element; 0 for undefined.
size_t dtype_size(DType t);
// Short lower-case name used by the text form and error messages: "f32", "i64", "bool", ...
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
bool is_float(DType t);    // f32 f16 bf16 f64
bool is_integer(DType t);  // signed or unsigned integers (not bool)
bool is_signed_integer(DType t);
// True when the numeric value fits in the enum (used to validate files).
bool dtype_is_valid(uint32_t raw);

// IEEE half and bfloat16 conversions (round to nearest even on the way down).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
inline float bf16_to_f32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t f32_to_bf16(float f);

// Storage types for f16 / bf16 elements, so kernels can switch on C++ types.
struct half_t {
  uint16_t bits;
};
struct bfloat16_t {
  uint16_t bits;
};

template <typename T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<half_t> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<bfloat16_t> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int16_t> { static constexpr DType value = DType::i16; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::u16; };
template <> struct dtype_of<uint32_t> { static constexpr DType value = DType::u32; };
template <> struct dtype_of<uint64_t> { static constexpr DType value = DType::u64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };

}  // namespace seqrun
