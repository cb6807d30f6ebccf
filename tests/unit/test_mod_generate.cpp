// Mixture-of-Depths generation (KvCacheSession): each MoD layer decides per
// token without looking ahead and caches only the tokens it runs. The logits
// of incremental decoding (a 3-token prompt, then one token at a time) must
// equal a full, non-cached forward that makes the same causal decisions
// (Transformer::set_mod_causal), position by position, in f64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lumina/infer/kv_cache_session.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

constexpr int64_t kSeq = 10;

// Cross-entropy of `target` under the logits.
double cross_entropy(const std::vector<double>& logits, int32_t target) {
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (const double l : logits) sum += std::exp(l - top);
  return top + std::log(sum) - logits[static_cast<size_t>(target)];
}

// Returns the tokens each MoD layer ran in the full causal forward.
std::vector<int64_t> check_generation(const ModelConfig& cfg, uint64_t seed = 31) {
  auto be = make_cpu_backend();
  Transformer model(cfg);
  model.allocate(*be, DType::f64, DType::f64);
  model.params().init_weights(seed);
  model.prepare(1, kSeq);
  model.set_mod_causal(true);
  const auto tokens = test::random_tokens(kSeq, cfg.vocab_size, 8);
  KvCacheSession session(model, kSeq);
  std::vector<double> logits = session.append(tokens.data(), 3);
  std::vector<int64_t> processed;
  for (int64_t t = 2; t < kSeq; ++t) {
    std::vector<int32_t> targets(kSeq, -1);
    targets[static_cast<size_t>(t)] = static_cast<int32_t>((t * 5) % cfg.vocab_size);  // only position t counts
    const ForwardResult full = model.forward(tokens.data(), targets.data(), 0.0);
    EXPECT_NEAR(cross_entropy(logits, targets[static_cast<size_t>(t)]), full.loss_sum, 1e-10) << "position " << t;
    if (t + 1 < kSeq) logits = session.append(tokens.data() + t + 1, 1);
    processed.clear();
    for (const ModLayerStats& l : full.mod_layers) processed.push_back(l.processed);
  }
  EXPECT_EQ(session.length(), kSeq);
  return processed;
}

ModelConfig mod_config(const std::string& routing, bool ffn_only) {
  ModelConfig cfg = test::tiny_config(false);
  cfg.num_layers = 3;
  cfg.use_mod = true;
  cfg.mod_routing_type = routing;
  cfg.mod_capacity_factor = 0.5;
  cfg.mod_ffn_only = ffn_only;
  return cfg;
}

TEST(ModGenerate, LearnedPredictorDecisionsMatchFullForward) {
  const std::vector<int64_t> processed = check_generation(mod_config("learned", false));
  ASSERT_EQ(processed.size(), 3u);
  // The predictors route some tokens and skip others (the test would be vacuous otherwise).
  for (const int64_t p : processed) {
    EXPECT_GT(p, 0);
    EXPECT_LT(p, kSeq);
  }
}

TEST(ModGenerate, LearnedFfnOnlyMatchesFullForward) {
  for (const int64_t p : check_generation(mod_config("learned", true), 32)) {
    EXPECT_GT(p, 0);
    EXPECT_LT(p, kSeq);
  }
}

TEST(ModGenerate, StaticAndRandomUseThePositionPattern) {
  // Pattern of a max_position_embeddings = 16 sequence at capacity 8: even positions, 5 of 10.
  for (const std::string routing : {"static", "random"})
    EXPECT_EQ(check_generation(mod_config(routing, false)), (std::vector<int64_t>{5, 5, 5})) << routing;
}

TEST(ModGenerate, HybridMoeModMatchesFullForward) {
  ModelConfig cfg = test::tiny_moe_config(2, 0.0);  // dropless: MoE capacity cannot depend on the call size
  cfg.use_mod = true;
  cfg.mod_capacity_factor = 0.5;
  cfg.mod_start_layer = 1;  // MoD on layers 1, 2 and 3 (1 and 3 are MoE)
  EXPECT_EQ(check_generation(cfg).size(), 3u);
}

}  // namespace
}  // namespace lumina
