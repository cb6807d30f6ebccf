// An MoE model trained through the CLI: every training row of metrics.jsonl
// carries the routing statistics with sensible values, the progress line shows
// the MoE part, and generation from the checkpoint runs through the MoE layers.
#include <cmath>

#include "train_fixture.h"

namespace lumina::test {
namespace {

// 2 layers, both MoE: 4 experts, top-2, capacity 1.25, aux weight 0.01 (default), z weight 0.001.
const std::string kAllMoe =
    "use_moe = true\nnum_experts = 4\nmoe_top_k = 2\nrouter_z_loss_weight = 0.001\n";

TEST(TrainMoe, MetricsCarryRoutingStatisticsEveryStep) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 10, kAllMoe);
  const CliResult r = run_lumina({"train", "--config", config, "--set", "train.log_interval=5"}, dir + "/log.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 5/10 |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| moe aux "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("% | entropy "), std::string::npos) << r.output;

  std::ifstream in(run_dir(dir) + "/metrics/metrics.jsonl");
  std::string line;
  int rows = 0;
  const double log_e = std::log(4.0);
  // Each step routes 8 x 128 tokens x top-2 = 2,048 assignments per layer.
  const int64_t assignments_per_layer = 8 * 128 * 2;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    if (!row.contains("loss")) continue;
    ++rows;
    SCOPED_TRACE(line);
    ASSERT_TRUE(row.contains("moe"));
    const auto& moe = row["moe"];
    ASSERT_EQ(moe["layers"].size(), 2u);
    double aux = 0.0, z = 0.0, entropy = 0.0, cv = 0.0;
    int64_t dropped = 0;
    for (const char* layer : {"0", "1"}) {
      const auto& l = moe["layers"][layer];
      const auto u = l["utilization"].get<std::vector<double>>();
      ASSERT_EQ(u.size(), 4u);
      double sum = 0.0, mean_sq = 0.0;
      for (double v : u) {
        EXPECT_GE(v, 0.0);
        sum += v;
        mean_sq += v * v / 4.0;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
      // cv = std / mean with mean 1/4: sqrt(mean(u^2) - 1/16) * 4.
      EXPECT_NEAR(l["utilization_cv"].get<double>(), 4.0 * std::sqrt(std::max(0.0, mean_sq - 1.0 / 16.0)), 1e-9);
      EXPECT_GT(l["entropy"].get<double>(), 0.0);
      EXPECT_LE(l["entropy"].get<double>(), log_e + 1e-12);
      // The aux loss is weight * E * sum f P >= weight * (a balanced router gives weight exactly);
      // it stays near that early in training.
      EXPECT_GT(l["aux_loss"].get<double>(), 0.009);
      EXPECT_LT(l["aux_loss"].get<double>(), 0.04);
      EXPECT_GT(l["z_loss"].get<double>(), 0.0);
      const int64_t d = l["tokens_dropped"].get<int64_t>();
      EXPECT_GE(d, 0);
      EXPECT_LT(d, assignments_per_layer);
      aux += l["aux_loss"].get<double>();
      z += l["z_loss"].get<double>();
      entropy += l["entropy"].get<double>() / 2.0;
      cv += l["utilization_cv"].get<double>() / 2.0;
      dropped += d;
    }
    // The aggregate is the layers' sum (losses, drops) or mean (entropy, spread, utilization).
    EXPECT_NEAR(moe["aux_loss"].get<double>(), aux, 1e-15);
    EXPECT_NEAR(moe["z_loss"].get<double>(), z, 1e-15);
    EXPECT_NEAR(moe["entropy"].get<double>(), entropy, 1e-15);
    EXPECT_NEAR(moe["utilization_cv"].get<double>(), cv, 1e-15);
    EXPECT_EQ(moe["tokens_dropped"].get<int64_t>(), dropped);
    EXPECT_DOUBLE_EQ(moe["dropped_fraction"].get<double>(),
                     static_cast<double>(dropped) / static_cast<double>(2 * assignments_per_layer));
    double total = 0.0;
    for (double v : moe["utilization"].get<std::vector<double>>()) total += v;
    EXPECT_NEAR(total, 1.0, 1e-12);
  }
  EXPECT_EQ(rows, 10);
}

TEST(TrainMoe, GenerateAndModelInfoFromAnMoeCheckpoint) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 5, kAllMoe);
  ASSERT_EQ(run_lumina({"train", "--config", config}, dir + "/train.txt").exit_code, 0);
  const std::vector<std::string> args{"generate", "--checkpoint", run_dir(dir), "--prompt", "The jury",
                                      "--max-new-tokens", "20", "--temperature", "0"};
  const CliResult a = run_lumina(args, dir + "/gen1.txt");
  const CliResult b = run_lumina(args, dir + "/gen2.txt");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output.rfind("The jury", 0), 0u) << a.output;
  EXPECT_GT(a.output.size(), std::string("The jury\n").size());
  EXPECT_EQ(a.output, b.output);
  // 259 x 96 embedding (tied); attention 2 x (2 x 96 x 96 + 2 x 96 x 48) = 55,296; norms 5 x 96 = 480;
  // per layer router 4 x 96 = 384 and experts 4 x 3 x 96 x 256 = 294,912 (active: 2 of them, 147,456).
  // total = 24,864 + 55,296 + 480 + 2 x (384 + 294,912) = 671,232
  // active = 24,864 + 55,296 + 480 + 2 x (384 + 147,456) = 376,320
  const CliResult info = run_lumina({"model-info", "--config", config}, dir + "/info.txt");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("total 671,232 (671.23K) | active 376,320"), std::string::npos) << info.output;
}

}  // namespace
}  // namespace lumina::test
