#pragma once
// Central differences of a scalar over sampled elements of one f64 tensor
// against its analytic gradient: shared by the whole-model (dense, MoE) and
// MoD gradchecks, which sample every parameter tensor of a model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "lumina/core/rng.h"
#include "lumina/core/tensor.h"

namespace lumina::test {

struct SampledGradcheck {
  double step = 1e-5;           // central-difference step
  double max_rel_error = 1e-6;  // |analytic - numeric| / max(|analytic|, |numeric|, floor)
  double floor = 1e-4;          // gradients below this are compared absolutely at this scale
};

// Compares analytic[i] with (scalar() at value[i] + h - scalar() at value[i] - h) / 2h
// for `samples` elements i of value: all of them when samples >= numel, else
// pick.bits(first_draw + s) % numel for s < samples. `unchanged`, when set, must
// hold after every evaluation (routing decisions that a step must not flip).
// Expects a non-zero gradient. Returns the worst relative error.
inline double check_sampled_gradient(const std::string& name, Tensor value, const Tensor& analytic,
                                     const std::function<double()>& scalar, const std::function<bool()>& unchanged,
                                     const Rng& pick, uint64_t first_draw, int samples,
                                     const SampledGradcheck& o = SampledGradcheck{}) {
  double* v = value.ptr<double>();
  const double* g = analytic.ptr<double>();
  const int64_t n = value.numel();
  double norm = 0.0;
  for (int64_t i = 0; i < n; ++i) norm += g[i] * g[i];
  EXPECT_GT(norm, 0.0) << name << " received no gradient";
  double worst = 0.0;
  for (int s = 0; s < std::min<int64_t>(samples, n); ++s) {
    const int64_t i = samples >= n ? s
                                   : static_cast<int64_t>(pick.bits(first_draw + static_cast<uint64_t>(s)) %
                                                          static_cast<uint64_t>(n));
    const double saved = v[i];
    v[i] = saved + o.step;
    const double up = scalar();
    const bool same_up = !unchanged || unchanged();
    v[i] = saved - o.step;
    const double down = scalar();
    const bool same_down = !unchanged || unchanged();
    v[i] = saved;
    EXPECT_TRUE(same_up && same_down) << name << "[" << i << "]: +-h changed the routing; pick another seed";
    if (!(same_up && same_down)) return worst;
    const double numeric = (up - down) / (2 * o.step);
    const double rel = std::fabs(g[i] - numeric) / std::max({std::fabs(g[i]), std::fabs(numeric), o.floor});
    worst = std::max(worst, rel);
    EXPECT_LE(rel, o.max_rel_error) << name << "[" << i << "]: analytic " << g[i] << " numeric " << numeric;
  }
  return worst;
}

}  // namespace lumina::test
