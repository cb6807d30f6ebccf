#pragma once
// Learning-rate schedules: linear warmup to peak_lr, then
//   cosine:   min_lr + (peak - min_lr) * (1 + cos(pi * p)) / 2
//   linear:   peak + (min_lr - peak) * p
//   constant: peak
//   wsd:      peak until the decay phase (the last decay_fraction of the steps
//             after warmup), then linear to min_lr (warmup-stable-decay)
// where p in [0, 1] is the progress through the steps after warmup.
#include <cstdint>
#include <string>

namespace lumina {

enum class LrScheduleKind { cosine, linear, constant, wsd };
LrScheduleKind lr_schedule_from_string(const std::string& name);  // throws on unknown names

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::cosine;
  double peak_lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double decay_fraction = 0.2;  // wsd only

  // Learning rate for optimizer step `step` (0-based).
  double lr_at(int64_t step) const;
};

// Warmup in steps from either an absolute count or a fraction of the total (the
// count wins when both are set).
int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_fraction, int64_t total_steps);

}  // namespace lumina
