// fp64 finite differences of the Mixture-of-Depths backend ops (gradcheck.h),
// composed as a MoD layer does with a block that adds z to its input:
//   select (mod_select_top_k) -> xs = x[rows] (moe_gather) -> ys = xs + z
//   -> out = x + [routed] sigmoid(s) (ys - x)   (mod_combine)
// so out_n = x_n + g_n z_i for routed n (compact row i). Backward: moe_combine_backward
// (dys = g dout, dgate), d xs = dys through the identity block, mod_input_backward (dx,
// d scores; its router term dscores * w: test_cpu_mod_ops and the MoD block gradcheck). Checked: d/dx,
// d/dz (= dys) and d/d scores (the gate's sigmoid), with the selection held fixed
// (scores well apart, asserted on every forward).
// Predictor: mod_predictor's dpred against its own summed BCE.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(Gradcheck, ModCombineThroughSelectionAndInputBackward) {
  const int64_t B = 2, T = 5, k = 3, C = 4, N = B * T, R = B * k;
  auto be = make_cpu_backend();
  // Scores 0.4 apart within each sequence (a shuffled ramp): steps of 1e-6 cannot reorder them.
  HostTensor scores(DType::f64, Shape{B, T});
  const double ramp[N] = {0.8, -0.4, 0.4, 0.0, -0.8, -0.2, 0.6, 0.2, -0.6, 1.0};
  for (int64_t n = 0; n < N; ++n) scores.set(n, ramp[n]);
  HostTensor x = random_normal(DType::f64, Shape{N, C}, 61);
  HostTensor z = random_normal(DType::f64, Shape{R, C}, 62);
  HostTensor row_token(DType::i32, Shape{B, k}), positions(DType::i32, Shape{B, k});
  HostTensor slot_row(DType::i32, Shape{N}), gate(DType::f64, Shape{N});
  HostTensor xs(DType::f64, Shape{R, C}), ys(DType::f64, Shape{R, C}), delta(DType::f64, Shape{R, C});
  HostTensor out(DType::f64, Shape{N, C});
  const Tensor rows = row_token.t().view(Shape{R}), gate_nk = gate.t().view(Shape{N, 1});
  auto forward = [&] {
    be->mod_select_top_k(row_token, positions, slot_row, gate, scores, k);
    be->moe_gather(xs, x, rows);
    be->copy(ys, xs);
    be->axpy(ys, z);          // block(xs) = xs + z
    be->mod_combine(out, delta, x, ys, slot_row, gate);
  };
  forward();
  const HostTensor fixed_rows = row_token;
  // Top 3 of sequence 0: t = 0, 2, 3; of sequence 1: t = 1, 2, 4.
  for (int64_t i = 0; i < R; ++i) EXPECT_EQ(row_token.get(i), (std::vector<int>{0, 2, 3, 6, 7, 9}[i]));
  auto checked_forward = [&] {
    forward();
    ASSERT_TRUE(row_token.bitwise_equal(fixed_rows)) << "a finite-difference step changed the selection";
  };

  const HostTensor dout = random_normal(DType::f64, Shape{N, C}, 63);
  HostTensor dys = filled(DType::f64, Shape{R, C}, kNaN), dgate = filled(DType::f64, Shape{N}, kNaN);
  be->moe_combine_backward(dys, dgate.t().view(Shape{N, 1}), dout, delta, slot_row, gate_nk, rows);
  HostTensor dx = dout, dscores = filled(DType::f64, Shape{N}, kNaN);
  const HostTensor no_router = filled(DType::f64, Shape{C}, 0.0);  // w = 0: no router term in dx here
  be->mod_input_backward(dx, dscores, dys, dgate, slot_row, gate, no_router);  // d xs = dys (identity block)

  const GradcheckOptions o;
  const GradcheckReport rx = check_gradient(x, dx, checked_forward, {{out, dout}}, o);
  EXPECT_TRUE(rx.passed(o)) << "dx: " << rx.str();
  const GradcheckReport rz = check_gradient(z, dys, checked_forward, {{out, dout}}, o);
  EXPECT_TRUE(rz.passed(o)) << "dz: " << rz.str();
  HostTensor dscores_bt(DType::f64, Shape{B, T});
  for (int64_t n = 0; n < N; ++n) dscores_bt.set(n, dscores.get(n));
  const GradcheckReport rs = check_gradient(scores, dscores_bt, checked_forward, {{out, dout}}, o);
  EXPECT_TRUE(rs.passed(o)) << "dscores: " << rs.str();
  for (int64_t n = 0; n < N; ++n)
    if (slot_row.get(n) < 0) EXPECT_EQ(dscores.get(n), 0.0) << "token " << n << " was not routed";
}

TEST(Gradcheck, ModPredictor) {
  const int64_t N = 9;
  const double scale = 0.37;
  auto be = make_cpu_backend();
  HostTensor pred = random_normal(DType::f64, Shape{N}, 64, 2.0);
  HostTensor slot_row(DType::i32, Shape{N});
  for (int64_t n = 0; n < N; ++n) slot_row.set(n, n % 3 == 0 ? -1 : n);
  HostTensor sums(DType::f64, Shape{2});
  auto forward = [&] { be->mod_predictor(Tensor(), sums, pred, slot_row, 0.0); };
  HostTensor dpred = filled(DType::f64, Shape{N}, kNaN);
  be->mod_predictor(dpred, Tensor(), pred, slot_row, scale);
  HostTensor r_sums(DType::f64, Shape{2});
  r_sums.set(0, scale);  // L = scale * sum BCE; the agreement count has no gradient
  r_sums.set(1, 0.0);
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(pred, dpred, forward, {{sums, r_sums}}, o);
  EXPECT_TRUE(rep.passed(o)) << "dpred: " << rep.str();
}

}  // namespace
}  // namespace lumina::test
