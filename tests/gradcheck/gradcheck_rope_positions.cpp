// rope_positions: in-place rotation of each token by the angles of its own
// position (gapped, as MoD routing produces them); rope_positions_backward
// applies the transpose rotation.
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, RopeWithPerTokenPositions) {
  auto backend = make_cpu_backend();
  const int64_t batch = 2, seq = 3, heads = 2, head_dim = 8, table_rows = 12;
  auto [cos, sin] = rope_tables(DType::f64, table_rows, head_dim);
  HostTensor positions(DType::i32, Shape{batch * seq});
  const int32_t pos[] = {0, 4, 11, 2, 3, 7};
  for (int64_t i = 0; i < batch * seq; ++i) positions.set(i, pos[i]);
  HostTensor x = random_normal(DType::f64, Shape{batch, seq, heads, head_dim}, 3);
  HostTensor r = random_normal(DType::f64, x.t().shape, 4);
  HostTensor y(DType::f64, x.t().shape);
  auto forward = [&] {
    backend->copy(y, x);
    backend->rope_positions_forward(y, cos, sin, positions);
  };
  HostTensor dx = r;
  backend->rope_positions_backward(dx, cos, sin, positions);
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(x, dx, forward, {{y, r}}, o);
  EXPECT_TRUE(rep.passed(o)) << rep.str();
}

}  // namespace
}  // namespace lumina::test
