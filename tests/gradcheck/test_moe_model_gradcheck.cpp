// fp64 finite-difference check of a whole model with MoE layers (tiny_moe_config:
// layers 0 and 2 dense, 1 and 3 MoE), every parameter tensor, sampled elements,
// top-1 and top-2 with capacity drops and top-2 dropless, temperature 0.7, aux
// and z weights > 0. The scalar is the trainer's objective for one micro-batch:
//   J = CE_sum / valid + kAux * sum_layers (aux + z),
// so the aux and z gradients through every router are checked with the rest.
// The discrete routing (top-k choices, capacity) is held fixed by the analytic
// gradient; every +h / -h evaluation asserts it did not change.
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
constexpr double kAux = 0.8;  // d J / d (aux + z): the trainer's 1 / micro-batches

struct Routing {
  std::vector<int32_t> choice;
  std::vector<int32_t> slot_row;  // -1 where dropped
  bool operator==(const Routing&) const = default;
};

std::vector<Routing> routing_of(const Transformer& m) {
  std::vector<Routing> out;
  for (size_t l = 0; l < m.blocks().size(); ++l)
    if (const auto r = m.moe_routing(l)) out.push_back({r->choice, r->slot_row});
  return out;
}

void check_moe_model_gradients(int64_t top_k, double capacity_factor, bool expect_drops, uint64_t seed) {
  auto be = make_cpu_backend();
  Transformer model(test::tiny_moe_config(top_k, capacity_factor));
  model.allocate(*be, DType::f64, DType::f64);
  model.params().init_weights(seed);
  model.prepare(kBatch, kSeq);
  const auto tokens = test::random_tokens(kBatch * kSeq, model.config().vocab_size, seed + 1);
  const auto targets = test::random_tokens(kBatch * kSeq, model.config().vocab_size, seed + 2, /*mask_every=*/4);

  const ForwardResult first = model.forward(tokens.data(), targets.data(), 0.0);
  ASSERT_GT(first.valid_tokens, 0);
  ASSERT_EQ(first.moe_layers.size(), 2u);
  EXPECT_EQ(first.moe_layers[0].layer, 1);
  EXPECT_EQ(first.moe_layers[1].layer, 3);
  int64_t dropped = 0;
  for (const MoeLayerStats& l : first.moe_layers) {
    dropped += l.stats.tokens_dropped;
    EXPECT_GT(l.stats.aux_loss, 0.0);
    EXPECT_GT(l.stats.z_loss, 0.0);
  }
  EXPECT_EQ(dropped > 0, expect_drops) << dropped << " assignments dropped";
  EXPECT_NEAR(first.aux_loss, first.moe_layers[0].stats.aux_loss + first.moe_layers[1].stats.aux_loss, 1e-15);
  const std::vector<Routing> base = routing_of(model);
  const double inv_count = 1.0 / static_cast<double>(first.valid_tokens);
  auto objective = [&] {
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 0.0);
    return r.loss_sum * inv_count + kAux * (r.aux_loss + r.z_loss);
  };

  model.params().zero_grads();
  model.forward(tokens.data(), targets.data(), inv_count);
  model.backward(kAux);

  ParamStore& ps = model.params();
  const Rng pick(11, RngPurpose::test, static_cast<uint64_t>(top_k));
  auto same_routing = [&] { return routing_of(model) == base; };
  double worst = 0.0;
  for (size_t id = 0; id < ps.specs().size(); ++id) {
    const auto pid = static_cast<ParamId>(id);
    worst = std::max(worst, test::check_sampled_gradient(ps.specs()[id].name, ps.param(pid), ps.grad(pid), objective,
                                                         same_routing, pick, id * 100, kSamplesPerTensor));
  }
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
}

// N = 10 tokens over 4 experts: top-1 at capacity factor 0.8 -> 2 per expert (8 of 10 fit);
// top-2 at 0.8 -> 4 per expert (16 of 20 fit). Drops are certain.
TEST(MoeModelGradcheck, Top1WithDrops) { check_moe_model_gradients(1, 0.8, true, 1234); }
TEST(MoeModelGradcheck, Top2WithDrops) { check_moe_model_gradients(2, 0.8, true, 1234); }
TEST(MoeModelGradcheck, Top2Dropless) { check_moe_model_gradients(2, 0.0, false, 1234); }

}  // namespace
}  // namespace lumina
