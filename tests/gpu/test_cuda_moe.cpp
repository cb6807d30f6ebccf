// An MoE model trained on the GPU against the CPU fp32 oracle: the first 10
// losses of the same run (same init, batch and AdamW steps, aux and z losses
// on) agree within the stated bounds. The routing is discrete, so a near-tie
// decided differently by the GPU's rounding moves a token to another expert:
// the bounds are looser than the dense model's (test_cuda_model.cpp).
#include <gtest/gtest.h>

#include <cmath>

#include "lumina/backend/cuda/cuda_backend.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"
#include "support/prepared_model.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

struct MoeRun {
  std::vector<double> losses, aux;
};

MoeRun first_moe_losses(Backend& be, DType act, int steps) {
  ModelConfig cfg = test::small_config(259, 64);
  cfg.use_moe = true;
  cfg.num_experts = 4;
  cfg.moe_top_k = 2;
  cfg.moe_pattern = "every_2nd";  // layer 0 dense, layer 1 MoE
  cfg.router_z_loss_weight = 0.001;
  const int64_t B = 4, T = 64;
  const auto owned = test::prepared_model(cfg, be, act, 7, B, T);
  Transformer& model = *owned;
  AdamW opt(model.params(), AdamWConfig{0.9, 0.95, 1e-8, 0.1});
  const auto tokens = test::random_tokens(B * T, cfg.vocab_size, 100);
  const auto targets = test::random_tokens(B * T, cfg.vocab_size, 200, 9);
  MoeRun run;
  for (int s = 0; s < steps; ++s) {
    model.params().zero_grads();
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 1.0 / 1000.0);
    model.backward(1.0);
    opt.step(3e-3, clip_scale(grad_global_norm(model.params()), 1.0));
    run.losses.push_back(r.loss_sum / static_cast<double>(r.valid_tokens));
    run.aux.push_back(r.aux_loss + r.z_loss);
  }
  return run;
}

void expect_moe_close_to_cpu(DType act, double tolerance) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0);
  const MoeRun ref = first_moe_losses(*cpu, DType::f32, 10);
  const MoeRun got = first_moe_losses(*gpu, act, 10);
  for (size_t i = 0; i < ref.losses.size(); ++i) {
    EXPECT_LE(std::fabs(got.losses[i] - ref.losses[i]) / ref.losses[i], tolerance)
        << "step " << i << ": gpu " << got.losses[i] << " cpu " << ref.losses[i];
    EXPECT_LE(std::fabs(got.aux[i] - ref.aux[i]) / ref.aux[i], tolerance)
        << "step " << i << ": aux + z gpu " << got.aux[i] << " cpu " << ref.aux[i];
  }
  EXPECT_LT(ref.losses.back(), ref.losses.front());
}

TEST(CudaMoe, FirstTenLossesF32Within1e3OfCpu) { expect_moe_close_to_cpu(DType::f32, 1e-3); }
TEST(CudaMoe, FirstTenLossesBf16Within3PercentOfCpu) { expect_moe_close_to_cpu(DType::bf16, 0.03); }

}  // namespace
}  // namespace lumina
