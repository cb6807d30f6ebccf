#pragma once
// The options every config-driven command shares: --config, --preset, --set.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lumina/config/run_config.h"

namespace lumina::cli {

struct ConfigOptions {
  std::string path;
  std::string preset;
  std::vector<std::string> overrides;

  // Adds --config (required unless --preset is given), --preset and --set to a subcommand.
  void add_to(CLI::App& cmd);
  // Loads, validates and checks that this build supports every requested feature.
  RunConfig load() const;
};

}  // namespace lumina::cli
