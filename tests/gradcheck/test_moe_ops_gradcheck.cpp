// fp64 finite differences of the MoE backend ops (gradcheck.h).
// Router: moe_router_backward's dlogits against the scalar
//   L = sum_{n,j kept} dweight_{n,j} weight_{n,j} + aux_coef sum_e assigned_e sum_n probs_{n,e}
//       + z_coef / 2 sum_n lse_n^2,
// written as weighted forward outputs: weight with R = dweight at kept slots (0 at
// dropped ones), sums with R = [aux_coef assigned_e ..., 0 (entropy), z_coef / 2].
// The choice, assignment and capacity decisions are held fixed; the logits are
// chosen with no near-ties (every forward asserts that the choice is unchanged).
// Combine: d out / d y through moe_combine_backward's dy and d out / d weight
// through its dweight, with a dropped slot and alignment padding rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

HostTensor int_tensor(Shape s, const std::vector<int32_t>& v) {
  HostTensor t(DType::i32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, v[static_cast<size_t>(i)]);
  return t;
}

// Smallest gap between probabilities that decide the top-k (the k-th and (k+1)-th
// largest of each token, and neighbours within the top k) over the available experts.
double min_topk_gap(const HostTensor& probs, const std::vector<int32_t>& available, int64_t k) {
  const int64_t N = probs.t().dim(0), E = probs.t().dim(1);
  double gap = INFINITY;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> p;
    for (int64_t e = 0; e < E; ++e)
      if (available[static_cast<size_t>(e)]) p.push_back(probs.get(n * E + e));
    std::sort(p.rbegin(), p.rend());
    for (int64_t j = 0; j < k && j + 1 < static_cast<int64_t>(p.size()); ++j)
      gap = std::min(gap, p[static_cast<size_t>(j)] - p[static_cast<size_t>(j + 1)]);
  }
  return gap;
}

TEST(Gradcheck, MoeRouterBackward) {
  const int64_t N = 6, E = 5, k = 2;
  const double inv_temperature = 1.0 / 0.7, aux_coef = 0.37, z_coef = 0.21;
  auto be = make_cpu_backend();
  const std::vector<int32_t> available_values = {1, 1, 0, 1, 1};
  const HostTensor available = int_tensor(Shape{E}, available_values);
  HostTensor logits = random_normal(DType::f64, Shape{N, E}, 41, 1.5);
  const HostTensor noise = random_normal(DType::f64, Shape{N, E}, 42, 0.3);
  HostTensor probs(DType::f64, Shape{N, E}), lse(DType::f64, Shape{N}), weight(DType::f64, Shape{N, k});
  HostTensor choice(DType::i32, Shape{N, k}), sums(DType::f64, Shape{E + 2});
  auto route = [&] {
    be->moe_router_forward(probs, lse, choice, weight, sums, logits, noise, available, inv_temperature);
  };
  route();
  ASSERT_GT(min_topk_gap(probs, available_values, k), 1e-3) << "pick logits without near-ties";
  const HostTensor fixed_choice = choice;
  auto forward = [&] {
    route();
    ASSERT_TRUE(choice.bitwise_equal(fixed_choice)) << "a finite-difference step changed the top-k choice";
  };

  // Capacity 2 over N*k = 12 assignments drops some; slot_row and assigned stay fixed.
  HostTensor slot_row(DType::i32, Shape{N * k}), row_token(DType::i32, Shape{N * k});
  HostTensor group_begin(DType::i32, Shape{E + 1}), assigned(DType::i32, Shape{E});
  be->moe_dispatch(slot_row, row_token, group_begin, assigned, choice, 2, 1, 0);
  const HostTensor dweight = random_normal(DType::f64, Shape{N, k}, 43);
  HostTensor r_weight(DType::f64, Shape{N, k}), r_sums = filled(DType::f64, Shape{E + 2}, 0.0);
  int64_t dropped = 0;
  for (int64_t s = 0; s < N * k; ++s) {
    const bool kept = slot_row.get(s) >= 0;
    dropped += kept ? 0 : 1;
    r_weight.set(s, kept ? dweight.get(s) : 0.0);
  }
  ASSERT_GT(dropped, 0);
  for (int64_t e = 0; e < E; ++e) r_sums.set(e, aux_coef * assigned.get(e));
  r_sums.set(E + 1, z_coef / 2.0);

  HostTensor dlogits = filled(DType::f64, Shape{N, E}, kNaN);
  be->moe_router_backward(dlogits, probs, lse, choice, weight, slot_row, dweight, assigned, inv_temperature, aux_coef,
                          z_coef);
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(logits, dlogits, forward, {{weight, r_weight}, {sums, r_sums}}, o);
  EXPECT_TRUE(rep.passed(o)) << "dlogits: " << rep.str();
  for (int64_t n = 0; n < N; ++n) EXPECT_EQ(dlogits.get(n * E + 2), 0.0) << "unavailable expert, token " << n;
}

TEST(Gradcheck, MoeCombine) {
  // 4 tokens, top-2, 3 experts, capacity 2, row_align 4: dropped slots and padding rows.
  const int64_t N = 4, k = 2, E = 3, C = 5, R = N * k + E * (4 - 1);
  auto be = make_cpu_backend();
  const HostTensor choice = int_tensor(Shape{N, k}, {0, 1, 0, 2, 0, 1, 1, 2});
  HostTensor slot_row(DType::i32, Shape{N * k}), row_token(DType::i32, Shape{R});
  HostTensor group_begin(DType::i32, Shape{E + 1}), assigned(DType::i32, Shape{E});
  be->moe_dispatch(slot_row, row_token, group_begin, assigned, choice, 2, 4, 0);
  ASSERT_EQ(slot_row.get(4), -1);   // expert 0's third assignment is dropped
  ASSERT_EQ(row_token.get(2), -1);  // expert 0 fills rows 0 and 1 of its 4

  HostTensor y = random_normal(DType::f64, Shape{R, C}, 51);
  HostTensor weight = random_normal(DType::f64, Shape{N, k}, 52, 0.5, 0.5);
  const HostTensor r = random_normal(DType::f64, Shape{N, C}, 53);
  HostTensor out(DType::f64, Shape{N, C});
  auto forward = [&] { be->moe_combine(out, y, slot_row, weight, false); };
  HostTensor dy = filled(DType::f64, Shape{R, C}, kNaN), dweight = filled(DType::f64, Shape{N, k}, kNaN);
  be->moe_combine_backward(dy, dweight, r, y, slot_row, weight, row_token);
  const GradcheckOptions o;
  const GradcheckReport ry = check_gradient(y, dy, forward, {{out, r}}, o);
  EXPECT_TRUE(ry.passed(o)) << "dy: " << ry.str();
  const GradcheckReport rw = check_gradient(weight, dweight, forward, {{out, r}}, o);
  EXPECT_TRUE(rw.passed(o)) << "dweight: " << rw.str();
  EXPECT_EQ(dweight.get(4), 0.0);
}

}  // namespace
}  // namespace lumina::test
