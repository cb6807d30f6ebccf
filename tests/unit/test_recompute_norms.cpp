// model.recompute_norms: keeping an rmsnorm output for the backward or
// recomputing it there computes the same values, so a step's gradients are
// bitwise equal for none, attention and both (dense, MoE, MoD with the block or
// its FFN half routed); and each kept output adds one (tokens, hidden)
// activation per layer to the plan.
#include <gtest/gtest.h>

#include <string>

#include "support/step_gradients.h"

namespace lumina {
namespace {

ModelConfig with_recompute(ModelConfig cfg, const std::string& which) {
  cfg.recompute_norms = which;
  return cfg;
}

void expect_same_gradients(const ModelConfig& cfg) {
  const std::vector<double> both = test::step_gradients(with_recompute(cfg, "both"), false);
  double norm = 0.0;
  for (double g : both) norm += g * g;
  EXPECT_GT(norm, 0.0);  // the comparison is not of zeros
  for (const char* which : {"attention", "none"}) {
    const std::vector<double> kept = test::step_gradients(with_recompute(cfg, which), false);
    ASSERT_EQ(kept.size(), both.size());
    for (size_t i = 0; i < kept.size(); ++i) ASSERT_EQ(kept[i], both[i]) << which << ": gradient element " << i;
  }
}

TEST(RecomputeNorms, DenseGradientsBitwiseEqual) { expect_same_gradients(test::tiny_config(false)); }

TEST(RecomputeNorms, MoeGradientsBitwiseEqual) { expect_same_gradients(test::tiny_moe_config(2, 0.0)); }

TEST(RecomputeNorms, ModGradientsBitwiseEqual) {
  expect_same_gradients(test::with_learned_mod(test::tiny_config(false)));
  ModelConfig ffn_only = test::with_learned_mod(test::tiny_moe_config(2, 0.0));
  ffn_only.mod_ffn_only = true;
  expect_same_gradients(ffn_only);
}

TEST(RecomputeNorms, EachKeptOutputIsOneActivationPerLayer) {
  const ModelConfig cfg = test::tiny_config(false);
  const int64_t B = 4, T = 16, N = B * T;  // every tensor below a multiple of the arena's 256-byte alignment
  auto activations = [&](const char* which) {
    return Transformer(with_recompute(cfg, which)).memory_plan(B, T, DType::bf16).activations_bytes;
  };
  const int64_t one_output = N * cfg.hidden_size * 2;  // bf16
  // Recomputing needs one shared buffer for the output and one for its f32 rstd.
  const int64_t recompute_scratch = one_output + N * 4;
  EXPECT_EQ(activations("attention") - activations("both"), cfg.num_layers * one_output);
  EXPECT_EQ(activations("none") - activations("attention"), cfg.num_layers * one_output - recompute_scratch);
}

}  // namespace
}  // namespace lumina
