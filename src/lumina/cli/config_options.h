#pragma once
// The options every config-driven command shares: --config, --preset, --set, --configs-dir.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lumina/config/run_config.h"

namespace lumina::cli {

struct ConfigOptions {
  std::string path;
  std::string preset;
  std::string configs_dir;  // --configs-dir; "" = <source dir>/configs
  std::vector<std::string> overrides;

  // Adds --config (required unless --preset is given), --preset, --set and --configs-dir to a subcommand.
  void add_to(CLI::App& cmd);
  // Loads and validates, without the support check (config show / validate --allow-unsupported).
  RunConfig load_valid() const;
  // load_valid(), then checks that this build supports every requested feature.
  RunConfig load() const;
};

}  // namespace lumina::cli
