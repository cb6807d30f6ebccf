#pragma once
// The outputs of `lumina bench moe` in one folder: results.json (the run and
// every row), latency.svg (fwd+bwd latency per shape and variant, speedups
// over the PyTorch loop on the bars), memory.svg (weights, grads, activations
// and buffers stacked per variant), expert_load.svg (load / mean load per
// expert) and report.md (the tables, conventions, skipped shapes and the
// three charts by relative link).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lumina/bench/moe_bench.h"

namespace lumina {

// The PyTorch per-expert loop (bench/moe/torch_moe_loop.py) as a variant.
inline constexpr const char* kTorchLoopVariant = "torch_loop";

// One shape x variant.
struct MoeBenchRow {
  MoeBenchShape shape;
  std::string variant;        // loop | grouped | grouped_tile_rounding | torch_loop
  std::string status = "ok";  // ok | skipped | failed
  std::string reason;         // why it was skipped or failed
  LatencyMs fwd, fwd_bwd;
  int64_t capacity = 0;       // per expert; 0: no capacity (torch_loop is dropless)
  int64_t kept = 0;           // assignments that ran
  std::vector<int64_t> expert_load;  // (E) assignments per expert, before capacity
  // lumina: planned bytes (plan_moe_memory). torch_loop: weights and grads of its
  // parameters, activation_bytes = its measured peak minus both.
  MoeMemory memory;
  int64_t measured_bytes = -1;      // device memory held (lumina) or peak allocated (torch); -1: not measured
  int64_t memory_limit_bytes = -1;  // what a shape skipped for memory had (free device memory or --memory-limit-gb)
  std::string check_reference;      // the variant whose output this row's was compared with ("": none)
  MoeOutputCheck check;
};

struct MoeBenchRun {
  std::string date_utc, device, backend, dtype;
  double peak_flops = 989e12;
  nlohmann::json options;    // the command's options, as given
  std::string torch_status;  // "ok", "not run: ...", or what went wrong
  std::vector<MoeBenchRow> rows;
};

// tokens/s of forward + backward, and TFLOP/s on routed tokens (moe_forward_flops; fwd+bwd = 3x), of a row that ran.
struct MoeThroughput {
  double tokens_per_second = 0, tflops_fwd = 0, tflops_fwd_bwd = 0;
};
MoeThroughput moe_throughput(const MoeBenchRow& row);

// A row of lumina's measurements.
MoeBenchRow moe_row_from_result(const MoeBenchShape& shape, const std::string& variant, const MoeBenchResult& r);

// Rows of the PyTorch script's output (one JSON object per line, variant torch_loop).
// Throws lumina::Error naming the line that is not such an object.
std::vector<MoeBenchRow> parse_torch_rows(const std::string& jsonl);

// fwd+bwd latency of the torch_loop row of `row`'s shape over `row`'s; nullopt when either did not run.
std::optional<double> speedup_vs_torch(const MoeBenchRun& run, const MoeBenchRow& row);

nlohmann::json moe_run_json(const MoeBenchRun& run);

// Writes the five files into `dir` (created when missing), each atomically.
void write_moe_report(const MoeBenchRun& run, const std::string& dir);

}  // namespace lumina
