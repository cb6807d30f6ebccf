// KV-cache decoding equals full recomputation; sampling options behave.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lumina/infer/kv_cache_session.h"
#include "lumina/infer/sampling.h"
#include "support/kv_cache_check.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

TEST(KvCache, IncrementalLogitsMatchFullRecomputeWithin1e5) {
  auto be = make_cpu_backend();
  ModelConfig cfg = test::tiny_config(false);
  cfg.init_std = 0.1;
  Transformer model(cfg);
  model.allocate(*be, DType::f32, DType::f32);
  model.params().init_weights(17);
  const int64_t T = 12;
  const auto tokens = test::random_tokens(T, cfg.vocab_size, 4);
  EXPECT_EQ(test::expect_incremental_matches_full(model, tokens, 1e-5), T);
}

TEST(KvCache, LastPositionLossMatchesTrainingForward) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = test::tiny_config(true);
  Transformer model(cfg);
  model.allocate(*be, DType::f64, DType::f64);
  model.params().init_weights(23);
  const int64_t T = 8;
  model.prepare(1, T);
  const auto tokens = test::random_tokens(T, cfg.vocab_size, 5);
  std::vector<int32_t> targets(T, -1);
  targets[T - 1] = 3;  // only the last position counts
  const ForwardResult r = model.forward(tokens.data(), targets.data(), 0.0);
  KvCacheSession session(model, T);
  const std::vector<double> logits = session.append(tokens.data(), T);
  double lse = 0.0;
  const double top = *std::max_element(logits.begin(), logits.end());
  for (double l : logits) lse += std::exp(l - top);
  EXPECT_NEAR(top + std::log(lse) - logits[3], r.loss_sum, 1e-12);
}

TEST(KvCache, RejectsOverflowAndBadTokens) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = test::tiny_config(false);
  Transformer model(cfg);
  model.allocate(*be, DType::f32, DType::f32);
  KvCacheSession session(model, 4);
  const std::vector<int32_t> five(5, 1);
  EXPECT_THROW(session.append(five.data(), 5), Error);
  const int32_t bad = static_cast<int32_t>(cfg.vocab_size);
  EXPECT_THROW(session.append(&bad, 1), Error);
  EXPECT_THROW(KvCacheSession(model, cfg.max_position_embeddings + 1), Error);
}

TEST(Sampling, GreedyTopKTopPAndDeterminism) {
  const std::vector<double> logits{0.0, 3.0, 1.0, 2.9};
  SamplingOptions greedy;
  greedy.temperature = 0.0;
  EXPECT_EQ(sample_token(logits, greedy, 0), 1);
  SamplingOptions top1;
  top1.top_k = 1;
  for (uint64_t i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, top1, i), 1);
  // top_p just above p(1): the nucleus is {1, 3}, never 0 or 2.
  SamplingOptions nucleus;
  nucleus.top_p = 0.6;
  nucleus.seed = 9;
  int seen3 = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const int32_t t = sample_token(logits, nucleus, i);
    EXPECT_TRUE(t == 1 || t == 3) << t;
    seen3 += t == 3;
    EXPECT_EQ(t, sample_token(logits, nucleus, i));  // same seed and index, same token
  }
  EXPECT_GT(seen3, 40);  // p(3 | nucleus) = e^2.9 / (e^3 + e^2.9) ~ 0.475
  SamplingOptions bad;
  bad.top_p = 0.0;
  EXPECT_THROW(validate_sampling(bad), Error);
}

}  // namespace
}  // namespace lumina
