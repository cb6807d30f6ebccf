// Bad input through the CLI: one clear "error:" line naming what is wrong,
// exit status 2, and no run directory written.
#include "train_fixture.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  CliResult result;
  bool wrote_run_dir;
};

// Runs `train` on the standard test config with `overrides` (--set) and extra args.
Outcome train_with(const std::string& dir, const std::vector<std::string>& overrides,
                   std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"train", "--config", write_run_config(dir)};
  for (const std::string& o : overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  Outcome o{run_lumina(args, dir + "/log.txt"), fs::exists(run_dir(dir))};
  return o;
}

void expect_clean_error(const Outcome& o, const std::vector<std::string>& fragments) {
  EXPECT_EQ(o.result.exit_code, 2) << o.result.output;
  EXPECT_EQ(o.result.output.rfind("error: ", 0), 0u) << o.result.output;
  EXPECT_EQ(std::count(o.result.output.begin(), o.result.output.end(), '\n'), 1) << "not one line: " << o.result.output;
  for (const std::string& f : fragments) EXPECT_NE(o.result.output.find(f), std::string::npos) << f << " | " << o.result.output;
  EXPECT_FALSE(o.wrote_run_dir) << "a failed run must write nothing";
}

TEST(CliErrors, MissingDataFile) {
  const std::string dir = fresh_test_dir();
  expect_clean_error(train_with(dir, {"data.train_files=[\"" + dir + "/nope.txt\"]"}), {dir + "/nope.txt", "No such file"});
}

TEST(CliErrors, EmptyDataFile) {
  const std::string dir = fresh_test_dir();
  write_bytes(dir + "/empty.txt", "");
  expect_clean_error(train_with(dir, {"data.train_files=[\"" + dir + "/empty.txt\"]"}), {dir + "/empty.txt", "empty"});
}

TEST(CliErrors, MalformedJsonlLineNumber) {
  const std::string dir = fresh_test_dir();
  write_bytes(dir + "/bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"also fine\"}\n{\"text\": broken}\n");
  expect_clean_error(train_with(dir, {"data.train_files=[\"" + dir + "/bad.jsonl\"]"}), {"bad.jsonl:3:", "not valid JSON"});
}

TEST(CliErrors, UnknownFieldSuggestsClosest) {
  const std::string dir = fresh_test_dir();
  expect_clean_error(train_with(dir, {"model.hiden_size=64"}), {"model.hiden_size", "did you mean model.hidden_size"});
}

TEST(CliErrors, UnknownFieldInFileNamesFileAndLine) {
  const std::string dir = fresh_test_dir();
  write_bytes(dir + "/typo.toml", "[model]\nhidden_size = 64\nnum_layer = 2\n");
  const CliResult r = run_lumina({"train", "--config", dir + "/typo.toml"}, dir + "/log.txt");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("typo.toml:3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean model.num_layers"), std::string::npos) << r.output;
}

TEST(CliErrors, WrongType) {
  const std::string dir = fresh_test_dir();
  expect_clean_error(train_with(dir, {"train.batch_size=lots"}), {"train.batch_size", "lots"});
}

TEST(CliErrors, OutOfRangeValue) {
  const std::string dir = fresh_test_dir();
  expect_clean_error(train_with(dir, {"optim.learning_rate=-1"}), {"optim.learning_rate", "-1"});
}

TEST(CliErrors, CorruptCheckpointGivenExplicitly) {
  const std::string dir = fresh_test_dir();
  fs::create_directories(dir + "/ckpt");
  write_bytes(dir + "/ckpt/trainer_state.json", "{\"step\": 3, \"files\": {}}");
  write_bytes(dir + "/ckpt/model.safetensors", "garbage");
  expect_clean_error(train_with(dir, {}, {"--resume", dir + "/ckpt"}), {dir + "/ckpt"});
  const CliResult g = run_lumina({"generate", "--checkpoint", dir + "/ckpt", "--prompt", "x"}, dir + "/gen.txt");
  EXPECT_EQ(g.exit_code, 2) << g.output;
  EXPECT_NE(g.output.find(dir + "/ckpt"), std::string::npos) << g.output;
}

}  // namespace
}  // namespace lumina::test
