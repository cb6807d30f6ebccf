// lumina model-info through the CLI, checked against the parameter counts the
// PyTorch reference script (shared/reference/torch_ref_bench.py) reports for
// the same shapes: dense-124m 125,848,320 total / 100,663,296 active, dense-1b
// 855,705,600 / 788,529,152.
#include "support/cli_process.h"
#include "support/test_files.h"

namespace lumina::test {
namespace {

std::string model_info(const std::string& config, const std::string& dir) {
  const CliResult r = run_lumina({"model-info", "--config", std::string(LUMINA_SOURCE_DIR) + "/" + config}, dir + "/out.txt");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

TEST(ModelInfoCli, CountsMatchThePyTorchReference) {
  const std::string dir = fresh_test_dir();
  const std::string small = model_info("configs/bench/dense-124m.toml", dir);
  EXPECT_NE(small.find("total 125,848,320"), std::string::npos) << small;
  EXPECT_NE(small.find("incl. LM head) 100,663,296"), std::string::npos) << small;
  const std::string big = model_info("configs/bench/dense-1b.toml", dir);
  EXPECT_NE(big.find("total 855,705,600"), std::string::npos) << big;
  EXPECT_NE(big.find("incl. LM head) 788,529,152"), std::string::npos) << big;
  EXPECT_NE(big.find("activations"), std::string::npos) << big;
}

TEST(ModelInfoCli, MoePresetCountsItsDensePartWithANote) {
  const std::string dir = fresh_test_dir();
  const std::string out = model_info("configs/b1.toml", dir);
  EXPECT_NE(out.find("MoE (8 experts, top-2) not implemented yet"), std::string::npos) << out;
  EXPECT_NE(out.find("parameters   total"), std::string::npos) << out;
}

}  // namespace
}  // namespace lumina::test
