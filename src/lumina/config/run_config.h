#pragma once
// RunConfig: one run's whole configuration, composed of the components'
// own configs so each component (model, optimizer, trainer, loader,
// communicator) can be built from its section alone.
//
// Resolution order: field defaults -> preset (`preset = "debug"` at the top
// of the file, or --preset) -> the file -> --set overrides. Every field is
// declared once in the field table (config/field.h); parsing, range checks,
// `lumina config explain`, the TOML dump and docs/config.md all read it.
#include <string>
#include <vector>

#include "lumina/data/data_config.h"
#include "lumina/dist/dist_config.h"
#include "lumina/model/model_config.h"
#include "lumina/optim/optim_config.h"
#include "lumina/train/train_config.h"

namespace lumina {

struct RunConfig {
  ModelConfig model;
  OptimConfig optim;
  TrainConfig train;
  DataConfig data;
  DistConfig dist;

  bool operator==(const RunConfig&) const = default;
};

struct LoadOptions {
  std::vector<std::string> overrides;  // "section.field=value" (--set), applied last
  std::string preset;                  // --preset: start from <configs_dir>/<preset>.toml
  std::string configs_dir;             // where presets live; "" = default_configs_dir()
};

// <source dir>/configs (LUMINA_SOURCE_DIR), where the presets live.
std::string default_configs_dir();

// Reads `path` ("" = none: defaults or the preset alone), its preset chain and
// the overrides. Checks each field (known name, type, range, allowed values);
// throws lumina::Error naming the file, line, section.field and the bad value.
RunConfig read_run_config(const std::string& path, const LoadOptions& options = {});

// read_run_config, then validate().
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
RunConfig load_run_config(const std::string& path, const LoadOptions& options);

// Cross-field rules (hidden_size % num_heads == 0, moe_top_k <= num_experts, ...);
// single fields are already checked by the loader. Throws lumina::Error saying what to change.
void validate(const RunConfig& config);
void validate_model_config(const ModelConfig& model);  // the [model] part of validate()

// Throws when a field is set away from its default (or to a value) whose
// feature this build does not implement yet (config/features.cpp).
void check_supported(const RunConfig& config);

// The resolved config as TOML: every field, grouped by section; loads back to an equal RunConfig.
std::string run_config_to_toml(const RunConfig& config);

// Writes run_config_to_toml(config) to `path` atomically (temp file, fsync, rename).
void write_resolved_config(const RunConfig& config, const std::string& path);

}  // namespace lumina
