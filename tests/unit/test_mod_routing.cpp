// Mixture-of-Depths routing math (model/mod_routing.h): capacity and its
// annealing, the static pattern, random and top-k selections, layer ranges,
// the predictor's loss; and rope with per-token positions.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"
#include "lumina/model/layer_kinds.h"
#include "lumina/model/mod_routing.h"

namespace lumina {
namespace {

TEST(ModCapacity, AnnealsLinearlyFromOneToTheTarget) {
  EXPECT_DOUBLE_EQ(mod_capacity_fraction(0.25, 0, 0), 0.25);   // no annealing
  EXPECT_DOUBLE_EQ(mod_capacity_fraction(0.25, 0, 50), 0.25);
  EXPECT_DOUBLE_EQ(mod_capacity_fraction(0.25, 100, 0), 1.0);   // starts at 1
  EXPECT_DOUBLE_EQ(mod_capacity_fraction(0.25, 100, 40), 0.7);  // 1 - 0.75 * 0.4
  EXPECT_DOUBLE_EQ(mod_capacity_fraction(0.25, 100, 100), 0.25);
  EXPECT_DOUBLE_EQ(mod_capacity_fraction(0.25, 100, 1000), 0.25);  // constant after
}

TEST(ModCapacity, RoundsToNearestAndKeepsAtLeastOneToken) {
  EXPECT_EQ(mod_capacity(256, 0.5), 128);
  EXPECT_EQ(mod_capacity(10, 0.25), 3);    // 2.5 rounds up
  EXPECT_EQ(mod_capacity(10, 0.24), 2);    // 2.4 rounds down
  EXPECT_EQ(mod_capacity(10, 0.01), 1);    // never 0
  EXPECT_EQ(mod_capacity(10, 1.0), 10);
  EXPECT_EQ(mod_capacity(7, 0.7), 5);      // 4.9
}

TEST(ModSelect, StaticPatternIsEvenlySpacedAndCausal) {
  std::vector<int32_t> p;
  mod_select_static(8, 3, p);
  EXPECT_EQ(p, (std::vector<int32_t>{0, 3, 6}));
  p.clear();
  mod_select_static(8, 4, p);
  EXPECT_EQ(p, (std::vector<int32_t>{0, 2, 4, 6}));
  p.clear();
  mod_select_static(5, 5, p);
  EXPECT_EQ(p, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  // The per-position test agrees with the list for many (T, k).
  for (int64_t T = 1; T <= 40; ++T)
    for (int64_t k = 1; k <= T; ++k) {
      std::vector<int32_t> list;
      mod_select_static(T, k, list);
      ASSERT_EQ(static_cast<int64_t>(list.size()), k);
      std::vector<int32_t> tested;
      for (int64_t t = 0; t < T; ++t)
        if (mod_static_selected(t, T, k)) tested.push_back(static_cast<int32_t>(t));
      ASSERT_EQ(list, tested) << "T " << T << " k " << k;
    }
}

TEST(ModSelect, TopKKeepsOrderAndBreaksTiesToTheLowerPosition) {
  const double scores[] = {0.1, 0.9, -2.0, 0.9, 0.5, 0.9};
  std::vector<int32_t> p;
  mod_select_top_k(scores, 6, 2, p);
  EXPECT_EQ(p, (std::vector<int32_t>{1, 3}));  // three tie at 0.9: positions 1 and 3 win
  p.clear();
  mod_select_top_k(scores, 6, 4, p);
  EXPECT_EQ(p, (std::vector<int32_t>{1, 3, 4, 5}));
}

TEST(ModSelect, RandomKeepsCapacityDiffersBetweenStepsAndIsReproducible) {
  const int64_t T = 64, k = 16;
  auto draw = [&](uint64_t step, uint64_t first_index) {
    std::vector<int32_t> p;
    mod_select_random(Rng(5, RngPurpose::mod_routing, step), first_index, T, k, p);
    return p;
  };
  const std::vector<int32_t> a = draw(3, 0);
  ASSERT_EQ(static_cast<int64_t>(a.size()), k);
  EXPECT_EQ(std::set<int32_t>(a.begin(), a.end()).size(), static_cast<size_t>(k));  // distinct
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), T);
  EXPECT_EQ(a, draw(3, 0));   // same (seed, step, index): same tokens
  EXPECT_NE(a, draw(4, 0));   // another step
  EXPECT_NE(a, draw(3, T));   // another (micro-batch, layer, sequence) key
  // Over many steps every position is picked about k/T = 1/4 of the time.
  std::vector<int> count(T, 0);
  const int steps = 400;
  for (int s = 0; s < steps; ++s)
    for (int32_t t : draw(static_cast<uint64_t>(100 + s), 0)) ++count[static_cast<size_t>(t)];
  for (int c : count) EXPECT_NEAR(c / static_cast<double>(steps), 0.25, 0.1);
}

TEST(ModLayers, RangeAndEveryN) {
  ModelConfig cfg;
  cfg.num_layers = 8;
  EXPECT_FALSE(is_mod_layer(cfg, 0));  // use_mod off
  cfg.use_mod = true;
  for (int64_t l = 0; l < 8; ++l) EXPECT_TRUE(is_mod_layer(cfg, l));
  cfg.mod_start_layer = 1;
  cfg.mod_end_layer = 6;
  cfg.mod_every_n = 2;
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < 8; ++l)
    if (is_mod_layer(cfg, l)) layers.push_back(l);
  EXPECT_EQ(layers, (std::vector<int64_t>{1, 3, 5}));
  cfg.mod_end_layer = -1;
  cfg.mod_every_n = 3;
  layers.clear();
  for (int64_t l = 0; l < 8; ++l)
    if (is_mod_layer(cfg, l)) layers.push_back(l);
  EXPECT_EQ(layers, (std::vector<int64_t>{1, 4, 7}));
}

TEST(ModPredictor, BinaryCrossEntropyIsStable) {
  EXPECT_NEAR(mod_predictor_bce(0.0, true), std::log(2.0), 1e-15);
  EXPECT_NEAR(mod_predictor_bce(2.0, true), -std::log(1.0 / (1.0 + std::exp(-2.0))), 1e-15);
  EXPECT_NEAR(mod_predictor_bce(2.0, false), -std::log(1.0 - 1.0 / (1.0 + std::exp(-2.0))), 1e-14);
  EXPECT_NEAR(mod_predictor_bce(-800.0, false), 0.0, 1e-300);  // no overflow
  EXPECT_NEAR(mod_predictor_bce(-800.0, true), 800.0, 1e-12);
  EXPECT_NEAR(mod_sigmoid(-800.0), 0.0, 1e-300);
  EXPECT_DOUBLE_EQ(mod_sigmoid(0.0), 0.5);
}

TEST(RopePositions, ContiguousPositionsEqualTheOffsetOpBitwise) {
  auto be = make_cpu_backend();
  const int64_t B = 2, T = 5, H = 3, D = 8, offset = 4;
  auto [cos, sin] = test::rope_tables(DType::f32, offset + T, D);
  test::HostTensor by_offset = test::random_normal(DType::f32, Shape{B, T, H, D}, 11);
  test::HostTensor by_positions = by_offset;
  test::HostTensor positions(DType::i32, Shape{B * T});
  for (int64_t i = 0; i < B * T; ++i) positions.set(i, static_cast<double>(offset + i % T));
  be->rope_forward(by_offset, cos, sin, offset);
  be->rope_positions_forward(by_positions, cos, sin, positions);
  EXPECT_TRUE(by_offset.bitwise_equal(by_positions));
  be->rope_backward(by_offset, cos, sin, offset);
  be->rope_positions_backward(by_positions, cos, sin, positions);
  EXPECT_TRUE(by_offset.bitwise_equal(by_positions));
  positions.set(3, static_cast<double>(offset + T));  // one past the table
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string want = "position 9 of token 3 is outside the 9 rows of the cos/sin tables";
  EXPECT_NE(message([&] { be->rope_positions_forward(by_positions, cos, sin, positions); }).find(want),
            std::string::npos);
  // rope_qkv checks its positions the same way: qkv (B, T, H + 2, D) with one k and one v head.
  test::HostTensor qkv = test::random_normal(DType::f32, Shape{B, T, H + 2, D}, 12);
  test::HostTensor q(DType::f32, Shape{B, T, H, D}), k(DType::f32, Shape{B, T, 1, D}), v(DType::f32, Shape{B, T, 1, D});
  EXPECT_NE(message([&] { be->rope_qkv_forward(q, k, v, qkv, cos, sin, positions); }).find(want), std::string::npos);
}

}  // namespace
}  // namespace lumina
