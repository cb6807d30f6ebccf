// lumina model-info through the CLI, checked against the parameter counts the
// PyTorch reference script (shared/reference/torch_ref_bench.py) reports for
// the same shapes: dense-124m 125,848,320 total / 100,663,296 active, dense-1b
// 855,705,600 / 788,529,152, cpu-debug-moe (8 experts, top-2) 2,558,592 / 755,712.
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
  const std::string moe = model_info("configs/bench/cpu-debug-moe.toml", dir);
  EXPECT_NE(moe.find("total 2,558,592"), std::string::npos) << moe;
  EXPECT_NE(moe.find("incl. LM head) 755,712"), std::string::npos) << moe;
}

// configs/debug.toml: V 256, C 128, 2 layers, 2 heads (head dim 64, no GQA), F 512, 8 experts top-2, tied:
//   embedding 32,768; norms 5 * 128 = 640; attention 2 * 4 * 128^2 = 131,072
//   per MoE layer: router 8 * 128 = 1,024, one expert 3 * 128 * 512 = 196,608
//   total = 32,768 + 640 + 131,072 + 2 * (1,024 + 8 * 196,608) = 3,312,256
//   active = 32,768 + 640 + 131,072 + 2 * (1,024 + 2 * 196,608) = 952,960
//   active matmul = 131,072 + 2 * (1,024 + 2 * 196,608) + 32,768 (head) = 952,320
TEST(ModelInfoCli, MoePresetPrintsTotalAndActiveCounts) {
  const std::string dir = fresh_test_dir();
  const std::string out = model_info("configs/debug.toml", dir);
  EXPECT_NE(out.find("parameters   total 3,312,256 (3.31M) | active 952,960"), std::string::npos) << out;
  EXPECT_NE(out.find("experts 3,145,728 | routers 2,048"), std::string::npos) << out;
  EXPECT_NE(out.find("incl. LM head) 952,320"), std::string::npos) << out;
  EXPECT_NE(out.find("2 of 2 layers (moe_pattern all): 8 experts, top-2"), std::string::npos) << out;
  EXPECT_EQ(out.find("not implemented"), std::string::npos) << out;
}

}  // namespace
}  // namespace lumina::test
