// Philox4x32-10 (core/rng.h): the published known-answer vectors, the counter
// layout that checkpoints depend on, determinism, and the statistics of the
// uniform and normal draws within stated bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lumina/core/rng.h"

namespace lumina {
namespace {

using Block = std::array<uint32_t, 4>;

// Known-answer vectors of Random123's kat_vectors file (Salmon et al. 2011),
// lines "philox4x32 10 <counter x4> <key x2> <expected x4>".
TEST(Philox, KnownAnswerAllZeros) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
}

TEST(Philox, KnownAnswerAllOnes) {
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
}

TEST(Philox, KnownAnswerPiDigits) {
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// Counter = (index lo, index hi, step lo, purpose ^ step hi), key = (seed lo,
// seed hi). Checkpoints store (seed, step) and rely on this layout to resume.
TEST(Rng, CounterLayoutIsStable) {
  const uint64_t seed = 0x0123456789ABCDEFull, step = 0x0000000500000007ull, index = 0x00000002FFFFFFF0ull;
  const Rng rng(seed, RngPurpose::dropout, step);
  const Block b = philox4x32_10({0xFFFFFFF0u, 0x2u, 0x7u, 3u ^ 0x5u}, {0x89ABCDEFu, 0x01234567u});
  EXPECT_EQ(rng.bits(index), b[0]);
}

TEST(Rng, SameInputsSameDraws) {
  const Rng a(42, RngPurpose::init, 7), b(42, RngPurpose::init, 7);
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(a.bits(i), b.bits(i));
    ASSERT_EQ(a.uniform(i), b.uniform(i));
    ASSERT_EQ(a.normal(i), b.normal(i));
  }
}

// Changing any of seed, purpose or step gives an unrelated stream.
TEST(Rng, StreamsAreSeparated) {
  const Rng base(42, RngPurpose::init, 7);
  const Rng others[] = {Rng(43, RngPurpose::init, 7), Rng(42, RngPurpose::dropout, 7), Rng(42, RngPurpose::init, 8),
                        Rng(42ull | (1ull << 40), RngPurpose::init, 7), Rng(42, RngPurpose::init, 7 | (1ull << 40))};
  for (const Rng& other : others) {
    int equal = 0;
    for (uint64_t i = 0; i < 1000; ++i) equal += base.bits(i) == other.bits(i);
    EXPECT_LE(equal, 1);  // expected number of 32-bit collisions in 1000 draws: 2.3e-7
  }
}

// Mean and variance of n draws, each checked to 5 standard errors.
struct Moments { double mean = 0, variance = 0; };
Moments moments(const std::vector<double>& x) {
  Moments m;
  for (double v : x) m.mean += v;
  m.mean /= static_cast<double>(x.size());
  for (double v : x) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= static_cast<double>(x.size() - 1);
  return m;
}

TEST(Rng, UniformIsInUnitIntervalWithRightMoments) {
  const Rng rng(1, RngPurpose::test, 0);
  const int64_t n = 1'000'000;
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = rng.uniform(static_cast<uint64_t>(i));
  for (double v : x) ASSERT_TRUE(v >= 0.0 && v < 1.0) << v;
  const Moments m = moments(x);
  const double dn = static_cast<double>(n);
  EXPECT_NEAR(m.mean, 0.5, 5 * std::sqrt(1.0 / 12 / dn));
  EXPECT_NEAR(m.variance, 1.0 / 12, 5 * std::sqrt(1.0 / 180 / dn));  // Var(s^2) ~ (mu4 - sigma^4) / n
}

TEST(Rng, NormalHasZeroMeanUnitVarianceAndGaussianShape) {
  const Rng rng(2, RngPurpose::test, 3);
  const int64_t n = 1'000'000;
  std::vector<double> x(static_cast<size_t>(n));
  int64_t within_one_sigma = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double z = rng.normal(static_cast<uint64_t>(i));
    x[static_cast<size_t>(i)] = z;
    within_one_sigma += std::fabs(z) < 1.0;
  }
  const Moments m = moments(x);
  const double dn = static_cast<double>(n);
  EXPECT_NEAR(m.mean, 0.0, 5 / std::sqrt(dn));
  EXPECT_NEAR(m.variance, 1.0, 5 * std::sqrt(2 / dn));
  const double p = std::erf(1 / std::sqrt(2.0));  // P(|z| < 1) = 0.6827
  EXPECT_NEAR(static_cast<double>(within_one_sigma) / dn, p, 5 * std::sqrt(p * (1 - p) / dn));
}

// fill_normal is normal(offset + i) scaled, identical whether the loop runs
// serially or in parallel (n > 65536 takes the OpenMP path).
TEST(Rng, FillNormalEqualsIndexedDraws) {
  const Rng rng(9, RngPurpose::init, 0);
  for (int64_t n : {int64_t{1000}, int64_t{100000}}) {
    std::vector<float> f(static_cast<size_t>(n));
    std::vector<double> d(static_cast<size_t>(n));
    rng.fill_normal(f.data(), n, 0.5, 0.02, 17);
    rng.fill_normal(d.data(), n, 0.5, 0.02, 17);
    for (int64_t i = 0; i < n; ++i) {
      const double want = 0.5 + 0.02 * rng.normal(17 + static_cast<uint64_t>(i));
      ASSERT_EQ(d[static_cast<size_t>(i)], want) << i;
      ASSERT_EQ(f[static_cast<size_t>(i)], static_cast<float>(want)) << i;
    }
  }
}

}  // namespace
}  // namespace lumina
