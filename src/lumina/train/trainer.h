#pragma once
// The training loop. One optimizer step:
//   the step's train.expert_events (dynamic experts: model and AdamW rebuilt)
//   -> gradient_accumulation_steps micro-batches (forward + backward, gradients
//   summed, loss averaged over every target token of the step)
//   -> global grad norm -> clip -> AdamW at the scheduled lr (fp16: the loss
//   gradient is scaled dynamically and an overflowing step is skipped)
//   -> metrics row -> progress line -> evaluation -> checkpoint -> signals.
// A run lives in <output_dir>/<experiment_name>/ with config.toml (resolved),
// logs/training.log, metrics/metrics.jsonl and checkpoints/.
#include <string>

#include "lumina/config/run_config.h"

namespace lumina {

struct TrainOptions {
  std::string resume;  // "" (fresh run), "latest", "best" or a checkpoint path
};

struct TrainSummary {
  int64_t steps = 0;           // optimizer steps completed in total
  double last_loss = 0.0;
  double val_loss = 0.0;       // last evaluation (0 when none)
  double val_bits_per_token = 0.0;
  double unigram_bits_per_token = 0.0;  // the validation split under the train split's unigram model
  std::string run_dir;
  std::string last_checkpoint;
  bool interrupted = false;    // stopped by SIGTERM/SIGINT after saving
};

TrainSummary train(const RunConfig& cfg, const TrainOptions& opt);

}  // namespace lumina
