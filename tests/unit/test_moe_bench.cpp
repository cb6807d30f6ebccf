// The MoE layer benchmark's library side (bench/moe_bench.h, bench/moe_report.h):
// memory plan figures, FLOPs, load balance, the cross-variant output check on a
// real run, and the PyTorch rows it merges.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "lumina/bench/moe_bench.h"
#include "lumina/bench/moe_report.h"
#include "support/test_files.h"

namespace lumina {
namespace {

const MoeBenchShape& tiny() {
  for (const MoeBenchShape& s : moe_bench_shapes())
    if (s.name == "tiny") return s;
  throw Error("no tiny shape");
}

TEST(MoeBench, PlansParametersAndBuffersOfTheShape) {
  // tiny: E 8, C 64, F 128, k 2, N 128. Parameters 3 E C F + E C = 197,120.
  const MoeMemory f32 = plan_moe_memory(tiny(), "grouped", 1.25, DType::f32);
  EXPECT_EQ(f32.weight_bytes, 197120 * 4);
  EXPECT_EQ(f32.grad_bytes, 197120 * 4);
  EXPECT_EQ(f32.compute_weight_bytes, 0);
  // grouped: capacity ceil(128 * 2 / 8 * 1.25) = 40 = the slab, R = 8 * 40 = 320 rows.
  // Scratch: dy, dxg (R, C), dh, dgate, dup (R, F), dweight (N, k), dlogits (N, E); x, out, dout, dx (N, C):
  //   4 (2*320*64 + 3*320*128 + 128*2 + 128*8 + 4*128*64) = 791,552 bytes (all multiples of 256: no padding).
  EXPECT_EQ(f32.buffer_bytes, 791552);
  // Activations: logits, probs (N, E), lse (N), weight (N, k), sums (E+2), choice, slot_row (N, k),
  // row_token (R), group_begin (E+1), assigned, available (E), xg, y (R, C), gate, up, h (R, F):
  //   668,556 bytes before each tensor's start is aligned to 256 (at most 13 gaps).
  EXPECT_GE(f32.activation_bytes, 668556);
  EXPECT_LT(f32.activation_bytes, 668556 + 13 * 256);
  EXPECT_EQ(f32.total_bytes(), f32.weight_bytes + f32.grad_bytes + f32.activation_bytes + f32.buffer_bytes);

  const MoeMemory bf16 = plan_moe_memory(tiny(), "grouped", 1.25, DType::bf16);
  EXPECT_EQ(bf16.weight_bytes, 197120 * 2);  // weights and grads in bf16: no optimizer, no f32 master copy
  EXPECT_EQ(bf16.grad_bytes, 197120 * 2);
  EXPECT_EQ(bf16.compute_weight_bytes, 0);
  const MoeMemory f16 = plan_moe_memory(tiny(), "grouped", 1.25, DType::f16);
  EXPECT_EQ(f16.weight_bytes, 197120 * 4);  // no f16 store: f32, and an f16 copy for the GEMMs
  EXPECT_EQ(f16.compute_weight_bytes, 197120 * 2);
  EXPECT_LT(bf16.activation_bytes, f32.activation_bytes);

  EXPECT_NE(test::error_of([] { moe_layer_config(tiny(), "fused", 1.25); }).find("unknown variant \"fused\""),
            std::string::npos);
}

TEST(MoeBench, FlopsAndLoadBalance) {
  // 2 * 256 * 3 * 64 * 128 + 2 * 128 * 64 * 8
  EXPECT_DOUBLE_EQ(moe_forward_flops(tiny(), 256), 12582912.0 + 131072.0);
  // loads 2, 4, 6 (mean 4), 10 of 12 kept.
  const MoeLoadBalance b = moe_load_balance({2, 4, 6}, 10);
  EXPECT_DOUBLE_EQ(b.max_over_mean, 1.5);
  EXPECT_DOUBLE_EQ(b.min_over_mean, 0.5);
  EXPECT_NEAR(b.coefficient_of_variation, std::sqrt(8.0 / 3.0) / 4.0, 1e-15);
  EXPECT_NEAR(b.dropped_fraction, 2.0 / 12.0, 1e-15);
  EXPECT_EQ(moe_load_balance({}, 0).max_over_mean, 0.0);
}

TEST(MoeBench, VariantsAgreeOnTheTokensTheyBothKeep) {
  // f64 on the CPU; capacity factor 0.5: loop keeps 16 rows per expert (some
  // assignments drop), grouped_tile_rounding raises the capacity to its 128-row tile (none drop).
  const auto be = make_cpu_backend();
  MoeBenchOptions o;
  o.iters = 1;
  o.warmup = 0;
  o.capacity_factor = 0.5;
  const MoeBenchResult loop = run_moe_bench(*be, DType::f64, tiny(), "loop", o);
  const MoeBenchResult tiled = run_moe_bench(*be, DType::f64, tiny(), "grouped_tile_rounding", o);
  const int64_t assignments = tiny().tokens() * tiny().top_k;
  EXPECT_EQ(loop.capacity, 16);
  EXPECT_EQ(tiled.capacity, 128);
  EXPECT_EQ(std::accumulate(loop.expert_load.begin(), loop.expert_load.end(), int64_t{0}), assignments);
  EXPECT_EQ(tiled.expert_load, loop.expert_load);  // the same routing before capacity
  EXPECT_LT(loop.kept, assignments);
  EXPECT_EQ(tiled.kept, assignments);
  EXPECT_EQ(loop.measured_bytes, -1);  // the CPU does not track device memory
  EXPECT_GT(loop.fwd.min, 0.0);
  EXPECT_LE(loop.fwd.min, loop.fwd.median);

  const MoeOutputCheck check = compare_moe_outputs(loop, tiled, tiny().top_k);
  int64_t fully_kept = 0;  // tokens none of whose assignments loop dropped
  for (int64_t n = 0; n < tiny().tokens(); ++n)
    fully_kept += loop.slot_row[static_cast<size_t>(2 * n)] >= 0 && loop.slot_row[static_cast<size_t>(2 * n + 1)] >= 0;
  EXPECT_EQ(check.tokens_compared, fully_kept);
  EXPECT_GT(check.tokens_compared, 0);
  EXPECT_LT(check.tokens_compared, tiny().tokens());
  EXPECT_GT(check.output_max_abs, 1e-4);
  EXPECT_LT(check.output_max_abs_diff, 1e-12);
  EXPECT_LT(check.dx_max_abs_diff, 1e-12);
}

TEST(MoeReport, ReadsTorchRowsAndComputesSpeedups) {
  const std::string jsonl =
      "{\"shape\":\"tiny\",\"experts\":8,\"hidden\":64,\"ffn\":128,\"top_k\":2,\"batch\":4,\"seq\":32,"
      "\"status\":\"ok\",\"fwd_ms\":{\"median\":3.0,\"min\":2.5},\"fwd_bwd_ms\":{\"median\":9.0,\"min\":8.0},"
      "\"kept\":256,\"expert_load\":[32,32,32,32,32,32,32,32],\"weight_bytes\":100,\"grad_bytes\":100,"
      "\"peak_bytes\":1000}\n"
      "\n"
      "{\"shape\":\"large\",\"experts\":256,\"hidden\":7168,\"ffn\":14336,\"top_k\":8,\"batch\":32,\"seq\":2048,"
      "\"status\":\"skipped\",\"reason\":\"out of memory\"}\n";
  const std::vector<MoeBenchRow> rows = parse_torch_rows(jsonl);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].variant, kTorchLoopVariant);
  EXPECT_EQ(rows[0].shape.tokens(), 128);
  EXPECT_DOUBLE_EQ(rows[0].fwd_bwd.median, 9.0);
  EXPECT_EQ(rows[0].memory.activation_bytes, 800);  // peak - weights - grads
  EXPECT_EQ(rows[1].status, "skipped");
  EXPECT_EQ(rows[1].reason, "out of memory");

  MoeBenchRun run;
  run.rows = rows;
  MoeBenchRow lumina_row = rows[0];
  lumina_row.variant = "grouped";
  lumina_row.fwd_bwd = {3.0, 2.0};
  run.rows.push_back(lumina_row);
  EXPECT_DOUBLE_EQ(speedup_vs_torch(run, lumina_row).value(), 3.0);
  EXPECT_FALSE(speedup_vs_torch(run, rows[1]).has_value());
  const nlohmann::json j = moe_run_json(run);
  EXPECT_DOUBLE_EQ(j["rows"][2]["speedup_vs_torch_loop"].get<double>(), 3.0);
  EXPECT_TRUE(j["rows"][1]["speedup_vs_torch_loop"].is_null() || !j["rows"][1].contains("speedup_vs_torch_loop"));

  const std::string bad = "{\"shape\":\"tiny\"}\n";
  const std::string message = test::error_of([&] { parse_torch_rows(jsonl + bad); });
  EXPECT_NE(message.find("line 4"), std::string::npos) << message;
  EXPECT_NE(message.find("experts"), std::string::npos) << message;
}

}  // namespace
}  // namespace lumina
