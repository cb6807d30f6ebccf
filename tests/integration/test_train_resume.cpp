// Exact resume through the CLI: SIGTERM, kill -9, a kill inside a checkpoint
// write, and corrupted checkpoints, each compared bit for bit with an
// uninterrupted run of the same config. The model mixes a dense and an MoE
// layer, so the routing statistics of every step (the "moe" object of the
// metrics rows) must come out identical too.
#include <signal.h>

#include "lumina/train/checkpoint.h"
#include "train_fixture.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

class TrainResume : public ::testing::Test {
 protected:
  // The uninterrupted reference run, made once per test process (ctest runs
  // tests in parallel processes: the pid keeps their directories apart).
  static void SetUpTestSuite() {
    reference_dir_ = std::string(LUMINA_TEST_TMP) + "/TrainResume.reference." + std::to_string(getpid());
    fs::remove_all(reference_dir_);
    fs::create_directories(reference_dir_);
    const std::string config = write_run_config(reference_dir_, 30, kMoeModelLines);
    const CliResult r = run_lumina({"train", "--config", config}, reference_dir_ + "/log.txt");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    reference_ = train_losses(reference_dir_);
    reference_rows_ = train_rows_without_timings(reference_dir_);
    ASSERT_EQ(reference_.size(), 30u);
    ASSERT_NE(reference_rows_.at(30).find("\"moe\""), std::string::npos);
  }

  // Runs `--resume latest` to the end and checks every step's loss against the reference.
  static void resume_and_compare(const std::string& dir, const std::string& config) {
    const CliResult r = run_lumina({"train", "--config", config, "--resume", "latest"}, dir + "/resume.txt");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(train_losses(dir), reference_);
    EXPECT_EQ(train_rows_without_timings(dir), reference_rows_);
  }

  static void TearDownTestSuite() { fs::remove_all(reference_dir_); }

  static inline std::string reference_dir_;
  static inline std::map<int64_t, std::string> reference_;
  static inline std::map<int64_t, std::string> reference_rows_;  // whole rows less timings
};

TEST_F(TrainResume, SigtermSavesThenResumesBitIdentically) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 30, kMoeModelLines);
  const pid_t pid = spawn_lumina({"train", "--config", config}, dir + "/first.txt");
  ASSERT_TRUE(wait_until([&] { return metric_rows(dir) >= 5; }));
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_exit_code(pid), 0) << read_text(dir + "/first.txt");
  const int64_t stopped = metric_rows(dir);
  ASSERT_LT(stopped, 30) << "the run finished before the signal; make the test model slower";
  // The signal saved the step it stopped at, and latest points there.
  EXPECT_EQ(read_text(run_dir(dir) + "/checkpoints/latest"), "step_" + std::to_string(stopped) + "\n");
  EXPECT_NE(read_text(dir + "/first.txt").find("stopped at step " + std::to_string(stopped)), std::string::npos);
  resume_and_compare(dir, config);
}

TEST_F(TrainResume, Kill9ResumesFromLastPeriodicCheckpoint) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 30, kMoeModelLines);
  const pid_t pid = spawn_lumina({"train", "--config", config}, dir + "/first.txt");
  ASSERT_TRUE(wait_until([&] { return metric_rows(dir) >= 14; }));
  kill(pid, SIGKILL);
  wait_exit_code(pid);
  ASSERT_LT(metric_rows(dir), 30) << "the run finished before the kill";
  EXPECT_EQ(read_text(run_dir(dir) + "/checkpoints/latest"), "step_10\n");
  resume_and_compare(dir, config);
}

TEST_F(TrainResume, KillInsideCheckpointWriteLeavesLatestComplete) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 30, kMoeModelLines);
  const std::string ckpts = run_dir(dir) + "/checkpoints";
  // Every save pauses 1.5 s halfway; kill during the second one (step 20).
  const pid_t pid = spawn_lumina({"train", "--config", config}, dir + "/first.txt",
                                 {"LUMINA_TEST_CHECKPOINT_PAUSE_MS=1500"});
  ASSERT_TRUE(wait_until([&] { return fs::exists(ckpts + "/step_20.partial/model.safetensors"); }));
  kill(pid, SIGKILL);
  wait_exit_code(pid);
  EXPECT_FALSE(fs::exists(ckpts + "/step_20"));
  EXPECT_EQ(read_text(ckpts + "/latest"), "step_10\n");
  EXPECT_NO_THROW(verify_checkpoint(ckpts + "/step_10"));
  resume_and_compare(dir, config);
  EXPECT_FALSE(fs::exists(ckpts + "/step_20.partial"));  // the next save cleaned it up
}

// Copies the reference run and damages its newest checkpoint with `damage`.
template <class F>
void check_fallback(const std::string& reference_dir, F&& damage, const std::string& expected_reason) {
  const std::string dir = fresh_test_dir(), config = write_run_config(dir, 30, kMoeModelLines);
  fs::create_directories(run_dir(dir));
  fs::copy(run_dir(reference_dir), run_dir(dir), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string ckpts = run_dir(dir) + "/checkpoints";
  ASSERT_EQ(read_text(ckpts + "/latest"), "step_30\n");
  damage(ckpts + "/step_30");
  // Resume to step 35: the bad step_30 is reported by name and step_20 is used.
  const CliResult r = run_lumina({"train", "--config", config, "--resume", "latest", "--set", "train.max_steps=35"},
                                 dir + "/resume.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step_30"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(expected_reason), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + ckpts + "/step_20"), std::string::npos) << r.output;
  EXPECT_EQ(metric_rows(dir), 35);
}

TEST_F(TrainResume, FlippedByteFallsBackToPreviousCheckpoint) {
  check_fallback(reference_dir_, [](const std::string& ckpt) {
    const std::string file = ckpt + "/model.safetensors";
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
  }, "checksum");
}

TEST_F(TrainResume, TruncatedFileFallsBackToPreviousCheckpoint) {
  check_fallback(reference_dir_, [](const std::string& ckpt) {
    const std::string file = ckpt + "/optimizer.safetensors";
    fs::resize_file(file, fs::file_size(file) - 1);
  }, "truncated");
}

}  // namespace
}  // namespace lumina::test
