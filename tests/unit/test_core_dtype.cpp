// Host conversions of bf16 / f16 / fp8 (core/dtype.h): exact values, round to
// nearest even, subnormals, overflow (f16 and bf16 -> inf, fp8 saturates), NaN,
// every code decoded and encoded back, and every rounding midpoint checked
// against an independent oracle (nearest value by search, ties to the even code).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "lumina/core/dtype.h"

namespace lumina {
namespace {

// One small float format seen through lumina's two functions, widened to 32-bit codes.
struct Format {
  const char* name;
  int bits;                        // 8 or 16
  uint32_t (*encode)(float);
  float (*decode)(uint32_t);
  bool saturates;                  // overflow -> largest finite (fp8) instead of inf
  uint32_t sign_bit() const { return 1u << (bits - 1); }
};

const Format kBf16{"bf16", 16, [](float x) -> uint32_t { return to_bf16(x).bits; },
                   [](uint32_t c) { return to_float(bf16{static_cast<uint16_t>(c)}); }, false};
const Format kF16{"f16", 16, [](float x) -> uint32_t { return to_f16(x).bits; },
                  [](uint32_t c) { return to_float(f16{static_cast<uint16_t>(c)}); }, false};
const Format kE4M3{"e4m3", 8, [](float x) -> uint32_t { return to_e4m3(x).bits; },
                   [](uint32_t c) { return to_float(fp8_e4m3{static_cast<uint8_t>(c)}); }, true};
const Format kE5M2{"e5m2", 8, [](float x) -> uint32_t { return to_e5m2(x).bits; },
                   [](uint32_t c) { return to_float(fp8_e5m2{static_cast<uint8_t>(c)}); }, true};
const Format* const kFormats[] = {&kBf16, &kF16, &kE4M3, &kE5M2};

// The oracle: all non-negative finite values of a format in ascending order,
// followed by a virtual value one step past the largest finite one (the value
// the format would have with a wider exponent). Rounding picks the nearest
// entry, ties to the even code; landing on or past the virtual value overflows.
struct Oracle {
  std::vector<double> values;
  std::vector<uint32_t> codes;  // codes[i] encodes values[i]; the last is the virtual code
  uint32_t overflow_code = 0;   // what an overflow encodes to (inf or the largest finite code)

  explicit Oracle(const Format& f) {
    for (uint32_t c = 0; c < f.sign_bit(); ++c) {
      const float v = f.decode(c);
      if (std::isfinite(v)) {
        values.push_back(v);
        codes.push_back(c);
      }
    }
    const size_t n = values.size();
    const double max_finite = values[n - 1];
    const uint32_t max_code = codes[n - 1];
    uint32_t inf_code = 0;
    for (uint32_t c = 0; c < f.sign_bit(); ++c)
      if (std::isinf(f.decode(c))) inf_code = c;
    overflow_code = f.saturates ? max_code : inf_code;
    values.push_back(max_finite + (max_finite - values[n - 2]));
    codes.push_back(max_code + 1);  // its parity decides ties at the top
  }

  double max_finite() const { return values[values.size() - 2]; }

  uint32_t encode_magnitude(double a) const {
    if (a >= values.back()) return overflow_code;
    const size_t hi = static_cast<size_t>(std::upper_bound(values.begin(), values.end(), a) - values.begin());
    const size_t lo = hi - 1;
    if (values[lo] == a) return codes[lo];
    const double d_lo = a - values[lo], d_hi = values[hi] - a;
    const size_t pick = d_lo < d_hi ? lo : d_hi < d_lo ? hi : ((codes[lo] & 1u) == 0 ? lo : hi);
    return pick == values.size() - 1 ? overflow_code : codes[pick];
  }
  uint32_t encode(const Format& f, float x) const {
    return (std::signbit(x) ? f.sign_bit() : 0u) | encode_magnitude(std::fabs(static_cast<double>(x)));
  }
};

bool is_nan_code(const Format& f, uint32_t code) { return std::isnan(f.decode(code)); }

TEST(DType, SizesNamesAndKinds) {
  struct Row { DType t; size_t bytes; const char* name; bool is_float; };
  const Row rows[] = {{DType::f32, 4, "f32", true},   {DType::f64, 8, "f64", true},   {DType::bf16, 2, "bf16", true},
                      {DType::f16, 2, "f16", true},   {DType::e4m3, 1, "e4m3", true}, {DType::e5m2, 1, "e5m2", true},
                      {DType::i32, 4, "i32", false},  {DType::i64, 8, "i64", false},  {DType::u16, 2, "u16", false},
                      {DType::u32, 4, "u32", false},  {DType::u8, 1, "u8", false}};
  for (const Row& r : rows) {
    EXPECT_EQ(dtype_size_bytes(r.t), r.bytes) << r.name;
    EXPECT_EQ(dtype_name(r.t), r.name);
    EXPECT_EQ(dtype_is_float(r.t), r.is_float) << r.name;
  }
  static_assert(dtype_of<bf16>() == DType::bf16 && dtype_of<uint16_t>() == DType::u16);
}

TEST(DType, Bf16ExactValues) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3F80);
  EXPECT_EQ(to_bf16(-2.0f).bits, 0xC000);
  EXPECT_EQ(to_bf16(-0.0f).bits, 0x8000);
  EXPECT_EQ(to_bf16(3.140625f).bits, 0x4049);
  EXPECT_EQ(to_float(bf16{0x3F80}), 1.0f);
  EXPECT_EQ(to_float(bf16{0x7F7F}), 0x1.FEp127f);   // largest finite
  EXPECT_EQ(to_float(bf16{0x0080}), 0x1p-126f);     // smallest normal
  EXPECT_EQ(to_float(bf16{0x0001}), 0x1p-133f);     // smallest subnormal
  EXPECT_EQ(to_bf16(0x1p-133f).bits, 0x0001);
  EXPECT_EQ(to_bf16(0x1p-134f).bits, 0x0000);       // tie between 0 and 2^-133 -> even (0)
  EXPECT_EQ(to_bf16(0x1.8p-133f).bits, 0x0002);     // tie between 1 and 2 quanta -> even (2)
  EXPECT_TRUE(std::isinf(to_float(bf16{0x7F80})));
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f).bits, 0x3F80);            // halfway 0x3F80 / 0x3F81 -> even
  EXPECT_EQ(to_bf16(1.0f + 0x3p-8f).bits, 0x3F82);            // halfway 0x3F81 / 0x3F82 -> even
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f + 0x1p-20f).bits, 0x3F81); // just above halfway
  EXPECT_EQ(to_bf16(-(1.0f + 0x3p-8f)).bits, 0xBF82);
}

TEST(DType, Bf16OverflowGoesToInfinity) {
  const float max_bf16 = 0x1.FEp127f;
  EXPECT_EQ(to_bf16(max_bf16).bits, 0x7F7F);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::max()).bits, 0x7F80);  // past max + half ulp
  EXPECT_EQ(to_bf16(0x1.FFp127f).bits, 0x7F80);                        // exactly half ulp: tie -> even (inf)
  EXPECT_EQ(to_bf16(0x1.FEFFFEp127f).bits, 0x7F7F);                    // just below the tie
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::infinity()).bits, 0x7F80);
  EXPECT_EQ(to_bf16(-std::numeric_limits<float>::infinity()).bits, 0xFF80);
}

TEST(DType, Bf16KeepsNaNAndItsSign) {
  // A NaN whose payload sits only in the 16 dropped bits must not become inf.
  const float low_payload_nan = std::bit_cast<float>(0x7F800001u);
  EXPECT_TRUE(std::isnan(to_float(to_bf16(low_payload_nan))));
  const float negative_nan = std::bit_cast<float>(0xFF800001u);
  EXPECT_EQ(to_bf16(negative_nan).bits & 0x8000, 0x8000);
  EXPECT_TRUE(std::isnan(to_float(to_bf16(negative_nan))));
  EXPECT_TRUE(std::isnan(to_float(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, F16ExactValues) {
  EXPECT_EQ(to_f16(1.0f).bits, 0x3C00);
  EXPECT_EQ(to_f16(-2.0f).bits, 0xC000);
  EXPECT_EQ(to_f16(0.5f).bits, 0x3800);
  EXPECT_EQ(to_f16(-0.0f).bits, 0x8000);
  EXPECT_EQ(to_f16(65504.0f).bits, 0x7BFF);
  EXPECT_EQ(to_float(f16{0x7BFF}), 65504.0f);
  EXPECT_EQ(to_float(f16{0x3555}), 0.333251953125f);
  EXPECT_EQ(to_float(f16{0x0400}), 0x1p-14f);         // smallest normal
  EXPECT_EQ(to_float(f16{0x03FF}), 1023 * 0x1p-24f);  // largest subnormal
  EXPECT_EQ(to_float(f16{0x0001}), 0x1p-24f);         // smallest subnormal
  EXPECT_TRUE(std::isinf(to_float(f16{0x7C00})));
  EXPECT_TRUE(std::isnan(to_float(f16{0x7C01})));
}

TEST(DType, F16RoundingTiesSubnormalsAndOverflow) {
  EXPECT_EQ(to_f16(1.0f + 0x1p-11f).bits, 0x3C00);   // tie -> even
  EXPECT_EQ(to_f16(1.0f + 0x3p-11f).bits, 0x3C02);   // tie -> even
  EXPECT_EQ(to_f16(1.0f + 0x1p-11f + 0x1p-20f).bits, 0x3C01);
  EXPECT_EQ(to_f16(0x1p-24f).bits, 0x0001);
  EXPECT_EQ(to_f16(0x1p-25f).bits, 0x0000);          // tie between 0 and the smallest subnormal
  EXPECT_EQ(to_f16(0x1.000002p-25f).bits, 0x0001);   // just above that tie
  EXPECT_EQ(to_f16(0x1.8p-24f).bits, 0x0002);        // tie between 1 and 2 quanta -> even
  EXPECT_EQ(to_f16(-0x1p-26f).bits, 0x8000);         // underflow keeps the sign
  EXPECT_EQ(to_f16(0x1.FFFp-15f).bits, 0x0400);      // largest-subnormal region rounds up into the normals
  EXPECT_EQ(to_f16(65519.0f).bits, 0x7BFF);          // below max + half ulp
  EXPECT_EQ(to_f16(65520.0f).bits, 0x7C00);          // max + half ulp: tie -> even (inf), IEEE
  EXPECT_EQ(to_f16(1e6f).bits, 0x7C00);
  EXPECT_EQ(to_f16(-1e6f).bits, 0xFC00);
  EXPECT_EQ(to_f16(std::numeric_limits<float>::infinity()).bits, 0x7C00);
  const uint16_t nan_bits = to_f16(-std::numeric_limits<float>::quiet_NaN()).bits;
  EXPECT_TRUE(std::isnan(to_float(f16{nan_bits})));
  EXPECT_EQ(nan_bits & 0x8000, 0x8000);
}

TEST(DType, E4M3ExactValuesAndSaturation) {
  EXPECT_EQ(to_e4m3(1.0f).bits, 0x38);
  EXPECT_EQ(to_e4m3(-1.0f).bits, 0xB8);
  EXPECT_EQ(to_e4m3(448.0f).bits, 0x7E);
  EXPECT_EQ(to_float(fp8_e4m3{0x7E}), 448.0f);       // largest finite (S.1111.110)
  EXPECT_EQ(to_float(fp8_e4m3{0x78}), 256.0f);       // exponent 1111 is an ordinary binade in e4m3
  EXPECT_EQ(to_float(fp8_e4m3{0x08}), 0x1p-6f);      // smallest normal
  EXPECT_EQ(to_float(fp8_e4m3{0x01}), 0x1p-9f);      // smallest subnormal
  EXPECT_TRUE(std::isnan(to_float(fp8_e4m3{0x7F})));
  EXPECT_TRUE(std::isnan(to_float(fp8_e4m3{0xFF})));
  EXPECT_EQ(to_e4m3(1.0f + 0x1p-4f).bits, 0x38);     // tie 1.0 / 1.125 -> even
  EXPECT_EQ(to_e4m3(1.0f + 0x3p-4f).bits, 0x3A);     // tie 1.125 / 1.25 -> even
  EXPECT_EQ(to_e4m3(0x1p-10f).bits, 0x00);           // tie 0 / smallest subnormal -> 0
  EXPECT_EQ(to_e4m3(0x3p-10f).bits, 0x02);           // tie 1 / 2 quanta -> even
  EXPECT_EQ(to_e4m3(464.0f).bits, 0x7E);             // satfinite: no inf in e4m3
  EXPECT_EQ(to_e4m3(1e9f).bits, 0x7E);
  EXPECT_EQ(to_e4m3(-1e9f).bits, 0xFE);
  EXPECT_EQ(to_e4m3(std::numeric_limits<float>::infinity()).bits, 0x7E);
  EXPECT_EQ(to_e4m3(std::numeric_limits<float>::quiet_NaN()).bits, 0x7F);
  EXPECT_EQ(to_e4m3(-std::numeric_limits<float>::quiet_NaN()).bits, 0xFF);
}

TEST(DType, E5M2ExactValuesAndSaturation) {
  EXPECT_EQ(to_e5m2(1.0f).bits, 0x3C);
  EXPECT_EQ(to_e5m2(-2.0f).bits, 0xC0);
  EXPECT_EQ(to_e5m2(57344.0f).bits, 0x7B);
  EXPECT_EQ(to_float(fp8_e5m2{0x7B}), 57344.0f);     // largest finite
  EXPECT_EQ(to_float(fp8_e5m2{0x04}), 0x1p-14f);     // smallest normal
  EXPECT_EQ(to_float(fp8_e5m2{0x01}), 0x1p-16f);     // smallest subnormal
  EXPECT_TRUE(std::isinf(to_float(fp8_e5m2{0x7C})));
  EXPECT_TRUE(std::isnan(to_float(fp8_e5m2{0x7D})));
  EXPECT_EQ(to_e5m2(1.0f + 0x1p-3f).bits, 0x3C);     // tie 1.0 / 1.25 -> even
  EXPECT_EQ(to_e5m2(1.0f + 0x3p-3f).bits, 0x3E);     // tie 1.25 / 1.5 -> even
  EXPECT_EQ(to_e5m2(0x1p-17f).bits, 0x00);           // tie 0 / smallest subnormal -> 0
  EXPECT_EQ(to_e5m2(61440.0f).bits, 0x7B);           // max + half ulp saturates
  EXPECT_EQ(to_e5m2(std::numeric_limits<float>::infinity()).bits, 0x7B);
  EXPECT_EQ(to_e5m2(-std::numeric_limits<float>::infinity()).bits, 0xFB);
  const uint8_t nan_bits = to_e5m2(std::numeric_limits<float>::quiet_NaN()).bits;
  EXPECT_TRUE(std::isnan(to_float(fp8_e5m2{nan_bits})));
}

// Every code decodes to a value that encodes back to the same code. The only
// exceptions are the documented ones: NaN codes come back as some NaN of the
// same sign, and e5m2's +-inf saturate to +-max.
TEST(DType, EveryCodeRoundTrips) {
  for (const Format* f : kFormats) {
    const Oracle oracle(*f);
    const uint32_t max_code = oracle.codes[oracle.codes.size() - 2];
    int64_t exact = 0;
    for (uint32_t code = 0; code < (1u << f->bits); ++code) {
      const float v = f->decode(code);
      const uint32_t back = f->encode(v);
      const uint32_t sign = code & f->sign_bit();
      if (std::isnan(v)) {
        EXPECT_TRUE(is_nan_code(*f, back)) << f->name << " code " << code;
        EXPECT_EQ(back & f->sign_bit(), sign) << f->name << " code " << code;
      } else if (std::isinf(v) && f->saturates) {
        EXPECT_EQ(back, sign | max_code) << f->name << " code " << code;
      } else {
        EXPECT_EQ(back, code) << f->name << " code " << code << " value " << v;
        ++exact;
      }
    }
    EXPECT_GT(exact, (1 << f->bits) * 9 / 10) << f->name;
  }
}

// Every value, every midpoint between neighbours (the ties) and the floats on
// either side of each midpoint, positive and negative, against the oracle.
TEST(DType, EveryMidpointMatchesNearestEvenOracle) {
  for (const Format* f : kFormats) {
    const Oracle oracle(*f);
    std::vector<float> samples;
    for (size_t i = 0; i + 1 < oracle.values.size(); ++i) {
      const double lo = oracle.values[i], hi = oracle.values[i + 1], mid = (lo + hi) / 2;
      ASSERT_EQ(static_cast<double>(static_cast<float>(mid)), mid) << f->name << ": midpoint not a float";
      const float m = static_cast<float>(mid);
      for (float s : {static_cast<float>(lo), m, std::nextafter(m, 0.0f), std::nextafter(m, INFINITY)})
        samples.push_back(s);
    }
    samples.push_back(std::numeric_limits<float>::max());
    samples.push_back(std::numeric_limits<float>::infinity());
    samples.push_back(std::numeric_limits<float>::denorm_min());
    int64_t mismatches = 0;
    for (float s : samples) {
      for (float x : {s, -s}) {
        const uint32_t want = oracle.encode(*f, x), got = f->encode(x);
        if (want != got && ++mismatches <= 5)
          ADD_FAILURE() << f->name << ": " << x << " -> " << got << ", want " << want;
      }
    }
    EXPECT_EQ(mismatches, 0) << f->name << " over " << samples.size() << " samples";
  }
}

// Random floats of every magnitude against the oracle (bit patterns from a
// fixed multiplicative sequence, so the test is deterministic).
TEST(DType, RandomFloatsMatchNearestEvenOracle) {
  for (const Format* f : kFormats) {
    const Oracle oracle(*f);
    int64_t mismatches = 0;
    uint32_t state = 12345;
    for (int i = 0; i < 200000; ++i) {
      state = state * 1664525u + 1013904223u;
      const float x = std::bit_cast<float>(state);
      if (std::isnan(x)) continue;
      const uint32_t want = oracle.encode(*f, x), got = f->encode(x);
      if (want != got && ++mismatches <= 5) ADD_FAILURE() << f->name << ": " << x << " -> " << got << ", want " << want;
    }
    EXPECT_EQ(mismatches, 0) << f->name;
  }
}

#ifdef __FLT16_MAX__
// The compiler's own float -> _Float16 conversion (IEEE, round to nearest even)
// as a second, independent reference for f16, over a million spread floats.
TEST(DType, F16MatchesCompilerFloat16) {
  int64_t mismatches = 0;
  for (uint64_t pattern = 0; pattern < (1ull << 32); pattern += 4093) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(pattern));
    const _Float16 h = static_cast<_Float16>(x);
    uint16_t want;
    std::memcpy(&want, &h, sizeof want);
    const uint16_t got = to_f16(x).bits;
    const bool same = std::isnan(x) ? std::isnan(to_float(f16{got})) : got == want;
    if (!same && ++mismatches <= 5) ADD_FAILURE() << x << " -> " << got << ", compiler says " << want;
  }
  EXPECT_EQ(mismatches, 0);
}
#endif

}  // namespace
}  // namespace lumina
