#include "lumina/core/dtype.h"

#include <bit>
#include <cmath>
#include <limits>

#include "lumina/core/error.h"

namespace lumina {

size_t dtype_size_bytes(DType t) {
  switch (t) {
    case DType::f64: case DType::i64: return 8;
    case DType::f32: case DType::i32: case DType::u32: return 4;
    case DType::bf16: case DType::f16: case DType::u16: return 2;
    case DType::e4m3: case DType::e5m2: case DType::u8: return 1;
  }
  fail("unknown dtype {}", static_cast<int>(t));
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::e4m3: return "e4m3";
    case DType::e5m2: return "e5m2";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u16: return "u16";
    case DType::u32: return "u32";
    case DType::u8: return "u8";
  }
  return "?";
}

bool dtype_is_float(DType t) {
  switch (t) {
    case DType::f32: case DType::f64: case DType::bf16: case DType::f16: case DType::e4m3: case DType::e5m2:
      return true;
    default:
      return false;
  }
}

namespace {

// A small binary float format: 1 sign bit, exp_bits, man_bits, exponent bias
// 2^(exp_bits-1)-1. ieee: the top exponent code is inf/NaN (f16, e5m2);
// otherwise only the all-ones pattern is NaN (e4m3, OCP FP8 spec).
struct MiniFloat {
  int exp_bits, man_bits;
  bool ieee;
  bool saturate;  // overflow -> max finite instead of inf

  int bias() const { return (1 << (exp_bits - 1)) - 1; }
  int min_normal_exp() const { return 1 - bias(); }
  uint32_t nan_code() const {
    return ieee ? ((((1u << exp_bits) - 1) << man_bits) | (1u << (man_bits - 1))) : ((1u << (exp_bits + man_bits)) - 1);
  }
  uint32_t inf_code() const { return ((1u << exp_bits) - 1) << man_bits; }
  // Largest finite value: ieee -> exponent code 2^E-2, mantissa all ones;
  // e4m3 -> exponent code 2^E-1, mantissa all ones minus one (all ones is NaN).
  uint32_t max_code() const {
    return ieee ? (inf_code() - 1) : (nan_code() - 1);
  }
  double decode_magnitude(uint32_t code) const {
    const uint32_t exp_field = code >> man_bits;
    const uint32_t man = code & ((1u << man_bits) - 1);
    if (exp_field == 0) return std::ldexp(static_cast<double>(man), min_normal_exp() - man_bits);
    return std::ldexp(static_cast<double>(man | (1u << man_bits)), static_cast<int>(exp_field) - bias() - man_bits);
  }

  uint32_t encode(float x) const {
    const uint32_t sign = std::signbit(x) ? (1u << (exp_bits + man_bits)) : 0u;
    if (std::isnan(x)) return sign | nan_code();
    const double a = std::fabs(static_cast<double>(x));
    const double max_finite = decode_magnitude(max_code());
    if (std::isinf(x)) return sign | (saturate ? max_code() : inf_code());
    if (a == 0.0) return sign;
    // Quantum (spacing of representable values) at a's binade, clamped to the subnormal spacing.
    int e = std::ilogb(a);
    if (e < min_normal_exp()) e = min_normal_exp();
    const double quantum = std::ldexp(1.0, e - man_bits);
    const double rounded = std::nearbyint(a / quantum) * quantum;  // ties to even (default FE_TONEAREST)
    if (rounded > max_finite) return sign | (saturate ? max_code() : inf_code());
    if (rounded == 0.0) return sign;
    int re = std::ilogb(rounded);
    if (re < min_normal_exp()) {
      return sign | static_cast<uint32_t>(std::ldexp(rounded, man_bits - min_normal_exp()));
    }
    const uint32_t man = static_cast<uint32_t>(std::ldexp(rounded, man_bits - re)) - (1u << man_bits);
    return sign | (static_cast<uint32_t>(re + bias()) << man_bits) | man;
  }

  float decode(uint32_t code) const {
    const bool negative = (code >> (exp_bits + man_bits)) & 1u;
    const uint32_t mag = code & ((1u << (exp_bits + man_bits)) - 1);
    double v;
    if (ieee && (mag >> man_bits) == (1u << exp_bits) - 1) {
      v = (mag & ((1u << man_bits) - 1)) ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    } else if (!ieee && mag == nan_code()) {
      v = std::numeric_limits<double>::quiet_NaN();
    } else {
      v = decode_magnitude(mag);
    }
    return static_cast<float>(negative ? -v : v);
  }
};

constexpr MiniFloat kF16{5, 10, true, false};
constexpr MiniFloat kE4M3{4, 3, false, true};
constexpr MiniFloat kE5M2{5, 2, true, true};

}  // namespace

bf16 to_bf16(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return bf16{static_cast<uint16_t>((bits >> 16) | 0x40u)};  // keep sign, quiet NaN
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even on the dropped 16 bits
  return bf16{static_cast<uint16_t>(bits >> 16)};
}
float to_float(bf16 x) { return std::bit_cast<float>(static_cast<uint32_t>(x.bits) << 16); }

f16 to_f16(float x) { return f16{static_cast<uint16_t>(kF16.encode(x))}; }
float to_float(f16 x) { return kF16.decode(x.bits); }
fp8_e4m3 to_e4m3(float x) { return fp8_e4m3{static_cast<uint8_t>(kE4M3.encode(x))}; }
float to_float(fp8_e4m3 x) { return kE4M3.decode(x.bits); }
fp8_e5m2 to_e5m2(float x) { return fp8_e5m2{static_cast<uint8_t>(kE5M2.encode(x))}; }
float to_float(fp8_e5m2 x) { return kE5M2.decode(x.bits); }

}  // namespace lumina
