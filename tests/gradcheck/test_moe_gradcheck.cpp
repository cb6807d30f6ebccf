// fp64 finite-difference check of the MoE feed-forward layer w.r.t. x, the
// router and the three expert tensors, top-1 and top-2, with and without
// capacity drops, temperature != 1, in training with routing noise and expert
// dropout (the draws are fixed by the context's seed and step, so every
// evaluation sees the same noise and mask) and with a pruned expert, with the
// aux and z losses in the scalar:
//   L = sum(out * R) + dloss_scale * (aux + z),  out = residual0 + moe(x).
// Central differences must not cross a top-k or capacity boundary: every
// +h / -h evaluation asserts that the choices and the kept mask are those of
// the unperturbed pass (the discrete routing is piecewise constant, and the
// analytic gradient holds it fixed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "lumina/core/rng.h"
#include "lumina/model/moe.h"

namespace lumina {
namespace {

constexpr int64_t kTokens = 8, kHidden = 6, kFfn = 5, kExperts = 3;
constexpr double kStep = 1e-5;         // central-difference step
constexpr double kMaxRelError = 1e-6;  // |analytic - numeric| / max(|analytic|, |numeric|, kFloor)
constexpr double kFloor = 1e-4;
constexpr double kLossScale = 0.7;     // d total / d (aux + z)

struct Case {
  int64_t top_k;
  double capacity_factor;
  bool dropless;
  bool expect_drops;
  double noise_std = 0.0;      // > 0 or dropout > 0: a training pass (ModelContext::training)
  double dropout = 0.0;
  int64_t pruned_expert = -1;  // >= 0: that expert is pruned (moe_layout)
};

void fill_random(double* p, int64_t n, uint64_t stream, double std) {
  Rng(99, RngPurpose::test, stream).fill_normal(p, n, 0.0, std);
}

void check_moe_gradients(const Case& cs) {
  ModelConfig cfg;
  cfg.hidden_size = kHidden;
  cfg.intermediate_size = kFfn;
  cfg.num_layers = 1;
  cfg.init_std = 0.5;  // large enough that every path carries gradient well above rounding noise
  cfg.use_moe = true;
  cfg.num_experts = kExperts;
  cfg.moe_top_k = cs.top_k;
  cfg.capacity_factor = cs.capacity_factor;
  cfg.dropless = cs.dropless;
  cfg.routing_temperature = 0.7;
  cfg.load_balancing_weight = 0.3;
  cfg.router_z_loss_weight = 0.2;
  cfg.routing_noise_std = cs.noise_std;
  cfg.expert_dropout = cs.dropout;
  if (cs.pruned_expert >= 0) {
    cfg.num_experts = kExperts + 1;  // keep kExperts routable
    cfg.moe_layout[0] = std::vector<uint8_t>(kExperts + 1, 1);
    cfg.moe_layout[0][static_cast<size_t>(cs.pruned_expert)] = 0;
  }

  auto be = make_cpu_backend();
  ParamStore ps;
  MoeFfn moe(ps, cfg, "model.layers.0.block_sparse_moe.", 0);
  ps.allocate(*be, DType::f64);
  ps.init_weights(2024);
  ModelContext c{be.get(), &ps, ps.params_flat(), DType::f64, DType::f64};
  c.training = cs.noise_std > 0.0 || cs.dropout > 0.0;
  c.seed = 5;
  c.step = 2;

  Arena measure = Arena::measuring(Device::cpu);
  moe.plan(measure, DType::f64, kTokens);
  moe.plan_scratch(measure, DType::f64, kTokens);
  Arena arena(be->allocate(measure.peak_bytes()));
  MoeFfn::Activations a = moe.plan(arena, DType::f64, kTokens);
  MoeFfn::Scratch s = moe.plan_scratch(arena, DType::f64, kTokens);
  Buffer tensors = be->allocate(5 * kTokens * kHidden * sizeof(double));
  const Shape nc{kTokens, kHidden};
  Tensor x = tensors.as_tensor(DType::f64, Shape{5, kTokens, kHidden});
  Tensor residual0 = x.slice(1, 2).view(nc), out = x.slice(2, 3).view(nc), weight = x.slice(3, 4).view(nc);
  Tensor dx = x.slice(4, 5).view(nc);
  x = x.slice(0, 1).view(nc);
  fill_random(x.ptr<double>(), x.numel(), 1, 1.0);
  fill_random(residual0.ptr<double>(), residual0.numel(), 2, 1.0);
  fill_random(weight.ptr<double>(), weight.numel(), 3, 1.0);

  auto loss = [&] {
    be->copy(out, residual0);
    moe.forward(c, x, out, a, s);
    const MoeStats& st = moe.collect_stats(*be, a, s);
    double l = 0.0;
    for (int64_t i = 0; i < out.numel(); ++i) l += out.ptr<double>()[i] * weight.ptr<double>()[i];
    return l + kLossScale * (st.aux_loss + st.z_loss);
  };
  loss();
  const MoeRoutingSnapshot base = moe.snapshot(*be, a);
  if (cs.expect_drops) EXPECT_GT(a.stats.tokens_dropped, 0);
  else EXPECT_EQ(a.stats.tokens_dropped, 0);
  if (cs.dropout > 0.0) EXPECT_EQ(a.stats.experts_dropped, 1) << "pick a step whose draws drop one expert";
  if (cs.pruned_expert >= 0) EXPECT_EQ(base.assigned[static_cast<size_t>(cs.pruned_expert)], 0);
  ps.zero_grads();
  moe.backward(c, x, weight, dx, kLossScale, a, s);

  auto same_routing = [&] {
    const MoeRoutingSnapshot now = moe.snapshot(*be, a);
    return now.choice == base.choice && now.slot_row == base.slot_row;
  };
  auto check = [&](const char* name, Tensor value, const Tensor& analytic) {
    double* v = value.ptr<double>();
    const double* g = analytic.ptr<double>();
    double norm = 0.0;
    for (int64_t i = 0; i < value.numel(); ++i) norm += g[i] * g[i];
    EXPECT_GT(norm, 0.0) << name << " received no gradient";
    for (int64_t i = 0; i < value.numel(); ++i) {
      const double saved = v[i];
      v[i] = saved + kStep;
      const double up = loss();
      ASSERT_TRUE(same_routing()) << name << "[" << i << "]: +h changes the routing; choose another seed";
      v[i] = saved - kStep;
      const double down = loss();
      ASSERT_TRUE(same_routing()) << name << "[" << i << "]: -h changes the routing; choose another seed";
      v[i] = saved;
      const double numeric = (up - down) / (2 * kStep);
      const double rel = std::fabs(g[i] - numeric) / std::max({std::fabs(g[i]), std::fabs(numeric), kFloor});
      EXPECT_LE(rel, kMaxRelError) << name << "[" << i << "]: analytic " << g[i] << " numeric " << numeric;
    }
  };
  check("x", x, dx);
  for (const ParamId id : {moe.router, moe.w1, moe.w3, moe.w2})
    check(ps.specs()[static_cast<size_t>(id)].name.c_str(), ps.param(id), ps.grad(id));
}

// capacity = ceil(8 * k / 3 * cf): top-1 cf 0.75 -> 2 per expert (6 of 8 fit); top-2 cf 0.6 -> 4 (12 of 16).
TEST(MoeGradcheck, Top1Dropless) { check_moe_gradients({1, 1.0, true, false}); }
TEST(MoeGradcheck, Top1WithDrops) { check_moe_gradients({1, 0.75, false, true}); }
TEST(MoeGradcheck, Top2Dropless) { check_moe_gradients({2, 1.0, true, false}); }
TEST(MoeGradcheck, Top2WithDrops) { check_moe_gradients({2, 0.6, false, true}); }
TEST(MoeGradcheck, Top1TrainingNoiseAndExpertDropout) { check_moe_gradients({1, 1.0, true, false, 0.5, 0.4}); }
TEST(MoeGradcheck, Top2PrunedExpertWithDrops) { check_moe_gradients({2, 0.6, false, true, 0.0, 0.0, 1}); }

}  // namespace
}  // namespace lumina
