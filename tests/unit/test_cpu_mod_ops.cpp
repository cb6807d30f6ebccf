// The CPU Mixture-of-Depths ops (backend.h, "mixture of depths") against the
// host routing math of model/mod_routing.h (the oracle): top-k selection with
// ties and NaN, the input/router backward and the predictor's loss and gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"
#include "lumina/model/mod_routing.h"

namespace lumina::test {
namespace {

// Runs mod_select_top_k on scores (B,T) and checks every output against the host oracle.
void expect_top_k_matches_oracle(Backend& be, const HostTensor& scores, int64_t k) {
  const int64_t B = scores.t().dim(0), T = scores.t().dim(1), N = B * T;
  HostTensor row_token = filled(DType::i32, Shape{B, k}, -7), positions = filled(DType::i32, Shape{B, k}, -7);
  HostTensor slot_row = filled(DType::i32, Shape{N}, -7), gate = filled(scores.t().dtype, Shape{N}, -7);
  be.mod_select_top_k(row_token, positions, slot_row, gate, scores, k);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> keys(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {  // the op ranks NaN as -inf
      const double s = scores.get(b * T + t);
      keys[static_cast<size_t>(t)] = std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
    }
    std::vector<int32_t> picked;
    mod_select_top_k(keys.data(), T, k, picked);
    ASSERT_EQ(picked.size(), static_cast<size_t>(k));
    std::vector<int32_t> slot(static_cast<size_t>(T), -1);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = picked[static_cast<size_t>(j)], row = b * k + j;
      EXPECT_EQ(row_token.get(row), b * T + t) << "sequence " << b << " row " << j;
      EXPECT_EQ(positions.get(row), t);
      slot[static_cast<size_t>(t)] = static_cast<int32_t>(row);
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = b * T + t;
      EXPECT_EQ(slot_row.get(n), slot[static_cast<size_t>(t)]) << "token " << n;
      const double want = slot[static_cast<size_t>(t)] >= 0 ? mod_sigmoid(scores.get(n)) : 0.0;
      if (std::isnan(want)) EXPECT_TRUE(std::isnan(gate.get(n))) << "a NaN score's gate stays NaN, token " << n;
      else EXPECT_NEAR(gate.get(n), want, scores.t().dtype == DType::f64 ? 1e-15 : 1e-7) << "token " << n;
    }
  }
}

TEST(CpuModOps, TopKMatchesTheHostRoutingWithTiesAndNan) {
  auto be = make_cpu_backend();
  for (DType dt : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(dt));
    // Scores on a coarse grid: many ties, broken towards the lower position.
    HostTensor scores(dt, Shape{3, 37});
    const HostTensor noise = random_normal(DType::f64, Shape{3, 37}, 7);
    for (int64_t i = 0; i < scores.numel(); ++i) scores.set(i, std::round(noise.get(i) * 2.0) / 2.0);
    scores.set(5, std::numeric_limits<double>::quiet_NaN());
    scores.set(40, std::numeric_limits<double>::infinity());
    for (const int64_t k : {1, 9, 18, 36, 37}) expect_top_k_matches_oracle(*be, scores, k);
  }
}

TEST(CpuModOps, TopKRejectsCapacityOutsideTheSequence) {
  auto be = make_cpu_backend();
  HostTensor scores(DType::f32, Shape{2, 4}), rows(DType::i32, Shape{2, 5}), pos(DType::i32, Shape{2, 5});
  HostTensor slot(DType::i32, Shape{8}), gate(DType::f32, Shape{8});
  try {
    be->mod_select_top_k(rows, pos, slot, gate, scores, 5);
    FAIL() << "k > T must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("k = 5 must be in [1, T = 4]"), std::string::npos) << e.what();
  }
}

// Token n's compact row (or -1) and gate for the combine and input-backward tests.
constexpr int64_t kTokens = 5, kChannels = 3, kRows = 2;
constexpr int32_t kSlots[kTokens] = {-1, 1, -1, 0, -1};
constexpr double kGates[kTokens] = {0.0, 0.25, 0.0, 0.9, 0.0};

void set_routing(HostTensor& slot_row, HostTensor& gate) {
  for (int64_t n = 0; n < kTokens; ++n) {
    slot_row.set(n, kSlots[n]);
    gate.set(n, kGates[n]);
  }
}

TEST(CpuModOps, CombineGatesTheRoutedRowsAndCopiesTheOthers) {
  auto be = make_cpu_backend();
  const int64_t N = kTokens, C = kChannels, R = kRows;
  HostTensor slot_row(DType::i32, Shape{N}), gate(DType::f64, Shape{N});
  set_routing(slot_row, gate);
  const HostTensor x = random_normal(DType::f64, Shape{N, C}, 1), ys = random_normal(DType::f64, Shape{R, C}, 2);
  HostTensor out = filled(DType::f64, Shape{N, C}, 7.0), delta = filled(DType::f64, Shape{R, C}, 7.0);
  be->mod_combine(out, delta, x, ys, slot_row, gate);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double xv = x.get(n * C + c);
      if (kSlots[n] < 0) {
        EXPECT_EQ(out.get(n * C + c), xv) << "token " << n;
        continue;
      }
      const double d = ys.get(kSlots[n] * C + c) - xv;
      EXPECT_DOUBLE_EQ(delta.get(kSlots[n] * C + c), d) << "token " << n;
      EXPECT_DOUBLE_EQ(out.get(n * C + c), xv + kGates[n] * d) << "token " << n;
    }
  // In place (delta = ys, out = x, as generation does) gives the same values.
  HostTensor x_io = x, ys_io = ys;
  be->mod_combine(x_io, ys_io, x_io, ys_io, slot_row, gate);
  EXPECT_TRUE(x_io.bitwise_equal(out));
  EXPECT_TRUE(ys_io.bitwise_equal(delta));
}

TEST(CpuModOps, InputBackwardMixesRoutedRowsAndLeavesTheOthers) {
  auto be = make_cpu_backend();
  const int64_t N = kTokens, C = kChannels, R = kRows;
  HostTensor slot_row(DType::i32, Shape{N}), gate(DType::f64, Shape{N});
  set_routing(slot_row, gate);
  const HostTensor before = random_normal(DType::f64, Shape{N, C}, 1);
  const HostTensor dxs = random_normal(DType::f64, Shape{R, C}, 2), dgate = random_normal(DType::f64, Shape{N}, 3);
  const HostTensor w = random_normal(DType::f64, Shape{C}, 4);
  for (const bool router : {true, false}) {
    SCOPED_TRACE(router ? "with router" : "without router");
    HostTensor dx = before, dscores = filled(DType::f64, Shape{N}, 9.0);
    be->mod_input_backward(dx, router ? dscores.t() : Tensor(), dxs, dgate, slot_row, gate, router ? w.t() : Tensor());
    for (int64_t n = 0; n < N; ++n) {
      const double g = kGates[n], dscore = kSlots[n] < 0 ? 0.0 : dgate.get(n) * g * (1 - g);
      for (int64_t c = 0; c < C; ++c) {
        const double want = kSlots[n] < 0 ? before.get(n * C + c)
                                          : (1 - g) * before.get(n * C + c) + dxs.get(kSlots[n] * C + c) +
                                                (router ? dscore * w.get(c) : 0.0);
        EXPECT_DOUBLE_EQ(dx.get(n * C + c), want) << "token " << n << " channel " << c;
      }
      if (router) EXPECT_DOUBLE_EQ(dscores.get(n), dscore) << "token " << n;
    }
  }
}

TEST(CpuModOps, InputBackwardWantsTheRouterGradientAndWeightTogether) {
  auto be = make_cpu_backend();
  HostTensor dx(DType::f32, Shape{4, 3}), dxs(DType::f32, Shape{2, 3}), dgate(DType::f32, Shape{4});
  HostTensor slot_row = filled(DType::i32, Shape{4}, -1), gate(DType::f32, Shape{4}), dscores(DType::f32, Shape{4});
  try {
    be->mod_input_backward(dx, dscores, dxs, dgate, slot_row, gate, Tensor());
    FAIL() << "dscores without w must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dscores and w go together"), std::string::npos) << e.what();
  }
}

TEST(CpuModOps, PredictorSumsAndGradientMatchTheHostMath) {
  auto be = make_cpu_backend();
  const int64_t N = 700;  // more than one parallel chunk
  const HostTensor pred = random_normal(DType::f64, Shape{N}, 4, 3.0);
  HostTensor slot_row(DType::i32, Shape{N});
  for (int64_t n = 0; n < N; ++n) slot_row.set(n, n % 4 == 1 ? -1 : n);
  HostTensor sums(DType::f64, Shape{2}), dpred(DType::f64, Shape{N});
  const double scale = 0.05;
  be->mod_predictor(dpred, sums, pred, slot_row, scale);
  double bce = 0.0, agree = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const bool y = slot_row.get(n) >= 0;
    bce += mod_predictor_bce(pred.get(n), y);
    agree += (pred.get(n) > 0) == y ? 1.0 : 0.0;
    EXPECT_NEAR(dpred.get(n), scale * (mod_sigmoid(pred.get(n)) - (y ? 1.0 : 0.0)), 1e-15);
  }
  EXPECT_NEAR(sums.get(0), bce, 1e-10 * bce);
  EXPECT_EQ(sums.get(1), agree);
  EXPECT_GT(agree, 0.0);
  EXPECT_LT(agree, static_cast<double>(N));
}

}  // namespace
}  // namespace lumina::test
