#include "lumina/optim/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "lumina/core/error.h"

namespace lumina {

DynamicLossScaler::DynamicLossScaler(double init_scale, double factor, int64_t window, double min_scale)
    : scale_(init_scale), factor_(factor), min_scale_(min_scale), window_(window) {
  LUMINA_CHECK(init_scale > 0 && factor > 1 && window >= 1 && min_scale > 0,
               "loss scaling: init_scale {} and min_scale {} must be > 0, scale_factor {} > 1, scale_window {} >= 1",
               init_scale, min_scale, factor, window);
}

bool DynamicLossScaler::update(double scaled_grad_norm) {
  if (!std::isfinite(scaled_grad_norm)) {
    scale_ = std::max(min_scale_, scale_ / factor_);
    clean_steps_ = 0;
    skipped_ += 1;
    return false;
  }
  if (++clean_steps_ >= window_) {
    scale_ *= factor_;
    clean_steps_ = 0;
  }
  return true;
}

nlohmann::json DynamicLossScaler::state() const {
  return {{"scale", scale_}, {"clean_steps", clean_steps_}, {"skipped_steps", skipped_}};
}

void DynamicLossScaler::load_state(const nlohmann::json& j) {
  scale_ = j.at("scale").get<double>();
  clean_steps_ = j.at("clean_steps").get<int64_t>();
  skipped_ = j.at("skipped_steps").get<int64_t>();
}

}  // namespace lumina
