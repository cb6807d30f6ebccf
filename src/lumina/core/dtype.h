#pragma once
// Element types and their host-side conversions.
// bf16, f16, fp8 e4m3 and e5m2 are stored as raw bits; conversions from float
// round to nearest, ties to even. Overflow: f16 -> +-inf (IEEE); fp8 formats
// saturate to their largest finite value (the "satfinite" convention used for
// scaled fp8 GEMMs: e4m3 max 448, e5m2 max 57344). NaN stays NaN.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lumina {

enum class DType : uint8_t { f32, f64, bf16, f16, e4m3, e5m2, i32, i64, u16, u32, u8 };

size_t dtype_size_bytes(DType t);
std::string_view dtype_name(DType t);  // "f32", "bf16", ...
bool dtype_is_float(DType t);

struct bf16 { uint16_t bits = 0; };
struct f16 { uint16_t bits = 0; };
struct fp8_e4m3 { uint8_t bits = 0; };
struct fp8_e5m2 { uint8_t bits = 0; };

bf16 to_bf16(float x);
f16 to_f16(float x);
fp8_e4m3 to_e4m3(float x);
fp8_e5m2 to_e5m2(float x);
float to_float(bf16 x);
float to_float(f16 x);
float to_float(fp8_e4m3 x);
float to_float(fp8_e5m2 x);

// Map a C++ element type to its DType tag.
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<bf16>() { return DType::bf16; }
template <> constexpr DType dtype_of<f16>() { return DType::f16; }
template <> constexpr DType dtype_of<fp8_e4m3>() { return DType::e4m3; }
template <> constexpr DType dtype_of<fp8_e5m2>() { return DType::e5m2; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::u16; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::u32; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }

}  // namespace lumina
