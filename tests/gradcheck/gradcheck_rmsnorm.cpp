// rmsnorm: y = x rstd w; dx ACCUMULATES (+=), dw accumulates (+=).
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, RmsnormDxDwAccumulate) {
  auto backend = make_cpu_backend();
  const int64_t channels = 12;
  const double eps = 1e-5;
  HostTensor x = random_normal(DType::f64, Shape{2, 3, channels}, 1);
  HostTensor w = random_normal(DType::f64, Shape{channels}, 2, 0.3, 1.0);
  HostTensor r = random_normal(DType::f64, Shape{2, 3, channels}, 3);
  HostTensor y(DType::f64, x.t().shape), rstd(DType::f64, Shape{6});
  auto forward = [&] { backend->rmsnorm_forward(y, rstd, x, w, eps); };
  forward();

  const HostTensor dx0 = random_normal(DType::f64, x.t().shape, 4);
  const HostTensor dw0 = random_normal(DType::f64, w.t().shape, 5);
  HostTensor dx = dx0, dw = dw0;
  backend->rmsnorm_backward(dx, dw, r, x, w, rstd);
  HostTensor gx = dx, gw = dw;  // the gradients: what the call added
  backend->axpy(gx, dx0, -1.0);
  backend->axpy(gw, dw0, -1.0);

  const GradcheckOptions o;
  const GradcheckReport rx = check_gradient(x, gx, forward, {{y, r}}, o);
  EXPECT_TRUE(rx.passed(o)) << "dx: " << rx.str();
  const GradcheckReport rw = check_gradient(w, gw, forward, {{y, r}}, o);
  EXPECT_TRUE(rw.passed(o)) << "dw: " << rw.str();

  // A second call adds the same gradients again.
  backend->rmsnorm_backward(dx, dw, r, x, w, rstd);
  for (int64_t i = 0; i < dx.numel(); ++i) EXPECT_NEAR(dx.get(i), dx0.get(i) + 2.0 * gx.get(i), 1e-12);
  for (int64_t i = 0; i < dw.numel(); ++i) EXPECT_NEAR(dw.get(i), dw0.get(i) + 2.0 * gw.get(i), 1e-12);
}

}  // namespace
}  // namespace lumina::test
