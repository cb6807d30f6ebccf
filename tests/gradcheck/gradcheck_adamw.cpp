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
    backend->adamw_update(p, g, m, v, h, Tensor{});
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

// The optional copy of the updated weights (the model's compute weights) is
// exactly cast(copy, param) after the update, in every float dtype.
TEST(Gradcheck, AdamwCopyIsTheCastOfTheUpdatedParam) {
  auto backend = make_cpu_backend();
  const Shape shape{53};
  AdamWParams h;
  h.lr = 1e-2;
  h.weight_decay = 0.1;
  for (DType copy_dtype : {DType::bf16, DType::f16, DType::f32}) {
    SCOPED_TRACE(dtype_name(copy_dtype));
    HostTensor p = random_normal(DType::f32, shape, 3), g = random_normal(DType::f32, shape, 4);
    HostTensor m(DType::f32, shape), v(DType::f32, shape), copy(copy_dtype, shape), cast(copy_dtype, shape);
    const std::vector<double> before = p.values();
    backend->adamw_update(p, g, m, v, h, copy);
    EXPECT_NE(p.values(), before);
    backend->cast(cast, p);
    EXPECT_TRUE(copy.bitwise_equal(cast));
  }
}

}  // namespace
}  // namespace lumina::test
