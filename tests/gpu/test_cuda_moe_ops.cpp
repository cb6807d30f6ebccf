// The MoE ops (router, dispatch, gather, combine and their backwards) against
// the CPU backend, with f32 and bf16 activations (logits, x, y, out, dout, dy,
// dlogits); stat tensors (probs, lse, weight, sums, dweight, noise) are f32 on
// both sides, so the CPU runs in f32 on the GPU's (dtype-rounded) inputs.
// Logits are a per-token permutation of values on a 1/16 grid (exact in bf16)
// plus noise on a 1/64 grid: tempered logits are equal or at least 1/64 apart,
// so f32 rounding cannot reorder a top-k and integer outputs must match exactly.
// Bounds (relative norm, cuda_parity.h):
//   probs, lse, weight, dweight (f32 math on identical inputs, other sum orders):  2e-5
//   sums (f32 sums over up to 4096 tokens, blocked on the GPU, f64 on the CPU):    1e-4
//   gathered rows: exact (a copy);  out, dy, dlogits: tolerance of their dtype;
//   choice, slot_row, row_token, group_begin, assigned: exact.
// Determinism: the whole pipeline run twice on the GPU gives identical bytes.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cuda_parity.h"
#include "lumina/core/rng.h"

namespace lumina::test {
namespace {

constexpr double kTolStat = 2e-5;
constexpr double kTolSums = 1e-4;

using CudaMoeOps = CudaParity;

// (N, E): token n's logits are a random permutation of (i - E/2) / 16, i < E, plus bias[e].
std::vector<float> separated_logits(int64_t N, int64_t E, uint64_t seed, const std::vector<float>& bias = {}) {
  std::vector<float> out(static_cast<size_t>(N * E));
  const Rng rng(seed, RngPurpose::test, 0);
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::vector<double> key(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t e = 0; e < E; ++e) key[static_cast<size_t>(e)] = rng.uniform(static_cast<uint64_t>(n * E + e));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key[a] < key[b]; });
    for (int64_t i = 0; i < E; ++i) {
      const int64_t e = order[static_cast<size_t>(i)];
      const float b = bias.empty() ? 0.0f : bias[static_cast<size_t>(e)];
      out[static_cast<size_t>(n * E + e)] = static_cast<float>(i - E / 2) / 16.0f + b;
    }
  }
  return out;
}

// (N, E) multiples of 1/64 in [-1/16, 1/16].
std::vector<float> grid_noise(int64_t N, int64_t E, uint64_t seed) {
  std::vector<float> out(static_cast<size_t>(N * E));
  const Rng rng(seed, RngPurpose::test, 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::floor(rng.uniform(i) * 9.0f - 4.0f) / 64.0f;
  return out;
}

// (N, k) expert ids, distinct per token, skewed towards low ids (uneven loads).
std::vector<int32_t> skewed_choice(int64_t N, int64_t E, int64_t k, uint64_t seed) {
  std::vector<int32_t> out(static_cast<size_t>(N * k));
  const Rng rng(seed, RngPurpose::test, 2);
  uint64_t draw = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < k; ++j) {
      int32_t e;
      bool fresh;
      do {
        const double u = rng.uniform(draw++);
        e = static_cast<int32_t>(static_cast<double>(E) * u * u);
        fresh = std::find(out.begin() + n * k, out.begin() + n * k + j, e) == out.begin() + n * k + j;
      } while (!fresh);
      out[static_cast<size_t>(n * k + j)] = e;
    }
  return out;
}

int64_t packed_rows(int64_t N, int64_t k, int64_t E, int64_t row_align) { return N * k + E * (row_align - 1); }

TEST_F(CudaMoeOps, RouterForwardAndBackwardMatchCpu) {
  struct Case {
    int64_t N, E, k;
    bool noisy;
    std::vector<int64_t> unavailable;
  };
  uint64_t seed = 300;
  for (const Case& c : {Case{300, 8, 2, true, {3}}, Case{4096, 64, 4, false, {}}, Case{77, 40, 3, true, {0, 39}},
                        Case{512, 256, 8, true, {5, 200}}})
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " N" << c.N << " E" << c.E << " k" << c.k);
      const int64_t N = c.N, E = c.E, k = c.k;
      std::vector<float> logits = separated_logits(N, E, seed++);
      ASSERT_EQ(rounded(logits, dt), logits);  // exact in bf16
      std::vector<float> noise = c.noisy ? grid_noise(N, E, seed++) : std::vector<float>{};
      std::vector<int32_t> available(static_cast<size_t>(E), 1);
      for (const int64_t e : c.unavailable) available[static_cast<size_t>(e)] = 0;
      const double inv_temperature = 1.0 / 0.7;

      std::vector<float> probs(static_cast<size_t>(N * E)), lse(static_cast<size_t>(N)),
          weight(static_cast<size_t>(N * k)), sums(static_cast<size_t>(E + 2));
      std::vector<int32_t> choice(static_cast<size_t>(N * k));
      cpu->moe_router_forward(host(probs, {N, E}), host(lse, {N}), host_i32(choice, {N, k}), host(weight, {N, k}),
                              host(sums, {E + 2}), host(logits, {N, E}), c.noisy ? host(noise, {N, E}) : Tensor(),
                              host_i32(available, {E}), inv_temperature);
      Tensor probs_d = poisoned(DType::f32, {N, E}), lse_d = poisoned(DType::f32, {N});
      Tensor choice_d = poisoned(DType::i32, {N, k}), weight_d = poisoned(DType::f32, {N, k});
      Tensor sums_d = poisoned(DType::f32, {E + 2});
      gpu->moe_router_forward(probs_d, lse_d, choice_d, weight_d, sums_d, device(logits, dt, {N, E}),
                              c.noisy ? device(noise, DType::f32, {N, E}) : Tensor(), device_i32(available, {E}),
                              inv_temperature);
      EXPECT_EQ(read_i32(choice_d), choice);
      EXPECT_LE(relative_error(read(probs_d), probs), kTolStat);
      EXPECT_LE(relative_error(read(lse_d), lse), kTolStat);
      EXPECT_LE(relative_error(read(weight_d), weight), kTolStat);
      EXPECT_LE(relative_error(read(sums_d), sums), kTolSums);

      // Backward with capacity drops: slot_row and assigned from the CPU dispatch.
      const int64_t capacity = N * k / E;
      std::vector<int32_t> slot_row(static_cast<size_t>(N * k)), row_token(static_cast<size_t>(N * k)),
          group_begin(static_cast<size_t>(E + 1)), assigned(static_cast<size_t>(E));
      cpu->moe_dispatch(host_i32(slot_row, {N * k}), host_i32(row_token, {N * k}), host_i32(group_begin, {E + 1}),
                        host_i32(assigned, {E}), host_i32(choice, {N, k}), capacity, 1, 0);
      ASSERT_TRUE(std::count(slot_row.begin(), slot_row.end(), -1) > 0) << "the case should drop assignments";
      std::vector<float> dweight = random_values(N * k, seed++, DType::f32);
      const double aux_coef = 0.3 * static_cast<double>(E) / static_cast<double>(N * k), z_coef = 0.1;
      std::vector<float> dlogits(static_cast<size_t>(N * E));
      cpu->moe_router_backward(host(dlogits, {N, E}), host(probs, {N, E}), host(lse, {N}), host_i32(choice, {N, k}),
                               host(weight, {N, k}), host_i32(slot_row, {N * k}), host(dweight, {N, k}),
                               host_i32(assigned, {E}), inv_temperature, aux_coef, z_coef);
      Tensor dlogits_d = poisoned(dt, {N, E});
      gpu->moe_router_backward(dlogits_d, device(probs, DType::f32, {N, E}), device(lse, DType::f32, {N}),
                               device_i32(choice, {N, k}), device(weight, DType::f32, {N, k}),
                               device_i32(slot_row, {N * k}), device(dweight, DType::f32, {N, k}),
                               device_i32(assigned, {E}), inv_temperature, aux_coef, z_coef);
      EXPECT_LE(relative_error(read(dlogits_d), dlogits), tolerance(dt));
    }
}

TEST_F(CudaMoeOps, DispatchMatchesCpu) {
  struct Case {
    int64_t N, E, k, capacity, row_align, group_stride;
  };
  uint64_t seed = 400;
  for (const Case& c : {Case{4096, 64, 4, 256, 128, 0}, Case{4096, 64, 4, 256, 1, 256}, Case{37, 5, 3, 1000, 1, 0},
                        Case{37, 5, 3, 9, 8, 0}, Case{131072, 256, 8, 5120, 128, 0}}) {
    SCOPED_TRACE(testing::Message() << "N" << c.N << " E" << c.E << " k" << c.k << " capacity " << c.capacity
                                    << " align " << c.row_align << " stride " << c.group_stride);
    const int64_t N = c.N, E = c.E, k = c.k, slots = N * k;
    const int64_t R = c.group_stride > 0 ? E * c.group_stride : packed_rows(N, k, E, c.row_align);
    std::vector<int32_t> choice = skewed_choice(N, E, k, seed++);
    std::vector<int32_t> slot_row(static_cast<size_t>(slots)), row_token(static_cast<size_t>(R)),
        group_begin(static_cast<size_t>(E + 1)), assigned(static_cast<size_t>(E));
    cpu->moe_dispatch(host_i32(slot_row, {slots}), host_i32(row_token, {R}), host_i32(group_begin, {E + 1}),
                      host_i32(assigned, {E}), host_i32(choice, {N, k}), c.capacity, c.row_align, c.group_stride);
    if (c.capacity < slots) EXPECT_GT(*std::max_element(assigned.begin(), assigned.end()), c.capacity);
    Tensor slot_row_d = poisoned(DType::i32, {slots}), row_token_d = poisoned(DType::i32, {R});
    Tensor group_begin_d = poisoned(DType::i32, {E + 1}), assigned_d = poisoned(DType::i32, {E});
    gpu->moe_dispatch(slot_row_d, row_token_d, group_begin_d, assigned_d, device_i32(choice, {N, k}), c.capacity,
                      c.row_align, c.group_stride);
    EXPECT_EQ(read_i32(assigned_d), assigned);
    EXPECT_EQ(read_i32(group_begin_d), group_begin);
    EXPECT_EQ(read_i32(slot_row_d), slot_row);
    EXPECT_EQ(read_i32(row_token_d), row_token);
  }
  // A slab smaller than the capacity is refused on the host, before any launch.
  Tensor choice_d = device_i32(std::vector<int32_t>(8, 0), {4, 2});
  EXPECT_THROW(gpu->moe_dispatch(poisoned(DType::i32, {8}), poisoned(DType::i32, {12}), poisoned(DType::i32, {4}),
                                 poisoned(DType::i32, {3}), choice_d, 5, 1, 4),
               Error);
}

TEST_F(CudaMoeOps, GatherAndCombineMatchCpu) {
  struct Case {
    DType dt;
    int64_t N, C;
  };
  uint64_t seed = 500;
  const int64_t E = 8, k = 2, row_align = 4;
  // C = 64: 16-byte packs; 37: single elements; 8192: wide rows (32 packs per lane in bf16).
  for (const Case& c : {Case{DType::f32, 300, 64}, Case{DType::bf16, 300, 64}, Case{DType::f32, 300, 37},
                        Case{DType::bf16, 300, 37}, Case{DType::bf16, 64, 8192}}) {
    const DType dt = c.dt;
    const int64_t N = c.N, C = c.C, R = packed_rows(N, k, E, row_align);
    SCOPED_TRACE(testing::Message() << dtype_name(dt) << " N" << N << " C" << C);
    std::vector<int32_t> choice = skewed_choice(N, E, k, seed++);
    std::vector<int32_t> slot_row(static_cast<size_t>(N * k)), row_token(static_cast<size_t>(R)),
        group_begin(static_cast<size_t>(E + 1)), assigned(static_cast<size_t>(E));
    cpu->moe_dispatch(host_i32(slot_row, {N * k}), host_i32(row_token, {R}), host_i32(group_begin, {E + 1}),
                      host_i32(assigned, {E}), host_i32(choice, {N, k}), N * k / E, row_align, 0);
    ASSERT_TRUE(std::count(slot_row.begin(), slot_row.end(), -1) > 0);
    Tensor slot_row_d = device_i32(slot_row, {N * k}), row_token_d = device_i32(row_token, {R});

    std::vector<float> x = random_values(N * C, seed++, dt), rows(static_cast<size_t>(R * C));
    cpu->moe_gather(host(rows, {R, C}), host(x, {N, C}), host_i32(row_token, {R}));
    Tensor rows_d = poisoned(dt, {R, C});
    gpu->moe_gather(rows_d, device(x, dt, {N, C}), row_token_d);
    EXPECT_EQ(read(rows_d), rows);

    std::vector<float> y = random_values(R * C, seed++, dt), weight = random_values(N * k, seed++, DType::f32);
    Tensor y_d = device(y, dt, {R, C}), weight_d = device(weight, DType::f32, {N, k});
    for (const bool accumulate : {false, true})
      for (const bool weighted : {true, false}) {
        SCOPED_TRACE(testing::Message() << "accumulate " << accumulate << " weighted " << weighted);
        std::vector<float> out = random_values(N * C, seed++, dt);
        Tensor out_d = accumulate ? device(out, dt, {N, C}) : poisoned(dt, {N, C});
        cpu->moe_combine(host(out, {N, C}), host(y, {R, C}), host_i32(slot_row, {N * k}),
                         weighted ? host(weight, {N, k}) : Tensor(), accumulate);
        gpu->moe_combine(out_d, y_d, slot_row_d, weighted ? weight_d : Tensor(), accumulate);
        EXPECT_LE(relative_error(read(out_d), out), tolerance(dt));
      }

    std::vector<float> dout = random_values(N * C, seed++, dt);
    std::vector<float> dy(static_cast<size_t>(R * C)), dweight(static_cast<size_t>(N * k));
    cpu->moe_combine_backward(host(dy, {R, C}), host(dweight, {N, k}), host(dout, {N, C}), host(y, {R, C}),
                              host_i32(slot_row, {N * k}), host(weight, {N, k}), host_i32(row_token, {R}));
    Tensor dy_d = poisoned(dt, {R, C}), dweight_d = poisoned(DType::f32, {N, k});
    gpu->moe_combine_backward(dy_d, dweight_d, device(dout, dt, {N, C}), y_d, slot_row_d, weight_d, row_token_d);
    EXPECT_LE(relative_error(read(dy_d), dy), tolerance(dt));
    EXPECT_LE(relative_error(read(dweight_d), dweight), kTolStat);
  }
}

// N = 4096, E = 64, k = 4, capacity N k / E = 256 with four favoured experts (drops),
// row_align 128: router -> dispatch -> gather -> combine -> combine_backward -> router
// backward on both backends, then the GPU pipeline again: bitwise the same.
TEST_F(CudaMoeOps, PipelineMatchesCpuAndIsDeterministic) {
  const int64_t N = 4096, E = 64, k = 4, C = 128, row_align = 128, capacity = N * k / E;
  const int64_t R = packed_rows(N, k, E, row_align);
  const double inv_temperature = 1.0 / 0.7, aux_coef = 0.3 * E / static_cast<double>(N * k), z_coef = 0.1;
  std::vector<float> bias(static_cast<size_t>(E), 0.0f);
  for (int64_t e = 0; e < 4; ++e) bias[static_cast<size_t>(e)] = 1.0f;
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<float> logits = separated_logits(N, E, 600, bias), noise = grid_noise(N, E, 601);
    std::vector<float> x = random_values(N * C, 602, dt), dout = random_values(N * C, 603, dt);
    std::vector<int32_t> available(static_cast<size_t>(E), 1);
    available[7] = 0;

    // CPU (f32 on the same values).
    std::vector<float> probs(static_cast<size_t>(N * E)), lse(static_cast<size_t>(N)),
        weight(static_cast<size_t>(N * k)), sums(static_cast<size_t>(E + 2)), rows(static_cast<size_t>(R * C)),
        out(static_cast<size_t>(N * C)), dy(static_cast<size_t>(R * C)), dweight(static_cast<size_t>(N * k)),
        dlogits(static_cast<size_t>(N * E));
    std::vector<int32_t> choice(static_cast<size_t>(N * k)), slot_row(static_cast<size_t>(N * k)),
        row_token(static_cast<size_t>(R)), group_begin(static_cast<size_t>(E + 1)), assigned(static_cast<size_t>(E));
    cpu->moe_router_forward(host(probs, {N, E}), host(lse, {N}), host_i32(choice, {N, k}), host(weight, {N, k}),
                            host(sums, {E + 2}), host(logits, {N, E}), host(noise, {N, E}), host_i32(available, {E}),
                            inv_temperature);
    cpu->moe_dispatch(host_i32(slot_row, {N * k}), host_i32(row_token, {R}), host_i32(group_begin, {E + 1}),
                      host_i32(assigned, {E}), host_i32(choice, {N, k}), capacity, row_align, 0);
    ASSERT_GT(*std::max_element(assigned.begin(), assigned.end()), capacity);
    cpu->moe_gather(host(rows, {R, C}), host(x, {N, C}), host_i32(row_token, {R}));
    cpu->moe_combine(host(out, {N, C}), host(rows, {R, C}), host_i32(slot_row, {N * k}), host(weight, {N, k}), false);
    cpu->moe_combine_backward(host(dy, {R, C}), host(dweight, {N, k}), host(dout, {N, C}), host(rows, {R, C}),
                              host_i32(slot_row, {N * k}), host(weight, {N, k}), host_i32(row_token, {R}));
    cpu->moe_router_backward(host(dlogits, {N, E}), host(probs, {N, E}), host(lse, {N}), host_i32(choice, {N, k}),
                             host(weight, {N, k}), host_i32(slot_row, {N * k}), host(dweight, {N, k}),
                             host_i32(assigned, {E}), inv_temperature, aux_coef, z_coef);

    // GPU, twice.
    Tensor logits_d = device(logits, dt, {N, E}), noise_d = device(noise, DType::f32, {N, E});
    Tensor available_d = device_i32(available, {E}), x_d = device(x, dt, {N, C}), dout_d = device(dout, dt, {N, C});
    struct Outputs {
      Tensor probs, lse, choice, weight, sums, slot_row, row_token, group_begin, assigned, rows, out, dy, dweight,
          dlogits;
    };
    auto run_gpu = [&] {
      Outputs g{poisoned(DType::f32, {N, E}), poisoned(DType::f32, {N}),     poisoned(DType::i32, {N, k}),
                poisoned(DType::f32, {N, k}), poisoned(DType::f32, {E + 2}), poisoned(DType::i32, {N * k}),
                poisoned(DType::i32, {R}),    poisoned(DType::i32, {E + 1}), poisoned(DType::i32, {E}),
                poisoned(dt, {R, C}),         poisoned(dt, {N, C}),          poisoned(dt, {R, C}),
                poisoned(DType::f32, {N, k}), poisoned(dt, {N, E})};
      gpu->moe_router_forward(g.probs, g.lse, g.choice, g.weight, g.sums, logits_d, noise_d, available_d,
                              inv_temperature);
      gpu->moe_dispatch(g.slot_row, g.row_token, g.group_begin, g.assigned, g.choice, capacity, row_align, 0);
      gpu->moe_gather(g.rows, x_d, g.row_token);
      gpu->moe_combine(g.out, g.rows, g.slot_row, g.weight, false);
      gpu->moe_combine_backward(g.dy, g.dweight, dout_d, g.rows, g.slot_row, g.weight, g.row_token);
      gpu->moe_router_backward(g.dlogits, g.probs, g.lse, g.choice, g.weight, g.slot_row, g.dweight, g.assigned,
                               inv_temperature, aux_coef, z_coef);
      return g;
    };
    const Outputs first = run_gpu();
    EXPECT_EQ(read_i32(first.choice), choice);
    EXPECT_EQ(read_i32(first.slot_row), slot_row);
    EXPECT_EQ(read_i32(first.row_token), row_token);
    EXPECT_EQ(read_i32(first.group_begin), group_begin);
    EXPECT_EQ(read_i32(first.assigned), assigned);
    EXPECT_LE(relative_error(read(first.probs), probs), kTolStat);
    EXPECT_LE(relative_error(read(first.lse), lse), kTolStat);
    EXPECT_LE(relative_error(read(first.weight), weight), kTolStat);
    EXPECT_LE(relative_error(read(first.sums), sums), kTolSums);
    EXPECT_EQ(read(first.rows), rows);
    EXPECT_LE(relative_error(read(first.out), out), tolerance(dt));
    EXPECT_LE(relative_error(read(first.dy), dy), tolerance(dt));
    EXPECT_LE(relative_error(read(first.dweight), dweight), kTolStat);
    EXPECT_LE(relative_error(read(first.dlogits), dlogits), tolerance(dt));
    const Outputs second = run_gpu();
    const Tensor Outputs::*fields[] = {
        &Outputs::probs,    &Outputs::lse,       &Outputs::choice,      &Outputs::weight,   &Outputs::sums,
        &Outputs::slot_row, &Outputs::row_token, &Outputs::group_begin, &Outputs::assigned, &Outputs::rows,
        &Outputs::out,      &Outputs::dy,        &Outputs::dweight,     &Outputs::dlogits};
    for (size_t i = 0; i < std::size(fields); ++i)
      EXPECT_EQ(read_bytes(first.*fields[i]), read_bytes(second.*fields[i])) << "output " << i << " differs";
  }
}

}  // namespace
}  // namespace lumina::test
