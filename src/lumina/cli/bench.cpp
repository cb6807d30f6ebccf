// lumina bench: benchmarks. `bench train` times full training steps and
// appends one JSON line per run to <results-dir>/train.jsonl; `bench moe`
// (bench_moe.cpp) times one MoE layer per shape and expert-GEMM variant.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lumina/backend/profiling_backend.h"
#include "lumina/backend/select.h"
#include "lumina/bench/train_bench.h"
#include "lumina/cli/commands.h"
#include "lumina/cli/config_options.h"
#include "lumina/cli/format.h"

namespace lumina::cli {

namespace {

struct BenchTrainArgs {
  ConfigOptions config;
  int64_t batch = 0, seq = 0, steps = 10, warmup = 2;
  std::string device;
  double peak_flops = 989e12;  // H100/H200 SXM dense bf16, the reference MFU convention
  std::string results_dir = "bench/results";
  bool profile = false;
};

// Per-op device time of a few more steps through ProfilingBackend, largest first.
void print_profile(const std::string& device, const std::string& precision, const ModelConfig& model,
                   TrainBenchOptions o) {
  SelectedBackend selected = select_backend(device, precision);
  const DType act = selected.act_dtype;
  ProfilingBackend prof(std::move(selected.backend));
  o.steps = std::min<int64_t>(o.steps, 5);
  o.warmup_steps = 1;
  o.after_warmup = [&prof] { prof.reset(); };
  run_train_bench(prof, act, model, o);
  std::vector<std::pair<std::string, OpTiming>> rows(prof.timings().begin(), prof.timings().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0.0;
  for (const auto& r : rows) total += r.second.seconds;
  const auto steps = static_cast<double>(o.steps);
  fmt::print("\nprofile: per-op device time per step ({} steps, each op synchronised; sum {:.2f} ms)\n", o.steps,
             1e3 * total / steps);
  fmt::print("{:<44} {:>8} {:>10} {:>7}\n", "op", "calls", "ms", "%");
  for (const auto& [key, t] : rows)
    fmt::print("{:<44} {:>8.0f} {:>10.3f} {:>6.1f}%\n", key, static_cast<double>(t.calls) / steps,
               1e3 * t.seconds / steps, 100.0 * t.seconds / total);
}

void run_bench_train(const BenchTrainArgs& a) {
  const RunConfig cfg = a.config.load();
  const std::string device = a.device.empty() ? cfg.train.device : a.device;
  SelectedBackend selected = select_backend(device, cfg.train.precision);
  TrainBenchOptions o;
  o.batch = a.batch > 0 ? a.batch : cfg.train.batch_size;
  o.seq = a.seq > 0 ? a.seq : cfg.train.seq_len;
  o.steps = a.steps;
  o.warmup_steps = a.warmup;
  o.seed = static_cast<uint64_t>(cfg.train.seed);
  const bool on_gpu = selected.backend->device() == Device::cuda;
  o.peak_flops = on_gpu ? a.peak_flops : 0.0;
  fmt::print("bench train: {} | batch {} x seq {} | {} steps after {} warm-up | backend {} | activations {}\n",
             a.config.path.empty() ? a.config.preset : a.config.path, o.batch, o.seq, o.steps, o.warmup_steps,
             selected.backend->name(), dtype_name(selected.act_dtype));
  const TrainBenchResult r = run_train_bench(*selected.backend, selected.act_dtype, cfg.model, o);
  fmt::print("tokens/s     {:.0f}\n", r.tokens_per_second);
  fmt::print("step time    {:.2f} ms (median)\n", r.step_ms);
  fmt::print("model flops  {:.1f} GFLOP/s", r.model_flops_per_second / 1e9);
  if (r.mfu > 0) fmt::print(" | MFU {:.1f}% of {:.0f} TFLOP/s", 100 * r.mfu, a.peak_flops / 1e12);
  fmt::print("\nmemory       planned {} | measured peak {}{}\n", human_bytes(r.planned_bytes), human_bytes(r.peak_bytes),
             on_gpu ? "" : " (process RSS)");
  fmt::print("params       {} total | {} active | final loss {:.4f}\n", human_count(r.params_total),
             human_count(r.params_active), r.final_loss);

  nlohmann::json row = {{"date", utc_timestamp()},
                        {"config", a.config.path.empty() ? a.config.preset : a.config.path},
                        {"overrides", a.config.overrides},  // --set section.field=value, as given
                        {"backend", selected.backend->name()},
                        {"activations", dtype_name(selected.act_dtype)},
                        {"threads", on_gpu ? 0 : omp_get_max_threads()},
                        {"B", o.batch},
                        {"T", o.seq},
                        {"steps", o.steps},
                        {"step_ms", r.step_ms},
                        {"tok_s", r.tokens_per_second},
                        {"gflops_s", r.model_flops_per_second / 1e9},
                        {"mfu", on_gpu ? nlohmann::json(r.mfu) : nlohmann::json(nullptr)},
                        {"params_total", r.params_total},
                        {"params_active", r.params_active},
                        {"planned_bytes", r.planned_bytes},
                        {"peak_bytes", r.peak_bytes},
                        {"loss", r.final_loss}};
  std::filesystem::create_directories(a.results_dir);
  const std::string out = (std::filesystem::path(a.results_dir) / "train.jsonl").string();
  std::ofstream(out, std::ios::app) << row.dump() << "\n";
  fmt::print("appended to {}\n", out);
  if (a.profile) print_profile(device, cfg.train.precision, cfg.model, o);
}

}  // namespace

void register_bench(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks (results appended under bench/results/)");
  bench->require_subcommand(1);
  auto args = std::make_shared<BenchTrainArgs>();
  CLI::App* train = bench->add_subcommand("train", "Time full training steps: tokens/s, model FLOP/s, MFU, memory");
  args->config.add_to(*train);
  train->add_option("--batch", args->batch, "Micro-batch size (default: train.batch_size)");
  train->add_option("--seq", args->seq, "Sequence length (default: train.seq_len)");
  train->add_option("--steps", args->steps, "Timed steps")->check(CLI::PositiveNumber);
  train->add_option("--warmup", args->warmup, "Untimed warm-up steps")->check(CLI::NonNegativeNumber);
  train->add_option("--device", args->device, "auto, cpu or cuda (default: train.device)");
  train->add_option("--peak-flops", args->peak_flops, "Device peak FLOP/s for MFU (GPU only)");
  train->add_option("--results-dir", args->results_dir, "Where train.jsonl is appended");
  train->add_flag("--profile", args->profile, "Then time every op of a few more steps (synchronising after each)");
  train->callback([args] { run_bench_train(*args); });
  register_bench_moe(*bench);
}

}  // namespace lumina::cli
