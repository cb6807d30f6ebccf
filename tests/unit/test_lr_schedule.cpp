#include <gtest/gtest.h>

#include <cmath>

#include "lumina/core/error.h"
#include "lumina/optim/lr_schedule.h"

namespace lumina {
namespace {

LrSchedule make(LrScheduleKind kind) {
  LrSchedule s;
  s.kind = kind;
  s.peak_lr = 1.0;
  s.min_lr = 0.1;
  s.warmup_steps = 10;
  s.total_steps = 110;
  s.decay_fraction = 0.2;
  return s;
}

TEST(LrSchedule, WarmupIsLinearFromOneStep) {
  const LrSchedule s = make(LrScheduleKind::cosine);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(4), 0.5);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 1.0);
}

TEST(LrSchedule, CosineEndpointsAndMidpoint) {
  const LrSchedule s = make(LrScheduleKind::cosine);
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1.0);
  EXPECT_NEAR(s.lr_at(60), 0.55, 1e-12);  // halfway: (peak + min) / 2
  EXPECT_NEAR(s.lr_at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.lr_at(500), 0.1, 1e-12);  // clamped past the end
}

TEST(LrSchedule, LinearConstantAndWsd) {
  EXPECT_NEAR(make(LrScheduleKind::linear).lr_at(60), 0.55, 1e-12);
  EXPECT_NEAR(make(LrScheduleKind::linear).lr_at(110), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(make(LrScheduleKind::constant).lr_at(100), 1.0);
  const LrSchedule wsd = make(LrScheduleKind::wsd);
  EXPECT_DOUBLE_EQ(wsd.lr_at(80), 1.0);           // p = 0.7: still stable
  EXPECT_NEAR(wsd.lr_at(100), 0.55, 1e-12);       // p = 0.9: halfway through the decay
  EXPECT_NEAR(wsd.lr_at(110), 0.1, 1e-12);
}

TEST(LrSchedule, WarmupFromFractionAndErrors) {
  EXPECT_EQ(resolve_warmup_steps(0, 0.1, 200), 20);
  EXPECT_EQ(resolve_warmup_steps(5, 0.1, 200), 5);
  EXPECT_THROW(lr_schedule_from_string("cosin"), Error);
}

}  // namespace
}  // namespace lumina
