// The vectorised exp of the CPU kernels (backend/cpu/simd.h): within 2 ulp of
// the correctly rounded exp over the whole normal range, exact special values.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "lumina/backend/cpu/simd.h"

namespace lumina::test {
namespace {

// Compiled like the kernels (multiversioned, vectorised), so the test checks
// the variant this machine runs.
LUMINA_CPU_CLONES void exp_many(float* out, const float* in, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = cpu::exp_approx(in[i]);
}

int64_t ulp_distance(float a, float b) {
  const auto ia = std::bit_cast<int32_t>(a), ib = std::bit_cast<int32_t>(b);
  return std::abs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));  // a, b > 0
}

TEST(CpuSimd, ExpWithinTwoUlp) {
  const int64_t n = 2'000'001;
  const double lo = -87.3, hi = 88.7;
  std::vector<float> in(static_cast<size_t>(n)), out(in.size());
  for (int64_t i = 0; i < n; ++i) in[static_cast<size_t>(i)] = static_cast<float>(lo + (hi - lo) * i / (n - 1));
  in[0] = 0.0f;
  in[1] = 1e-8f;
  in[2] = -0.34657359f;  // -ln2/2: edge of the reduced range
  exp_many(out.data(), in.data(), n);
  int64_t worst = 0;
  float worst_x = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float want = static_cast<float>(std::exp(static_cast<double>(in[static_cast<size_t>(i)])));
    const int64_t d = ulp_distance(out[static_cast<size_t>(i)], want);
    if (d > worst) {
      worst = d;
      worst_x = in[static_cast<size_t>(i)];
    }
  }
  EXPECT_LE(worst, 2) << "worst at x = " << worst_x;
  EXPECT_EQ(out[0], 1.0f);
}

TEST(CpuSimd, ExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> in = {-inf, -200.0f, -104.5f, 89.0f, inf, std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> out(in.size());
  exp_many(out.data(), in.data(), static_cast<int64_t>(in.size()));
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[3], inf);
  EXPECT_EQ(out[4], inf);
  EXPECT_TRUE(std::isnan(out[5]));
}

}  // namespace
}  // namespace lumina::test
