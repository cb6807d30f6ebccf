// MoE routing math on hand-computed cases, and the MoE layer's forward
// against a naive per-token loop over experts in f64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "lumina/core/rng.h"
#include "lumina/model/moe.h"

namespace lumina {
namespace {

MoeRoutingParams params(int64_t E, int64_t k, double cf, bool dropless) {
  MoeRoutingParams p;
  p.num_experts = E;
  p.top_k = k;
  p.capacity_factor = cf;
  p.dropless = dropless;
  return p;
}

// 3 tokens, 2 experts, top-1, T = 2 (logits are 2x those below, so the tempered logits are):
//   token 0: s = [ln 3, 0] -> p = [3/4, 1/4] -> expert 0
//   token 1: s = [0, ln 4] -> p = [1/5, 4/5] -> expert 1
//   token 2: s = [ln 9, 0] -> p = [9/10, 1/10] -> expert 0
// f = [2/3, 1/3];  P = [(0.75 + 0.2 + 0.9) / 3, (0.25 + 0.8 + 0.1) / 3] = [1.85/3, 1.15/3]
// aux = lbw * E * sum f P = 0.01 * 2 * (2/3 * 1.85/3 + 1/3 * 1.15/3) = 0.02 * 4.85/9 = 0.0107777...
// lse = [ln 4, ln 5, ln 10];  z = zw * (ln^2 4 + ln^2 5 + ln^2 10) / 3 = 0.1 * (1.921812 + 2.590290 + 5.301898) / 3
//     = 0.3271333...
// entropy = mean of -(p ln p) sums: token 0 0.562335, token 1 0.500402, token 2 0.325083 -> 0.462607.
TEST(MoeRouting, AuxZLossAndEntropyMatchHandComputedCase) {
  const std::vector<double> logits = {2 * std::log(3.0), 0.0, 0.0, 2 * std::log(4.0), 2 * std::log(9.0), 0.0};
  MoeRoutingParams p = params(2, 1, 10.0, false);
  p.temperature = 2.0;
  p.load_balancing_weight = 0.01;
  p.z_loss_weight = 0.1;
  MoeRouting r;
  moe_route(logits.data(), 3, p, nullptr, r);
  EXPECT_EQ(r.choice, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_NEAR(r.probs[0], 0.75, 1e-15);
  EXPECT_NEAR(r.probs[3], 0.8, 1e-15);
  EXPECT_NEAR(r.stats.aux_loss, 0.02 * 4.85 / 9.0, 1e-15);
  EXPECT_NEAR(r.stats.aux_loss, 0.0107777778, 1e-10);
  EXPECT_NEAR(r.stats.z_loss, 0.3271333, 1e-6);
  EXPECT_NEAR(r.stats.routing_entropy, 0.462607, 1e-6);
  EXPECT_NEAR(r.stats.expert_utilization[0], 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(r.stats.expert_utilization[1], 1.0 / 3.0, 1e-15);
  EXPECT_EQ(r.weight, (std::vector<double>{1.0, 1.0, 1.0}));  // top-1 renormalised
}

// 3 tokens, 3 experts, top-2, capacity_factor 1: capacity = ceil(3*2/3 * 1) = 2.
// Every token prefers expert 0, then 1: experts 0 and 1 receive 3 assignments each.
// First come first served: tokens 0 and 1 fit, token 2 loses both -> 2 drops.
// Weights: p over [2, 1, 0] -> renormalised over {0, 1}: e^2 / (e^2 + e) = 0.731059 and 0.268941.
TEST(MoeRouting, CapacityDropsMatchHandComputedCase) {
  const std::vector<double> logits = {2, 1, 0, 2, 1, 0, 2, 1, 0};
  MoeRouting r;
  moe_route(logits.data(), 3, params(3, 2, 1.0, false), nullptr, r);
  EXPECT_EQ(r.capacity, 2);
  EXPECT_EQ(r.choice, (std::vector<int32_t>{0, 1, 0, 1, 0, 1}));
  EXPECT_EQ(r.kept, (std::vector<uint8_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(r.stats.tokens_dropped, 2);
  EXPECT_EQ(r.rows(), 4);
  EXPECT_EQ(r.row_begin, (std::vector<int64_t>{0, 2, 4, 4}));
  EXPECT_EQ(r.row_token, (std::vector<int64_t>{0, 1, 0, 1}));
  EXPECT_EQ(r.row_slot, (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_NEAR(r.weight[0], 0.7310585786, 1e-10);
  EXPECT_NEAR(r.weight[1], 0.2689414214, 1e-10);
  // Utilisation counts assignments before capacity.
  EXPECT_EQ(r.stats.expert_utilization, (std::vector<double>{0.5, 0.5, 0.0}));
}

TEST(MoeRouting, DroplessDropsNothing) {
  const std::vector<double> logits = {2, 1, 0, 2, 1, 0, 2, 1, 0};
  MoeRouting r;
  moe_route(logits.data(), 3, params(3, 2, 0.1, true), nullptr, r);
  EXPECT_EQ(r.capacity, 6);
  EXPECT_EQ(r.stats.tokens_dropped, 0);
  EXPECT_EQ(r.rows(), 6);
  EXPECT_TRUE(std::all_of(r.kept.begin(), r.kept.end(), [](uint8_t v) { return v == 1; }));
}

TEST(MoeRouting, CapacityRoundsUpAndStatisticsAddUp) {
  EXPECT_EQ(moe_capacity(10, 4, params(4, 2, 1.25, false)), 7);  // 10*2/4*1.25 = 6.25
  EXPECT_EQ(moe_capacity(8, 4, params(4, 2, 1.0, false)), 4);    // exactly 4, not 5
  EXPECT_EQ(moe_capacity(8, 4, params(4, 2, 1.0, true)), 16);
  const int64_t N = 40, E = 5;
  std::vector<double> logits(static_cast<size_t>(N * E));
  Rng(3, RngPurpose::test, 0).fill_normal(logits.data(), N * E, 0.0, 2.0);
  MoeRouting r;
  moe_route(logits.data(), N, params(E, 2, 0.8, false), nullptr, r);
  const auto& u = r.stats.expert_utilization;
  EXPECT_NEAR(std::accumulate(u.begin(), u.end(), 0.0), 1.0, 1e-12);
  EXPECT_GT(r.stats.tokens_dropped, 0);
  EXPECT_EQ(r.rows() + r.stats.tokens_dropped, N * 2);
  for (int64_t e = 0; e < E; ++e)
    EXPECT_LE(r.row_begin[static_cast<size_t>(e + 1)] - r.row_begin[static_cast<size_t>(e)], r.capacity);
  for (int64_t n = 0; n < N; ++n) {
    EXPECT_NEAR(r.weight[static_cast<size_t>(2 * n)] + r.weight[static_cast<size_t>(2 * n + 1)], 1.0, 1e-15);
    EXPECT_GE(r.weight[static_cast<size_t>(2 * n)], r.weight[static_cast<size_t>(2 * n + 1)]);
  }
  EXPECT_GT(r.stats.routing_entropy, 0.0);
  EXPECT_LT(r.stats.routing_entropy, std::log(static_cast<double>(E)));
}

// The layer against a per-token loop: logits, softmax(l/T), top-k, renormalise,
// capacity in token order, out_n = residual_n + sum kept w * SwiGLU_e(x_n).
void check_forward_against_naive(DType act, double tolerance) {
  constexpr int64_t N = 12, C = 8, F = 6, E = 4, K = 2;
  ModelConfig cfg;
  cfg.hidden_size = C;
  cfg.intermediate_size = F;
  cfg.num_experts = E;
  cfg.moe_top_k = K;
  cfg.capacity_factor = 0.9;  // capacity = ceil(12*2/4 * 0.9) = 6 per expert; the uneven routing drops some
  cfg.routing_temperature = 1.5;
  cfg.init_std = 0.4;
  auto be = make_cpu_backend();
  ParamStore ps;
  MoeFfn moe(ps, cfg, "moe.", 0);
  ps.allocate(*be, DType::f64);
  ps.init_weights(5);
  // Weights in the activation dtype (a cast copy when act is f32).
  Buffer weights = be->allocate(static_cast<size_t>(ps.numel()) * dtype_size_bytes(act));
  const Tensor weights_flat = weights.as_tensor(act, Shape{ps.numel()});
  be->cast(weights_flat, ps.params_flat());
  ModelContext c{be.get(), &ps, weights_flat, act, act};

  Arena measure = Arena::measuring(Device::cpu);
  moe.plan(measure, act, N);
  moe.plan_scratch(measure, act, N);
  Arena arena(be->allocate(measure.peak_bytes()));
  MoeFfn::Activations a = moe.plan(arena, act, N);
  MoeFfn::Scratch s = moe.plan_scratch(arena, act, N);

  std::vector<double> x(N * C), res(N * C);
  Rng(11, RngPurpose::test, 0).fill_normal(x.data(), N * C, 0.0, 1.0);
  Rng(11, RngPurpose::test, 1).fill_normal(res.data(), N * C, 0.0, 1.0);
  Buffer io = be->allocate(2 * N * C * dtype_size_bytes(act));
  const Tensor xt = io.as_tensor(act, Shape{2, N, C}).slice(0, 1).view(Shape{N, C});
  const Tensor out = io.as_tensor(act, Shape{2, N, C}).slice(1, 2).view(Shape{N, C});
  be->cast(xt, Tensor(x.data(), DType::f64, Device::cpu, Shape{N, C}));
  be->cast(out, Tensor(res.data(), DType::f64, Device::cpu, Shape{N, C}));
  moe.forward(c, xt, out, a, s);
  const MoeStats& stats = moe.collect_stats(*be, a, s);
  EXPECT_GT(stats.tokens_dropped, 0);

  const double* Wr = ps.param(moe.router).ptr<double>();
  const double* W1 = ps.param(moe.w1).ptr<double>();
  const double* W3 = ps.param(moe.w3).ptr<double>();
  const double* W2 = ps.param(moe.w2).ptr<double>();
  std::vector<int64_t> used(E, 0);
  int64_t dropped = 0;
  std::vector<double> expected = res;
  const int64_t capacity = 6;
  for (int64_t n = 0; n < N; ++n) {
    const double* xn = &x[static_cast<size_t>(n * C)];
    std::vector<double> p(E);
    for (int64_t e = 0; e < E; ++e) {
      double l = 0.0;
      for (int64_t i = 0; i < C; ++i) l += xn[i] * Wr[e * C + i];
      p[static_cast<size_t>(e)] = std::exp(l / cfg.routing_temperature);
    }
    std::vector<int64_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return p[i] > p[j]; });
    const double chosen = p[order[0]] + p[order[1]];  // the softmax denominator cancels in the renormalisation
    for (int64_t j = 0; j < K; ++j) {
      const int64_t e = order[static_cast<size_t>(j)];
      if (used[e]++ >= capacity) {
        ++dropped;
        continue;
      }
      const double w = p[e] / chosen;
      std::vector<double> h(F);
      for (int64_t f = 0; f < F; ++f) {
        double g = 0.0, u = 0.0;
        for (int64_t i = 0; i < C; ++i) {
          g += xn[i] * W1[(e * F + f) * C + i];
          u += xn[i] * W3[(e * F + f) * C + i];
        }
        h[static_cast<size_t>(f)] = g / (1.0 + std::exp(-g)) * u;
      }
      for (int64_t i = 0; i < C; ++i) {
        double y = 0.0;
        for (int64_t f = 0; f < F; ++f) y += h[static_cast<size_t>(f)] * W2[(e * C + i) * F + f];
        expected[static_cast<size_t>(n * C + i)] += w * y;
      }
    }
  }
  EXPECT_EQ(stats.tokens_dropped, dropped);
  std::vector<double> got(N * C);
  be->cast(Tensor(got.data(), DType::f64, Device::cpu, Shape{N, C}), out);
  for (int64_t i = 0; i < N * C; ++i)
    EXPECT_NEAR(got[static_cast<size_t>(i)], expected[static_cast<size_t>(i)], tolerance) << "element " << i;
}

TEST(MoeFfn, ForwardMatchesNaiveLoopF64) { check_forward_against_naive(DType::f64, 1e-13); }
TEST(MoeFfn, ForwardMatchesNaiveLoopF32) { check_forward_against_naive(DType::f32, 2e-5); }

}  // namespace
}  // namespace lumina
