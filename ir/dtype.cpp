// DType names, sizes and the f16/bf16 bit conversions.
#include "ir/dtype.h"

#include <cmath>

namespace seqrun {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kInfo[kNumDTypes] = {
    {DType::undefined, "?", 0}, {DType::f32, "f32", 4}, {DType::f16, "f16", 2},  {DType::bf16, "bf16", 2},
    {DType::i64, "i64", 8},     {DType::i32, "i32", 4}, {DType::i8, "i8", 1},    {DType::u8, "u8", 1},
    {DType::boolean, "bool", 1}, {DType::f64, "f64", 8}, {DType::i16, "i16", 2}, {DType::u16, "u16", 2},
    {DType::u32, "u32", 4},     {DType::u64, "u64", 8},
};
}  // namespace

size_t dtype_size(DType t) {
  auto i = static_cast<size_t>(t);
  return i < kNumDTypes ? kInfo[i].size : 0;
}

std::string_view dtype_name(DType t) {
  auto i = static_cast<size_t>(t);
  return i < kNumDTypes ? kInfo[i].name : "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kInfo) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64; }

bool is_signed_integer(DType t) {
  return t == DType::i64 || t == DType::i32 || t == DType::i16 || t == DType::i8;
}

bool is_integer(DType t) {
  return is_signed_integer(t) || t == DType::u8 || t == DType::u16 || t == DType::u32 || t == DType::u64;
}

bool dtype_is_valid(uint32_t raw) { return raw > 0 && raw < static_cast<uint32_t>(kNumDTypes); }

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);  // rounds to inf
  if (abs < 0x38800000u) {                                                // subnormal or zero in f16
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t e = abs >> 23;
    uint32_t m = (abs & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14 - (e - 127) + 13 - 1 ... places the result in 10 bits
    uint32_t half_m = m >> (shift);
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_m & 1))) ++half_m;
    return static_cast<uint16_t>(sign | half_m);
  }
  uint32_t e = (abs >> 23) - 127 + 15;
  uint32_t m = abs & 0x7fffff;
  uint32_t out = (e << 10) | (m >> 13);
  uint32_t rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (out & 1))) ++out;
  return static_cast<uint16_t>(sign | out);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet nan
  uint32_t rounding = 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

}  // namespace seqrun
