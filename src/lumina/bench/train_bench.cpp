#include "lumina/bench/train_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "lumina/core/rng.h"
#include "lumina/model/accounting.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"

namespace lumina {

namespace {
int64_t host_peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // ru_maxrss is in KiB on Linux
}
}  // namespace

TrainBenchResult run_train_bench(Backend& backend, DType act_dtype, const ModelConfig& cfg,
                                 const TrainBenchOptions& opt) {
  LUMINA_CHECK(opt.steps > 0, "bench train: --steps must be positive");
  Transformer model(cfg);
  model.allocate(backend, DType::f32, act_dtype);
  model.params().init_weights(opt.seed);
  model.prepare(opt.batch, opt.seq);
  AdamW optimizer(model.params(), AdamWConfig{});

  const int64_t N = opt.batch * opt.seq;
  std::vector<int32_t> tokens(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
  const Rng rng(opt.seed, RngPurpose::data_shuffle, 0);
  for (int64_t i = 0; i < N; ++i) {
    tokens[static_cast<size_t>(i)] = static_cast<int32_t>(rng.bits(2 * static_cast<uint64_t>(i)) % cfg.vocab_size);
    targets[static_cast<size_t>(i)] = static_cast<int32_t>(rng.bits(2 * static_cast<uint64_t>(i) + 1) % cfg.vocab_size);
  }

  TrainBenchResult r;
  auto step = [&] {
    model.params().overwrite_grads_next();
    const ForwardResult f = model.forward(tokens.data(), targets.data(), 1.0 / static_cast<double>(N));
    model.backward(1.0);  // MoE aux + z losses at weight 1 (one micro-batch)
    optimizer.step(3e-4, clip_scale(grad_global_norm(model.params()), 1.0), model.compute_weights());
    model.mark_compute_weights_current();
    backend.synchronize();
    r.final_loss = f.loss_sum / static_cast<double>(f.valid_tokens);
  };
  for (int64_t i = 0; i < opt.warmup_steps; ++i) step();
  if (opt.after_warmup) opt.after_warmup();
  std::vector<double> ms;
  for (int64_t i = 0; i < opt.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  r.step_ms = ms[ms.size() / 2];
  r.tokens_per_second = static_cast<double>(N) / (r.step_ms * 1e-3);
  r.model_flops_per_second = r.tokens_per_second * mod_train_flops_per_token(cfg, opt.seq);  // MoD: the FLOPs it runs
  r.mfu = opt.peak_flops > 0 ? r.model_flops_per_second / opt.peak_flops : 0.0;
  const ParamCounts counts = count_params(cfg);
  r.params_total = counts.total;
  r.params_active = counts.active_matmul;
  r.planned_bytes = model.memory_plan(opt.batch, opt.seq, act_dtype).total_bytes();
  r.peak_bytes = backend.device_memory_bytes() >= 0 ? backend.device_memory_bytes() : host_peak_rss_bytes();
  return r;
}

}  // namespace lumina
