// adamw_update against a hand-written f64 AdamW over several steps (no finite
// differences: the update is not a gradient).
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, AdamwMatchesF64Formula) {
  auto backend = make_cpu_backend();
  const Shape shape{37};
  HostTensor p = random_normal(DType::f64, shape, 1);
  HostTensor m(DType::f64, shape), v(DType::f64, shape);
  std::vector<double> ep = p.values(), em(37, 0.0), ev(37, 0.0);
  AdamWParams h;
  h.lr = 1e-2;
  h.beta1 = 0.8;
  h.beta2 = 0.9;
  h.eps = 1e-6;
  h.weight_decay = 0.1;
  h.grad_scale = 0.5;
  for (int64_t step = 1; step <= 4; ++step) {
    h.step = step;
    HostTensor g = random_normal(DType::f64, shape, 10 + static_cast<uint64_t>(step));
    backend->adamw_update(p, g, m, v, h);
    for (size_t i = 0; i < ep.size(); ++i) {
      const double gi = g.get(static_cast<int64_t>(i)) * h.grad_scale;
      em[i] = h.beta1 * em[i] + (1 - h.beta1) * gi;
      ev[i] = h.beta2 * ev[i] + (1 - h.beta2) * gi * gi;
      const double mhat = em[i] / (1 - std::pow(h.beta1, step));
      const double vhat = ev[i] / (1 - std::pow(h.beta2, step));
      ep[i] -= h.lr * (mhat / (std::sqrt(vhat) + h.eps) + h.weight_decay * ep[i]);
    }
  }
  for (size_t i = 0; i < ep.size(); ++i) {
    const auto n = static_cast<int64_t>(i);
    EXPECT_NEAR(p.get(n), ep[i], 1e-13 * std::max(1.0, std::fabs(ep[i]))) << "param " << i;
    EXPECT_NEAR(m.get(n), em[i], 1e-14) << "m " << i;
    EXPECT_NEAR(v.get(n), ev[i], 1e-14) << "v " << i;
  }
}

}  // namespace
}  // namespace lumina::test
