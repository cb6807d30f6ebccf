// The whole dense model trained on the GPU against the CPU fp32 oracle: the
// first 10 losses of the same run (same init, batch and AdamW steps) agree
// within 2% in bf16 and within 1e-4 relative in f32.
#include <gtest/gtest.h>

#include <cmath>

#include "lumina/backend/cuda/cuda_backend.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

// loss_scale: the loss gradient is multiplied by it and the update divides it
// back out, as the trainer's fp16 loss scaling does.
std::vector<double> first_losses(Backend& be, DType act, int steps, double loss_scale = 1.0) {
  const ModelConfig cfg = test::small_config(259, 64);
  Transformer model(cfg);
  model.allocate(be, DType::f32, act);
  model.params().init_weights(7);
  const int64_t B = 4, T = 64;
  model.prepare(B, T);
  AdamW opt(model.params(), AdamWConfig{0.9, 0.95, 1e-8, 0.1});
  // One fixed batch, so that ten steps visibly lower the loss.
  const auto tokens = test::random_tokens(B * T, cfg.vocab_size, 100);
  const auto targets = test::random_tokens(B * T, cfg.vocab_size, 200, 9);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    model.params().zero_grads();
    const ForwardResult r = model.forward(tokens.data(), targets.data(), loss_scale / 1000.0);
    model.backward();
    opt.step(3e-3, clip_scale(grad_global_norm(model.params()) / loss_scale, 1.0) / loss_scale);
    losses.push_back(r.loss_sum / static_cast<double>(r.valid_tokens));
  }
  return losses;
}

void expect_close_to_cpu(DType act, double tolerance, double loss_scale = 1.0) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0);
  const std::vector<double> ref = first_losses(*cpu, DType::f32, 10);
  const std::vector<double> got = first_losses(*gpu, act, 10, loss_scale);
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_LE(std::fabs(got[i] - ref[i]) / ref[i], tolerance) << "step " << i << ": gpu " << got[i] << " cpu " << ref[i];
  EXPECT_LT(ref.back(), ref.front());  // the run learns: the comparison is not of constants
}

TEST(CudaModel, FirstTenLossesBf16Within2PercentOfCpu) { expect_close_to_cpu(DType::bf16, 0.02); }
TEST(CudaModel, FirstTenLossesF32Within1e4OfCpu) { expect_close_to_cpu(DType::f32, 1e-4); }
TEST(CudaModel, FirstTenLossesF16WithLossScaleWithin2PercentOfCpu) { expect_close_to_cpu(DType::f16, 0.02, 1024.0); }

}  // namespace
}  // namespace lumina
