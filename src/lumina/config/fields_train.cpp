// [train]: the run, batching, precision, modes, evaluation, logging,
// checkpoints, orchestrator and Chinchilla planning (TrainConfig, train/train_config.h).
#include "lumina/config/field_builder.h"

namespace lumina {

namespace {
std::vector<Choice> precision_choices() {
  return {{"auto"}, {"fp32"}, {"fp16", Feature::fp16}, {"bf16", Feature::bf16},
          {"mixed_fp16", Feature::fp16}, {"mixed_bf16", Feature::bf16}, {"fp8_e4m3", Feature::fp8}};
}
}  // namespace

void add_train_fields(std::vector<Field>& fields) {
  using T = TrainConfig;
  SectionBuilder<T> s(fields, "train", &RunConfig::train);

  // ---- run ----
  s.text(&T::experiment_name, "experiment_name",
         "Name of the run: logs, metrics, checkpoints and the resolved config go to <output_dir>/<experiment_name>/.");
  s.text(&T::output_dir, "output_dir", "Directory holding the runs.");
  s.integer(&T::seed, "seed", at_least(0), unbounded,
            "Seed of every random stream (init, data order, dropout, routing noise), keyed by (seed, step, purpose).");
  s.choice(&T::device, "device", {{"auto"}, {"cpu"}, {"cuda", Feature::cuda}},
           "Where to train; auto: the GPU when this build has CUDA and one is visible, else the CPU.");
  s.choice(&T::precision, "precision", precision_choices(),
           "Training compute precision; mixed_*: fp32 master weights. auto: mixed_bf16 on Ampere+, "
           "mixed_fp16 on Volta/Turing, fp32 on the CPU (which computes in fp32 only).");
  s.choice(&T::inference_precision, "inference_precision", precision_choices(),
           "Precision of evaluation and generation; auto: the training precision.");

  // ---- batch and length ----
  s.integer(&T::batch_size, "batch_size", at_least(1), at_most(65536), "Sequences per micro-batch (per rank).");
  s.integer(&T::seq_len, "seq_len", at_least(2), at_most(1048576),
            "Tokens per training sequence; at most model.max_position_embeddings.");
  s.integer(&T::gradient_accumulation_steps, "gradient_accumulation_steps", at_least(1), at_most(65536),
            "Micro-batches per optimizer step; effective batch = batch_size * accumulation * ranks.");
  s.integer(&T::max_steps, "max_steps", at_least(0), unbounded,
            "Optimizer steps to run; 0: run num_epochs epochs (or the Chinchilla plan).");
  s.integer(&T::num_epochs, "num_epochs", at_least(1), at_most(100000),
            "Epochs over the training data when max_steps = 0.");

  // ---- training mode ----
  s.choice(&T::training_mode, "training_mode",
           {{"base_only"}, {"finetuning_only", Feature::training_modes},
            {"hybrid_sequential", Feature::training_modes}, {"hybrid_interleaved", Feature::training_modes}},
           "base_only: data.train_files; finetuning_only: data.finetuning_files; hybrid_sequential: base "
           "then finetuning; hybrid_interleaved: both mixed by base_ratio.");
  s.needs(Feature::training_modes);
  s.real(&T::base_ratio, "base_ratio", at_least(0), at_most(1),
         "hybrid_interleaved: fraction of batches drawn from the base text.");
  s.needs(Feature::chat_data);
  s.flag(&T::mask_user_tokens, "mask_user_tokens",
         "Chat data: loss on assistant tokens only (system and user tokens masked).");

  // ---- evaluation and logging ----
  s.needs(Feature::core);
  s.integer(&T::eval_interval, "eval_interval", at_least(0), unbounded,
            "Optimizer steps between evaluations on the validation data; 0: never.");
  s.integer(&T::eval_steps, "eval_steps", at_least(0), unbounded,
            "Batches per evaluation; 0: the whole validation set.");
  s.integer(&T::log_interval, "log_interval", at_least(1), unbounded,
            "Optimizer steps between progress lines and metrics records.");
  s.choice(&T::log_level, "log_level", {{"debug"}, {"info"}, {"warning"}, {"error"}},
           "Least severe level written to the console and training.log.");
  s.needs(Feature::tensorboard);
  s.flag(&T::tensorboard, "tensorboard", "Also write TensorBoard event files under the run's metrics/.");
  s.needs(Feature::html_report);
  s.flag(&T::html_report, "html_report", "Write a self-contained HTML report with plots at the end of the run.");

  // ---- checkpoints ----
  s.needs(Feature::core);
  s.integer(&T::save_every_n_batches, "save_every_n_batches", at_least(0), unbounded,
            "Optimizer steps between periodic checkpoints; 0: only at the end.");
  s.integer(&T::save_total_limit, "save_total_limit", at_least(0), unbounded,
            "Periodic checkpoints kept (the latest and the best are always kept); 0: keep all.");

  // ---- dynamic experts ----
  s.needs(Feature::moe);
  s.list(&T::expert_events, "expert_events",
         "Scheduled expert changes: \"add <layer> @ <step>\" gives MoE layer <layer> a new expert, a near-copy "
         "of its busiest expert (router row and weights plus small noise); \"prune <layer> <expert> @ <step>\" "
         "stops routing to an expert and freezes it (kept in checkpoints). Applied after <step> optimizer steps, "
         "in list order within a step; a new expert takes the next index of its layer.");

  // ---- early stopping ----
  s.needs(Feature::early_stopping);
  s.integer(&T::early_stopping_patience, "early_stopping_patience", at_least(0), unbounded,
            "Stop after this many evaluations without improving the validation loss; 0: off.");
  s.real(&T::early_stopping_min_delta, "early_stopping_min_delta", at_least(0), unbounded,
         "Smallest validation-loss decrease that counts as an improvement.");

  // ---- collider ----
  s.needs(Feature::collider);
  s.flag(&T::use_collider, "use_collider", "Collider token filtering: leave low-information tokens out of the loss.");
  s.real(&T::collider_threshold, "collider_threshold", at_least(0), at_most(1),
         "Score below which a token counts as low-information.");
  s.real(&T::collider_sparsity, "collider_sparsity", at_least(0), below(1),
         "Largest fraction of tokens filtered out of a batch.");

  // ---- adaptive orchestrator ----
  s.needs(Feature::orchestrator);
  s.flag(&T::use_adaptive_training, "use_adaptive_training",
         "Run the orchestrator: health checks every check_interval steps and interventions.");
  s.integer(&T::check_interval, "check_interval", at_least(1), unbounded, "Optimizer steps between health checks.");
  s.real(&T::intervention_threshold, "intervention_threshold", at_least(0), at_most(1),
         "Confidence an intervention needs before it is taken.");
  s.flag(&T::enable_emergency_recovery, "enable_emergency_recovery",
         "Allow emergency interventions: lr reduction, rollback, batch-size reduction on OOM.");
  s.flag(&T::enable_architecture_adaptation, "enable_architecture_adaptation",
         "Allow architecture interventions: add/prune experts, capacity and routing-temperature changes.");
  s.real(&T::expert_add_threshold, "expert_add_threshold", at_least(0), at_most(1),
         "Mean expert utilization above which a layer gets a new expert.");
  s.real(&T::expert_prune_threshold, "expert_prune_threshold", at_least(0), at_most(1),
         "Utilization below which an expert is pruned (frozen, kept in the checkpoint).");
  s.real(&T::gradient_explosion_threshold, "gradient_explosion_threshold", above(0), unbounded,
         "Gradient norm that counts as an explosion and triggers recovery.");
  s.real(&T::emergency_lr_reduction, "emergency_lr_reduction", above(1), unbounded,
         "Divisor applied to the learning rate by an emergency reduction.");

  // ---- chinchilla ----
  s.needs(Feature::chinchilla);
  s.flag(&T::auto_epoch_scaling, "auto_epoch_scaling",
         "Pick the number of epochs from the Chinchilla token budget chinchilla_multiplier * parameters.");
  s.real(&T::chinchilla_multiplier, "chinchilla_multiplier", above(0), at_most(1000),
         "Compute-optimal tokens per parameter.");
  s.integer(&T::min_auto_epochs, "min_auto_epochs", at_least(1), unbounded, "Lower clamp of the planned epochs.");
  s.integer(&T::max_auto_epochs, "max_auto_epochs", at_least(1), unbounded, "Upper clamp of the planned epochs.");
  s.flag(&T::enable_loss_landscape, "enable_loss_landscape", "Track plateaus and divergence of the loss curve.");
  s.flag(&T::enable_compute_efficiency, "enable_compute_efficiency", "Track loss reduction per FLOP.");
  s.flag(&T::enable_early_stopping, "enable_early_stopping",
         "Stop when the convergence score passes convergence_threshold.");
  s.real(&T::convergence_threshold, "convergence_threshold", at_least(0), at_most(1),
         "Convergence score (0-1) that ends the run when enable_early_stopping is on.");
}

}  // namespace lumina
