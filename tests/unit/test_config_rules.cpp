// Cross-field validation and the support check, with their exact messages.
#include <gtest/gtest.h>

#include "lumina/config/run_config.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;

std::string validate_error(const RunConfig& c) {
  return error_of([&] { validate(c); });
}

TEST(ConfigValidate, DefaultsAreValidAndSupported) {
  EXPECT_NO_THROW(validate(RunConfig{}));
  EXPECT_NO_THROW(check_supported(RunConfig{}));
}

TEST(ConfigValidate, AttentionShapes) {
  RunConfig c;
  c.model.hidden_size = 130;
  c.model.num_heads = 4;
  EXPECT_EQ(validate_error(c),
            "model.hidden_size = 130 is not a multiple of model.num_heads = 4: use e.g. hidden_size = 128 or 136, "
            "or change num_heads");

  c.model.hidden_size = 192;
  c.model.num_heads = 12;
  c.model.num_kv_heads = 5;
  EXPECT_EQ(validate_error(c),
            "model.num_heads = 12 is not a multiple of model.num_kv_heads = 5: each key/value head serves "
            "num_heads / num_kv_heads query heads; use num_kv_heads in 1, 2, 3, 4, 6, 12");
  c.model.num_kv_heads = 4;
  EXPECT_NO_THROW(validate(c));  // GQA 12:4, head_dim 16

  c.model.hidden_size = 36;  // head_dim 3
  EXPECT_EQ(validate_error(c),
            "head_dim = model.hidden_size / model.num_heads = 36 / 12 = 3 is odd: RoPE rotates pairs of "
            "dimensions, so head_dim must be even");
}

TEST(ConfigValidate, MixtureOfExperts) {
  RunConfig c;
  c.model.num_experts = 4;
  c.model.moe_top_k = 5;
  EXPECT_EQ(validate_error(c),
            "model.moe_top_k = 5 exceeds model.num_experts = 4: a token cannot use more experts than exist");
  c.model.moe_top_k = 4;
  EXPECT_NO_THROW(validate(c));

  c.model.dense_start_layers = 1;
  EXPECT_EQ(validate_error(c),
            "model.dense_start_layers / dense_end_layers are only used with model.moe_pattern = \"sandwich\" (it "
            "is \"all\"): remove them or set moe_pattern = \"sandwich\"");
  c.model.moe_pattern = "sandwich";
  c.model.dense_end_layers = 1;  // 2 layers, both dense
  EXPECT_EQ(validate_error(c),
            "model.dense_start_layers + model.dense_end_layers = 2 leaves no MoE layer among model.num_layers = 2");
  c.model.num_layers = 3;
  EXPECT_NO_THROW(validate(c));

  RunConfig every;
  every.model.use_moe = true;
  every.model.num_layers = 3;
  every.model.moe_pattern = "every_4th";  // would be layer 3 only
  EXPECT_EQ(validate_error(every),
            "model.moe_pattern = \"every_4th\" makes no layer MoE among model.num_layers = 3: use moe_pattern = "
            "\"all\", a denser pattern, or more layers");
  every.model.num_layers = 4;
  EXPECT_NO_THROW(validate(every));
}

TEST(ConfigValidate, MixtureOfDepthsLayers) {
  RunConfig c;
  c.model.num_layers = 4;
  c.model.mod_start_layer = 4;
  EXPECT_EQ(validate_error(c), "model.mod_start_layer = 4 is not a layer: model.num_layers = 4 (layers 0..3)");
  c.model.mod_start_layer = 2;
  c.model.mod_end_layer = 1;
  EXPECT_EQ(validate_error(c),
            "model.mod_end_layer = 1 must be -1 (the last layer) or in [mod_start_layer, num_layers) = [2, 4)");
  c.model.mod_end_layer = 3;
  EXPECT_NO_THROW(validate(c));
}

TEST(ConfigValidate, TrainingRules) {
  RunConfig c;
  c.train.seq_len = 512;
  EXPECT_EQ(validate_error(c),
            "train.seq_len = 512 exceeds model.max_position_embeddings = 256: lower seq_len or raise "
            "max_position_embeddings");
  c.train.seq_len = 256;
  c.train.device = "cpu";
  c.train.precision = "bf16";
  EXPECT_EQ(validate_error(c),
            "train.precision = \"bf16\" with train.device = \"cpu\": the CPU backend computes in fp32; set "
            "precision = \"fp32\" or \"auto\"");
  c.train.precision = "fp32";
  c.train.min_auto_epochs = 5;
  c.train.max_auto_epochs = 4;
  EXPECT_EQ(validate_error(c), "train.min_auto_epochs = 5 is above train.max_auto_epochs = 4");
  c.train.max_auto_epochs = 5;
  c.train.early_stopping_patience = 3;
  c.train.eval_interval = 0;
  EXPECT_EQ(validate_error(c), "train.early_stopping_patience = 3 needs evaluations: set train.eval_interval > 0");
  c.train.eval_interval = 100;
  c.data.finetuning_files = {"chat.jsonl"};
  EXPECT_EQ(validate_error(c),
            "data.finetuning_files or finetuning_validation_files are set but train.training_mode = \"base_only\" "
            "reads only data.train_files: remove them or pick a finetuning or hybrid mode");
  c.train.training_mode = "hybrid_interleaved";
  EXPECT_NO_THROW(validate(c));
}

TEST(ConfigValidate, DataAndDistRules) {
  RunConfig c;
  c.data.tokenizer_path = "tok.model";
  EXPECT_EQ(validate_error(c),
            "data.tokenizer_path = \"tok.model\" but data.tokenizer = \"byte\" reads no file: remove the path or "
            "set tokenizer = \"sentencepiece\" or \"hf_json\"");
  c.data.tokenizer = "sentencepiece";
  EXPECT_NO_THROW(validate(c));
  c.data.tokenizer_path.clear();
  EXPECT_EQ(validate_error(c), "data.tokenizer = \"sentencepiece\" needs data.tokenizer_path (its model file)");

  RunConfig v;
  v.model.vocab_size = 100;
  EXPECT_EQ(validate_error(v),
            "model.vocab_size = 100 is below 256, the byte tokenizer's vocabulary: set vocab_size >= 256");

  RunConfig d;
  d.dist.cpu_offload = true;
  EXPECT_EQ(validate_error(d),
            "dist.cpu_offload = true needs dist.zero_stage >= 1 (offload moves the sharded optimizer state)");
  d.dist.zero_stage = 2;
  d.dist.expert_parallel_size = 3;
  d.model.use_moe = true;
  EXPECT_EQ(validate_error(d),
            "dist.expert_parallel_size = 3 does not divide model.num_experts = 8: use one of 1, 2, 4, 8");
  d.dist.expert_parallel_size = 4;
  EXPECT_NO_THROW(validate(d));
}

TEST(ConfigSupported, RefusesUnimplementedFeaturesAwayFromDefault) {
  RunConfig c;
  c.model.mtp_num_heads = 2;
  EXPECT_EQ(error_of([&] { check_supported(c); }),
            "model.mtp_num_heads = 2: not supported yet (multi-token prediction is not implemented in this build); "
            "remove it or set it to 0");
  RunConfig p;
  p.train.precision = "fp8_e4m3";
  EXPECT_EQ(error_of([&] { check_supported(p); }),
            "train.precision = \"fp8_e4m3\": not supported yet (fp8 GEMMs is not implemented in this build); remove "
            "it or set it to \"auto\"");
  for (const char* ok : {"mixed_bf16", "mixed_fp16", "bf16", "fp16"}) {
    p.train.precision = ok;
    EXPECT_NO_THROW(check_supported(p)) << ok;
  }
  RunConfig several;
  several.model.mtp_num_heads = 2;
  several.optim.optimizer = "muon";
  several.dist.zero_stage = 1;
  EXPECT_EQ(error_of([&] { check_supported(several); }),
            "model.mtp_num_heads = 2: not supported yet (multi-token prediction is not implemented in this build); "
            "remove it or set it to 0 (and 2 more unsupported: optim.optimizer, dist.zero_stage)");
}

TEST(ConfigSupported, AcceptsImplementedValues) {
  RunConfig c;
  c.model.hidden_size = 256;
  c.model.tie_word_embeddings = false;
  c.optim.lr_schedule = "wsd";
  c.train.precision = "fp32";
  c.train.device = "cpu";
  c.data.format = "jsonl";
  EXPECT_NO_THROW(check_supported(c));
  c.model.use_moe = true;  // MoE, with every option
  c.model.num_experts = 4;
  c.model.moe_top_k = 1;
  c.model.dropless = true;
  c.model.router_z_loss_weight = 0.001;
  c.model.moe_pattern = "every_2nd";
  EXPECT_NO_THROW(check_supported(c));
  // A field of an unimplemented feature at its default is no request for it.
  c.model.mtp_loss_weight = ModelConfig{}.mtp_loss_weight;
  EXPECT_NO_THROW(check_supported(c));
}

}  // namespace
}  // namespace lumina
