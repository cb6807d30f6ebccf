#pragma once
// Checkpoints: <dir>/step_<n>/{model.safetensors, optimizer.safetensors,
// trainer_state.json, config.toml (the resolved run config, so a checkpoint
// is self-contained for generate/eval/export)}, plus pointer files <dir>/latest and <dir>/best holding
// a checkpoint's directory name.
//
// Crash safety: a checkpoint is written into step_<n>.partial/, every file
// fsynced, the directory renamed to step_<n>, and only then are the pointers
// replaced (atomically). A kill at any instant leaves `latest` naming a
// complete checkpoint. trainer_state.json records the XXH3 checksum and size
// of both tensor files; loading verifies them, and `latest`/`best` fall back
// to the newest older checkpoint that verifies, saying which one failed and why.
//
// Shapes: trainer_state.json's "moe_layout" ({"<layer>": [1, 1, 0, 1, 1]}, the
// routable mask of every MoE layer whose experts dynamic expert events changed;
// ModelConfig::moe_layout) says how many experts each layer has; a model is
// rebuilt with checkpoint_model_config() before its weights are loaded.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lumina/data/token_dataset.h"
#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"

namespace lumina {

struct TrainerState {
  int64_t step = 0;          // optimizer steps completed
  int64_t tokens_seen = 0;   // training tokens consumed
  DataCursor cursor;         // next training window
  double best_val_loss = std::numeric_limits<double>::infinity();
  nlohmann::json extra = nlohmann::json::object();  // components' own state (orchestrator, chinchilla, ...)
};

nlohmann::json trainer_state_to_json(const TrainerState& s);
TrainerState trainer_state_from_json(const nlohmann::json& j, const std::string& source);

class CheckpointManager {
 public:
  // save_total_limit: periodic checkpoints kept (0: all); latest and best are always kept.
  // config_toml: the resolved run config, stored in every checkpoint.
  CheckpointManager(std::string dir, int64_t save_total_limit, std::string config_toml);

  // Writes step_<state.step>, points `latest` (and `best` when is_best) at it,
  // then applies retention. Returns the checkpoint's path.
  std::string save(const Transformer& model, const AdamW& optimizer, const TrainerState& state, bool is_best);

  // which: "latest", "best" or a checkpoint directory path: the checkpoint to
  // resume from, verified (files, sizes, checksums). For latest and best, one
  // that fails falls back to the newest older one that verifies, with a warning.
  // Throws when nothing loadable is found.
  std::string select(const std::string& which);
  // Restores model and optimizer state in place from checkpoint directory `path`
  // (its shapes must be the model's: see checkpoint_model_config) and returns the trainer state.
  TrainerState load(const std::string& path, Transformer& model, AdamW& optimizer);

  // Checkpoint directories (complete ones, newest first).
  std::vector<std::string> list() const;
  const std::string& dir() const { return dir_; }
  // Path the last load() restored from.
  const std::string& loaded_path() const { return loaded_path_; }

 private:
  void apply_retention();
  std::string read_pointer(const std::string& name) const;  // "" when absent

  std::string dir_;
  int64_t save_total_limit_;
  std::string config_toml_;
  std::string loaded_path_;
};

// A checkpoint directory from what a user may pass: the checkpoint itself, a
// checkpoints/ directory or a run directory (their `latest` is followed).
std::string resolve_checkpoint_dir(const std::string& path);

// Verifies a checkpoint's files and copies its weights into `model` (allocated).
void load_model_weights(const std::string& checkpoint_dir, Transformer& model);

// `config` with the expert layout the checkpoint was written with; throws when
// the layout cannot belong to `config` (a layer that is not MoE there, fewer
// experts than model.num_experts, fewer routable ones than moe_top_k).
ModelConfig checkpoint_model_config(const std::string& checkpoint_dir, const ModelConfig& config);

// Verifies a checkpoint directory (files present, sizes and checksums) and
// returns its trainer_state.json; throws an error naming the bad file.
nlohmann::json verify_checkpoint(const std::string& path);

}  // namespace lumina
