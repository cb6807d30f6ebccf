#include "lumina/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "lumina/core/error.h"

namespace lumina {

LrScheduleKind lr_schedule_from_string(const std::string& name) {
  if (name == "cosine") return LrScheduleKind::cosine;
  if (name == "linear") return LrScheduleKind::linear;
  if (name == "constant") return LrScheduleKind::constant;
  if (name == "wsd") return LrScheduleKind::wsd;
  fail("unknown lr schedule '{}': use cosine, linear, constant or wsd", name);
}

double LrSchedule::lr_at(int64_t step) const {
  if (step < warmup_steps) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const int64_t decay_steps = std::max<int64_t>(total_steps - warmup_steps, 1);
  const double p = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  switch (kind) {
    case LrScheduleKind::cosine:
      return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
    case LrScheduleKind::linear:
      return peak_lr + (min_lr - peak_lr) * p;
    case LrScheduleKind::constant:
      return peak_lr;
    case LrScheduleKind::wsd: {
      const double stable = 1.0 - decay_fraction;
      if (p <= stable) return peak_lr;
      return peak_lr + (min_lr - peak_lr) * (p - stable) / std::max(decay_fraction, 1e-12);
    }
  }
  return peak_lr;
}

int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_fraction, int64_t total_steps) {
  if (warmup_steps > 0) return std::min(warmup_steps, total_steps);
  return static_cast<int64_t>(std::llround(warmup_fraction * static_cast<double>(total_steps)));
}

}  // namespace lumina
