// Mixture-of-Depths inside the model: FLOPs measured from the shapes the
// backend actually runs, capacity annealing, random and static routing through
// Transformer::forward, and the statistics a forward reports.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "lumina/backend/profiling_backend.h"
#include "lumina/model/accounting.h"
#include "lumina/model/transformer.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

// Flops of every profiled op (GEMMs and attention).
double measured_flops(const ProfilingBackend& be) {
  double flops = 0.0;
  for (const auto& [key, t] : be.timings()) flops += t.flops;
  return flops;
}

ModelConfig flops_config(bool use_mod) {
  ModelConfig cfg = test::small_config(64, 64);  // hidden 32, 4 heads (2 kv), ffn 64, 2 layers
  cfg.num_layers = 4;
  cfg.use_mod = use_mod;
  cfg.mod_capacity_factor = 0.5;
  return cfg;
}

// Decoder-layer forward FLOPs of one evaluation pass over B x T tokens, as the
// backend counts them (everything but the LM head GEMM, which is the same in both models).
double layer_flops(const ModelConfig& cfg, int64_t B, int64_t T, ForwardResult& result) {
  auto owned = std::make_unique<ProfilingBackend>(make_cpu_backend());
  ProfilingBackend& be = *owned;
  Transformer model(cfg);
  model.allocate(be, DType::f32, DType::f32);
  model.params().init_weights(3);
  model.prepare(B, T);
  const auto tokens = test::random_tokens(B * T, cfg.vocab_size, 1);
  const auto targets = test::random_tokens(B * T, cfg.vocab_size, 2);
  be.reset();
  result = model.forward(tokens.data(), targets.data(), 0.0);
  const double head = 2.0 * static_cast<double>(B * T * cfg.vocab_size * cfg.hidden_size);
  return measured_flops(be) - head;
}

TEST(ModModel, HalfCapacityOnEveryLayerRunsAtMost55PercentOfDenseFlops) {
  const int64_t B = 2, T = 64;
  ForwardResult dense_result, mod_result;
  const double dense = layer_flops(flops_config(false), B, T, dense_result);
  const double mod = layer_flops(flops_config(true), B, T, mod_result);
  const double ratio = mod / dense;
  RecordProperty("mod_over_dense_flops", std::to_string(ratio));
  EXPECT_LE(ratio, 0.55);
  // GEMMs halve and causal attention quarters (32 * 33 / (64 * 65) pairs): 0.46 here; much
  // lower would mean work went missing.
  EXPECT_GE(ratio, 0.4);
  // The statistics count the same shapes: sum of the layers' flops = what the backend ran.
  ASSERT_EQ(mod_result.mod_layers.size(), 4u);
  double reported = 0.0, reported_dense = 0.0;
  for (const ModLayerStats& l : mod_result.mod_layers) {
    EXPECT_EQ(l.processed, B * 32);
    EXPECT_DOUBLE_EQ(l.capacity, 0.5);
    reported += l.flops;
    reported_dense += l.dense_flops;
  }
  EXPECT_NEAR(reported / mod, 1.0, 1e-12);
  EXPECT_NEAR(reported_dense / dense, 1.0, 1e-12);
  EXPECT_NEAR(mod_result.mod_flops_saved, 1.0 - ratio, 1e-12);
  EXPECT_NEAR(mod_result.mod_average_depth, 2.0, 1e-12);  // 4 layers at capacity 1/2
  EXPECT_TRUE(dense_result.mod_layers.empty());
}

struct ModModelFixture {
  explicit ModModelFixture(ModelConfig cfg, int64_t B, int64_t T) : model(cfg), B(B), T(T) {
    model.allocate(*be, DType::f64, DType::f64);
    model.params().init_weights(5);
    model.prepare(B, T);
    tokens = test::random_tokens(B * T, cfg.vocab_size, 3);
    targets = test::random_tokens(B * T, cfg.vocab_size, 4);
  }
  // The routed rows of every MoD layer after a forward with (training, step, micro).
  std::vector<std::vector<int32_t>> route(bool training, int64_t step, int64_t micro) {
    model.set_training_step(training, 42, step, micro);
    model.forward(tokens.data(), targets.data(), 0.0);
    std::vector<std::vector<int32_t>> rows;
    for (size_t l = 0; l < model.blocks().size(); ++l)
      if (auto r = model.mod_routed_tokens(l)) rows.push_back(*r);
    return rows;
  }
  std::unique_ptr<Backend> be = make_cpu_backend();
  Transformer model;
  int64_t B, T;
  std::vector<int32_t> tokens, targets;
};

ModelConfig routing_config(const std::string& type) {
  ModelConfig cfg = test::tiny_config(false);
  cfg.num_layers = 3;
  cfg.use_mod = true;
  cfg.mod_routing_type = type;
  cfg.mod_capacity_factor = 0.25;
  return cfg;
}

TEST(ModModel, RandomRoutingKeepsCapacityAndIsKeyedBySeedStepAndMicroBatch) {
  ModModelFixture f(routing_config("random"), 2, 16);  // k = 4 per sequence
  const auto a = f.route(true, 7, 0);
  ASSERT_EQ(a.size(), 3u);
  for (const auto& rows : a) {
    ASSERT_EQ(rows.size(), 8u);
    EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](int32_t n) { return n < 16; }), 4);  // 4 per sequence
    EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
  }
  EXPECT_NE(a[0], a[1]);                // layers draw apart
  EXPECT_EQ(a, f.route(true, 7, 0));    // same (seed, step, micro): same tokens
  EXPECT_NE(a, f.route(true, 8, 0));    // next step
  EXPECT_NE(a, f.route(true, 7, 1));    // next micro-batch
  // Evaluation: the static pattern 0, 4, 8, 12 of each sequence, in every layer.
  const std::vector<int32_t> pattern{0, 4, 8, 12, 16, 20, 24, 28};
  for (const auto& rows : f.route(false, 7, 0)) EXPECT_EQ(rows, pattern);
}

TEST(ModModel, CapacityAnnealsWithTheTrainingStepAndEvaluationUsesTheTarget) {
  ModelConfig cfg = routing_config("learned");
  cfg.mod_capacity_anneal_steps = 100;
  ModModelFixture f(cfg, 1, 16);
  EXPECT_EQ(f.route(true, 0, 0)[0].size(), 16u);   // c = 1
  EXPECT_EQ(f.route(true, 50, 0)[0].size(), 10u);  // c = 0.625 -> 10
  EXPECT_EQ(f.route(true, 100, 0)[0].size(), 4u);  // c = 0.25 -> 4
  EXPECT_EQ(f.route(true, 500, 0)[0].size(), 4u);
  EXPECT_EQ(f.route(false, 0, 0)[0].size(), 4u);   // evaluation: the target
}

TEST(ModModel, LayerRangeAndLearnedParameters) {
  ModelConfig cfg = routing_config("learned");
  cfg.num_layers = 5;
  cfg.mod_start_layer = 1;
  cfg.mod_every_n = 2;  // layers 1 and 3
  const Transformer model(cfg);
  std::vector<int> mod_layers;
  for (size_t l = 0; l < model.blocks().size(); ++l)
    if (model.blocks()[l].is_mod()) mod_layers.push_back(static_cast<int>(l));
  EXPECT_EQ(mod_layers, (std::vector<int>{1, 3}));
  EXPECT_EQ(model.params().specs()[static_cast<size_t>(model.params().find("model.layers.3.mod_router.weight"))].shape,
            (Shape{1, cfg.hidden_size}));
  EXPECT_NO_THROW(model.params().find("model.layers.1.mod_predictor.weight"));
  EXPECT_THROW(model.params().find("model.layers.2.mod_router.weight"), Error);
  // Static routing has no router or predictor.
  const Transformer fixed(routing_config("static"));
  EXPECT_THROW(fixed.params().find("model.layers.0.mod_router.weight"), Error);
}

TEST(ModModel, StaticRoutingAtFullCapacityEqualsTheDenseModel) {
  // Every token routed with gate 1: the compact batch is the whole batch, so the
  // MoD model computes exactly what the dense one does (full block and FFN-only).
  for (const bool ffn_only : {false, true}) {
    SCOPED_TRACE(ffn_only ? "ffn only" : "full block");
    ModelConfig cfg = routing_config("static");
    cfg.mod_capacity_factor = 1.0;
    cfg.mod_ffn_only = ffn_only;
    ModelConfig dense_cfg = cfg;
    dense_cfg.use_mod = false;
    ModModelFixture mod(cfg, 2, 12), dense(dense_cfg, 2, 12);
    mod.model.set_training_step(true, 1, 0, 0);
    dense.model.set_training_step(true, 1, 0, 0);
    const ForwardResult a = mod.model.forward(mod.tokens.data(), mod.targets.data(), 1.0 / 24);
    const ForwardResult b = dense.model.forward(dense.tokens.data(), dense.targets.data(), 1.0 / 24);
    EXPECT_NEAR(a.loss_sum, b.loss_sum, 1e-12 * std::fabs(b.loss_sum));
    mod.model.params().zero_grads();
    dense.model.params().zero_grads();
    mod.model.backward(1.0);
    dense.model.backward(1.0);
    ASSERT_EQ(mod.model.params().numel(), dense.model.params().numel());
    const double* ga = mod.model.params().grads_flat().ptr<double>();
    const double* gb = dense.model.params().grads_flat().ptr<double>();
    double worst = 0.0, scale = 0.0;
    for (int64_t i = 0; i < dense.model.params().numel(); ++i) {
      worst = std::max(worst, std::fabs(ga[i] - gb[i]));
      scale = std::max(scale, std::fabs(gb[i]));
    }
    EXPECT_LE(worst, 1e-12 * scale);
  }
}

TEST(ModModel, ExpectedFlopsPerTokenAndParameterCounts) {
  // tiny_config: C 8, 2 layers, heads 2 (kv 1, D 4), ffn 12, vocab 11. Dense: 6 x (384 attention
  // + 576 ffn + 88 head) + 12 x 2 x 8 x 8 = 7824. MoD at capacity 1/2 of T = 8, every layer:
  // each saves 6 x 0.5 x (192 + 288) + 12 x 8 x 8 x (1 - 0.25) = 2016 and adds 6 x 16 (router, predictor).
  ModelConfig cfg = test::tiny_config(true);
  EXPECT_DOUBLE_EQ(train_flops_per_token(cfg, 8), 7824.0);
  cfg.use_mod = true;
  cfg.mod_capacity_factor = 0.5;
  EXPECT_DOUBLE_EQ(mod_train_flops_per_token(cfg, 8), 7824.0 - 2 * (2016.0 - 96.0));
  cfg.mod_ffn_only = true;  // only the FFN's 6 x 0.5 x 288 = 864 per layer
  EXPECT_DOUBLE_EQ(mod_train_flops_per_token(cfg, 8), 7824.0 - 2 * (864.0 - 96.0));
  const ParamCounts p = count_params(cfg);
  EXPECT_EQ(p.mod_layers, 2);
  EXPECT_EQ(p.mod_routers, 2 * 2 * 8);
  EXPECT_EQ(Transformer(cfg).params().numel(), p.total);
  cfg.mod_routing_type = "static";
  EXPECT_EQ(count_params(cfg).mod_routers, 0);
}

}  // namespace
}  // namespace lumina
