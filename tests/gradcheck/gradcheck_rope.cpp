// rope: in-place rotation; rope_backward applies the transpose rotation.
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, RopeWithPositionOffset) {
  auto backend = make_cpu_backend();
  const int64_t batch = 2, seq = 3, heads = 2, head_dim = 8, offset = 2;
  auto [cos, sin] = rope_tables(DType::f64, offset + seq + 1, head_dim);
  HostTensor x = random_normal(DType::f64, Shape{batch, seq, heads, head_dim}, 1);
  HostTensor r = random_normal(DType::f64, x.t().shape, 2);
  HostTensor y(DType::f64, x.t().shape);
  auto forward = [&] {
    backend->copy(y, x);
    backend->rope_forward(y, cos, sin, offset);
  };
  HostTensor dx = r;
  backend->rope_backward(dx, cos, sin, offset);
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(x, dx, forward, {{y, r}}, o);
  EXPECT_TRUE(rep.passed(o)) << rep.str();
}

}  // namespace
}  // namespace lumina::test
