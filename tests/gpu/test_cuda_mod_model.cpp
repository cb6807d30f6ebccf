// Mixture-of-Depths models on the GPU against the CPU fp32 oracle: the first
// 10 losses of the same run (same init, batch and AdamW steps), full-block and
// FFN-only, static and learned routing (capacity 0.5 on both layers), within
// 1e-4 relative in f32 and 2% in bf16; and MoD generation (causal predictor
// decisions, per-layer caches of routed tokens) against the CPU session.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lumina/backend/cuda/cuda_backend.h"
#include "lumina/infer/kv_cache_session.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"
#include "support/kv_cache_check.h"
#include "support/prepared_model.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

ModelConfig mod_config(const std::string& routing, bool ffn_only) {
  ModelConfig cfg = test::small_config(259, 64);
  cfg.use_mod = true;
  cfg.mod_routing_type = routing;
  cfg.mod_capacity_factor = 0.5;
  cfg.mod_ffn_only = ffn_only;
  return cfg;
}

std::vector<double> first_losses(Backend& be, const ModelConfig& cfg, DType act, int steps) {
  const int64_t B = 4, T = 64;
  const auto owned = test::prepared_model(cfg, be, act, 7, B, T);
  Transformer& model = *owned;
  AdamW opt(model.params(), AdamWConfig{0.9, 0.95, 1e-8, 0.1});
  const auto tokens = test::random_tokens(B * T, cfg.vocab_size, 100);
  const auto targets = test::random_tokens(B * T, cfg.vocab_size, 200, 9);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    model.params().zero_grads();
    model.set_training_step(true, 1, s, 0);
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 1.0 / 1000.0);
    EXPECT_EQ(r.mod_layers.size(), 2u);
    for (const ModLayerStats& l : r.mod_layers) EXPECT_EQ(l.processed, B * T / 2);
    model.backward(1.0);
    opt.step(3e-3, clip_scale(grad_global_norm(model.params()), 1.0));
    losses.push_back(r.loss_sum / static_cast<double>(r.valid_tokens));
  }
  return losses;
}

void expect_close_to_cpu(const ModelConfig& cfg, DType act, double tolerance) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0);
  const std::vector<double> ref = first_losses(*cpu, cfg, DType::f32, 10);
  const std::vector<double> got = first_losses(*gpu, cfg, act, 10);
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_LE(std::fabs(got[i] - ref[i]) / ref[i], tolerance) << "step " << i << ": gpu " << got[i] << " cpu " << ref[i];
  EXPECT_LT(ref.back(), ref.front());  // the run learns: the comparison is not of constants
}

TEST(CudaModModel, StaticFullBlockF32Within1e4OfCpu) {
  expect_close_to_cpu(mod_config("static", false), DType::f32, 1e-4);
}
TEST(CudaModModel, LearnedFullBlockF32Within1e4OfCpu) {
  expect_close_to_cpu(mod_config("learned", false), DType::f32, 1e-4);
}
TEST(CudaModModel, LearnedFfnOnlyF32Within1e4OfCpu) {
  expect_close_to_cpu(mod_config("learned", true), DType::f32, 1e-4);
}
TEST(CudaModModel, LearnedFullBlockBf16Within2PercentOfCpu) {
  expect_close_to_cpu(mod_config("learned", false), DType::bf16, 0.02);
}

TEST(CudaModModel, GenerationMatchesCpuSession) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0);
  ModelConfig cfg = mod_config("learned", false);
  cfg.init_std = 0.1;  // predictor logits well away from 0: the same decisions on both devices
  Transformer on_cpu(cfg), on_gpu(cfg);
  on_cpu.allocate(*cpu, DType::f32, DType::f32);
  on_gpu.allocate(*gpu, DType::f32, DType::f32);
  on_cpu.params().init_weights(31);
  on_gpu.params().init_weights(31);
  const int64_t T = 40;
  const auto tokens = test::random_tokens(T, cfg.vocab_size, 8);
  test::expect_sessions_agree(on_gpu, on_cpu, tokens, 5, 1e-4, test::LogitBound::absolute);
}

}  // namespace
}  // namespace lumina
