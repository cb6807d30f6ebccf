#pragma once
// End-to-end training throughput: full optimizer steps (forward, backward,
// grad norm + clipping, AdamW) on random tokens, timed after warm-up.
#include <cstdint>
#include <functional>
#include <string>

#include "lumina/backend/backend.h"
#include "lumina/model/model_config.h"

namespace lumina {

struct TrainBenchOptions {
  int64_t batch = 16;
  int64_t seq = 256;
  int64_t steps = 10;
  int64_t warmup_steps = 2;
  double peak_flops = 0.0;  // device peak for MFU; 0: MFU not reported
  uint64_t seed = 0;
  std::function<void()> after_warmup;  // called once the warm-up steps are done (profilers reset here)
};

struct TrainBenchResult {
  double step_ms = 0.0;               // median over timed steps
  double tokens_per_second = 0.0;
  double model_flops_per_second = 0.0;  // reference convention (accounting.h)
  double mfu = 0.0;                   // 0 when peak_flops == 0
  double final_loss = 0.0;
  int64_t params_total = 0, params_active = 0;
  int64_t planned_bytes = 0;          // weights + grads + optimizer + activations
  int64_t peak_bytes = 0;             // measured: device memory held (all allocation is up front), or host peak RSS
};

// act_dtype: activation dtype (f32 on the CPU; bf16 for mixed precision on CUDA).
TrainBenchResult run_train_bench(Backend& backend, DType act_dtype, const ModelConfig& cfg,
                                 const TrainBenchOptions& opt);

}  // namespace lumina
