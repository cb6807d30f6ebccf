// Mixture-of-Depths trained through the CLI: every training row of
// metrics.jsonl carries the MoD statistics (capacity following the annealing
// schedule exactly), evaluations report the causal-routing loss, the progress
// line shows the MoD part; a hybrid MoE + MoD model trains, generates and has
// its FLOPs in model-info; random routing resumes bit-identically.
#include <cmath>

#include "train_fixture.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

// Both layers MoD, learned routing, capacity annealed from 1 to 0.5 over 4 steps.
const std::string kLearnedMod = "use_mod = true\nmod_capacity_factor = 0.5\nmod_capacity_anneal_steps = 4\n";

std::vector<nlohmann::json> rows_of(const std::string& dir) {
  std::ifstream in(run_dir(dir) + "/metrics/metrics.jsonl");
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST(TrainMod, MetricsFollowTheCapacityScheduleEveryStep) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 6, kLearnedMod);
  const CliResult r = run_lumina(
      {"train", "--config", config, "--set", "train.log_interval=3", "--set", "train.eval_interval=3"},
      dir + "/log.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| mod depth "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("causal (predictor) routing"), std::string::npos) << r.output;

  // Training step s (row s + 1) runs k = round(c T) of T = 128 tokens per sequence,
  // c = 1 - 0.5 min(s, 4) / 4: 128, 112, 96, 80, 64, 64; batch 8, 2 layers.
  const int64_t expected_k[] = {128, 112, 96, 80, 64, 64};
  int train_rows = 0, eval_rows = 0;
  for (const auto& row : rows_of(dir)) {
    SCOPED_TRACE(row.dump());
    if (row.contains("val_loss")) {
      ++eval_rows;
      ASSERT_TRUE(row.contains("val_loss_causal"));
      EXPECT_GT(row["val_loss_causal"].get<double>(), 0.0);
      EXPECT_TRUE(std::isfinite(row["val_loss_causal"].get<double>()));
      continue;
    }
    ASSERT_TRUE(row.contains("mod"));
    const int64_t k = expected_k[row["step"].get<int64_t>() - 1];
    ++train_rows;
    const auto& mod = row["mod"];
    ASSERT_EQ(mod["layers"].size(), 2u);
    for (const char* layer : {"0", "1"}) {
      const auto& l = mod["layers"][layer];
      EXPECT_EQ(l["tokens_processed"].get<int64_t>(), 8 * k);
      EXPECT_EQ(l["tokens_skipped"].get<int64_t>(), 8 * (128 - k));
      EXPECT_DOUBLE_EQ(l["capacity"].get<double>(), static_cast<double>(k) / 128.0);
      EXPECT_GT(l["predictor_loss"].get<double>(), 0.0);
      EXPECT_GE(l["predictor_accuracy"].get<double>(), 0.0);
      EXPECT_LE(l["predictor_accuracy"].get<double>(), 1.0);
    }
    EXPECT_EQ(mod["tokens_processed"].get<int64_t>(), 2 * 8 * k);
    EXPECT_DOUBLE_EQ(mod["average_depth"].get<double>(), 2.0 * static_cast<double>(k) / 128.0);
    const double saved = mod["flops_saved"].get<double>();
    if (k == 128) {
      EXPECT_LT(saved, 0.0);  // every token runs, plus the router and predictor
      EXPECT_GT(saved, -0.01);
    } else {
      EXPECT_GT(saved, 0.0);
      EXPECT_LT(saved, 1.0 - static_cast<double>(k) / 128.0 + 0.1);
    }
  }
  EXPECT_EQ(train_rows, 6);
  EXPECT_EQ(eval_rows, 2);  // steps 3 and 6
}

TEST(TrainMod, HybridMoeModTrainsGeneratesAndShowsItsFlops) {
  const std::string dir = fresh_test_dir();
  const std::string config = write_run_config(
      dir, 5, kMoeModelLines + "use_mod = true\nmod_capacity_factor = 0.5\nmod_routing_type = \"learned\"\n");
  const CliResult r = run_lumina({"train", "--config", config}, dir + "/train.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int rows = 0;
  for (const auto& row : rows_of(dir)) {
    if (!row.contains("loss")) continue;
    ++rows;
    ASSERT_TRUE(row.contains("moe") && row.contains("mod")) << row.dump();
    EXPECT_EQ(row["mod"]["tokens_processed"].get<int64_t>(), 2 * 8 * 64);
    // The MoE layer (1) routes only its 8 x 64 routed tokens, top-2.
    EXPECT_LE(row["moe"]["tokens_dropped"].get<int64_t>(), 8 * 64 * 2);
    EXPECT_TRUE(std::isfinite(row["loss"].get<double>()));
  }
  EXPECT_EQ(rows, 5);
  const CliResult gen = run_lumina({"generate", "--checkpoint", run_dir(dir), "--prompt", "The jury",
                                    "--max-new-tokens", "16", "--temperature", "0"},
                                   dir + "/gen.txt");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_EQ(gen.output.rfind("The jury", 0), 0u) << gen.output;
  const CliResult info = run_lumina({"model-info", "--config", config}, dir + "/info.txt");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("mod          2 of 2 layers (learned routing, capacity 0.5)"), std::string::npos)
      << info.output;
}

TEST(TrainMod, RandomRoutingResumesBitIdentically) {
  const std::string dir = fresh_test_dir();
  const std::string config = write_run_config(dir, 6, "use_mod = true\nmod_routing_type = \"random\"\n");
  ASSERT_EQ(run_lumina({"train", "--config", config, "--set", "train.save_every_n_batches=3"}, dir + "/a.txt").exit_code,
            0);
  const auto reference = train_rows_without_timings(dir);
  ASSERT_EQ(reference.size(), 6u);
  // Forget steps 4..6: remove the last checkpoint, resume from step 3's.
  fs::remove_all(run_dir(dir) + "/checkpoints/step_6");
  const CliResult r = run_lumina({"train", "--config", config, "--set", "train.save_every_n_batches=3", "--resume",
                                  run_dir(dir) + "/checkpoints/step_3"},
                                 dir + "/b.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(train_rows_without_timings(dir), reference);
}

}  // namespace
}  // namespace lumina::test
