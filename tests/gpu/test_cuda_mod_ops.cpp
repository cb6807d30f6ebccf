// The Mixture-of-Depths ops (mod_select_top_k, mod_combine, mod_input_backward,
// mod_predictor) against the CPU backend. Stat tensors (scores, gate, dgate,
// pred, sums) are f32 on both sides; x, ys, out, delta, dx, dxs, dscores, w and
// dpred in f32 and bf16.
// Bounds (relative norm, cuda_parity.h):
//   row_token, positions, slot_row: exact (same f32 scores, same total order);
//   gate (f32 sigmoid, expf vs std::exp):           1e-6
//   sums (f64 partials in another order, then f32): 1e-6, the agreement count exact;
//   out, delta, dx, dscores, dpred: tolerance of their dtype.
// Sequences longer than one block (T > 1024) exercise the compaction across rounds.
#include <cmath>
#include <limits>
#include <vector>

#include "cuda_parity.h"
#include "lumina/core/rng.h"

namespace lumina::test {
namespace {

using CudaModOps = CudaParity;

constexpr double kTolGate = 1e-6;
constexpr double kTolSums = 1e-6;

TEST_F(CudaModOps, TopKMatchesCpu) {
  struct Case {
    int64_t B, T, k;
    bool ties;
  };
  uint64_t seed = 500;
  for (const Case& c : {Case{4, 1024, 512, false}, Case{2, 2500, 700, false}, Case{3, 37, 9, true},
                        Case{5, 300, 300, true}, Case{1, 9000, 4500, true}}) {
    SCOPED_TRACE(testing::Message() << "B" << c.B << " T" << c.T << " k" << c.k);
    const int64_t B = c.B, T = c.T, k = c.k, N = B * T;
    std::vector<float> scores = random_values(N, seed++, DType::f32);
    if (c.ties)
      for (float& s : scores) s = std::round(s * 2.0f) / 2.0f;  // many equal scores
    scores[static_cast<size_t>(N / 3)] = std::numeric_limits<float>::quiet_NaN();
    std::vector<int32_t> rows(static_cast<size_t>(B * k)), pos(static_cast<size_t>(B * k)), slot(static_cast<size_t>(N));
    std::vector<float> gate(static_cast<size_t>(N));
    cpu->mod_select_top_k(host_i32(rows, {B, k}), host_i32(pos, {B, k}), host_i32(slot, {N}), host(gate, {N}),
                          host(scores, {B, T}), k);
    Tensor rows_d = poisoned(DType::i32, {B, k}), pos_d = poisoned(DType::i32, {B, k});
    Tensor slot_d = poisoned(DType::i32, {N}), gate_d = poisoned(DType::f32, {N});
    const Tensor scores_d = device(scores, DType::f32, {B, T});
    gpu->mod_select_top_k(rows_d, pos_d, slot_d, gate_d, scores_d, k);
    EXPECT_EQ(read_i32(rows_d), rows);
    EXPECT_EQ(read_i32(pos_d), pos);
    EXPECT_EQ(read_i32(slot_d), slot);
    std::vector<float> gate_gpu = read(gate_d);
    for (size_t n = 0; n < gate.size(); ++n)  // a routed NaN score's gate is NaN on both sides
      if (std::isnan(gate[n]) && std::isnan(gate_gpu[n])) gate[n] = gate_gpu[n] = 0.0f;
    EXPECT_LE(relative_error(gate_gpu, gate), kTolGate);
    const std::vector<uint8_t> first = read_bytes(slot_d);
    gpu->mod_select_top_k(rows_d, pos_d, slot_d, gate_d, scores_d, k);
    EXPECT_EQ(read_bytes(slot_d), first) << "two runs differ";
  }
}

// N tokens of which R are routed, to compact rows in reverse token order; their gates in (0, 1).
struct Routing {
  std::vector<int32_t> slot;
  std::vector<float> gate;
};
Routing shuffled_routing(int64_t N, int64_t R, uint64_t seed) {
  Routing r{std::vector<int32_t>(static_cast<size_t>(N), -1), std::vector<float>(static_cast<size_t>(N), 0.0f)};
  const Rng rng(seed, RngPurpose::test, 0);
  int64_t next = 0;
  for (int64_t n = 0; n < N && next < R; ++n)
    if (rng.uniform(static_cast<uint64_t>(n)) < 0.4) {
      r.slot[static_cast<size_t>(n)] = static_cast<int32_t>(R - 1 - next++);
      r.gate[static_cast<size_t>(n)] = static_cast<float>(rng.uniform(static_cast<uint64_t>(N + n)));
    }
  EXPECT_EQ(next, R);
  return r;
}

TEST_F(CudaModOps, CombineMatchesCpu) {
  uint64_t seed = 800;
  for (const int64_t C : {768, 13})
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " C" << C);
      const int64_t N = 3000, R = 1100;
      Routing routing = shuffled_routing(N, R, seed++);
      std::vector<float> x = random_values(N * C, seed++, dt), ys = random_values(R * C, seed++, dt);
      std::vector<float> out(static_cast<size_t>(N * C)), delta(static_cast<size_t>(R * C));
      cpu->mod_combine(host(out, {N, C}), host(delta, {R, C}), host(x, {N, C}), host(ys, {R, C}),
                       host_i32(routing.slot, {N}), host(routing.gate, {N}));
      Tensor out_d = poisoned(dt, {N, C}), ys_d = device(ys, dt, {R, C});
      gpu->mod_combine(out_d, ys_d, device(x, dt, {N, C}), ys_d, device_i32(routing.slot, {N}),
                       device(routing.gate, DType::f32, {N}));  // delta in place of ys
      EXPECT_LE(relative_error(read(out_d), out), tolerance(dt));
      EXPECT_LE(relative_error(read(ys_d), delta), tolerance(dt));
    }
}

TEST_F(CudaModOps, InputBackwardMatchesCpu) {
  uint64_t seed = 600;
  for (const int64_t C : {768, 13})
    for (DType dt : {DType::f32, DType::bf16})
      for (const bool router : {true, false}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " C" << C << (router ? " with router" : ""));
        const int64_t N = 3000, R = 1100;
        Routing routing = shuffled_routing(N, R, seed++);
        std::vector<float> dgate = random_values(N, seed++, DType::f32), w = random_values(C, seed++, dt);
        std::vector<float> dx = random_values(N * C, seed++, dt), dxs = random_values(R * C, seed++, dt);
        std::vector<float> dx_cpu = dx, dscores(static_cast<size_t>(N));
        cpu->mod_input_backward(host(dx_cpu, {N, C}), router ? host(dscores, {N}) : Tensor(), host(dxs, {R, C}),
                                host(dgate, {N}), host_i32(routing.slot, {N}), host(routing.gate, {N}),
                                router ? host(w, {C}) : Tensor());
        Tensor dx_d = device(dx, dt, {N, C}), dscores_d = poisoned(dt, {N});
        gpu->mod_input_backward(dx_d, router ? dscores_d : Tensor(), device(dxs, dt, {R, C}),
                                device(dgate, DType::f32, {N}), device_i32(routing.slot, {N}),
                                device(routing.gate, DType::f32, {N}), router ? device(w, dt, {C}) : Tensor());
        EXPECT_LE(relative_error(read(dx_d), dx_cpu), tolerance(dt));
        if (router) EXPECT_LE(relative_error(read(dscores_d), dscores), tolerance(dt));
      }
}

TEST_F(CudaModOps, PredictorMatchesCpu) {
  uint64_t seed = 700;
  for (const int64_t N : {1, 5000, 32768})
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " N" << N);
      std::vector<float> pred = random_values(N, seed++, DType::f32, 3.0);
      std::vector<int32_t> slot(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) slot[static_cast<size_t>(n)] = n % 3 == 0 ? -1 : static_cast<int32_t>(n);
      std::vector<float> sums(2), dpred(static_cast<size_t>(N));
      const double scale = 0.01 / static_cast<double>(N);
      cpu->mod_predictor(host(dpred, {N}), host(sums, {2}), host(pred, {N}), host_i32(slot, {N}), scale);
      Tensor dpred_d = poisoned(dt, {N}), sums_d = poisoned(DType::f32, {2});
      gpu->mod_predictor(dpred_d, sums_d, device(pred, DType::f32, {N}), device_i32(slot, {N}), scale);
      const std::vector<float> sums_gpu = read(sums_d);
      EXPECT_LE(std::abs(sums_gpu[0] - sums[0]), kTolSums * std::abs(sums[0]));
      EXPECT_EQ(sums_gpu[1], sums[1]);
      EXPECT_LE(relative_error(read(dpred_d), dpred), tolerance(dt));
    }
}

}  // namespace
}  // namespace lumina::test
