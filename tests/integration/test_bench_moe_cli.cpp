// lumina bench moe through the CLI on the tiny shape (CPU, f32): every variant
// timed and measured, the figures consistent with the shape, the three variants
// giving the same layer output, the PyTorch rows merged (a stand-in script, and
// the real one when Debian's python3-torch is installed), a failing PyTorch side
// reported without losing lumina's results, memory skips, and bad options.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "support/cli_process.h"
#include "support/test_files.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kVariants = {"loop", "grouped", "grouped_tile_rounding"};
constexpr int64_t kTokens = 128, kTopK = 2;                        // tiny: 4 x 32 tokens, top-2
constexpr int64_t kWeightBytes = 3 * 8 * 64 * 128 * 4 + 8 * 64 * 4;  // experts + router, f32

// Stands in for python: writes one torch_loop row for tiny (fwd+bwd 1000 ms) to the --json path.
constexpr const char* kFakeTorch = R"(out=
while [ $# -gt 0 ]; do
  if [ "$1" = --json ]; then out=$2; fi
  shift
done
printf '%s\n' '{"shape":"tiny","experts":8,"hidden":64,"ffn":128,"top_k":2,"batch":4,"seq":32,"status":"ok","fwd_ms":{"median":400.0,"min":390.0},"fwd_bwd_ms":{"median":1000.0,"min":990.0},"kept":256,"expert_load":[32,32,32,32,32,32,32,32],"weight_bytes":788480,"grad_bytes":788480,"peak_bytes":-1}' > "$out"
)";

CliResult bench_moe(const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> args = {"bench", "moe",  "--sizes", "tiny", "--device", "cpu", "--iters", "2",
                                   "--warmup", "1", "--results-dir", dir + "/results"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_lumina(args, dir + "/log.txt", {"OMP_NUM_THREADS=1"});  // one thread: quick on a shared 2-core machine
}

nlohmann::json results(const std::string& dir) { return nlohmann::json::parse(read_text(dir + "/results/results.json")); }

const nlohmann::json& row_of(const nlohmann::json& run, const std::string& variant) {
  for (const nlohmann::json& r : run["rows"])
    if (r["variant"] == variant) return r;
  throw std::runtime_error("no row for " + variant);
}

class BenchMoeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One run per test process (ctest runs each test in its own, in parallel).
    dir_ = new std::string(std::string(LUMINA_TEST_TMP) + "/BenchMoeCli." + std::to_string(getpid()));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    write_bytes(*dir_ + "/fake_torch.sh", kFakeTorch);
    result_ = new CliResult(bench_moe(*dir_, {"--torch", "sh", "--torch-script", *dir_ + "/fake_torch.sh"}));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete result_;
  }
  static std::string* dir_;
  static CliResult* result_;
};
std::string* BenchMoeCli::dir_ = nullptr;
CliResult* BenchMoeCli::result_ = nullptr;

TEST_F(BenchMoeCli, TimesEveryVariantWithConsistentFigures) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  for (const std::string& v : kVariants) EXPECT_NE(result_->output.find("tiny / " + v + ": fwd "), std::string::npos);
  const nlohmann::json run = results(*dir_);
  EXPECT_EQ(run["dtype"], "f32");
  EXPECT_EQ(run["rows"].size(), 4u);
  for (const std::string& v : kVariants) {
    SCOPED_TRACE(v);
    const nlohmann::json& r = row_of(run, v);
    ASSERT_EQ(r["status"], "ok");
    const double fwd = r["fwd_ms"]["median"], fwd_bwd = r["fwd_bwd_ms"]["median"];
    EXPECT_GT(r["fwd_ms"]["min"].get<double>(), 0.0);
    EXPECT_LE(r["fwd_ms"]["min"].get<double>(), fwd);
    EXPECT_NEAR(r["tokens_per_second"].get<double>(), kTokens / (fwd_bwd * 1e-3), 1e-6 * kTokens / (fwd_bwd * 1e-3));
    // FLOPs on routed tokens: forward 2 kept 3 C F + 2 N C E; fwd+bwd 3x.
    const int64_t kept = r["kept"];
    const double flops = 2.0 * static_cast<double>(kept) * 3 * 64 * 128 + 2.0 * kTokens * 64 * 8;
    EXPECT_DOUBLE_EQ(r["flops_fwd"].get<double>(), flops);
    EXPECT_NEAR(r["tflops_fwd_bwd"].get<double>(), 3 * flops / (fwd_bwd * 1e-3) / 1e12, 1e-9);
    EXPECT_NEAR(r["tflops_fwd"].get<double>(), flops / (fwd * 1e-3) / 1e12, 1e-9);
    // Every assignment is counted once: per-expert loads sum to N k = kept + dropped.
    const auto load = r["expert_load"].get<std::vector<int64_t>>();
    EXPECT_EQ(load.size(), 8u);
    EXPECT_EQ(std::accumulate(load.begin(), load.end(), int64_t{0}), kTokens * kTopK);
    EXPECT_EQ(kept + r["dropped"].get<int64_t>(), kTokens * kTopK);
    EXPECT_EQ(r["capacity"], v == "grouped_tile_rounding" ? 128 : 40);  // ceil(128 * 2 / 8 * 1.25) = 40
    const nlohmann::json& m = r["memory"];
    EXPECT_EQ(m["weight_bytes"], kWeightBytes);
    EXPECT_EQ(m["grad_bytes"], kWeightBytes);
    EXPECT_EQ(m["compute_weight_bytes"], 0);
    EXPECT_GT(m["activation_bytes"].get<int64_t>(), 0);
    EXPECT_EQ(m["planned_bytes"], m["weight_bytes"].get<int64_t>() + m["grad_bytes"].get<int64_t>() +
                                      m["activation_bytes"].get<int64_t>() + m["buffer_bytes"].get<int64_t>());
    EXPECT_TRUE(m["measured_bytes"].is_null());  // the CPU backend does not track device memory
    const nlohmann::json& b = r["load_balance"];
    EXPECT_GE(b["max_over_mean"].get<double>(), 1.0);
    EXPECT_LE(b["min_over_mean"].get<double>(), 1.0);
  }
}

TEST_F(BenchMoeCli, VariantsComputeTheSameLayerOutput) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const nlohmann::json run = results(*dir_);
  EXPECT_FALSE(row_of(run, "loop").contains("output_check"));  // the reference
  for (const std::string& v : {"grouped", "grouped_tile_rounding"}) {
    SCOPED_TRACE(v);
    const nlohmann::json& c = row_of(run, v)["output_check"];
    EXPECT_EQ(c["reference"], "loop");
    EXPECT_LT(c["output_max_abs_diff"].get<double>(), 1e-5);
    EXPECT_LT(c["dx_max_abs_diff"].get<double>(), 1e-5);
    EXPECT_GT(c["output_max_abs"].get<double>(), 1e-4);  // the output is not all zeros
    EXPECT_GT(c["tokens_compared"].get<int64_t>(), kTokens / 2);
  }
  // loop and grouped share the capacity, hence the routing: every token is compared.
  EXPECT_EQ(row_of(run, "grouped")["output_check"]["tokens_compared"], kTokens);
}

TEST_F(BenchMoeCli, MergesTheTorchLoopAndWritesTheReport) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const nlohmann::json run = results(*dir_);
  EXPECT_EQ(run["torch"], "ok");
  const nlohmann::json& torch = row_of(run, "torch_loop");
  EXPECT_EQ(torch["status"], "ok");
  EXPECT_DOUBLE_EQ(torch["fwd_bwd_ms"]["median"].get<double>(), 1000.0);
  for (const std::string& v : kVariants)
    EXPECT_NEAR(row_of(run, v)["speedup_vs_torch_loop"].get<double>(),
                1000.0 / row_of(run, v)["fwd_bwd_ms"]["median"].get<double>(), 1e-9);
  const std::string files[] = {"report.md", "latency.svg", "memory.svg", "expert_load.svg"};
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    const std::string text = read_text(*dir_ + "/results/" + f);
    ASSERT_FALSE(text.empty());
    for (const std::string& v : {"loop", "grouped", "grouped_tile_rounding", "torch_loop"})
      EXPECT_NE(text.find(v), std::string::npos) << v;
  }
  const std::string report = read_text(*dir_ + "/results/report.md");
  for (const char* link : {"(latency.svg)", "(memory.svg)", "(expert_load.svg)"})
    EXPECT_NE(report.find(link), std::string::npos) << link;
  EXPECT_NE(report.find("counted on routed tokens"), std::string::npos);
  EXPECT_NE(report.find("PyTorch per-expert loop (torch_loop): ok"), std::string::npos);
}

TEST(BenchMoeCliTorch, AFailingTorchSideIsReportedAndLuminaResultsKept) {
  const std::string dir = fresh_test_dir();
  write_bytes(dir + "/broken.sh", "echo 'Traceback: no module named torch' >&2\nexit 3\n");
  const CliResult r = bench_moe(dir, {"--variants", "grouped", "--torch", "sh", "--torch-script", dir + "/broken.sh"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("FAILED: torch_moe_loop.py exited with status 3"), std::string::npos) << r.output;
  const nlohmann::json run = results(dir);
  EXPECT_EQ(run["torch"].get<std::string>().rfind("FAILED", 0), 0u);
  EXPECT_EQ(row_of(run, "grouped")["status"], "ok");
  EXPECT_EQ(row_of(run, "torch_loop")["status"], "failed");
  EXPECT_NE(read_text(dir + "/results/report.md").find("(torch_loop): FAILED"), std::string::npos);
}

TEST(BenchMoeCliTorch, RealPyTorchLoopOnTheCpu) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's python3-torch is not installed";
  const std::string dir = fresh_test_dir();
  const CliResult r = bench_moe(dir, {"--variants", "grouped", "--torch", "/usr/bin/python3", "--torch-script",
                                      std::string(LUMINA_SOURCE_DIR) + "/bench/moe/torch_moe_loop.py"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json run = results(dir);
  const nlohmann::json& torch = row_of(run, "torch_loop");
  ASSERT_EQ(torch["status"], "ok") << r.output;
  EXPECT_GT(torch["fwd_bwd_ms"]["min"].get<double>(), 0.0);
  EXPECT_EQ(torch["kept"], kTokens * kTopK);  // dropless
  const auto load = torch["expert_load"].get<std::vector<int64_t>>();
  EXPECT_EQ(std::accumulate(load.begin(), load.end(), int64_t{0}), kTokens * kTopK);
  EXPECT_EQ(torch["memory"]["weight_bytes"], kWeightBytes);
}

TEST(BenchMoeCliMemory, ShapesOverTheLimitAreSkippedWithTheirFigures) {
  const std::string dir = fresh_test_dir();
  const CliResult r = bench_moe(dir, {"--memory-limit-gb", "0.000001"});  // 1000 bytes
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json run = results(dir);
  for (const std::string& v : kVariants) {
    SCOPED_TRACE(v);
    const nlohmann::json& row = row_of(run, v);
    EXPECT_EQ(row["status"], "skipped");
    EXPECT_NE(row["reason"].get<std::string>().find("--memory-limit-gb"), std::string::npos);
    EXPECT_EQ(row["memory"]["limit_bytes"], 1000);
    EXPECT_EQ(row["memory"]["weight_bytes"], kWeightBytes);
    EXPECT_GT(row["memory"]["planned_bytes"].get<int64_t>(), 1000);
    EXPECT_FALSE(row.contains("fwd_ms"));
  }
  EXPECT_NE(read_text(dir + "/results/report.md").find("| tiny | loop | skipped |"), std::string::npos);
}

TEST(BenchMoeCliErrors, BadSizesAndVariantsNameTheOptionAndTheValidValues) {
  const std::string dir = fresh_test_dir();
  const CliResult sizes = run_lumina({"bench", "moe", "--sizes", "tiny,huge", "--device", "cpu"}, dir + "/a.txt");
  EXPECT_NE(sizes.exit_code, 0);
  EXPECT_NE(sizes.output.find("--sizes"), std::string::npos) << sizes.output;
  EXPECT_NE(sizes.output.find("\"huge\""), std::string::npos) << sizes.output;
  EXPECT_NE(sizes.output.find("tiny, small, medium, large"), std::string::npos) << sizes.output;
  const CliResult variants = run_lumina({"bench", "moe", "--sizes", "tiny", "--variants", "loop,fused"}, dir + "/b.txt");
  EXPECT_NE(variants.exit_code, 0);
  EXPECT_NE(variants.output.find("--variants"), std::string::npos) << variants.output;
  EXPECT_NE(variants.output.find("loop, grouped, grouped_tile_rounding"), std::string::npos) << variants.output;
  EXPECT_FALSE(fs::exists(dir + "/results"));
}

}  // namespace
}  // namespace lumina::test
