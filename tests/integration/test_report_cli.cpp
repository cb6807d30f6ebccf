// `lumina report`: the HTML report of a run directory through the CLI, after a
// real training run and on a hand-made one; a missing directory is one clean error.
#include "train_fixture.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

TEST(ReportCli, ReportsARealTrainingRun) {
  const std::string dir = fresh_test_dir();
  const CliResult train = run_lumina({"train", "--config", write_run_config(dir, 6), "--set", "train.log_interval=2",
                                      "--set", "train.eval_interval=3", "--set", "train.eval_steps=1"},
                                     dir + "/train_log.txt");
  ASSERT_EQ(train.exit_code, 0) << train.output;

  const CliResult r = run_lumina({"report", "--run", run_dir(dir)}, dir + "/log.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string report = run_dir(dir) + "/report.html";
  EXPECT_NE(r.output.find("report: " + report), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(report));
  const std::string html = read_text(report);
  EXPECT_NE(html.find("<h1>run</h1>"), std::string::npos);
  EXPECT_NE(html.find("<th>Steps</th><td>6</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>hidden_size</th><td>96</td>"), std::string::npos);
  for (const char* key : {"loss", "lr", "grad_norm", "tokens_per_second", "val_bpb"})
    EXPECT_NE(html.find(std::string("id=\"chart-") + key + "\""), std::string::npos) << key;
  EXPECT_NE(html.find(">val_loss</text>"), std::string::npos);
  EXPECT_NE(html.find("Best validation loss"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(ReportCli, WritesToTheGivenOutput) {
  const std::string dir = fresh_test_dir();
  fs::create_directories(dir + "/run/metrics");
  write_bytes(dir + "/run/metrics/metrics.jsonl",
              "{\"step\":10,\"loss\":3.25,\"custom_metric\":7}\n{\"step\":20,\"loss\":2.5,\"custom_metric\":9}\n{\"step\":3");
  const CliResult r = run_lumina({"report", "--run", dir + "/run", "--output", dir + "/r.html"}, dir + "/log.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string html = read_text(dir + "/r.html");
  EXPECT_NE(html.find("id=\"chart-custom_metric\""), std::string::npos);
  EXPECT_NE(html.find("<th>Best loss</th><td>2.5000 (step 20)</td>"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/run/report.html"));
}

TEST(ReportCli, MissingRunDirectoryIsOneCleanError) {
  const std::string dir = fresh_test_dir();
  const CliResult r = run_lumina({"report", "--run", dir + "/absent"}, dir + "/log.txt");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output.rfind("error: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "not one line: " << r.output;
  EXPECT_NE(r.output.find(dir + "/absent does not exist"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/absent"));
}

}  // namespace
}  // namespace lumina::test
