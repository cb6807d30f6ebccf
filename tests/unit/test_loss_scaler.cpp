#include <gtest/gtest.h>

#include <limits>

#include "lumina/core/error.h"
#include "lumina/optim/loss_scaler.h"

namespace lumina {
namespace {

TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterWindow) {
  DynamicLossScaler s(65536.0, 2.0, 3, 1.0);
  EXPECT_FALSE(s.update(std::numeric_limits<double>::infinity()));
  EXPECT_DOUBLE_EQ(s.scale(), 32768.0);
  EXPECT_FALSE(s.update(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_DOUBLE_EQ(s.scale(), 16384.0);
  EXPECT_EQ(s.skipped_steps(), 2);
  EXPECT_TRUE(s.update(1.0));
  EXPECT_TRUE(s.update(1.0));
  EXPECT_DOUBLE_EQ(s.scale(), 16384.0);  // two clean steps: not yet
  EXPECT_TRUE(s.update(1.0));
  EXPECT_DOUBLE_EQ(s.scale(), 32768.0);  // the third: doubled
  EXPECT_TRUE(s.update(1.0));
  EXPECT_FALSE(s.update(std::numeric_limits<double>::infinity()));  // an overflow restarts the window
  EXPECT_TRUE(s.update(1.0));
  EXPECT_TRUE(s.update(1.0));
  EXPECT_DOUBLE_EQ(s.scale(), 16384.0);
}

TEST(LossScaler, NeverBelowMinimumAndStateRoundTrips) {
  DynamicLossScaler s(4.0, 2.0, 2000, 1.0);
  for (int i = 0; i < 5; ++i) s.update(std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(s.scale(), 1.0);
  s.update(1.0);
  DynamicLossScaler restored(65536.0, 2.0, 2000, 1.0);
  restored.load_state(s.state());
  EXPECT_EQ(restored.state(), s.state());
  EXPECT_THROW(DynamicLossScaler(0.0, 2.0, 10, 1.0), Error);
}

}  // namespace
}  // namespace lumina
