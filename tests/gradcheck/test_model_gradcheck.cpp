// fp64 finite-difference check of the whole dense model: every parameter
// tensor, several sampled elements each, tied and untied heads, GQA, masked targets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lumina/model/transformer.h"
#include "gradcheck/sampled_gradcheck.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

constexpr int64_t kBatch = 2, kSeq = 5;
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
    const auto pid = static_cast<ParamId>(id);
    worst = std::max(worst, test::check_sampled_gradient(ps.specs()[id].name, ps.param(pid), ps.grad(pid), loss, {},
                                                         pick, id * 100, kSamplesPerTensor));
  }
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST(ModelGradcheck, UntiedHeadAllParameters) { check_model_gradients(false); }
TEST(ModelGradcheck, TiedHeadAllParameters) { check_model_gradients(true); }

}  // namespace
}  // namespace lumina
