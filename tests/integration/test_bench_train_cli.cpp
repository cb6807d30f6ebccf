// lumina bench train through the CLI on the CPU: the JSON row it appends (shape,
// overrides, parameter counts, tokens/s consistent with the step time, no MFU
// on the CPU), --profile's per-op table, and a bad option.
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/cli_process.h"
#include "support/test_files.h"

namespace lumina::test {
namespace {

TEST(BenchTrainCli, AppendsARowWithTheRunsFigures) {
  const std::string dir = fresh_test_dir();
  // configs/bench/cpu-debug-moe.toml at 4 x 32 tokens, made dense by an override.
  const CliResult r = run_lumina({"bench", "train", "--config", std::string(LUMINA_SOURCE_DIR) +
                                  "/configs/bench/cpu-debug-moe.toml", "--set", "model.use_moe=false", "--batch", "4",
                                  "--seq", "32", "--steps", "2", "--warmup", "1", "--device", "cpu", "--profile",
                                  "--results-dir", dir + "/results"},
                                 dir + "/log.txt", {"OMP_NUM_THREADS=1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("profile: per-op device time per step"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gemm "), std::string::npos) << r.output;
  std::ifstream in(dir + "/results/train.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const nlohmann::json row = nlohmann::json::parse(line);
  EXPECT_EQ(row["B"], 4);
  EXPECT_EQ(row["T"], 32);
  EXPECT_EQ(row["steps"], 2);
  EXPECT_EQ(row["overrides"], nlohmann::json::array({"model.use_moe=false"}));
  // d128, 2 layers, 2 heads of 64, kv 2, SwiGLU 384, vocab 256, untied head:
  //   total = 2 * (4 * 128^2 + 3 * 128 * 384) + 5 * 128 (norms) + 2 * 256 * 128 = 492,160;
  //   active matmul = 2 * (4 * 128^2 + 3 * 128 * 384) + 256 * 128 (head) = 458,752.
  EXPECT_EQ(row["params_total"], 492160);
  EXPECT_EQ(row["params_active"], 458752);
  EXPECT_NEAR(row["tok_s"].get<double>(), 4 * 32 / (row["step_ms"].get<double>() * 1e-3), 1e-6 * row["tok_s"].get<double>());
  EXPECT_TRUE(row["mfu"].is_null());  // no peak on the CPU
  EXPECT_GT(row["loss"].get<double>(), 0.0);
  EXPECT_FALSE(std::getline(in, line));  // one run, one row
}

TEST(BenchTrainCli, RejectsZeroSteps) {
  const std::string dir = fresh_test_dir();
  const CliResult r = run_lumina({"bench", "train", "--config", std::string(LUMINA_SOURCE_DIR) +
                                  "/configs/bench/cpu-small.toml", "--steps", "0", "--results-dir", dir},
                                 dir + "/log.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--steps"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lumina::test
