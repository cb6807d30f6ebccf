// The MoE model end to end on the CPU: which layers are MoE, the step
// statistics the trainer logs, generation through MoE layers, and the
// load-balancing loss doing its job in a short training run.
#include <gtest/gtest.h>

#include <cmath>

#include "lumina/infer/kv_cache_session.h"
#include "lumina/model/layer_kinds.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"
#include "lumina/train/moe_metrics.h"
#include "support/kv_cache_check.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

std::vector<int64_t> moe_layers(const ModelConfig& cfg) {
  std::vector<int64_t> out;
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    if (is_moe_layer(cfg, l)) out.push_back(l);
  return out;
}

TEST(LayerKinds, EveryPattern) {
  ModelConfig c;
  c.num_layers = 8;
  EXPECT_EQ(moe_layers(c), (std::vector<int64_t>{}));  // use_moe = false
  c.use_moe = true;
  EXPECT_EQ(moe_layers(c), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  c.moe_pattern = "every_2nd";
  EXPECT_EQ(moe_layers(c), (std::vector<int64_t>{1, 3, 5, 7}));
  c.moe_pattern = "every_3rd";
  EXPECT_EQ(moe_layers(c), (std::vector<int64_t>{2, 5}));
  c.moe_pattern = "every_4th";
  EXPECT_EQ(moe_layers(c), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(moe_layer_count(c), 2);
  c.moe_pattern = "sandwich";
  c.dense_start_layers = 2;
  c.dense_end_layers = 1;
  EXPECT_EQ(moe_layers(c), (std::vector<int64_t>{2, 3, 4, 5, 6}));
  c.dense_start_layers = 0;
  c.dense_end_layers = 0;
  EXPECT_EQ(moe_layer_count(c), 8);
  c.moe_pattern = "every_5th";
  EXPECT_THROW(is_moe_layer(c, 0), Error);
}

TEST(LayerKinds, ModelDeclaresMoeOrDenseFfnPerLayer) {
  const Transformer m(test::tiny_moe_config(2, 1.0));
  const ParamStore& ps = m.params();
  for (int l : {0, 2}) {
    EXPECT_TRUE(ps.contains(fmt::format("model.layers.{}.mlp.gate_proj.weight", l)));
    EXPECT_FALSE(ps.contains(fmt::format("model.layers.{}.block_sparse_moe.gate.weight", l)));
    EXPECT_FALSE(m.blocks()[static_cast<size_t>(l)].is_moe());
  }
  for (int l : {1, 3}) {
    EXPECT_FALSE(ps.contains(fmt::format("model.layers.{}.mlp.gate_proj.weight", l)));
    const ParamId router = ps.find(fmt::format("model.layers.{}.block_sparse_moe.gate.weight", l));
    EXPECT_EQ(ps.specs()[static_cast<size_t>(router)].shape, (Shape{4, 8}));
    const ParamId w1 = ps.find(fmt::format("model.layers.{}.block_sparse_moe.experts.w1", l));
    EXPECT_EQ(ps.specs()[static_cast<size_t>(w1)].shape, (Shape{4, 12, 8}));
    EXPECT_TRUE(m.blocks()[static_cast<size_t>(l)].is_moe());
  }
}

// Two micro-batches of one layer with 4 experts (N k = 100 assignments each):
//   utilization a = [0.4, 0.3, 0.2, 0.1], b = [0.2, 0.3, 0.2, 0.3] -> mean [0.3, 0.3, 0.2, 0.2]
//   cv of the mean: mean 0.25, std = sqrt((4 * 0.05^2) / 4) = 0.05 -> 0.2
//   entropy (1.2 + 1.0) / 2 = 1.1; aux (0.02 + 0.04) / 2 = 0.03; z (0.002 + 0) / 2 = 0.001
//   dropped 7 + 3 = 10 of 200 -> 5%.
TEST(MoeStepStats, AggregatesMicroBatchesAndLayers) {
  auto micro = [](std::vector<double> u, double entropy, double aux, double z, int64_t dropped) {
    ForwardResult r;
    MoeLayerStats l;
    l.layer = 3;
    l.assignments = 100;
    l.stats.expert_utilization = std::move(u);
    l.stats.routing_entropy = entropy;
    l.stats.aux_loss = aux;
    l.stats.z_loss = z;
    l.stats.tokens_dropped = dropped;
    r.moe_layers.push_back(l);
    return r;
  };
  MoeStepStats s;
  EXPECT_TRUE(s.empty());
  s.add(micro({0.4, 0.3, 0.2, 0.1}, 1.2, 0.02, 0.002, 7));
  s.add(micro({0.2, 0.3, 0.2, 0.3}, 1.0, 0.04, 0.0, 3));
  ASSERT_FALSE(s.empty());
  const nlohmann::json j = s.to_json();
  const std::vector<double> u = j["utilization"].get<std::vector<double>>();
  ASSERT_EQ(u.size(), 4u);
  const std::vector<double> expected{0.3, 0.3, 0.2, 0.2};
  for (size_t e = 0; e < 4; ++e) EXPECT_NEAR(u[e], expected[e], 1e-15);
  EXPECT_NEAR(j["utilization_cv"].get<double>(), 0.2, 1e-12);
  EXPECT_NEAR(j["entropy"].get<double>(), 1.1, 1e-15);
  EXPECT_NEAR(j["aux_loss"].get<double>(), 0.03, 1e-15);
  EXPECT_NEAR(j["z_loss"].get<double>(), 0.001, 1e-15);
  EXPECT_EQ(j["tokens_dropped"].get<int64_t>(), 10);
  EXPECT_NEAR(j["dropped_fraction"].get<double>(), 0.05, 1e-15);
  EXPECT_EQ(j["layers"]["3"]["tokens_dropped"].get<int64_t>(), 10);
  EXPECT_EQ(s.progress_text(), "moe aux 0.0300 | drop 5.0% | entropy 1.10");
  EXPECT_NEAR(utilization_cv({1.0, 0.0, 0.0, 0.0}), std::sqrt(3.0), 1e-15);  // all on one expert
  EXPECT_EQ(utilization_cv({0.25, 0.25, 0.25, 0.25}), 0.0);
}

// Dropless routing does not depend on the other tokens of a call, so feeding a
// prompt then one token at a time equals recomputing the whole prefix.
TEST(MoeGeneration, IncrementalLogitsMatchFullRecomputeWithin1e5) {
  auto be = make_cpu_backend();
  ModelConfig cfg = test::tiny_moe_config(2, 0.0);
  cfg.init_std = 0.1;
  Transformer model(cfg);
  model.allocate(*be, DType::f32, DType::f32);
  model.params().init_weights(17);
  const int64_t T = 12;
  const auto tokens = test::random_tokens(T, cfg.vocab_size, 4);
  EXPECT_EQ(test::expect_incremental_matches_full(model, tokens, 1e-5), T);
}

// With capacity drops, a session fed the whole sequence at once routes exactly
// like the training forward of that sequence (same tokens, same capacity).
TEST(MoeGeneration, LastPositionLossMatchesTrainingForwardWithDrops) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = test::tiny_moe_config(2, 0.5);
  Transformer model(cfg);
  model.allocate(*be, DType::f64, DType::f64);
  model.params().init_weights(23);
  const int64_t T = 8;
  model.prepare(1, T);
  const auto tokens = test::random_tokens(T, cfg.vocab_size, 5);
  std::vector<int32_t> targets(T, -1);
  targets[T - 1] = 3;
  const ForwardResult r = model.forward(tokens.data(), targets.data(), 0.0);
  int64_t dropped = 0;
  for (const MoeLayerStats& l : r.moe_layers) dropped += l.stats.tokens_dropped;
  EXPECT_GT(dropped, 0);  // capacity ceil(8 * 2 / 4 * 0.5) = 2 per expert: 8 of 16 assignments fit
  KvCacheSession session(model, T);
  const std::vector<double> logits = session.append(tokens.data(), T);
  double lse = 0.0;
  const double top = *std::max_element(logits.begin(), logits.end());
  for (double l : logits) lse += std::exp(l - top);
  EXPECT_NEAR(top + std::log(lse) - logits[3], r.loss_sum, 1e-12);
}

// Mean over the last 10 of `steps` AdamW steps of the utilization spread (cv,
// mean over MoE layers) of a tiny all-MoE model (8 experts, top-2, dropless) on
// one fixed batch of random tokens.
double final_utilization_cv(double load_balancing_weight, int steps, uint64_t seed) {
  auto be = make_cpu_backend();
  ModelConfig cfg = test::small_config(64, 32);
  cfg.use_moe = true;
  cfg.num_experts = 8;
  cfg.moe_top_k = 2;
  cfg.dropless = true;
  cfg.load_balancing_weight = load_balancing_weight;
  Transformer model(cfg);
  model.allocate(*be, DType::f32, DType::f32);
  model.params().init_weights(seed);
  const int64_t B = 4, T = 32;
  model.prepare(B, T);
  AdamW opt(model.params(), AdamWConfig{0.9, 0.95, 1e-8, 0.0});
  const auto tokens = test::random_tokens(B * T, cfg.vocab_size, seed + 1);
  const auto targets = test::random_tokens(B * T, cfg.vocab_size, seed + 2);
  double cv_sum = 0.0;
  for (int s = 0; s < steps; ++s) {
    model.params().zero_grads();
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 1.0 / (B * T));
    model.backward(1.0);
    opt.step(1e-2, clip_scale(grad_global_norm(model.params()), 1.0));
    if (s >= steps - 10) {
      MoeStepStats st;
      st.add(r);
      cv_sum += st.to_json()["utilization_cv"].get<double>();
    }
  }
  return cv_sum / 10.0;
}

// Measured (seed 1 / 2): cv 0.449 / 0.290 without the loss, 0.154 / 0.138 with weight 0.1.
TEST(MoeTraining, LoadBalancingLossLowersTheUtilizationSpread) {
  for (uint64_t seed : {1, 2}) {
    SCOPED_TRACE(seed);
    const double without = final_utilization_cv(0.0, 100, seed);
    const double with = final_utilization_cv(0.1, 100, seed);
    EXPECT_GT(without, 0.25);
    EXPECT_LT(with, 0.2);
    EXPECT_LT(with, 0.6 * without);
  }
}

}  // namespace
}  // namespace lumina
