// MoE routing beyond the plain top-k: Gaussian routing noise and expert dropout
// (training only, keyed by seed, step, micro-batch and layer), the top_k floor
// of dropout, and pruned experts (never chosen, zero utilization, the aux loss
// over the routable experts, exactly zero gradients, frozen under AdamW).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "lumina/core/rng.h"
#include "lumina/model/moe.h"
#include "lumina/optim/adamw.h"

namespace lumina {
namespace {

MoeRoutingParams params(int64_t E, int64_t k) {
  MoeRoutingParams p;
  p.num_experts = E;
  p.top_k = k;
  p.capacity_factor = 2.0;
  return p;
}

std::vector<double> random_logits(int64_t n, uint64_t stream) {
  std::vector<double> l(static_cast<size_t>(n));
  Rng(5, RngPurpose::test, stream).fill_normal(l.data(), n, 0.0, 1.0);
  return l;
}

TEST(MoeTrainingRouting, NoiseShiftsLogitsOnlyInTrainingAndIsReproducible) {
  constexpr int64_t N = 64, E = 4;
  const std::vector<double> logits = random_logits(N * E, 0);
  MoeRoutingParams p = params(E, 1);
  p.temperature = 0.8;
  MoeRouting plain, eval, a, b;
  moe_route(logits.data(), N, p, nullptr, plain);
  p.noise_std = 1.0;
  moe_route(logits.data(), N, p, nullptr, eval);
  EXPECT_EQ(eval.probs, plain.probs);  // evaluation: no noise

  const MoeDrawKey key{7, 3, 1, 2};
  moe_route(logits.data(), N, p, &key, a);
  moe_route(logits.data(), N, p, &key, b);
  EXPECT_EQ(a.probs, b.probs);  // same (seed, step, micro, layer): same draws
  EXPECT_EQ(a.choice, b.choice);
  int64_t changed = 0;
  for (int64_t n = 0; n < N; ++n) changed += a.choice[static_cast<size_t>(n)] != plain.choice[static_cast<size_t>(n)];
  EXPECT_GT(changed, 0) << "noise of std 1 on logits of std 1 must change some top-1 choices";

  // Token 5 by hand: p = softmax((l + std * normal(index(micro, layer, 5, e))) / T).
  const Rng rng(7, RngPurpose::routing_noise, 3);
  std::vector<double> s(E);
  for (int64_t e = 0; e < E; ++e)
    s[static_cast<size_t>(e)] = (logits[static_cast<size_t>(5 * E + e)] + rng.normal(moe_draw_index(key, 5, e))) / 0.8;
  double sum = 0.0;
  for (double v : s) sum += std::exp(v);
  for (int64_t e = 0; e < E; ++e)
    EXPECT_NEAR(a.probs[static_cast<size_t>(5 * E + e)], std::exp(s[static_cast<size_t>(e)]) / sum, 1e-15);

  // Another micro-batch, layer or step draws other noise.
  for (const MoeDrawKey other : {MoeDrawKey{7, 3, 2, 2}, MoeDrawKey{7, 3, 1, 3}, MoeDrawKey{7, 4, 1, 2}}) {
    moe_route(logits.data(), N, p, &other, b);
    EXPECT_NE(a.probs, b.probs);
  }
}

TEST(MoeTrainingRouting, DrawIndicesNeverCollide) {
  const MoeDrawKey key{1, 0, 3, 5};
  EXPECT_EQ(moe_draw_index(key, 2, 7), (uint64_t{3} << 48) | (uint64_t{5} << 38) | (uint64_t{2} << 14) | 7u);
  EXPECT_NE(moe_draw_index(key, 0, 16383), moe_draw_index(key, 1, 0));
  EXPECT_THROW(moe_draw_index(key, 0, 16384), Error);
  EXPECT_THROW(moe_draw_index(key, int64_t{1} << 24, 0), Error);
  EXPECT_THROW(moe_draw_index(MoeDrawKey{1, 0, 3, 1024}, 0, 0), Error);
}

// P(expert dropped) = (E - E[max(S, k)]) / E with S ~ Binomial(E, 1 - p) survivors:
// restoring up to k survivors lowers the rate below p a little.
double expected_drop_rate(int64_t E, int64_t k, double p) {
  double mean_available = 0.0;
  for (int64_t s = 0; s <= E; ++s) {
    const double ways = std::tgamma(E + 1.0) / (std::tgamma(s + 1.0) * std::tgamma(E - s + 1.0));
    mean_available += ways * std::pow(1.0 - p, s) * std::pow(p, E - s) * static_cast<double>(std::max(s, k));
  }
  return (static_cast<double>(E) - mean_available) / static_cast<double>(E);
}

TEST(MoeTrainingRouting, DropoutRemovesExpertsAtTheConfiguredRate) {
  constexpr int64_t E = 8, k = 2, kSteps = 500;
  MoeRoutingParams p = params(E, k);
  p.expert_dropout = 0.3;
  std::vector<uint8_t> available;
  std::vector<int64_t> drops(E, 0);
  int64_t passes = 0, differs_across_micro = 0;
  for (int64_t step = 0; step < kSteps; ++step) {
    for (int64_t layer = 0; layer < 2; ++layer) {
      std::vector<uint8_t> first;
      for (int64_t micro = 0; micro < 2; ++micro) {
        const MoeDrawKey key{11, step, micro, layer};
        const int64_t dropped = moe_available_experts(p, &key, available);
        const auto left = std::count(available.begin(), available.end(), uint8_t{1});
        ASSERT_GE(left, k);
        ASSERT_EQ(dropped, E - left);
        for (int64_t e = 0; e < E; ++e) drops[static_cast<size_t>(e)] += !available[static_cast<size_t>(e)];
        ++passes;
        if (micro == 0) first = available;
        else differs_across_micro += first != available;
      }
    }
  }
  // 2000 passes x 8 experts. Tolerances are 4 standard deviations of a binomial
  // proportion: sqrt(0.3 * 0.7 / 16000) = 0.0036 overall, sqrt(0.3 * 0.7 / 2000) = 0.0102 per expert.
  const double expected = expected_drop_rate(E, k, 0.3);
  EXPECT_NEAR(expected, 0.2995, 5e-4);  // restoring is rare at p = 0.3 with 8 experts
  const double total = static_cast<double>(std::accumulate(drops.begin(), drops.end(), int64_t{0}));
  EXPECT_NEAR(total / static_cast<double>(passes * E), expected, 0.0145);
  for (int64_t e = 0; e < E; ++e)
    EXPECT_NEAR(static_cast<double>(drops[static_cast<size_t>(e)]) / static_cast<double>(passes), expected, 0.041)
        << "expert " << e;
  EXPECT_GT(differs_across_micro, kSteps) << "micro-batches of one step must draw their own masks";
  // Evaluation drops nothing.
  EXPECT_EQ(moe_available_experts(p, nullptr, available), 0);
  EXPECT_EQ(available, std::vector<uint8_t>(E, 1));
}

TEST(MoeTrainingRouting, DropoutRestoresTheLargestDrawsUpToTopK) {
  constexpr int64_t E = 5, k = 3;
  MoeRoutingParams p = params(E, k);
  p.expert_dropout = 0.9;
  p.routable = {1, 1, 0, 1, 1};  // expert 2 is pruned: never available, never restored
  std::vector<uint8_t> available;
  int64_t restorations = 0;
  for (int64_t step = 0; step < 200; ++step) {
    const MoeDrawKey key{3, step, 0, 4};
    moe_available_experts(p, &key, available);
    // Expected: survivors u >= p, then the dropped with the largest u until k are available.
    const Rng rng(3, RngPurpose::expert_dropout, static_cast<uint64_t>(step));
    std::vector<std::pair<double, int64_t>> dropped;
    std::vector<uint8_t> expected(E, 0);
    int64_t left = 0;
    for (int64_t e : {0, 1, 3, 4}) {
      const double u = rng.uniform(moe_draw_index(key, 0, e));
      if (u >= 0.9) expected[static_cast<size_t>(e)] = 1, ++left;
      else dropped.emplace_back(-u, e);
    }
    std::sort(dropped.begin(), dropped.end());
    restorations += left < k;
    for (size_t i = 0; left < k; ++i, ++left) expected[static_cast<size_t>(dropped[i].second)] = 1;
    ASSERT_EQ(available, expected) << "step " << step;
    ASSERT_GE(std::count(available.begin(), available.end(), uint8_t{1}), k);
  }
  EXPECT_GT(restorations, 150);  // at p = 0.9 almost every pass needs restoring
}

// The hand-computed case of test_moe.cpp (3 tokens, 2 experts, top-1, T = 2) with a
// third expert that has the largest logits but is pruned: routing, losses, entropy and
// the gradient are those of the 2-expert router (aux over E_A = 2), expert 2 gets nothing.
TEST(MoeTrainingRouting, PrunedExpertMatchesARouterWithoutIt) {
  const std::vector<double> two = {2 * std::log(3.0), 0.0, 0.0, 2 * std::log(4.0), 2 * std::log(9.0), 0.0};
  const std::vector<double> three = {two[0], two[1], 50.0, two[2], two[3], 40.0, two[4], two[5], 60.0};
  MoeRoutingParams p2 = params(2, 1), p3 = params(3, 1);
  for (MoeRoutingParams* p : {&p2, &p3}) {
    p->temperature = 2.0;
    p->load_balancing_weight = 0.01;
    p->z_loss_weight = 0.1;
    p->capacity_factor = 0.9;  // capacity = ceil(3 / E_A * 0.9) = 2 with E_A = 2 (1 with 3)
  }
  p3.routable = {1, 1, 0};
  MoeRouting r2, r3;
  moe_route(two.data(), 3, p2, nullptr, r2);
  moe_route(three.data(), 3, p3, nullptr, r3);
  EXPECT_EQ(r3.available_experts, 2);
  EXPECT_EQ(r3.capacity, 2);
  EXPECT_EQ(r3.choice, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_EQ(r3.assigned, (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(r3.stats.expert_utilization[2], 0.0);
  EXPECT_EQ(r3.row_begin[3] - r3.row_begin[2], 0);
  EXPECT_NEAR(r3.stats.aux_loss, 0.0107777778, 1e-10);  // lbw * E_A * sum f P with E_A = 2
  EXPECT_NEAR(r3.stats.aux_loss, r2.stats.aux_loss, 1e-15);
  EXPECT_NEAR(r3.stats.z_loss, r2.stats.z_loss, 1e-15);
  EXPECT_NEAR(r3.stats.routing_entropy, r2.stats.routing_entropy, 1e-15);
  for (int64_t n = 0; n < 3; ++n) EXPECT_EQ(r3.probs[static_cast<size_t>(3 * n + 2)], 0.0);

  const std::vector<double> dweight = {0.3, -1.2, 0.7};
  std::vector<double> d2(6), d3(9);
  moe_route_backward(r2, p2, dweight.data(), 0.5, d2.data());
  moe_route_backward(r3, p3, dweight.data(), 0.5, d3.data());
  for (int64_t n = 0; n < 3; ++n) {
    EXPECT_EQ(d3[static_cast<size_t>(3 * n + 2)], 0.0);
    for (int64_t e = 0; e < 2; ++e)
      EXPECT_NEAR(d3[static_cast<size_t>(3 * n + e)], d2[static_cast<size_t>(2 * n + e)], 1e-15);
  }
  // No routable experts beyond top_k: refused.
  p3.routable = {1, 0, 0};
  p3.top_k = 2;
  EXPECT_THROW(moe_route(three.data(), 3, p3, nullptr, r3), Error);
}

// The layer with expert 1 of 4 pruned, trained with noise and dropout: no rows for
// expert 1, its gradient slices exactly zero, and AdamW leaves its slices (and their
// moments) untouched while every other parameter moves.
TEST(MoeTrainingRouting, PrunedExpertGetsNoTokensNoGradientAndNoUpdate) {
  constexpr int64_t N = 32, C = 8, F = 6, E = 4;
  ModelConfig cfg;
  cfg.hidden_size = C;
  cfg.intermediate_size = F;
  cfg.num_experts = E;
  cfg.moe_top_k = 2;
  cfg.init_std = 0.5;
  cfg.routing_noise_std = 0.3;
  cfg.expert_dropout = 0.2;
  cfg.load_balancing_weight = 0.1;
  cfg.moe_layout[3] = {1, 0, 1, 1};
  auto be = make_cpu_backend();
  ParamStore ps;
  MoeFfn moe(ps, cfg, "moe.", 3);
  ps.allocate(*be, DType::f32);
  ps.init_weights(9);
  EXPECT_EQ(ps.frozen().size(), 4u);  // router row and one slice of each expert tensor
  ModelContext c{be.get(), &ps, ps.params_flat(), DType::f32, DType::f32};
  c.training = true;
  c.seed = 1;
  Arena measure = Arena::measuring(Device::cpu);
  moe.plan(measure, DType::f32, N);
  moe.plan_scratch(measure, DType::f32, N);
  Arena arena(be->allocate(measure.peak_bytes()));
  MoeFfn::Activations a = moe.plan(arena, DType::f32, N);
  MoeFfn::Scratch s = moe.plan_scratch(arena, DType::f32, N);
  Buffer io = be->allocate(3 * N * C * sizeof(float));
  const Tensor x = io.as_tensor(DType::f32, Shape{3, N, C}).slice(0, 1).view(Shape{N, C});
  const Tensor out = io.as_tensor(DType::f32, Shape{3, N, C}).slice(1, 2).view(Shape{N, C});
  const Tensor dx = io.as_tensor(DType::f32, Shape{3, N, C}).slice(2, 3).view(Shape{N, C});
  Rng(2, RngPurpose::test, 0).fill_normal(x.ptr<float>(), N * C, 0.0, 1.0);

  ps.zero_grads();
  for (int64_t step = 0; step < 4; ++step) {  // accumulate over passes with different draws
    c.step = step;
    be->fill(out, 0.0);
    moe.forward(c, x, out, a, s);
    const MoeStats& st = moe.collect_stats(*be, a, s);
    EXPECT_EQ(moe.snapshot(*be, a).assigned[1], 0);
    EXPECT_EQ(st.expert_utilization[1], 0.0);
    moe.backward(c, x, out, dx, 1.0, a, s);  // dresidual = out: any non-zero upstream gradient
  }
  auto slice = [&](const Tensor& t, int64_t e) { return t.slice(e, e + 1); };
  auto max_abs = [](const Tensor& t) {
    double m = 0.0;
    for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t.ptr<float>()[i])));
    return m;
  };
  for (const ParamId id : {moe.router, moe.w1, moe.w3, moe.w2}) {
    EXPECT_EQ(max_abs(slice(ps.grad(id), 1)), 0.0) << ps.specs()[static_cast<size_t>(id)].name;
    EXPECT_GT(max_abs(slice(ps.grad(id), 0)), 0.0) << ps.specs()[static_cast<size_t>(id)].name;
  }

  // AdamW with weight decay and non-zero moments everywhere: the frozen slices stay put.
  AdamW opt(ps, AdamWConfig{0.9, 0.95, 1e-8, 0.1});
  be->fill(opt.m_flat(), 0.5);
  be->fill(opt.v_flat(), 0.25);
  std::vector<float> before(ps.params_flat().ptr<float>(), ps.params_flat().ptr<float>() + ps.numel());
  opt.step(1e-2, 1.0);
  const float* after = ps.params_flat().ptr<float>();
  const float* m = opt.m_flat().ptr<float>();
  const float* v = opt.v_flat().ptr<float>();
  std::vector<uint8_t> frozen(static_cast<size_t>(ps.numel()), 0);
  for (const auto& [b, e] : ps.frozen()) std::fill(frozen.begin() + b, frozen.begin() + e, 1);
  int64_t frozen_elements = 0;
  for (int64_t i = 0; i < ps.numel(); ++i) {
    if (frozen[static_cast<size_t>(i)]) {
      ++frozen_elements;
      ASSERT_EQ(after[i], before[static_cast<size_t>(i)]) << "frozen element " << i << " moved";
      ASSERT_EQ(m[i], 0.5f);
      ASSERT_EQ(v[i], 0.25f);
    } else {
      ASSERT_NE(after[i], before[static_cast<size_t>(i)]) << "element " << i << " did not move";
    }
  }
  EXPECT_EQ(frozen_elements, C + 3 * F * C);
}

}  // namespace
}  // namespace lumina
