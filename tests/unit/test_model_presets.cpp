// Every preset (MoE and MoD routers included): the parameters the model
// declares equal the analytic count model-info prints, and for the small
// presets the buffers actually allocated have exactly that many elements (the
// large ones are declared only, never allocated). Plus hand-computed counts
// of a dense and an MoE shape.
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
    const RunConfig cfg = load_run_config("", o);
    const ParamCounts counts = count_params(cfg.model);
    EXPECT_GT(counts.moe_layers, 0);
    Transformer model(cfg.model);
    EXPECT_EQ(model.params().numel(), counts.total);
    int64_t by_spec = 0;
    for (const ParamSpec& s : model.params().specs()) by_spec += s.shape.numel();
    EXPECT_EQ(by_spec, counts.total);
    EXPECT_EQ(counts.total, counts.embedding + counts.lm_head + counts.norms + counts.attention + counts.ffn +
                                counts.routers + counts.experts + counts.mod_routers);
    EXPECT_LT(counts.active, counts.total);
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

// d = 16, 4 layers, every_2nd (layers 1 and 3 MoE), 4 heads, 2 kv heads (head dim 4), ffn 24,
// 6 experts top-2, vocab 50, untied. By hand:
//   embedding = lm head = 50 * 16 = 800; norms = (2 * 4 + 1) * 16 = 144
//   attention per layer = 2 * 16 * 16 + 2 * 16 * 8 = 768, all layers 3,072
//   one SwiGLU = 3 * 16 * 24 = 1,152: dense layers 0, 2 -> ffn 2,304
//   MoE layers 1, 3: routers 2 * 6 * 16 = 192, experts 2 * 6 * 1,152 = 13,824
//   total = 800 + 800 + 144 + 3,072 + 2,304 + 192 + 13,824 = 21,136
//   active = total - 2 layers * (6 - 2) unrouted experts * 1,152 = 21,136 - 9,216 = 11,920
//   active matmul = attention 3,072 + dense 2,304 + routers 192 + 2 * 2 * 1,152 + head 800 = 10,976
//   train flops/token at seq 8 = 6 * 10,976 + 12 * 4 * 16 * 8 = 65,856 + 6,144 = 72,000
TEST(ModelPresets, MoeCountsMatchHandComputedValues) {
  ModelConfig m;
  m.vocab_size = 50;
  m.hidden_size = 16;
  m.num_layers = 4;
  m.num_heads = 4;
  m.num_kv_heads = 2;
  m.intermediate_size = 24;
  m.tie_word_embeddings = false;
  m.use_moe = true;
  m.num_experts = 6;
  m.moe_top_k = 2;
  m.moe_pattern = "every_2nd";
  const ParamCounts p = count_params(m);
  EXPECT_EQ(p.moe_layers, 2);
  EXPECT_EQ(p.attention, 3072);
  EXPECT_EQ(p.ffn, 2304);
  EXPECT_EQ(p.routers, 192);
  EXPECT_EQ(p.experts, 13824);
  EXPECT_EQ(p.total, 21136);
  EXPECT_EQ(p.active, 11920);
  EXPECT_EQ(p.active_matmul, 10976);
  EXPECT_DOUBLE_EQ(train_flops_per_token(m, 8), 72000.0);
  EXPECT_EQ(Transformer(m).params().numel(), 21136);
  m.use_moe = false;  // the dense twin: active = total
  const ParamCounts dense = count_params(m);
  EXPECT_EQ(dense.total, 800 + 800 + 144 + 3072 + 4 * 1152);
  EXPECT_EQ(dense.active, dense.total);
}

}  // namespace
}  // namespace lumina
