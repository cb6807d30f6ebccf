#pragma once
// Loading a trained model from a checkpoint for generate / eval: the
// checkpoint's own config.toml rebuilds the architecture (with the expert
// layout of its trainer_state.json), then the weights are verified and loaded.
#include <memory>
#include <string>

#include "lumina/backend/select.h"
#include "lumina/config/run_config.h"
#include "lumina/model/transformer.h"

namespace lumina::cli {

struct LoadedModel {
  RunConfig config;
  std::string checkpoint_dir;
  SelectedBackend backend;
  std::unique_ptr<Transformer> model;
};

LoadedModel load_checkpoint_model(const std::string& path, const std::string& device);

}  // namespace lumina::cli
