// swiglu: out = silu(gate) * up; dgate, dup overwritten. The packed ops: gate
// and up are the two halves of each row of one (N, 2F) tensor.
#include <gtest/gtest.h>

#include <limits>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, Swiglu) {
  auto backend = make_cpu_backend();
  const Shape shape{3, 7};
  HostTensor gate = random_normal(DType::f64, shape, 1, 2.0);
  HostTensor up = random_normal(DType::f64, shape, 2);
  HostTensor r = random_normal(DType::f64, shape, 3);
  HostTensor out(DType::f64, shape);
  auto forward = [&] { backend->swiglu_forward(out, gate, up); };
  // Overwritten, not accumulated: start from NaN.
  HostTensor dgate = filled(DType::f64, shape, std::numeric_limits<double>::quiet_NaN());
  HostTensor dup = filled(DType::f64, shape, std::numeric_limits<double>::quiet_NaN());
  backend->swiglu_backward(dgate, dup, r, gate, up);
  const GradcheckOptions o;
  const GradcheckReport rg = check_gradient(gate, dgate, forward, {{out, r}}, o);
  EXPECT_TRUE(rg.passed(o)) << "dgate: " << rg.str();
  const GradcheckReport ru = check_gradient(up, dup, forward, {{out, r}}, o);
  EXPECT_TRUE(ru.passed(o)) << "dup: " << ru.str();
}

TEST(Gradcheck, SwigluPackedRows) {
  auto backend = make_cpu_backend();
  const Shape packed{3, 14}, half{3, 7};
  HostTensor gate_up = random_normal(DType::f64, packed, 4, 2.0);
  HostTensor r = random_normal(DType::f64, half, 5);
  HostTensor out(DType::f64, half);
  auto forward = [&] { backend->swiglu_packed_forward(out, gate_up); };
  HostTensor dgate_up = filled(DType::f64, packed, std::numeric_limits<double>::quiet_NaN());
  backend->swiglu_packed_backward(dgate_up, r, gate_up);
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(gate_up, dgate_up, forward, {{out, r}}, o);
  EXPECT_TRUE(rep.passed(o)) << rep.str();
}

}  // namespace
}  // namespace lumina::test
