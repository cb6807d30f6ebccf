// Cross-field validation: rules that involve more than one field. Each
// message names the fields, their values and a way out.
#include <fmt/format.h>

#include <vector>

#include "lumina/config/run_config.h"
#include "lumina/core/error.h"
#include "lumina/model/layer_kinds.h"
#include "lumina/train/expert_events.h"

namespace lumina {

namespace {

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(d);
  return out;
}

bool cpu_precision(const std::string& precision) { return precision == "auto" || precision == "fp32"; }

void validate_optim(const OptimConfig& optim, const ModelConfig& model) {
  LUMINA_CHECK(optim.min_scale <= optim.init_scale,
               "optim.min_scale = {} is above optim.init_scale = {}: the loss scale starts at init_scale and "
               "never drops below min_scale",
               optim.min_scale, optim.init_scale);
  if (optim.optimizer == "galore")
    LUMINA_CHECK(optim.galore_rank < model.hidden_size,
                 "optim.galore_rank = {} is not below model.hidden_size = {}: a projection of that rank "
                 "saves nothing; use a rank below {}",
                 optim.galore_rank, model.hidden_size, model.hidden_size);
}

void validate_train(const TrainConfig& train, const ModelConfig& model, const DataConfig& data) {
  LUMINA_CHECK(train.seq_len <= model.max_position_embeddings,
               "train.seq_len = {} exceeds model.max_position_embeddings = {}: lower seq_len or raise "
               "max_position_embeddings",
               train.seq_len, model.max_position_embeddings);
  if (train.device == "cpu") {
    LUMINA_CHECK(cpu_precision(train.precision),
                 "train.precision = \"{}\" with train.device = \"cpu\": the CPU backend computes in fp32; "
                 "set precision = \"fp32\" or \"auto\"",
                 train.precision);
    LUMINA_CHECK(cpu_precision(train.inference_precision),
                 "train.inference_precision = \"{}\" with train.device = \"cpu\": the CPU backend computes in "
                 "fp32; set inference_precision = \"fp32\" or \"auto\"",
                 train.inference_precision);
  }
  LUMINA_CHECK(train.min_auto_epochs <= train.max_auto_epochs,
               "train.min_auto_epochs = {} is above train.max_auto_epochs = {}", train.min_auto_epochs,
               train.max_auto_epochs);
  LUMINA_CHECK(train.expert_prune_threshold < train.expert_add_threshold,
               "train.expert_prune_threshold = {} must be below train.expert_add_threshold = {}",
               train.expert_prune_threshold, train.expert_add_threshold);
  validate_expert_events(train.expert_events, model);
  LUMINA_CHECK(train.early_stopping_patience == 0 || train.eval_interval > 0,
               "train.early_stopping_patience = {} needs evaluations: set train.eval_interval > 0",
               train.early_stopping_patience);
  if (train.training_mode == "base_only")
    LUMINA_CHECK(data.finetuning_files.empty() && data.finetuning_validation_files.empty(),
                 "data.finetuning_files or finetuning_validation_files are set but train.training_mode = "
                 "\"base_only\" reads only data.train_files: remove them or pick a finetuning or hybrid mode");
  if (train.training_mode == "finetuning_only")
    LUMINA_CHECK(data.train_files.empty() && data.validation_files.empty(),
                 "data.train_files or validation_files are set but train.training_mode = \"finetuning_only\" "
                 "reads only data.finetuning_files: remove them or pick base_only or a hybrid mode");
}

void validate_data(const DataConfig& data, const ModelConfig& model) {
  if (data.tokenizer == "byte") {
    LUMINA_CHECK(data.tokenizer_path.empty(),
                 "data.tokenizer_path = \"{}\" but data.tokenizer = \"byte\" reads no file: remove the path "
                 "or set tokenizer = \"sentencepiece\" or \"hf_json\"",
                 data.tokenizer_path);
    LUMINA_CHECK(model.vocab_size >= 256,
                 "model.vocab_size = {} is below 256, the byte tokenizer's vocabulary: set vocab_size >= 256",
                 model.vocab_size);
  } else {
    LUMINA_CHECK(!data.tokenizer_path.empty(), "data.tokenizer = \"{}\" needs data.tokenizer_path (its model file)",
                 data.tokenizer);
  }
  LUMINA_CHECK(data.validation_split == 0.0 || data.validation_files.empty(),
               "data.validation_split = {} and data.validation_files are both set: keep one source of "
               "validation data",
               data.validation_split);
}

void validate_dist(const DistConfig& dist, const ModelConfig& model) {
  LUMINA_CHECK(!dist.cpu_offload || dist.zero_stage >= 1,
               "dist.cpu_offload = true needs dist.zero_stage >= 1 (offload moves the sharded optimizer state)");
  if (dist.expert_parallel_size > 1) {
    LUMINA_CHECK(model.use_moe, "dist.expert_parallel_size = {} needs model.use_moe = true",
                 dist.expert_parallel_size);
    LUMINA_CHECK(model.num_experts % dist.expert_parallel_size == 0,
                 "dist.expert_parallel_size = {} does not divide model.num_experts = {}: use one of {}",
                 dist.expert_parallel_size, model.num_experts, fmt::join(divisors(model.num_experts), ", "));
  }
}

}  // namespace

void validate_model_config(const ModelConfig& m) {
  if (m.hidden_size % m.num_heads != 0) {
    // Suggest multiples of 2 * num_heads, so head_dim also comes out even.
    const int64_t step = 2 * m.num_heads;
    const int64_t below = m.hidden_size / step * step;
    fail("model.hidden_size = {} is not a multiple of model.num_heads = {}: use e.g. hidden_size = {} or {}, "
         "or change num_heads",
         m.hidden_size, m.num_heads, below > 0 ? below : step, below > 0 ? below + step : 2 * step);
  }
  if (m.num_heads % m.num_kv_heads != 0)
    fail("model.num_heads = {} is not a multiple of model.num_kv_heads = {}: each key/value head serves "
         "num_heads / num_kv_heads query heads; use num_kv_heads in {}",
         m.num_heads, m.num_kv_heads, fmt::join(divisors(m.num_heads), ", "));
  LUMINA_CHECK(m.head_dim() % 2 == 0,
               "head_dim = model.hidden_size / model.num_heads = {} / {} = {} is odd: RoPE rotates pairs of "
               "dimensions, so head_dim must be even",
               m.hidden_size, m.num_heads, m.head_dim());
  LUMINA_CHECK(m.moe_top_k <= m.num_experts,
               "model.moe_top_k = {} exceeds model.num_experts = {}: a token cannot use more experts than exist",
               m.moe_top_k, m.num_experts);
  if (m.moe_pattern == "sandwich")
    LUMINA_CHECK(m.dense_start_layers + m.dense_end_layers < m.num_layers,
                 "model.dense_start_layers + model.dense_end_layers = {} leaves no MoE layer among "
                 "model.num_layers = {}",
                 m.dense_start_layers + m.dense_end_layers, m.num_layers);
  else
    LUMINA_CHECK(m.dense_start_layers == 0 && m.dense_end_layers == 0,
                 "model.dense_start_layers / dense_end_layers are only used with model.moe_pattern = "
                 "\"sandwich\" (it is \"{}\"): remove them or set moe_pattern = \"sandwich\"",
                 m.moe_pattern);
  LUMINA_CHECK(!m.use_moe || moe_layer_count(m) > 0,
               "model.moe_pattern = \"{}\" makes no layer MoE among model.num_layers = {}: use moe_pattern = "
               "\"all\", a denser pattern, or more layers",
               m.moe_pattern, m.num_layers);
  LUMINA_CHECK(m.mod_start_layer < m.num_layers,
               "model.mod_start_layer = {} is not a layer: model.num_layers = {} (layers 0..{})", m.mod_start_layer,
               m.num_layers, m.num_layers - 1);
  if (m.mod_end_layer != -1)
    LUMINA_CHECK(m.mod_end_layer >= m.mod_start_layer && m.mod_end_layer < m.num_layers,
                 "model.mod_end_layer = {} must be -1 (the last layer) or in [mod_start_layer, num_layers) = "
                 "[{}, {})",
                 m.mod_end_layer, m.mod_start_layer, m.num_layers);
}

void validate(const RunConfig& config) {
  validate_model_config(config.model);
  validate_optim(config.optim, config.model);
  validate_train(config.train, config.model, config.data);
  validate_data(config.data, config.model);
  validate_dist(config.dist, config.model);
}

}  // namespace lumina
