// The CPU backend's MoE ops (backend.h, "mixture of experts") against the host
// routing of model/moe_routing (moe_route / moe_route_backward, f64), which
// defines their semantics, and on hand-checked cases:
//   router forward: probs, lse, choice, weight and sums vs moe_route, f64 within
//     1e-12 and f32 within 5e-6 (absolute on probs/weights, relative on lse/sums),
//     with unavailable experts, temperature 0.7 and routing noise; ties to the lower id;
//   dispatch: row_begin / row_token / kept of moe_route (row_align 1), with capacity
//     drops and dropless; packed groups with row_align 4; one slab per expert; errors;
//   gather / combine / combine_backward on 2-channel cases worked out by hand;
//   router backward vs moe_route_backward with drops, aux and z terms;
//   results identical with 1 and 3 OpenMP threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"
#include "lumina/core/rng.h"
#include "lumina/model/moe_routing.h"

namespace lumina::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

HostTensor from_values(DType dt, Shape s, const std::vector<double>& v) {
  HostTensor t(dt, s);
  EXPECT_EQ(t.numel(), static_cast<int64_t>(v.size()));
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, v[static_cast<size_t>(i)]);
  return t;
}

template <class I>
HostTensor ints(Shape s, const std::vector<I>& v) {
  HostTensor t(DType::i32, s);
  EXPECT_EQ(t.numel(), static_cast<int64_t>(v.size()));
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, static_cast<double>(v[static_cast<size_t>(i)]));
  return t;
}

std::vector<int32_t> int_values(const HostTensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(t.get(i));
  return v;
}

// |got - want| <= atol + rtol |want| for every element.
void expect_near_all(const HostTensor& got, const std::vector<double>& want, double atol, double rtol,
                     const char* what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double w = want[static_cast<size_t>(i)];
    ASSERT_NEAR(got.get(i), w, atol + rtol * std::fabs(w)) << what << " element " << i;
  }
}

struct RouterOutputs {
  HostTensor probs, lse, choice, weight, sums;
  RouterOutputs(DType dt, int64_t N, int64_t E, int64_t k)
      : probs(filled(dt, Shape{N, E}, kNaN)),
        lse(filled(dt, Shape{N}, kNaN)),
        choice(filled(DType::i32, Shape{N, k}, -7)),
        weight(filled(dt, Shape{N, k}, kNaN)),
        sums(filled(dt, Shape{E + 2}, kNaN)) {}
};

RouterOutputs run_router(Backend& be, const HostTensor& logits, const Tensor& noise, const std::vector<uint8_t>& avail,
                         int64_t k, double temperature) {
  const int64_t N = logits.t().dim(0), E = logits.t().dim(1);
  RouterOutputs o(logits.t().dtype, N, E, k);
  const HostTensor available = ints(Shape{E}, avail);
  be.moe_router_forward(o.probs, o.lse, o.choice, o.weight, o.sums, logits, noise, available, 1.0 / temperature);
  return o;
}

MoeRoutingParams routing_params(int64_t E, int64_t k, std::vector<uint8_t> routable) {
  MoeRoutingParams p;
  p.num_experts = E;
  p.top_k = k;
  p.capacity_factor = 1.0;
  p.temperature = 0.7;
  p.noise_std = 0.5;
  p.load_balancing_weight = 0.3;
  p.z_loss_weight = 0.2;
  p.routable = std::move(routable);
  return p;
}

// The noise moe_route draws for a training pass keyed by `key`, as an (N, E) tensor.
HostTensor routing_noise(DType dt, int64_t N, const MoeRoutingParams& p, const MoeDrawKey& key) {
  HostTensor noise(dt, Shape{N, p.num_experts});
  const Rng rng(key.seed, RngPurpose::routing_noise, static_cast<uint64_t>(key.step));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t e = 0; e < p.num_experts; ++e)
      noise.set(n * p.num_experts + e, p.noise_std * rng.normal(moe_draw_index(key, n, e)));
  return noise;
}

// Logits (N, E) ~ N(0, 1.5^2) plus bias[e] (an uneven load makes capacity drops).
std::vector<double> make_logits(int64_t N, int64_t E, uint64_t seed, const std::vector<double>& bias = {}) {
  std::vector<double> v(static_cast<size_t>(N * E));
  Rng(seed, RngPurpose::test, 0).fill_normal(v.data(), N * E, 0.0, 1.5);
  for (int64_t i = 0; i < N * E; ++i)
    if (!bias.empty()) v[static_cast<size_t>(i)] += bias[static_cast<size_t>(i % E)];
  return v;
}

const MoeDrawKey kKey{.seed = 11, .step = 3, .micro = 0, .layer = 1};

TEST(CpuMoeOps, RouterForwardMatchesMoeRoute) {
  struct Case {
    int64_t E, k;
    std::vector<uint8_t> routable;
  };
  const int64_t N = 53;
  for (const Case& c : {Case{8, 2, {1, 1, 0, 1, 1, 1, 1, 1}}, Case{6, 3, {1, 0, 1, 1, 0, 1}}})
    for (const DType dt : {DType::f64, DType::f32}) {
      SCOPED_TRACE(testing::Message() << "E " << c.E << " k " << c.k << " " << dtype_name(dt));
      const MoeRoutingParams p = routing_params(c.E, c.k, c.routable);
      const std::vector<double> logits = make_logits(N, c.E, 5 + static_cast<uint64_t>(c.E));
      MoeRouting r;
      moe_route(logits.data(), N, p, &kKey, r);
      auto be = make_cpu_backend();
      const HostTensor noise = routing_noise(dt, N, p, kKey);
      const RouterOutputs o =
          run_router(*be, from_values(dt, Shape{N, c.E}, logits), noise, r.available, c.k, p.temperature);
      const double tol = dt == DType::f64 ? 1e-12 : 5e-6;
      expect_near_all(o.probs, r.probs, tol, 0.0, "probs");
      expect_near_all(o.lse, r.lse, tol, tol, "lse");
      EXPECT_EQ(int_values(o.choice), r.choice);
      expect_near_all(o.weight, r.weight, tol, 0.0, "weight");
      for (int64_t e = 0; e < c.E; ++e)
        if (!c.routable[static_cast<size_t>(e)])
          for (int64_t n = 0; n < N; ++n) EXPECT_EQ(o.probs.get(n * c.E + e), 0.0) << "unavailable expert " << e;
      // sums: sum_n p per expert, the entropy sum, sum_n lse^2.
      std::vector<double> want(static_cast<size_t>(c.E + 2), 0.0);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t e = 0; e < c.E; ++e) want[static_cast<size_t>(e)] += r.probs[static_cast<size_t>(n * c.E + e)];
        want[static_cast<size_t>(c.E + 1)] += r.lse[static_cast<size_t>(n)] * r.lse[static_cast<size_t>(n)];
      }
      want[static_cast<size_t>(c.E)] = r.stats.routing_entropy * N;
      EXPECT_GT(want[static_cast<size_t>(c.E)], 1.0);
      expect_near_all(o.sums, want, tol, tol, "sums");
    }
}

// Equal probabilities go to the lower expert id; an unavailable expert is never chosen.
TEST(CpuMoeOps, RouterTiesGoToLowerIdAndSkipUnavailable) {
  auto be = make_cpu_backend();
  const HostTensor logits = from_values(DType::f64, Shape{3, 4}, {1, 3, 3, 0, 2, 2, 2, 2, 0, 1, 5, 5});
  const RouterOutputs all = run_router(*be, logits, Tensor(), {1, 1, 1, 1}, 2, 1.0);
  EXPECT_EQ(int_values(all.choice), (std::vector<int32_t>{1, 2, 0, 1, 2, 3}));
  expect_near_all(all.weight, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, 1e-15, 0.0, "weight");
  // probs = softmax of each row: exp(l) / sum exp(l).
  std::vector<double> want_probs;
  for (int64_t n = 0; n < 3; ++n) {
    double z = 0.0;
    for (int64_t e = 0; e < 4; ++e) z += std::exp(logits.get(n * 4 + e));
    for (int64_t e = 0; e < 4; ++e) want_probs.push_back(std::exp(logits.get(n * 4 + e)) / z);
  }
  expect_near_all(all.probs, want_probs, 1e-15, 0.0, "probs");
  EXPECT_EQ(all.probs.get(1), all.probs.get(2));  // the tie is exact
  EXPECT_NEAR(all.lse.get(1), 2.0 + std::log(4.0), 1e-14);

  // Expert 1 unavailable: token 0 takes 2 (p ~ e^3) then 0 (e^1) over 3 (e^0).
  const RouterOutputs masked = run_router(*be, logits, Tensor(), {1, 0, 1, 1}, 2, 1.0);
  EXPECT_EQ(int_values(masked.choice), (std::vector<int32_t>{2, 0, 0, 2, 2, 3}));
  const double e3 = std::exp(3.0), e1 = std::exp(1.0);
  EXPECT_NEAR(masked.weight.get(0), e3 / (e3 + e1), 1e-15);
  EXPECT_NEAR(masked.weight.get(1), e1 / (e3 + e1), 1e-15);
  for (int64_t n = 0; n < 3; ++n) EXPECT_EQ(masked.probs.get(n * 4 + 1), 0.0);
  // moe_route agrees on the same ties.
  MoeRoutingParams p = routing_params(4, 2, {1, 0, 1, 1});
  p.temperature = 1.0;
  MoeRouting r;
  moe_route(logits.values().data(), 3, p, nullptr, r);
  EXPECT_EQ(int_values(masked.choice), r.choice);
}

TEST(CpuMoeOps, RouterForwardRejectsTooFewAvailableExperts) {
  auto be = make_cpu_backend();
  const HostTensor logits = from_values(DType::f64, Shape{1, 3}, {0, 1, 2});
  EXPECT_THROW(run_router(*be, logits, Tensor(), {0, 1, 0}, 2, 1.0), Error);
}

struct DispatchOutputs {
  HostTensor slot_row, row_token, group_begin, assigned;
  DispatchOutputs(int64_t slots, int64_t rows, int64_t E)
      : slot_row(filled(DType::i32, Shape{slots}, -7)),
        row_token(filled(DType::i32, Shape{rows}, -7)),
        group_begin(filled(DType::i32, Shape{E + 1}, -7)),
        assigned(filled(DType::i32, Shape{E}, -7)) {}
};

DispatchOutputs run_dispatch(Backend& be, const HostTensor& choice, int64_t E, int64_t rows, int64_t capacity,
                             int64_t row_align, int64_t group_stride) {
  DispatchOutputs o(choice.numel(), rows, E);
  be.moe_dispatch(o.slot_row, o.row_token, o.group_begin, o.assigned, choice, capacity, row_align, group_stride);
  return o;
}

// row_align 1: moe_route's grouping exactly (its rows are the kept slots in slot order per expert).
TEST(CpuMoeOps, DispatchMatchesMoeRoute) {
  struct Case {
    int64_t E, k;
    std::vector<uint8_t> routable;
    bool dropless;
    std::vector<double> bias;
  };
  const int64_t N = 64;
  for (const Case& c : {Case{8, 2, {}, false, {2.0, 1.5, 0, 0, 0, 0, 0, 0}}, Case{8, 2, {}, true, {2.0, 1.5}},
                        Case{6, 3, {1, 0, 1, 1, 0, 1}, false, {0, 0, 1.0, 0, 0, 0}}}) {
    SCOPED_TRACE(testing::Message() << "E " << c.E << " k " << c.k << (c.dropless ? " dropless" : " capacity"));
    MoeRoutingParams p = routing_params(c.E, c.k, c.routable);
    p.dropless = c.dropless;
    std::vector<double> bias = c.bias;
    bias.resize(static_cast<size_t>(c.E), 0.0);
    const std::vector<double> logits = make_logits(N, c.E, 17, bias);
    MoeRouting r;
    moe_route(logits.data(), N, p, nullptr, r);
    if (c.dropless) EXPECT_EQ(r.stats.tokens_dropped, 0);
    else EXPECT_GT(r.stats.tokens_dropped, 0);

    auto be = make_cpu_backend();
    const int64_t slots = N * c.k;
    const DispatchOutputs o = run_dispatch(*be, ints(Shape{N, c.k}, r.choice), c.E, slots, r.capacity, 1, 0);
    std::vector<int32_t> want_assigned(r.assigned.begin(), r.assigned.end());
    EXPECT_EQ(int_values(o.assigned), want_assigned);
    EXPECT_EQ(int_values(o.group_begin), std::vector<int32_t>(r.row_begin.begin(), r.row_begin.end()));
    std::vector<int32_t> want_tokens(static_cast<size_t>(slots), -1);
    std::vector<int32_t> want_slot_row(static_cast<size_t>(slots), -1);
    for (int64_t row = 0; row < r.rows(); ++row) {
      want_tokens[static_cast<size_t>(row)] = static_cast<int32_t>(r.row_token[static_cast<size_t>(row)]);
      want_slot_row[static_cast<size_t>(r.row_slot[static_cast<size_t>(row)])] = static_cast<int32_t>(row);
    }
    EXPECT_EQ(int_values(o.row_token), want_tokens);
    EXPECT_EQ(int_values(o.slot_row), want_slot_row);
    for (int64_t s = 0; s < slots; ++s)
      EXPECT_EQ(o.slot_row.get(s) >= 0, r.kept[static_cast<size_t>(s)] == 1) << "slot " << s;
  }
}

// 5 tokens, top-2, 3 experts; slots 0..9 go to experts 0 1 0 2 0 1 2 0 1 0:
// assigned = [5, 3, 2]; capacity 3 keeps slots 0 2 4 of expert 0 and drops 7 and 9.
const std::vector<int32_t> kChoice = {0, 1, 0, 2, 0, 1, 2, 0, 1, 0};

// row_align 4: every group rounds up to 4 rows: group_begin = [0, 4, 8, 12];
// R = N*k + E*(row_align-1) = 19 rows, 12..18 unused.
TEST(CpuMoeOps, DispatchPackedGroupsWithRowAlign) {
  auto be = make_cpu_backend();
  const DispatchOutputs o = run_dispatch(*be, ints(Shape{5, 2}, kChoice), 3, 19, 3, 4, 0);
  EXPECT_EQ(int_values(o.assigned), (std::vector<int32_t>{5, 3, 2}));
  EXPECT_EQ(int_values(o.group_begin), (std::vector<int32_t>{0, 4, 8, 12}));
  EXPECT_EQ(int_values(o.slot_row), (std::vector<int32_t>{0, 4, 1, 8, 2, 5, 9, -1, 6, -1}));
  EXPECT_EQ(int_values(o.row_token),
            (std::vector<int32_t>{0, 1, 2, -1, 0, 2, 4, -1, 1, 3, -1, -1, -1, -1, -1, -1, -1, -1, -1}));
}

// group_stride 3: expert e owns rows [3e, 3e + 3).
TEST(CpuMoeOps, DispatchSlabPerExpert) {
  auto be = make_cpu_backend();
  const DispatchOutputs o = run_dispatch(*be, ints(Shape{5, 2}, kChoice), 3, 9, 3, 1, 3);
  EXPECT_EQ(int_values(o.assigned), (std::vector<int32_t>{5, 3, 2}));
  EXPECT_EQ(int_values(o.group_begin), (std::vector<int32_t>{0, 3, 6, 9}));
  EXPECT_EQ(int_values(o.slot_row), (std::vector<int32_t>{0, 3, 1, 6, 2, 4, 7, -1, 5, -1}));
  EXPECT_EQ(int_values(o.row_token), (std::vector<int32_t>{0, 1, 2, 0, 2, 4, 1, 3, -1}));
}

TEST(CpuMoeOps, DispatchRejectsBadSizes) {
  auto be = make_cpu_backend();
  const HostTensor choice = ints(Shape{5, 2}, kChoice);
  EXPECT_THROW(run_dispatch(*be, choice, 3, 12, 4, 1, 3), Error);  // capacity 4 > group_stride 3
  EXPECT_THROW(run_dispatch(*be, choice, 3, 8, 3, 1, 3), Error);   // slabs need 9 rows
  EXPECT_THROW(run_dispatch(*be, choice, 3, 18, 3, 4, 0), Error);  // packed with row_align 4 needs 19
  EXPECT_THROW(run_dispatch(*be, choice, 2, 10, 3, 1, 0), Error);  // expert 2 of 2 is out of range
}

// x (3, 2) = [[1, 2], [3, 4], [5, 6]], row_token [2, -1, 0, 0] -> [[5, 6], [0, 0], [1, 2], [1, 2]].
TEST(CpuMoeOps, GatherCopiesTokenRowsAndZeroesPadding) {
  auto be = make_cpu_backend();
  for (const DType dt : {DType::f32, DType::f64}) {
    HostTensor rows = filled(dt, Shape{4, 2}, kNaN);
    be->moe_gather(rows, from_values(dt, Shape{3, 2}, {1, 2, 3, 4, 5, 6}),
                   ints(Shape{4}, std::vector<int>{2, -1, 0, 0}));
    EXPECT_EQ(rows.values(), (std::vector<double>{5, 6, 0, 0, 1, 2, 1, 2}));
  }
}

// y (4, 2) = [[1, 2], [3, 4], [5, 6], [7, 8]]; 2 tokens, k = 2, slot_row [2, -1, 0, 3],
// weight [[0.25, 9], [0.5, 2]] (9 sits at a dropped slot: ignored):
//   out_0 = 0.25 y_2 = [1.25, 1.5];  out_1 = 0.5 y_0 + 2 y_3 = [14.5, 17].
const std::vector<double> kY = {1, 2, 3, 4, 5, 6, 7, 8};
const std::vector<int> kSlotRow = {2, -1, 0, 3};
const std::vector<double> kWeight = {0.25, 9, 0.5, 2};

TEST(CpuMoeOps, CombineAddsWeightedExpertRows) {
  auto be = make_cpu_backend();
  for (const DType dt : {DType::f32, DType::f64}) {
    const HostTensor y = from_values(dt, Shape{4, 2}, kY), slot_row = ints(Shape{4}, kSlotRow);
    HostTensor out = filled(dt, Shape{2, 2}, kNaN);
    be->moe_combine(out, y, slot_row, from_values(dt, Shape{2, 2}, kWeight), false);
    EXPECT_EQ(out.values(), (std::vector<double>{1.25, 1.5, 14.5, 17}));
    HostTensor acc = filled(dt, Shape{2, 2}, 1.0);
    be->moe_combine(acc, y, slot_row, from_values(dt, Shape{2, 2}, kWeight), true);
    EXPECT_EQ(acc.values(), (std::vector<double>{2.25, 2.5, 15.5, 18}));
    HostTensor unweighted = filled(dt, Shape{2, 2}, kNaN);  // empty weight: 1
    be->moe_combine(unweighted, y, slot_row, Tensor(), false);
    EXPECT_EQ(unweighted.values(), (std::vector<double>{5, 6, 8, 10}));
  }
}

// dout = [[1, -1], [2, 3]], row_token [1, -1, 0, 1] (row 1 is padding):
//   dy_2 = 0.25 dout_0, dy_0 = 0.5 dout_1, dy_3 = 2 dout_1, dy_1 = 0;
//   dweight = [dout_0 . y_2, 0, dout_1 . y_0, dout_1 . y_3] = [-1, 0, 8, 38].
TEST(CpuMoeOps, CombineBackwardGivesRowAndWeightGradients) {
  auto be = make_cpu_backend();
  for (const DType dt : {DType::f32, DType::f64}) {
    HostTensor dy = filled(dt, Shape{4, 2}, kNaN), dweight = filled(dt, Shape{2, 2}, kNaN);
    be->moe_combine_backward(dy, dweight, from_values(dt, Shape{2, 2}, {1, -1, 2, 3}), from_values(dt, Shape{4, 2}, kY),
                             ints(Shape{4}, kSlotRow), from_values(dt, Shape{2, 2}, kWeight),
                             ints(Shape{4}, std::vector<int>{1, -1, 0, 1}));
    EXPECT_EQ(dy.values(), (std::vector<double>{1, 1.5, 0, 0, 0.25, -0.25, 4, 6}));
    EXPECT_EQ(dweight.values(), (std::vector<double>{-1, 0, 8, 38}));
  }
}

// aux_coef and z_coef from the layer's weights as the brief of backend.h gives them.
TEST(CpuMoeOps, RouterBackwardMatchesMoeRouteBackward) {
  const int64_t N = 48, E = 8, k = 2;
  const double dloss_scale = 0.7;
  const MoeRoutingParams p = routing_params(E, k, {1, 1, 1, 1, 1, 0, 1, 1});
  const std::vector<double> logits = make_logits(N, E, 23, {1.5, 1.0});
  MoeRouting r;
  moe_route(logits.data(), N, p, &kKey, r);
  ASSERT_GT(r.stats.tokens_dropped, 0);
  std::vector<double> dweight(static_cast<size_t>(N * k));
  Rng(29, RngPurpose::test, 0).fill_normal(dweight.data(), N * k, 0.0, 1.0);
  std::vector<double> want(static_cast<size_t>(N * E));
  moe_route_backward(r, p, dweight.data(), dloss_scale, want.data());

  const double EA = static_cast<double>(r.available_experts);
  const double aux_coef = dloss_scale * p.load_balancing_weight * EA / static_cast<double>(N * k) / N;
  const double z_coef = dloss_scale * p.z_loss_weight * 2.0 / N;
  auto be = make_cpu_backend();
  const HostTensor choice = ints(Shape{N, k}, r.choice);
  const DispatchOutputs d = run_dispatch(*be, choice, E, N * k, r.capacity, 1, 0);
  double scale = 0.0;
  for (const double g : want) scale = std::max(scale, std::fabs(g));
  for (const DType dt : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(dt));
    HostTensor dlogits = filled(dt, Shape{N, E}, kNaN);
    be->moe_router_backward(dlogits, from_values(dt, Shape{N, E}, r.probs), from_values(dt, Shape{N}, r.lse), choice,
                            from_values(dt, Shape{N, k}, r.weight), d.slot_row, from_values(dt, Shape{N, k}, dweight),
                            d.assigned, 1.0 / p.temperature, aux_coef, z_coef);
    expect_near_all(dlogits, want, (dt == DType::f64 ? 1e-13 : 2e-6) * scale, 0.0, "dlogits");
    for (int64_t n = 0; n < N; ++n) EXPECT_EQ(dlogits.get(n * E + 5), 0.0) << "unavailable expert, token " << n;
  }
}

// Per-token work runs in parallel over fixed chunks; the sums add chunk partials in order.
TEST(CpuMoeOps, ResultsDoNotDependOnThreadCount) {
  const int64_t N = 1000, E = 8, k = 2, C = 24;
  const HostTensor logits = random_normal(DType::f32, Shape{N, E}, 31);
  const HostTensor dout = random_normal(DType::f32, Shape{N, C}, 32);
  const HostTensor y = random_normal(DType::f32, Shape{N * k, C}, 33);
  auto be = make_cpu_backend();
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    RouterOutputs o = run_router(*be, logits, Tensor(), {1, 1, 1, 1, 1, 1, 1, 1}, k, 0.7);
    DispatchOutputs d = run_dispatch(*be, o.choice, E, N * k, 200, 1, 0);
    HostTensor dy = filled(DType::f32, Shape{N * k, C}, kNaN), dweight = filled(DType::f32, Shape{N, k}, kNaN);
    be->moe_combine_backward(dy, dweight, dout, y, d.slot_row, o.weight, d.row_token);
    omp_set_num_threads(saved);
    return std::vector<HostTensor>{o.probs, o.sums, o.weight, dy, dweight};
  };
  const std::vector<HostTensor> three = run(3), one = run(1);
  for (size_t i = 0; i < three.size(); ++i) EXPECT_TRUE(three[i].bitwise_equal(one[i])) << "output " << i;
}

}  // namespace
}  // namespace lumina::test
