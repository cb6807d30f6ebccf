// `lumina config` end to end through the built binary: exit codes, the
// one-line error format, and output that loads back.
#include <gtest/gtest.h>

#include "lumina/config/docs.h"
#include "lumina/config/run_config.h"
#include "support/cli_process.h"
#include "support/test_files.h"

namespace lumina {
namespace {

class ConfigCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::fresh_test_dir(); }
  test::CliResult run(const std::vector<std::string>& args) { return test::run_lumina(args, dir_ + "/output.log"); }
  std::string dir_;
};

TEST_F(ConfigCli, ValidateBadFilePrintsOneLineAndExits2) {
  const std::string path = dir_ + "/bad.toml";
  test::write_bytes(path, "[model]\nhiden_size = 256\n");
  const test::CliResult r = run({"config", "validate", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "error: " + path + ":2: unknown field model.hiden_size (did you mean model.hidden_size?)\n");
}

TEST_F(ConfigCli, ValidateMissingFileAndMissingConfig) {
  const test::CliResult missing = run({"config", "validate", "--config", dir_ + "/absent.toml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.output, "error: cannot open " + dir_ + "/absent.toml: No such file or directory\n");
  const test::CliResult none = run({"config", "validate"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.output, "error: give a config with --config FILE or a preset with --preset NAME\n");
}

TEST_F(ConfigCli, ValidateChecksSupportUnlessAllowed) {
  const test::CliResult dense = run({"config", "validate", "--preset", "debug_dense"});
  EXPECT_EQ(dense.exit_code, 0);
  EXPECT_EQ(dense.output, "ok\n");
  const test::CliResult moe = run({"config", "validate", "--preset", "b7"});
  EXPECT_EQ(moe.exit_code, 0);
  EXPECT_EQ(moe.output, "ok\n");
  const test::CliResult mtp = run({"config", "validate", "--preset", "b7", "--set", "model.mtp_num_heads=2"});
  EXPECT_EQ(mtp.exit_code, 2);
  EXPECT_EQ(mtp.output,
            "error: model.mtp_num_heads = 2: not supported yet (multi-token prediction is not implemented in this "
            "build); remove it or set it to 0\n");
  const test::CliResult allowed =
      run({"config", "validate", "--preset", "b7", "--set", "model.mtp_num_heads=2", "--allow-unsupported"});
  EXPECT_EQ(allowed.exit_code, 0);
  EXPECT_EQ(allowed.output, "ok\n");
  const test::CliResult rule = run({"config", "validate", "--preset", "debug_dense", "--set", "model.num_heads=3"});
  EXPECT_EQ(rule.exit_code, 2);
  EXPECT_EQ(rule.output,
            "error: preset debug_dense: model.hidden_size = 128 is not a multiple of model.num_heads = 3: use e.g. "
            "hidden_size = 126 or 132, or change num_heads\n");
}

TEST_F(ConfigCli, ShowPrintsTomlThatLoadsBack) {
  const test::CliResult r = run({"config", "show", "--preset", "debug_dense", "--set", "model.hidden_size=64",
                                 "--set", "data.train_files=a.txt,b.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string path = dir_ + "/shown.toml";
  test::write_bytes(path, r.output);
  LoadOptions o;
  o.preset = "debug_dense";
  o.overrides = {"model.hidden_size=64", "data.train_files=a.txt,b.txt"};
  const RunConfig expected = load_run_config("", o);
  EXPECT_EQ(load_run_config(path), expected);
  EXPECT_EQ(expected.model.hidden_size, 64);
  EXPECT_NE(r.output.find("\n[model]\nvocab_size = 256\nhidden_size = 64\n"), std::string::npos);
}

TEST_F(ConfigCli, ExplainAndDocs) {
  const test::CliResult one = run({"config", "explain", "model.num_kv_heads"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.output, explain_config("model.num_kv_heads"));
  const test::CliResult typo = run({"config", "explain", "model.num_kv_head"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_EQ(typo.output, "error: unknown field model.num_kv_head (did you mean model.num_kv_heads?)\n");

  const std::string out = dir_ + "/config.md";
  const test::CliResult docs = run({"config", "docs", "--output", out});
  EXPECT_EQ(docs.exit_code, 0);
  EXPECT_EQ(docs.output, "");
  EXPECT_EQ(test::read_text(out), config_reference_markdown());
}

TEST_F(ConfigCli, EverySubcommandHasHelp) {
  for (const char* sub : {"explain", "show", "validate", "docs"}) {
    const test::CliResult r = run({"config", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.output.find(std::string("Usage: lumina config ") + sub), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace lumina
