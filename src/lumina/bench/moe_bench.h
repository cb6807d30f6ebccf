#pragma once
// One MoE feed-forward layer (MoeFfn, model/moe.h) timed in isolation: forward
// and forward + backward of a layer built for one shape and one expert-GEMM
// variant (ModelConfig::moe_gemm), on any backend. Memory is planned before
// anything is allocated (plan_moe_memory), from the same Activations/Scratch
// planning the run then allocates, so a caller can skip a shape that does not fit.
//
// The layer runs in evaluation mode (no routing noise, no expert dropout), so
// every pass routes the same way; its input x (N, C) and the output gradient
// dout (N, C) are N(0, 1) draws from (seed), weights come from init_weights(seed).
// Parameters and gradients are held in a ParamStore of the activation dtype
// (bf16 on a GPU: there is no optimizer step, and the medium shape's 11.3B
// parameters fit one 80 GB GPU only so); with f16 activations the store is f32
// and the weights are cast once into an f16 copy, as the Transformer does.
#include <cstdint>
#include <string>
#include <vector>

#include "lumina/backend/backend.h"
#include "lumina/model/model_config.h"

namespace lumina {

// A layer shape; tokens N = batch * seq.
struct MoeBenchShape {
  std::string name;
  int64_t experts = 0, hidden = 0, ffn = 0, top_k = 0, batch = 0, seq = 0;
  int64_t tokens() const { return batch * seq; }
};

// The shapes of the MoE benchmark suite the project follows (small, medium,
// large: DeepSeek-V3-like, 256 experts) and `tiny` for CPU tests.
const std::vector<MoeBenchShape>& moe_bench_shapes();
// The expert-GEMM variants lumina runs: loop, grouped, grouped_tile_rounding.
const std::vector<std::string>& moe_bench_variants();

struct MoeBenchOptions {
  int64_t iters = 10;            // timed passes of each kind
  int64_t warmup = 3;            // untimed forward + backward passes first (GEMM autotuning runs here)
  double capacity_factor = 1.25;
  uint64_t seed = 0;
};

// ModelConfig of the benchmarked layer: use_moe, the shape, moe_gemm = variant, one layer.
ModelConfig moe_layer_config(const MoeBenchShape& shape, const std::string& variant, double capacity_factor);

// Bytes one run holds on the device.
struct MoeMemory {
  int64_t weight_bytes = 0;          // expert + router parameters in the store's dtype
  int64_t compute_weight_bytes = 0;  // their copy in the activation dtype (0 when it is the store's)
  int64_t grad_bytes = 0;            // gradients, store dtype
  int64_t activation_bytes = 0;      // MoeFfn::Activations (kept for backward)
  int64_t buffer_bytes = 0;          // MoeFfn::Scratch + the layer's x, output, d output and dx (4 x (N, C))
  int64_t total_bytes() const {
    return weight_bytes + compute_weight_bytes + grad_bytes + activation_bytes + buffer_bytes;
  }
};

// What run_moe_bench will allocate, without allocating.
MoeMemory plan_moe_memory(const MoeBenchShape& shape, const std::string& variant, double capacity_factor, DType act);

struct LatencyMs {
  double median = 0.0, min = 0.0;
};

struct MoeBenchResult {
  LatencyMs fwd, fwd_bwd;            // each pass synchronised, steady_clock
  int64_t capacity = 0;              // per expert, after the variant's rounding
  int64_t kept = 0;                  // assignments that ran (N * k minus capacity drops)
  std::vector<int64_t> expert_load;  // (E) assignments per expert before capacity (MoeFfn::snapshot)
  MoeMemory memory;                  // planned (plan_moe_memory)
  int64_t measured_bytes = -1;       // Backend::device_memory_bytes() while the run's buffers live; -1: untracked (CPU)
  // The last forward + backward pass, on the host, to compare variants:
  std::vector<double> output, dx;    // (N, C) layer output and input gradient
  std::vector<int32_t> slot_row;     // (N, k) expert row of each assignment, -1 where dropped
};

// act: activation dtype (f32 on the CPU, bf16/f16 on CUDA, f64 for checks).
MoeBenchResult run_moe_bench(Backend& backend, DType act, const MoeBenchShape& shape, const std::string& variant,
                             const MoeBenchOptions& options);

// Forward FLOPs on routed tokens: 2 * kept * 3 * C * F (three expert GEMMs) + 2 * N * C * E (router).
// Forward + backward counts 3x this.
double moe_forward_flops(const MoeBenchShape& shape, int64_t kept);

// Two runs of one shape over the same input: the largest differences of the
// output and of dx over the tokens whose assignments were kept alike in both
// (same slot_row >= 0 pattern; a variant with another capacity may keep more).
struct MoeOutputCheck {
  int64_t tokens_compared = 0;
  double output_max_abs_diff = 0.0, dx_max_abs_diff = 0.0;
  double output_max_abs = 0.0;  // of the reference output over those tokens (the scale of the differences)
};
MoeOutputCheck compare_moe_outputs(const MoeBenchResult& reference, const MoeBenchResult& other, int64_t top_k);

// Balance of per-expert loads (assignments before capacity).
struct MoeLoadBalance {
  double max_over_mean = 0.0, min_over_mean = 0.0;
  double coefficient_of_variation = 0.0;  // population std / mean
  double dropped_fraction = 0.0;          // 1 - kept / sum(load)
};
MoeLoadBalance moe_load_balance(const std::vector<int64_t>& load, int64_t kept);

}  // namespace lumina
