// fp64 finite-difference checks of Mixture-of-Depths with learned routing:
// - one MoD block (full block, and mod_ffn_only), w.r.t. its input x and every
//   parameter (sampled), scalar L = sum(out * R) (+ the predictor's loss for the
//   predictor's weight);
// - a tiny hybrid model (MoE layers 1 and 3, MoD on every layer), every
//   parameter tensor, scalar = the trainer's objective for one micro-batch:
//   J = CE_sum / valid + kAux * (aux + z)   (+ kAux * predictor loss for the predictors).
// The predictors see stop-gradient inputs, so their loss enters the numeric
// scalar only when a predictor weight is perturbed. The MoD selection (and the
// MoE routing) is held fixed by the analytic gradient: every +h / -h
// evaluation asserts that it did not change.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "gradcheck/host_tensor.h"
#include "gradcheck/sampled_gradcheck.h"
#include "lumina/model/transformer.h"
#include "support/tiny_model.h"

namespace lumina {
namespace {

constexpr double kAux = 0.8;           // d J / d (auxiliary losses)
constexpr int kSamplesPerTensor = 6;

bool is_predictor(const std::string& name) { return name.find("mod_predictor") != std::string::npos; }

// Sampled central differences of scalar() against `analytic` (sampled_gradcheck.h);
// routing_same() must hold after every evaluation.
void check_tensor(const std::string& name, Tensor value, const Tensor& analytic, const std::function<double()>& scalar,
                  const std::function<bool()>& routing_same, uint64_t pick_stream, int samples) {
  test::check_sampled_gradient(name, value, analytic, scalar, routing_same, Rng(13, RngPurpose::test, pick_stream), 0,
                               samples);
}

void check_mod_block(bool ffn_only) {
  constexpr int64_t B = 2, T = 6;
  ModelConfig cfg = test::tiny_config(false);
  cfg.num_layers = 1;
  cfg.use_mod = true;
  cfg.mod_capacity_factor = 0.5;  // k = 3 of 6
  cfg.mod_ffn_only = ffn_only;
  auto be = make_cpu_backend();
  ParamStore ps;
  std::vector<Block> blocks;
  blocks.emplace_back(ps, cfg, 0);
  const Block& block = blocks.front();
  ASSERT_TRUE(block.is_mod());
  ps.allocate(*be, DType::f64);
  ps.init_weights(77);
  ModelContext c{be.get(), &ps, ps.params_flat(), DType::f64, DType::f64};
  c.dloss_aux = kAux;
  auto [cos, sin] = test::rope_tables(DType::f64, cfg.max_position_embeddings, cfg.head_dim());
  const RopeTables rope{cos.t(), sin.t()};

  Arena measure = Arena::measuring(Device::cpu);
  block.plan(measure, DType::f64, DType::f64, B, T);
  Block::plan_scratch(blocks, measure, DType::f64, DType::f64, B, T);
  Arena arena(be->allocate(measure.peak_bytes()));
  Block::Activations a = block.plan(arena, DType::f64, DType::f64, B, T);
  Block::Scratch s = Block::plan_scratch(blocks, arena, DType::f64, DType::f64, B, T);
  const Shape nc{B * T, cfg.hidden_size};
  test::HostTensor x = test::random_normal(DType::f64, nc, 1);
  test::HostTensor weight = test::random_normal(DType::f64, nc, 2);
  test::HostTensor out(DType::f64, nc), dresid(DType::f64, nc);

  const ModRouter& router = *block.mod();
  auto run = [&] { block.forward(c, rope, x, out, a, s); };
  auto out_term = [&] {
    run();
    double l = 0.0;
    for (int64_t i = 0; i < out.numel(); ++i) l += out.get(i) * weight.get(i);
    return l;
  };
  auto predictor_term = [&] {
    run();
    return kAux * kModPredictorLossWeight * router.collect_stats(*be, a.mod).predictor_loss;
  };
  run();
  const std::vector<int32_t> base = ModRouter::snapshot(*be, a.mod);
  ASSERT_EQ(base.size(), static_cast<size_t>(B * 3));
  // Some token skipped the layer: its output is its input.
  for (int64_t n = 0; n < B * T && !ffn_only; ++n)
    if (std::find(base.begin(), base.end(), n) == base.end()) {
      for (int64_t j = n * cfg.hidden_size; j < (n + 1) * cfg.hidden_size; ++j) ASSERT_EQ(out.get(j), x.get(j));
      break;
    }
  EXPECT_GT(router.collect_stats(*be, a.mod).predictor_loss, 0.0);
  ps.zero_grads();
  be->copy(dresid, weight);
  block.backward(c, rope, x, dresid, a, s);
  test::HostTensor dx = dresid;

  auto same = [&] { return ModRouter::snapshot(*be, a.mod) == base; };
  check_tensor("x", x, dx, out_term, same, 1, 1000);
  for (size_t id = 0; id < ps.specs().size(); ++id) {
    const std::string& name = ps.specs()[id].name;
    check_tensor(name, ps.param(static_cast<ParamId>(id)), ps.grad(static_cast<ParamId>(id)),
                 is_predictor(name) ? std::function<double()>(predictor_term) : std::function<double()>(out_term), same,
                 10 + id, kSamplesPerTensor);
  }
  EXPECT_EQ(router.type(), ModRoutingType::learned);
}

TEST(ModGradcheck, LearnedFullBlock) { check_mod_block(false); }
TEST(ModGradcheck, LearnedFfnOnly) { check_mod_block(true); }

struct Decisions {
  std::vector<std::vector<int32_t>> mod_rows;
  std::vector<std::vector<int32_t>> moe_choice;
  std::vector<std::vector<int32_t>> moe_slot_row;
  bool operator==(const Decisions&) const = default;
};

void check_hybrid_model(bool ffn_only) {
  constexpr int64_t kBatch = 2, kSeq = 6;
  ModelConfig cfg = test::tiny_moe_config(2, 0.0);  // layers 1 and 3 MoE (top-2, dropless)
  cfg.use_mod = true;
  cfg.mod_capacity_factor = 0.5;
  cfg.mod_ffn_only = ffn_only;
  auto be = make_cpu_backend();
  Transformer model(cfg);
  model.allocate(*be, DType::f64, DType::f64);
  model.params().init_weights(99);
  model.prepare(kBatch, kSeq);
  const auto tokens = test::random_tokens(kBatch * kSeq, cfg.vocab_size, 5);
  const auto targets = test::random_tokens(kBatch * kSeq, cfg.vocab_size, 6, /*mask_every=*/4);

  const ForwardResult first = model.forward(tokens.data(), targets.data(), 0.0);
  ASSERT_EQ(first.mod_layers.size(), 4u);
  ASSERT_EQ(first.moe_layers.size(), 2u);
  for (const ModLayerStats& l : first.mod_layers) EXPECT_EQ(l.processed, kBatch * 3);
  EXPECT_EQ(first.moe_layers[0].assignments, kBatch * 3 * 2);  // top-2 of the routed tokens only
  EXPECT_NEAR(first.mod_average_depth, 2.0, 1e-12);              // 4 layers at capacity 1/2
  auto decisions = [&] {
    Decisions d;
    for (size_t l = 0; l < model.blocks().size(); ++l) {
      if (auto rows = model.mod_routed_tokens(l)) d.mod_rows.push_back(*rows);
      if (const auto r = model.moe_routing(l)) {
        d.moe_choice.push_back(r->choice);
        d.moe_slot_row.push_back(r->slot_row);
      }
    }
    return d;
  };
  const double inv_count = 1.0 / static_cast<double>(first.valid_tokens);
  auto objective = [&] {
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 0.0);
    return r.loss_sum * inv_count + kAux * (r.aux_loss + r.z_loss);
  };
  auto predictor_objective = [&] { return kAux * model.forward(tokens.data(), targets.data(), 0.0).mod_predictor_loss; };
  const Decisions base = decisions();
  ASSERT_EQ(base.mod_rows.size(), 4u);

  model.params().zero_grads();
  model.forward(tokens.data(), targets.data(), inv_count);
  model.backward(kAux);

  auto same = [&] { return decisions() == base; };
  ParamStore& ps = model.params();
  for (size_t id = 0; id < ps.specs().size(); ++id) {
    const std::string& name = ps.specs()[id].name;
    check_tensor(name, ps.param(static_cast<ParamId>(id)), ps.grad(static_cast<ParamId>(id)),
                 is_predictor(name) ? std::function<double()>(predictor_objective) : std::function<double()>(objective),
                 same, 100 + id, kSamplesPerTensor);
  }
}

TEST(ModGradcheck, HybridMoeModModel) { check_hybrid_model(false); }
TEST(ModGradcheck, HybridMoeModModelFfnOnly) { check_hybrid_model(true); }

}  // namespace
}  // namespace lumina
