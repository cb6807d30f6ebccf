// Dynamic experts through the CLI: a MoE run (routing noise and expert
// dropout on) adds and prunes experts mid-run via train.expert_events; runs
// resumed from its checkpoints before, at and after those events continue
// with bit-identical losses; checkpoints record the new shapes (eval loads
// them), and a config that disagrees with a checkpoint's shapes is refused.
#include "train_fixture.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

// 12 steps, a checkpoint every 3. Events: layer 1 gets expert 4 at step 4; at step 6
// (right after checkpoint step_6 was written) expert 2 of layer 1 is pruned and layer 0
// gets expert 4; at step 9 the expert added to layer 1 is pruned again.
constexpr const char* kEvents = R"(["add 1 @ 4", "prune 1 2 @ 6", "add 0 @ 6", "prune 1 4 @ 9"])";

std::string write_moe_config(const std::string& dir, const std::string& events = kEvents, int64_t num_experts = 4) {
  write_synthetic_corpus(dir + "/corpus.txt", 200, 3);
  const std::string path = dir + "/run.toml";
  std::ofstream(path) << "[model]\nvocab_size = 259\nhidden_size = 32\nnum_layers = 2\nnum_heads = 2\n"
                         "num_kv_heads = 1\nintermediate_size = 64\nmax_position_embeddings = 64\n"
                         "use_moe = true\nnum_experts = " + std::to_string(num_experts) + "\nmoe_top_k = 2\n"
                         "routing_noise_std = 0.1\nexpert_dropout = 0.1\n"
                         "[train]\nexperiment_name = \"run\"\noutput_dir = \"" + dir + "/out\"\nbatch_size = 4\n"
                         "seq_len = 64\nmax_steps = 12\neval_interval = 0\nlog_interval = 1\n"
                         "save_every_n_batches = 3\nsave_total_limit = 0\nexpert_events = " + events + "\n"
                         "[optim]\nlearning_rate = 3e-3\nwarmup_steps = 2\n"
                         "[data]\ntrain_files = [\"" + dir + "/corpus.txt\"]\nvalidation_split = 0.05\n";
  return path;
}

class DynamicExpertsCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_dir_ = std::string(LUMINA_TEST_TMP) + "/DynamicExpertsCli.reference." + std::to_string(getpid());
    fs::remove_all(reference_dir_);
    fs::create_directories(reference_dir_);
    const CliResult r =
        run_lumina({"train", "--config", write_moe_config(reference_dir_)}, reference_dir_ + "/log.txt");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    reference_output_ = r.output;
    reference_ = train_losses(reference_dir_);
    ASSERT_EQ(reference_.size(), 12u);
  }
  static void TearDownTestSuite() { fs::remove_all(reference_dir_); }

  // A copy of the reference run stopped after `step`: checkpoints after it removed,
  // latest pointing at step_<step>. Returns the new test directory.
  static std::string stopped_copy(int64_t step) {
    const std::string dir = fresh_test_dir();
    fs::create_directories(run_dir(dir));
    fs::copy(run_dir(reference_dir_), run_dir(dir), fs::copy_options::recursive);
    const std::string ckpts = run_dir(dir) + "/checkpoints";
    for (int64_t s = step + 3; s <= 12; s += 3) fs::remove_all(ckpts + "/step_" + std::to_string(s));
    std::ofstream(ckpts + "/latest") << "step_" << step << "\n";
    fs::copy_file(reference_dir_ + "/corpus.txt", dir + "/corpus.txt");
    return dir;
  }

  static nlohmann::json trainer_state(const std::string& dir, int64_t step) {
    return nlohmann::json::parse(
        read_text(run_dir(dir) + "/checkpoints/step_" + std::to_string(step) + "/trainer_state.json"));
  }

  static inline std::string reference_dir_, reference_output_;
  static inline std::map<int64_t, std::string> reference_;
};

TEST_F(DynamicExpertsCli, EventsChangeTheCheckpointedShapes) {
  EXPECT_NE(reference_output_.find("step 4: \"add 1 @ 4\": layer 1 gets expert 4, a near-copy of its busiest expert"),
            std::string::npos) << reference_output_;
  EXPECT_NE(reference_output_.find("step 6: \"prune 1 2 @ 6\": expert 2 of layer 1 pruned"), std::string::npos);
  EXPECT_NE(reference_output_.find("step 9: \"prune 1 4 @ 9\": expert 4 of layer 1 pruned"), std::string::npos);
  EXPECT_EQ(trainer_state(reference_dir_, 3)["moe_layout"], nlohmann::json::object());
  EXPECT_EQ(trainer_state(reference_dir_, 6)["moe_layout"], nlohmann::json::parse(R"({"1": [1, 1, 1, 1, 1]})"));
  EXPECT_EQ(trainer_state(reference_dir_, 12)["moe_layout"],
            nlohmann::json::parse(R"({"0": [1, 1, 1, 1, 1], "1": [1, 1, 0, 1, 0]})"));
  // The per-layer utilization in the metrics: the pruned experts got no tokens after their step.
  std::ifstream in(run_dir(reference_dir_) + "/metrics/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    if (!row.contains("moe") || row["step"].get<int64_t>() < 10) continue;
    const auto& u = row["moe"]["layers"]["1"]["utilization"];
    ASSERT_EQ(u.size(), 5u) << line;
    EXPECT_EQ(u[2].get<double>(), 0.0) << line;
    EXPECT_EQ(u[4].get<double>(), 0.0) << line;
  }
  // generate / eval rebuild the changed shapes from the checkpoint.
  const CliResult e = run_lumina({"eval", "--checkpoint", run_dir(reference_dir_), "--data",
                                  reference_dir_ + "/corpus.txt", "--max-batches", "2"},
                                 reference_dir_ + "/eval.txt");
  EXPECT_EQ(e.exit_code, 0) << e.output;
}

// Resumed before any event (step 3), at a step with pending events (step 6: its events
// run after the checkpoint) and after them (step 9): every loss bit-identical.
TEST_F(DynamicExpertsCli, ResumedRunsMatchTheUninterruptedRunBitForBit) {
  for (const int64_t step : {3, 6, 9}) {
    SCOPED_TRACE("resumed from step_" + std::to_string(step));
    const std::string dir = stopped_copy(step);
    const std::string config = write_moe_config(dir);
    const CliResult r = run_lumina({"train", "--config", config, "--resume", "latest"}, dir + "/resume.txt");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resumed from " + run_dir(dir) + "/checkpoints/step_" + std::to_string(step)),
              std::string::npos) << r.output;
    EXPECT_EQ(train_losses(dir), reference_);
  }
}

TEST_F(DynamicExpertsCli, ConfigThatDisagreesWithTheCheckpointShapesIsRefused) {
  const std::string dir = stopped_copy(9);
  // Without the events, step_9's shapes (5 experts per layer) cannot come from the config.
  const CliResult r = run_lumina({"train", "--config", write_moe_config(dir, "[]"), "--resume", "latest"},
                                 dir + "/no_events.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("checkpoint " + run_dir(dir) + "/checkpoints/step_9 has experts layer 0: 5 experts; "
                          "layer 1: 5 experts, pruned 2, but this config gives 4 experts in every MoE layer at step 9"),
            std::string::npos) << r.output;
  // More experts in the config than the checkpoint's layers have.
  const CliResult wide = run_lumina({"train", "--config", write_moe_config(dir, kEvents, 6), "--resume", "latest"},
                                    dir + "/wide.txt");
  EXPECT_NE(wide.exit_code, 0);
  EXPECT_NE(wide.output.find("layer 0 has 5 experts, fewer than model.num_experts = 6"), std::string::npos)
      << wide.output;
  // A bad entry is refused at config load, naming the field and the entry.
  const CliResult bad = run_lumina({"train", "--config", write_moe_config(dir, R"(["prune 1 7 @ 2"])")},
                                   dir + "/bad.txt");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("train.expert_events entry \"prune 1 7 @ 2\": prune expert 7 of layer 1: the layer has "
                            "experts 0..3"),
            std::string::npos) << bad.output;
}

}  // namespace
}  // namespace lumina::test
