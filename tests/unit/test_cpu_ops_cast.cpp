// CpuBackend::cast between f32, f64, bf16, f16, e4m3, e5m2 and fill of every dtype.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

template <class E>
E* elements(HostTensor& t) { return static_cast<E*>(t.t().data); }

// Every code of a narrow format: code -> f32 -> code is the identity, except
// that NaN stays some NaN and fp8 infinities (e5m2) saturate to the largest
// finite value (core/dtype.h: fp8 conversions are satfinite).
template <class E, class Bits>
void expect_all_codes_round_trip(DType dtype, int64_t codes) {
  auto backend = make_cpu_backend();
  HostTensor narrow(dtype, Shape{codes}), wide(DType::f32, Shape{codes}), back(dtype, Shape{codes});
  for (int64_t i = 0; i < codes; ++i) elements<Bits>(narrow)[i] = static_cast<Bits>(i);
  backend->cast(wide, narrow);
  backend->cast(back, wide);
  for (int64_t i = 0; i < codes; ++i) {
    const float f = elements<float>(wide)[i], want = to_float(E{static_cast<Bits>(i)});
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(f)) << dtype_name(dtype) << " code " << i;
      EXPECT_TRUE(std::isnan(to_float(E{elements<Bits>(back)[i]}))) << dtype_name(dtype) << " code " << i;
    } else if (std::isinf(want) && sizeof(Bits) == 1) {
      EXPECT_EQ(f, want);
      EXPECT_EQ(to_float(E{elements<Bits>(back)[i]}), std::copysign(57344.0f, want)) << "code " << i;
    } else {
      EXPECT_EQ(f, want) << dtype_name(dtype) << " code " << i;
      EXPECT_EQ(elements<Bits>(back)[i], static_cast<Bits>(i)) << dtype_name(dtype) << " code " << i;
    }
  }
}

TEST(CpuOpsCast, NarrowFormatsRoundTripEveryCode) {
  expect_all_codes_round_trip<bf16, uint16_t>(DType::bf16, 65536);
  expect_all_codes_round_trip<f16, uint16_t>(DType::f16, 65536);
  expect_all_codes_round_trip<fp8_e4m3, uint8_t>(DType::e4m3, 256);
  expect_all_codes_round_trip<fp8_e5m2, uint8_t>(DType::e5m2, 256);
}

TEST(CpuOpsCast, WideFormatsAndRounding) {
  auto backend = make_cpu_backend();
  const int64_t n = 5000;
  HostTensor x = random_normal(DType::f64, Shape{n}, 1, 100.0);
  HostTensor as_f32(DType::f32, Shape{n}), back(DType::f64, Shape{n}), as_bf16(DType::bf16, Shape{n});
  HostTensor as_e4m3(DType::e4m3, Shape{n}), bf16_to_e4m3(DType::e4m3, Shape{n});
  backend->cast(as_f32, x);
  backend->cast(back, as_f32);
  backend->cast(as_bf16, as_f32);
  backend->cast(as_e4m3, as_f32);
  backend->cast(bf16_to_e4m3, as_bf16);  // narrow to narrow goes through f32
  for (int64_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(x.get(i));
    ASSERT_EQ(elements<float>(as_f32)[i], f) << i;                        // f64 -> f32 rounds to nearest
    ASSERT_EQ(back.get(i), static_cast<double>(f)) << i;                   // f32 -> f64 exact
    ASSERT_EQ(elements<uint16_t>(as_bf16)[i], to_bf16(f).bits) << i;       // core/dtype.h rounding
    ASSERT_EQ(elements<uint8_t>(as_e4m3)[i], to_e4m3(f).bits) << i;
    ASSERT_EQ(elements<uint8_t>(bf16_to_e4m3)[i], to_e4m3(to_float(to_bf16(f))).bits) << i;
  }
  // fp8 saturates (satfinite): |x| > 448 -> 448 in e4m3.
  HostTensor big = filled(DType::f32, Shape{2}, 1000.0), sat(DType::e4m3, Shape{2});
  big.set(1, -1e6);
  backend->cast(sat, big);
  EXPECT_EQ(to_float(fp8_e4m3{elements<uint8_t>(sat)[0]}), 448.0f);
  EXPECT_EQ(to_float(fp8_e4m3{elements<uint8_t>(sat)[1]}), -448.0f);
  HostTensor ints(DType::i32, Shape{2});
  EXPECT_THROW(backend->cast(as_f32.t().slice(0, 2), ints), Error);  // not a float dtype
}

TEST(CpuOpsCast, FillEveryDtype) {
  auto backend = make_cpu_backend();
  HostTensor f32(DType::f32, Shape{70000}), bf(DType::bf16, Shape{33}), i32(DType::i32, Shape{9});
  HostTensor e5(DType::e5m2, Shape{5}), f64(DType::f64, Shape{3});
  backend->fill(f32, 0.1);
  backend->fill(bf, -1.5);
  backend->fill(i32, 42);
  backend->fill(e5, 3.0);
  backend->fill(f64, 0.1);
  for (int64_t i = 0; i < f32.numel(); ++i) ASSERT_EQ(elements<float>(f32)[i], 0.1f);
  for (int64_t i = 0; i < bf.numel(); ++i) EXPECT_EQ(to_float(bf16{elements<uint16_t>(bf)[i]}), -1.5f);
  for (int64_t i = 0; i < i32.numel(); ++i) EXPECT_EQ(elements<int32_t>(i32)[i], 42);
  for (int64_t i = 0; i < e5.numel(); ++i) EXPECT_EQ(to_float(fp8_e5m2{elements<uint8_t>(e5)[i]}), 3.0f);
  for (int64_t i = 0; i < f64.numel(); ++i) EXPECT_EQ(f64.get(i), 0.1);
}

}  // namespace
}  // namespace lumina::test
