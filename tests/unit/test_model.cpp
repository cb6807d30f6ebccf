// Dense model: f32 vs f64 forward, overfitting one batch, parameter accounting.
#include <gtest/gtest.h>

#include <cmath>

#include "lumina/model/accounting.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"
#include "support/prepared_model.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

TEST(Model, F32ForwardMatchesF64Within1e5) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = test::small_config(64, 32);
  Transformer m64(cfg), m32(cfg);
  m64.allocate(*be, DType::f64, DType::f64);
  m32.allocate(*be, DType::f32, DType::f32);
  m64.params().init_weights(5);
  m32.params().init_weights(5);
  // Give both exactly the same (f32-representable) weights.
  be->cast(m64.params().params_flat(), m32.params().params_flat());
  m64.prepare(4, 32);
  m32.prepare(4, 32);
  const auto tokens = test::random_tokens(4 * 32, cfg.vocab_size, 11);
  const auto targets = test::random_tokens(4 * 32, cfg.vocab_size, 12, 7);
  const ForwardResult r64 = m64.forward(tokens.data(), targets.data(), 0.0);
  const ForwardResult r32 = m32.forward(tokens.data(), targets.data(), 0.0);
  ASSERT_EQ(r64.valid_tokens, r32.valid_tokens);
  EXPECT_NEAR(r32.loss_sum / r64.loss_sum, 1.0, 1e-5);
  // At init the loss is close to log(V): the model is not degenerate.
  EXPECT_NEAR(r64.loss_sum / static_cast<double>(r64.valid_tokens), std::log(64.0), 0.1);
}

TEST(Model, OverfitsOneBatchBelow005In300Steps) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = test::small_config(32, 16);
  const int64_t B = 4, T = 16;
  const auto owned = test::prepared_model(cfg, *be, DType::f32, 3, B, T);
  Transformer& model = *owned;
  const auto data = test::random_tokens(B * (T + 1), cfg.vocab_size, 21);
  std::vector<int32_t> tokens, targets;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      tokens.push_back(data[static_cast<size_t>(b * (T + 1) + t)]);
      targets.push_back(data[static_cast<size_t>(b * (T + 1) + t + 1)]);
    }
  AdamW opt(model.params(), AdamWConfig{0.9, 0.95, 1e-8, 0.0});
  double loss = 0.0;
  int steps = 0;
  for (; steps < 300; ++steps) {
    model.params().zero_grads();
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 1.0 / (B * T));
    loss = r.loss_sum / static_cast<double>(r.valid_tokens);
    if (loss < 0.05) break;
    model.backward(0.0);  // dense: no auxiliary losses
    opt.step(1e-2, clip_scale(grad_global_norm(model.params()), 1.0));
  }
  EXPECT_LT(loss, 0.05) << "after " << steps << " steps";
}

TEST(Model, DeclaredParametersMatchAccountingAndAllocation) {
  for (bool tied : {true, false}) {
    ModelConfig cfg = test::tiny_config(tied);
    Transformer model(cfg);
    const ParamCounts counts = count_params(cfg);
    EXPECT_EQ(model.params().numel(), counts.total);
    auto be = make_cpu_backend();
    model.allocate(*be, DType::f32, DType::f32);
    EXPECT_EQ(model.params().params_flat().numel(), counts.total);
    EXPECT_EQ(model.params().grads_flat().numel(), counts.total);
  }
}

}  // namespace
}  // namespace lumina
