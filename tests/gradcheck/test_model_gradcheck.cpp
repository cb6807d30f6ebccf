// fp64 finite-difference check of the whole dense model: every parameter
// tensor, several sampled elements each, tied and untied heads, GQA, masked targets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lumina/model/transformer.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

constexpr int64_t kBatch = 2, kSeq = 5;
constexpr double kStep = 1e-5;           // central-difference step
constexpr double kMaxRelError = 1e-6;    // |analytic - numeric| / max(|analytic|, |numeric|, kFloor)
constexpr double kFloor = 1e-4;          // gradients below this are compared absolutely at this scale
constexpr int kSamplesPerTensor = 6;

void check_model_gradients(bool tied) {
  auto be = make_cpu_backend();
  Transformer model(test::tiny_config(tied));
  model.allocate(*be, DType::f64, DType::f64);
  model.params().init_weights(1234);
  model.prepare(kBatch, kSeq);
  const auto tokens = test::random_tokens(kBatch * kSeq, model.config().vocab_size, 1);
  const auto targets = test::random_tokens(kBatch * kSeq, model.config().vocab_size, 2, /*mask_every=*/4);

  // Loss = mean over unmasked targets.
  const ForwardResult first = model.forward(tokens.data(), targets.data(), 0.0);
  ASSERT_GT(first.valid_tokens, 0);
  const double inv_count = 1.0 / static_cast<double>(first.valid_tokens);
  auto loss = [&] { return model.forward(tokens.data(), targets.data(), 0.0).loss_sum * inv_count; };

  model.params().zero_grads();
  model.forward(tokens.data(), targets.data(), inv_count);
  model.backward(0.0);  // dense: no auxiliary losses

  ParamStore& ps = model.params();
  const Rng pick(7, RngPurpose::test, tied ? 1 : 2);
  double worst = 0.0;
  for (size_t id = 0; id < ps.specs().size(); ++id) {
    const ParamSpec& spec = ps.specs()[id];
    double* w = ps.param(static_cast<ParamId>(id)).ptr<double>();
    const double* g = ps.grad(static_cast<ParamId>(id)).ptr<double>();
    const int64_t n = spec.shape.numel();
    double tensor_grad_norm = 0.0;
    for (int64_t i = 0; i < n; ++i) tensor_grad_norm += g[i] * g[i];
    EXPECT_GT(tensor_grad_norm, 0.0) << spec.name << " received no gradient";
    for (int s = 0; s < std::min<int64_t>(kSamplesPerTensor, n); ++s) {
      const int64_t i = static_cast<int64_t>(pick.bits(id * 100 + static_cast<uint64_t>(s)) % static_cast<uint64_t>(n));
      const double saved = w[i];
      w[i] = saved + kStep;
      const double up = loss();
      w[i] = saved - kStep;
      const double down = loss();
      w[i] = saved;
      const double numeric = (up - down) / (2 * kStep);
      const double rel = std::fabs(g[i] - numeric) / std::max({std::fabs(g[i]), std::fabs(numeric), kFloor});
      worst = std::max(worst, rel);
      EXPECT_LE(rel, kMaxRelError) << spec.name << "[" << i << "]: analytic " << g[i] << " numeric " << numeric;
    }
  }
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST(ModelGradcheck, UntiedHeadAllParameters) { check_model_gradients(false); }
TEST(ModelGradcheck, TiedHeadAllParameters) { check_model_gradients(true); }

}  // namespace
}  // namespace lumina
