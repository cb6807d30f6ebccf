// What a training run leaves behind and the commands that use it: retention,
// SIGUSR1 checkpoints, best-validation pointer, generate and eval.
#include <signal.h>

#include "train_fixture.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

// Checkpoint directory names in step order.
std::vector<std::string> checkpoint_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(run_dir(dir) + "/checkpoints"))
    if (e.is_directory()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return std::stoi(a.substr(5)) < std::stoi(b.substr(5));
  });
  return names;
}

TEST(TrainOutputs, RetentionKeepsTheNewestAndBest) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 40);
  // Checkpoints every 5 steps, evaluation every 10 with a learning rate that makes
  // validation worsen late, keep 2: latest and best always survive.
  const CliResult r = run_lumina({"train", "--config", config, "--set", "train.save_every_n_batches=5", "--set",
                                  "train.save_total_limit=2", "--set", "train.eval_interval=10"},
                                 dir + "/log.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string best = read_text(run_dir(dir) + "/checkpoints/best");
  const std::string latest = read_text(run_dir(dir) + "/checkpoints/latest");
  EXPECT_EQ(latest, "step_40\n");
  std::vector<std::string> expected{"step_35", "step_40"};
  const std::string best_name = best.substr(0, best.size() - 1);
  if (best_name != "step_35" && best_name != "step_40") expected.insert(expected.begin(), best_name);
  EXPECT_EQ(checkpoint_names(dir), expected) << "best: " << best_name;
  // The metrics have a validation row every 10 steps.
  const std::string metrics = read_text(run_dir(dir) + "/metrics/metrics.jsonl");
  for (int step : {10, 20, 30, 40})
    EXPECT_NE(metrics.find("\"step\":" + std::to_string(step) + ",\"val_accuracy\""), std::string::npos) << step;
}

TEST(TrainOutputs, Sigusr1SavesAndContinues) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir);
  const pid_t pid = spawn_lumina({"train", "--config", config, "--set", "train.save_every_n_batches=0"},
                                 dir + "/log.txt");
  ASSERT_TRUE(wait_until([&] { return metric_rows(dir) >= 5; }));
  kill(pid, SIGUSR1);
  ASSERT_EQ(wait_exit_code(pid), 0) << read_text(dir + "/log.txt");
  EXPECT_EQ(metric_rows(dir), 30);  // it went on to the end
  const std::vector<std::string> names = checkpoint_names(dir);
  ASSERT_EQ(names.size(), 2u) << "one checkpoint from the signal, one at the end";
  EXPECT_EQ(names.back(), "step_30");
  EXPECT_LT(std::stoi(names.front().substr(5)), 30);
}

TEST(TrainOutputs, GenerateAndEvalFromACheckpoint) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 20);
  ASSERT_EQ(run_lumina({"train", "--config", config}, dir + "/train.txt").exit_code, 0);
  const std::vector<std::string> args{"generate", "--checkpoint", run_dir(dir), "--prompt", "The jury",
                                      "--max-new-tokens", "40", "--temperature", "0"};
  const CliResult a = run_lumina(args, dir + "/gen1.txt");
  const CliResult b = run_lumina(args, dir + "/gen2.txt");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output.rfind("The jury", 0), 0u) << a.output;
  EXPECT_GT(a.output.size(), std::string("The jury\n").size());
  EXPECT_EQ(a.output, b.output);  // greedy decoding is deterministic
  const CliResult sampled = run_lumina({"generate", "--checkpoint", run_dir(dir), "--prompt", "The", "--top-p", "0",
                                        "--max-new-tokens", "5"},
                                       dir + "/gen3.txt");
  EXPECT_EQ(sampled.exit_code, 2) << sampled.output;
  EXPECT_NE(sampled.output.find("--top-p"), std::string::npos) << sampled.output;

  const CliResult e = run_lumina({"eval", "--checkpoint", run_dir(dir), "--data", dir + "/corpus.txt", "--max-batches",
                                  "2"},
                                 dir + "/eval.txt");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  // 2 batches of 8 x 128 targets, less the masked document starts.
  const auto at = e.output.find("loss ");
  ASSERT_NE(at, std::string::npos) << e.output;
  const double loss = std::stod(e.output.substr(at + 5));
  EXPECT_GT(loss, 0.5);
  EXPECT_LT(loss, std::log(259.0));  // trained: better than uniform over the byte vocabulary
}

}  // namespace
}  // namespace lumina::test
