#pragma once
// Dynamic loss scaling for fp16 training (Micikevicius et al., "Mixed Precision
// Training", 2018): the loss gradient is multiplied by `scale` so that small
// gradients survive fp16; the optimizer divides it back out. A step whose
// gradients overflowed (non-finite norm) is skipped and the scale divided by
// `factor` (never below min_scale); after `window` clean steps in a row it is
// multiplied by `factor`. Defaults: 2^16, x2, 2000 steps.
#include <cstdint>

#include <nlohmann/json.hpp>

namespace lumina {

class DynamicLossScaler {
 public:
  DynamicLossScaler(double init_scale, double factor, int64_t window, double min_scale);

  double scale() const { return scale_; }
  // Call once per optimizer step with the global norm of the *scaled*
  // gradients. Returns true when the step may be applied; false: skip it.
  bool update(double scaled_grad_norm);
  int64_t skipped_steps() const { return skipped_; }

  // For checkpoints: {"scale", "clean_steps", "skipped_steps"}.
  nlohmann::json state() const;
  void load_state(const nlohmann::json& j);

 private:
  double scale_, factor_, min_scale_;
  int64_t window_;
  int64_t clean_steps_ = 0;  // consecutive steps without overflow
  int64_t skipped_ = 0;
};

}  // namespace lumina
