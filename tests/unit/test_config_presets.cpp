// The preset files in configs/ and configs/bench/: they load and validate, carry
// the README's dimensions, and the ones this build can train pass check_supported.
#include <gtest/gtest.h>

#include <filesystem>

#include "lumina/config/run_config.h"
#include "support/test_files.h"

namespace lumina {
namespace {

RunConfig preset(const std::string& name) {
  LoadOptions o;
  o.preset = name;
  return load_run_config("", o);
}

TEST(ConfigPresets, EveryFileInConfigsLoadsAndValidates) {
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(default_configs_dir())) {
    if (entry.path().extension() != ".toml") continue;
    ++files;
    EXPECT_NO_THROW(load_run_config(entry.path().string())) << entry.path();
  }
  EXPECT_GE(files, 19);  // 10 README presets, debug_dense, debug_hybrid, 7 bench cases
}

struct ReadmeRow {
  const char* name;
  int64_t hidden, layers, heads, kv_heads, experts, top_k;
};

TEST(ConfigPresets, ReadmeDimensions) {
  // The README's table (seeds/002, "Model Configurations").
  const ReadmeRow rows[] = {
      {"debug", 128, 2, 2, 2, 8, 2},           {"debug_200m", 768, 12, 12, 12, 32, 2},
      {"b1", 1024, 24, 16, 4, 8, 2},           {"b7", 4096, 32, 32, 8, 8, 2},
      {"b14", 5120, 40, 40, 10, 8, 2},         {"b30", 8192, 48, 64, 16, 8, 2},
      {"b50", 10240, 56, 80, 20, 8, 2},        {"b100", 12288, 80, 96, 24, 8, 2},
      {"b200", 16384, 100, 128, 32, 8, 2},     {"b300", 20480, 120, 160, 40, 8, 2},
  };
  for (const ReadmeRow& r : rows) {
    SCOPED_TRACE(r.name);
    const RunConfig c = preset(r.name);
    EXPECT_EQ(c.model.hidden_size, r.hidden);
    EXPECT_EQ(c.model.num_layers, r.layers);
    EXPECT_EQ(c.model.num_heads, r.heads);
    EXPECT_EQ(c.model.num_kv_heads, r.kv_heads);
    EXPECT_TRUE(c.model.use_moe);
    EXPECT_EQ(c.model.num_experts, r.experts);
    EXPECT_EQ(c.model.moe_top_k, r.top_k);
    // intermediate_size spelled out, equal to the 8/3 * hidden rule rounded up to 256.
    ModelConfig rule;
    rule.hidden_size = r.hidden;
    EXPECT_EQ(c.model.intermediate_size, rule.ffn_size());
    EXPECT_EQ(c.model.intermediate_size % 256, 0);
  }
  EXPECT_TRUE(preset("debug_200m").model.use_mod);
  EXPECT_EQ(preset("b7").model.intermediate_size, 11008);  // LLaMA-7B's width
}

TEST(ConfigPresets, MoePresetsAreSupported) {
  for (const char* name : {"debug", "b1", "b7", "b300", "bench/cpu-debug-moe"}) {
    SCOPED_TRACE(name);
    const RunConfig c = preset(name);
    EXPECT_TRUE(c.model.use_moe);
    EXPECT_NO_THROW(check_supported(c));
  }
}

TEST(ConfigPresets, HybridMoeModPresetsAreSupported) {
  for (const char* name : {"debug_hybrid", "debug_200m"}) {
    SCOPED_TRACE(name);
    const RunConfig c = preset(name);
    EXPECT_TRUE(c.model.use_moe);
    EXPECT_TRUE(c.model.use_mod);
    EXPECT_NO_THROW(check_supported(c));
  }
  const RunConfig h = preset("debug_hybrid");
  EXPECT_EQ(h.model.hidden_size, 128);  // the debug model
  EXPECT_EQ(h.model.mod_start_layer, 1);
  EXPECT_DOUBLE_EQ(h.model.mod_capacity_factor, 0.5);
}

TEST(ConfigPresets, DebugDenseIsTrainable) {
  const RunConfig c = preset("debug_dense");
  EXPECT_NO_THROW(check_supported(c));
  EXPECT_FALSE(c.model.use_moe);
  EXPECT_EQ(c.model.hidden_size, 128);
  EXPECT_EQ(c.model.num_layers, 2);
  EXPECT_EQ(c.model.vocab_size, 256);
  EXPECT_EQ(c.data.tokenizer, "byte");
  EXPECT_EQ(c.train.seq_len, 256);
  EXPECT_EQ(c.train.batch_size, 16);
}

TEST(ConfigPresets, CpuSmallMatchesTheTorchReference) {
  // torch_ref_bench.py "cpu-small": d256 L4 h4 kv2 f768 vocab 256 B16 T256, untied head,
  // RoPE base 500000, fp32, torch.optim.AdamW(lr=3e-4) defaults, clip 1.0.
  const RunConfig c = preset("bench/cpu-small");
  EXPECT_NO_THROW(check_supported(c));
  EXPECT_EQ(c.model.hidden_size, 256);
  EXPECT_EQ(c.model.num_layers, 4);
  EXPECT_EQ(c.model.num_heads, 4);
  EXPECT_EQ(c.model.num_kv_heads, 2);
  EXPECT_EQ(c.model.intermediate_size, 768);
  EXPECT_EQ(c.model.vocab_size, 256);
  EXPECT_FALSE(c.model.tie_word_embeddings);
  EXPECT_EQ(c.model.rope_theta, 500000.0);
  EXPECT_EQ(c.model.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.train.batch_size, 16);
  EXPECT_EQ(c.train.seq_len, 256);
  EXPECT_EQ(c.train.device, "cpu");
  EXPECT_EQ(c.train.precision, "fp32");
  EXPECT_EQ(c.optim.learning_rate, 3e-4);
  EXPECT_EQ(c.optim.beta2, 0.999);
  EXPECT_EQ(c.optim.weight_decay, 0.01);
  EXPECT_EQ(c.optim.gradient_clip_val, 1.0);
  EXPECT_EQ(c.optim.lr_schedule, "constant");
  EXPECT_EQ(c.optim.warmup_fraction, 0.0);
}

TEST(ConfigPresets, GpuBenchShapes) {
  const RunConfig d124 = preset("bench/dense-124m");
  EXPECT_EQ(d124.model.hidden_size, 768);
  EXPECT_EQ(d124.model.num_kv_heads, 4);
  EXPECT_EQ(d124.model.intermediate_size, 2048);
  EXPECT_EQ(d124.model.vocab_size, 32768);
  EXPECT_EQ(d124.train.batch_size * d124.train.seq_len, 32 * 1024);
  EXPECT_FALSE(d124.model.tie_word_embeddings);
  EXPECT_EQ(d124.model.rope_theta, 500000.0);

  const RunConfig d1b = preset("bench/dense-1b");
  EXPECT_EQ(d1b.model.hidden_size, 2048);
  EXPECT_EQ(d1b.model.num_layers, 16);
  EXPECT_EQ(d1b.model.intermediate_size, 5632);
  EXPECT_EQ(d1b.train.batch_size, 8);
  EXPECT_EQ(d1b.train.seq_len, 2048);
  EXPECT_EQ(d1b.model.rope_theta, 500000.0);

  const RunConfig moe = preset("bench/moe-8x-124m");
  EXPECT_TRUE(moe.model.use_moe);
  EXPECT_EQ(moe.model.num_experts, 8);
  EXPECT_EQ(moe.model.moe_top_k, 2);
  EXPECT_EQ(moe.model.hidden_size, 768);
  EXPECT_EQ(moe.train.batch_size, 32);
}

}  // namespace
}  // namespace lumina
