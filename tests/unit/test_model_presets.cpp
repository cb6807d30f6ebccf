// Every preset's dense part: the parameters the model declares equal the
// analytic count model-info prints, and for the small presets the buffers
// actually allocated have exactly that many elements (the large ones are
// declared only, never allocated).
#include <gtest/gtest.h>

#include <filesystem>

#include "lumina/config/run_config.h"
#include "lumina/model/accounting.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"

namespace lumina {
namespace {

constexpr int64_t kAllocateBelowParams = 50'000'000;

TEST(ModelPresets, DeclaredCountsMatchAccountingForEveryPreset) {
  const std::vector<std::string> presets{"debug", "debug_200m", "b1", "b7", "b14", "b30", "b50", "b100", "b200", "b300"};
  for (const std::string& name : presets) {
    SCOPED_TRACE(name);
    LoadOptions o;
    o.preset = name;
    RunConfig cfg = load_run_config("", o);
    cfg.model.use_moe = false;  // the dense part
    cfg.model.use_mod = false;
    const ParamCounts counts = count_params(cfg.model);
    Transformer model(cfg.model);
    EXPECT_EQ(model.params().numel(), counts.total);
    int64_t by_spec = 0;
    for (const ParamSpec& s : model.params().specs()) by_spec += s.shape.numel();
    EXPECT_EQ(by_spec, counts.total);
    EXPECT_EQ(counts.total, counts.embedding + counts.lm_head + counts.norms + counts.attention + counts.ffn);
    if (counts.total < kAllocateBelowParams) {
      auto be = make_cpu_backend();
      model.allocate(*be, DType::f32, DType::f32);
      AdamW opt(model.params(), AdamWConfig{});
      EXPECT_EQ(model.params().params_flat().numel(), counts.total);
      EXPECT_EQ(model.params().grads_flat().numel(), counts.total);
      EXPECT_EQ(opt.m_flat().numel() + opt.v_flat().numel(), 2 * counts.total);
    }
  }
}

TEST(ModelPresets, B7DenseCountsMatchTheLlamaFormula) {
  LoadOptions o;
  o.preset = "b7";
  RunConfig cfg = load_run_config("", o);
  cfg.model.use_moe = false;
  const ModelConfig& m = cfg.model;
  // Llama-2-7B-like shape with GQA 32:8: per layer 2·d² + 2·d·(d/4) attention + 3·d·ffn, plus 2 norms.
  const int64_t d = m.hidden_size, f = m.ffn_size(), L = m.num_layers, V = m.vocab_size;
  const int64_t expected = L * (2 * d * d + 2 * d * (d / 4) + 3 * d * f + 2 * d) + d + 2 * V * d;
  EXPECT_EQ(count_params(m).total, expected);
}

}  // namespace
}  // namespace lumina
