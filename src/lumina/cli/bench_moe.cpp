// lumina bench moe: one MoE feed-forward layer timed per shape and expert-GEMM
// variant (bench/moe_bench.h), the PyTorch per-expert loop on the same shapes
// when --torch names a Python interpreter (bench/moe/torch_moe_loop.py, run as a
// subprocess), and the report (bench/moe_report.h) under --results-dir.
// A shape whose planned memory exceeds the free device memory (or
// --memory-limit-gb) is skipped with its figures; a variant that fails is
// reported as failed and the others still run.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "lumina/backend/select.h"
#include "lumina/bench/moe_bench.h"
#include "lumina/bench/moe_report.h"
#include "lumina/cli/commands.h"
#include "lumina/cli/format.h"
#include "lumina/io/atomic_file.h"

namespace lumina::cli {

namespace {

struct BenchMoeArgs {
  std::string sizes = "small,medium,large";
  std::string variants = "loop,grouped,grouped_tile_rounding";
  double capacity_factor = 1.25;
  int64_t iters = 10, warmup = 3;
  std::string device = "auto", precision = "auto";
  std::string results_dir = "bench/results/moe";
  std::string torch_python;
  std::string torch_script = "bench/moe/torch_moe_loop.py";
  double peak_flops = 989e12;
  double memory_limit_gb = 0.0;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t begin = item.find_first_not_of(' '), end = item.find_last_not_of(' ');
    if (begin != std::string::npos) items.push_back(item.substr(begin, end - begin + 1));
  }
  return items;
}

std::vector<MoeBenchShape> parse_sizes(const std::string& text) {
  std::vector<MoeBenchShape> shapes;
  std::string valid;
  for (const MoeBenchShape& s : moe_bench_shapes()) valid += (valid.empty() ? "" : ", ") + s.name;
  for (const std::string& name : split_list(text)) {
    const auto& all = moe_bench_shapes();
    const auto it = std::find_if(all.begin(), all.end(), [&](const MoeBenchShape& s) { return s.name == name; });
    LUMINA_CHECK(it != all.end(), "--sizes: unknown size \"{}\"; valid values are {} (comma-separated)", name, valid);
    shapes.push_back(*it);
  }
  LUMINA_CHECK(!shapes.empty(), "--sizes is empty; valid values are {} (comma-separated)", valid);
  return shapes;
}

std::vector<std::string> parse_variants(const std::string& text) {
  const auto& all = moe_bench_variants();
  std::vector<std::string> variants = split_list(text);
  for (const std::string& v : variants)
    LUMINA_CHECK(std::find(all.begin(), all.end(), v) != all.end(),
                 "--variants: unknown variant \"{}\"; valid values are loop, grouped, grouped_tile_rounding "
                 "(comma-separated)", v);
  LUMINA_CHECK(!variants.empty(), "--variants is empty; valid values are loop, grouped, grouped_tile_rounding");
  return variants;
}

// The memory a shape may plan for: the free device memory and --memory-limit-gb, the smaller; nullopt: no limit.
struct MemoryLimit {
  int64_t bytes = 0;
  std::string what;  // for the skip reason
};
std::optional<MemoryLimit> memory_limit(const Backend& be, double limit_gb) {
  std::optional<MemoryLimit> limit;
  const int64_t free_bytes = be.device_free_bytes();
  if (free_bytes >= 0) limit = MemoryLimit{free_bytes, fmt::format("the {} free on the device", human_bytes(free_bytes))};
  const int64_t user_bytes = std::llround(limit_gb * 1e9);
  if (limit_gb > 0 && (!limit || user_bytes < limit->bytes))
    limit = MemoryLimit{user_bytes, fmt::format("--memory-limit-gb {} ({})", limit_gb, human_bytes(user_bytes))};
  return limit;
}

std::string memory_text(const MoeMemory& m) {
  return fmt::format("{} planned: weights {}{}, grads {}, activations {}, buffers {}", human_bytes(m.total_bytes()),
                     human_bytes(m.weight_bytes),
                     m.compute_weight_bytes > 0 ? " + compute copy " + human_bytes(m.compute_weight_bytes) : "",
                     human_bytes(m.grad_bytes), human_bytes(m.activation_bytes), human_bytes(m.buffer_bytes));
}

// Runs argv with our stdout and stderr; its exit status (127: it could not start, 128 + n: killed by signal n).
int run_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  LUMINA_CHECK(pid >= 0, "bench moe: cannot start {}: fork failed", args[0]);
  if (pid == 0) {
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The PyTorch loop on `shapes`, one row per shape (a failed row where it gave none); sets run.torch_status.
std::vector<MoeBenchRow> run_torch(const BenchMoeArgs& a, const std::vector<MoeBenchShape>& shapes, const Backend& be,
                                   DType act, MoeBenchRun& run) {
  const std::string json_path = (std::filesystem::path(a.results_dir) / "torch_loop.jsonl").string();
  std::filesystem::remove(json_path);
  std::string sizes;
  for (const MoeBenchShape& s : shapes) sizes += (sizes.empty() ? "" : ",") + s.name;
  const std::string torch_dtype = act == DType::bf16 ? "bfloat16" : act == DType::f16 ? "float16" : "float32";
  const std::vector<std::string> cmd = {a.torch_python, a.torch_script, "--sizes", sizes, "--iters",
                                        std::to_string(a.iters), "--warmup", std::to_string(a.warmup),
                                        "--device", be.device() == Device::cuda ? "cuda" : "cpu",
                                        "--dtype", torch_dtype, "--memory-limit-gb", fmt::format("{}", a.memory_limit_gb),
                                        "--json", json_path};
  fmt::print("torch_loop: {}\n", fmt::join(cmd, " "));
  const int status = run_process(cmd);
  std::vector<MoeBenchRow> rows;
  run.torch_status = status == 0 ? "ok"
                     : status == 127
                         ? fmt::format("FAILED: {} could not be started (exit status 127); check --torch", a.torch_python)
                         : fmt::format("FAILED: torch_moe_loop.py exited with status {} (its output is above)", status);
  if (std::filesystem::exists(json_path)) {
    try {
      rows = parse_torch_rows(read_file(json_path));
    } catch (const Error& e) {
      run.torch_status = fmt::format("FAILED: {}", e.what());
      rows.clear();
    }
  }
  // Every shape gets a row, and only a row of lumina's dimensions counts.
  std::vector<MoeBenchRow> out;
  for (const MoeBenchShape& s : shapes) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const MoeBenchRow& r) { return r.shape.name == s.name; });
    MoeBenchRow row{s, kTorchLoopVariant, "failed", "no result from torch_moe_loop.py (" + run.torch_status + ")"};
    if (it != rows.end()) {
      const MoeBenchShape& t = it->shape;
      const bool same = t.experts == s.experts && t.hidden == s.hidden && t.ffn == s.ffn && t.top_k == s.top_k &&
                        t.batch == s.batch && t.seq == s.seq;
      if (same) row = *it;
      else row.reason = "torch_moe_loop.py ran other dimensions than lumina's for this size; make its SHAPES match";
    }
    if (row.status == "failed" && (it == rows.end() || it->status == "ok"))
      fmt::print("{} / torch_loop: failed: {}\n", s.name, row.reason);  // the script printed its own failures
    out.push_back(std::move(row));
  }
  fmt::print("torch_loop: {}\n", run.torch_status);
  return out;
}

void run_bench_moe(const BenchMoeArgs& a) {
  const std::vector<MoeBenchShape> shapes = parse_sizes(a.sizes);
  const std::vector<std::string> variants = parse_variants(a.variants);
  LUMINA_CHECK(a.capacity_factor > 0, "--capacity-factor = {} must be > 0", a.capacity_factor);
  LUMINA_CHECK(a.torch_python.empty() || std::filesystem::exists(a.torch_script),
               "--torch-script {} does not exist: run from the lumina source tree or pass its path", a.torch_script);
  SelectedBackend selected = select_backend(a.device, a.precision);
  Backend& be = *selected.backend;
  const DType act = selected.act_dtype;

  MoeBenchRun run;
  run.date_utc = utc_timestamp();
  run.backend = be.name();
  run.device = be.device() == Device::cuda ? "cuda" : "cpu";
  run.dtype = std::string(dtype_name(act));
  run.peak_flops = a.peak_flops;
  run.torch_status = "not run (no --torch interpreter given)";
  run.options = {{"sizes", a.sizes},          {"variants", a.variants},         {"capacity_factor", a.capacity_factor},
                 {"iters", a.iters},          {"warmup", a.warmup},             {"device", a.device},
                 {"precision", a.precision},  {"memory_limit_gb", a.memory_limit_gb}, {"torch", a.torch_python},
                 {"torch_script", a.torch_script}, {"peak_flops", a.peak_flops}};
  fmt::print("bench moe: {} | activations {} | {} timed passes after {} warm-up | capacity factor {}\n", be.name(),
             run.dtype, a.iters, a.warmup, a.capacity_factor);

  MoeBenchOptions o;
  o.iters = a.iters;
  o.warmup = a.warmup;
  o.capacity_factor = a.capacity_factor;
  std::vector<std::vector<MoeBenchRow>> by_shape;
  for (const MoeBenchShape& shape : shapes) {
    std::vector<MoeBenchRow>& rows = by_shape.emplace_back();
    std::optional<MoeBenchResult> reference;  // the shape's first variant that ran
    std::string reference_variant;
    for (const std::string& v : variants) {
      const std::string label = fmt::format("{} / {}", shape.name, v);
      const MoeMemory plan = plan_moe_memory(shape, v, a.capacity_factor, act);
      const std::optional<MemoryLimit> limit = memory_limit(be, a.memory_limit_gb);
      if (limit && plan.total_bytes() > limit->bytes) {
        MoeBenchRow row{shape, v, "skipped", fmt::format("needs {}; more than {}", memory_text(plan), limit->what)};
        row.memory = plan;
        row.memory_limit_bytes = limit->bytes;
        fmt::print("{}: skipped: {}\n", label, row.reason);
        rows.push_back(std::move(row));
        continue;
      }
      try {
        MoeBenchResult r = run_moe_bench(be, act, shape, v, o);
        MoeBenchRow row = moe_row_from_result(shape, v, r);
        if (reference) {
          row.check_reference = reference_variant;
          row.check = compare_moe_outputs(*reference, r, shape.top_k);
        } else {
          reference = std::move(r);
          reference_variant = v;
        }
        fmt::print("{}: fwd {:.3f} ms, fwd+bwd {:.3f} ms, {:.2f} TFLOP/s fwd+bwd, memory {}\n", label, row.fwd.median,
                   row.fwd_bwd.median, moe_throughput(row).tflops_fwd_bwd, human_bytes(row.memory.total_bytes()));
        rows.push_back(std::move(row));
      } catch (const Error& e) {
        MoeBenchRow row{shape, v, "failed", e.what()};
        row.memory = plan;
        fmt::print("{}: FAILED: {}\n", label, e.what());
        rows.push_back(std::move(row));
      }
    }
  }
  if (!a.torch_python.empty()) {
    std::filesystem::create_directories(a.results_dir);
    const std::vector<MoeBenchRow> torch_rows = run_torch(a, shapes, be, act, run);
    for (size_t i = 0; i < shapes.size(); ++i) by_shape[i].push_back(torch_rows[i]);
  }
  for (auto& rows : by_shape)
    for (MoeBenchRow& r : rows) run.rows.push_back(std::move(r));
  write_moe_report(run, a.results_dir);
  fmt::print("wrote {}/{{results.json, report.md, latency.svg, memory.svg, expert_load.svg}}\n", a.results_dir);
}

}  // namespace

void register_bench_moe(CLI::App& bench) {
  auto args = std::make_shared<BenchMoeArgs>();
  CLI::App* moe = bench.add_subcommand(
      "moe", "Time one MoE layer per shape and expert-GEMM variant (and the PyTorch per-expert loop): latency, "
             "TFLOP/s, memory, expert load; writes results.json, report.md and SVG charts");
  moe->add_option("--sizes", args->sizes,
                  "Comma-separated shapes: tiny (8 experts, d 64, ffn 128, top-2, 4 x 32; for CPU tests), small "
                  "(8, 1024, 4096, top-2, 16 x 256), medium (64, 4096, 14336, top-4, 32 x 512), large (256, 7168, "
                  "14336, top-8, 32 x 2048: skipped where its memory does not fit)")
      ->capture_default_str();
  moe->add_option("--variants", args->variants,
                  "Comma-separated expert-GEMM variants (model.moe_gemm): loop, grouped, grouped_tile_rounding")
      ->capture_default_str();
  moe->add_option("--capacity-factor", args->capacity_factor,
                  "Expert capacity = ceil(tokens * top_k / experts * factor), the same for every variant")
      ->capture_default_str();
  moe->add_option("--iters", args->iters, "Timed passes of forward and of forward + backward (median and min)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  moe->add_option("--warmup", args->warmup, "Untimed forward + backward passes first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  moe->add_option("--device", args->device, "auto, cpu or cuda")->capture_default_str();
  moe->add_option("--precision", args->precision,
                  "Activations: auto (bf16 on a GPU, fp32 on the CPU), fp32, bf16 or fp16 (GPU)")
      ->capture_default_str();
  moe->add_option("--results-dir", args->results_dir, "Where results.json, report.md and the SVGs are written")
      ->capture_default_str();
  moe->add_option("--torch", args->torch_python,
                  "Python interpreter that runs the PyTorch per-expert loop on the same shapes (e.g. python3); "
                  "empty: skip it");
  moe->add_option("--torch-script", args->torch_script, "Path of torch_moe_loop.py")->capture_default_str();
  moe->add_option("--peak-flops", args->peak_flops, "Device peak FLOP/s for the % of peak columns")
      ->capture_default_str();
  moe->add_option("--memory-limit-gb", args->memory_limit_gb,
                  "Skip a shape whose planned memory exceeds this many GB (1e9 bytes); 0: no limit besides the free "
                  "device memory (none on the CPU)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  moe->callback([args] { run_bench_moe(*args); });
}

}  // namespace lumina::cli
