#pragma once
// TrainConfig: the run, its length and batching, precision, training mode,
// evaluation, logging, checkpoints, the adaptive orchestrator and Chinchilla
// planning, as the [train] section of a run config. Plain data; defaults live
// here, the field table (config/fields_train.cpp) gives ranges and help.
#include <cstdint>
#include <string>
#include <vector>

namespace lumina {

struct TrainConfig {
  // ---- run -------------------------------------------------------------------------
  std::string experiment_name = "run";     // the run lives in <output_dir>/<experiment_name>/
  std::string output_dir = "experiments";
  int64_t seed = 42;
  std::string device = "auto";               // auto | cpu | cuda
  std::string precision = "auto";            // auto | fp32 | fp16 | bf16 | mixed_fp16 | mixed_bf16 | fp8_e4m3
  std::string inference_precision = "auto";  // same values; auto: follow precision

  // ---- batch and length --------------------------------------------------------------
  int64_t batch_size = 8;  // sequences per micro-batch (per rank)
  int64_t seq_len = 256;   // tokens per sequence
  int64_t gradient_accumulation_steps = 1;
  int64_t max_steps = 0;   // optimizer steps; 0: num_epochs epochs
  int64_t num_epochs = 1;

  // ---- training mode ------------------------------------------------------------------
  std::string training_mode = "base_only";  // base_only | finetuning_only | hybrid_sequential | hybrid_interleaved
  double base_ratio = 0.7;                  // hybrid_interleaved: fraction of base-text batches
  bool mask_user_tokens = true;             // chat data: loss on assistant tokens only

  // ---- evaluation and logging ---------------------------------------------------------
  int64_t eval_interval = 500;  // optimizer steps between evaluations; 0: never
  int64_t eval_steps = 50;      // batches per evaluation; 0: the whole validation set
  int64_t log_interval = 50;    // optimizer steps between progress lines
  std::string log_level = "info";  // debug | info | warning | error
  bool tensorboard = false;
  bool html_report = false;

  // ---- checkpoints ----------------------------------------------------------------------
  int64_t save_every_n_batches = 1000;  // optimizer steps between checkpoints; 0: only at the end
  int64_t save_total_limit = 5;         // periodic checkpoints kept (latest and best always kept); 0: all

  // ---- dynamic experts --------------------------------------------------------------
  std::vector<std::string> expert_events;  // "add <layer> @ <step>", "prune <layer> <expert> @ <step>"

  // ---- early stopping on validation loss -------------------------------------------
  int64_t early_stopping_patience = 0;  // evaluations without improvement; 0: off
  double early_stopping_min_delta = 0.0;

  // ---- collider token filtering -------------------------------------------------------
  bool use_collider = false;
  double collider_threshold = 0.3;
  double collider_sparsity = 0.35;

  // ---- adaptive orchestrator -----------------------------------------------------------
  bool use_adaptive_training = false;
  int64_t check_interval = 100;          // optimizer steps between health checks
  double intervention_threshold = 0.75;  // confidence needed to act
  bool enable_emergency_recovery = true;
  bool enable_architecture_adaptation = true;
  double expert_add_threshold = 0.85;    // mean expert utilization that adds an expert
  double expert_prune_threshold = 0.15;  // utilization below which an expert is pruned
  double gradient_explosion_threshold = 100.0;  // grad norm that triggers recovery
  double emergency_lr_reduction = 10.0;  // lr divisor of an emergency reduction

  // ---- chinchilla planning ----------------------------------------------------------------
  bool auto_epoch_scaling = false;
  double chinchilla_multiplier = 20.0;  // optimal tokens = multiplier * parameters
  int64_t min_auto_epochs = 1;
  int64_t max_auto_epochs = 50;
  bool enable_loss_landscape = true;
  bool enable_compute_efficiency = true;
  bool enable_early_stopping = false;  // stop when the convergence score passes convergence_threshold
  double convergence_threshold = 0.85;

  bool operator==(const TrainConfig&) const = default;
};

}  // namespace lumina
