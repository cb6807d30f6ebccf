#include "lumina/cli/config_options.h"

#include "lumina/core/error.h"

namespace lumina::cli {

void ConfigOptions::add_to(CLI::App& cmd) {
  cmd.add_option("-c,--config", path, "Run config (TOML)");
  cmd.add_option("--preset", preset, "Start from configs/<preset>.toml (debug, b1, ...)");
  cmd.add_option("--set", overrides, "Override a field: section.field=value (repeatable)")->take_all();
  cmd.add_option("--configs-dir", configs_dir, "Where presets live (default: <source dir>/configs)");
}

RunConfig ConfigOptions::load_valid() const {
  LUMINA_CHECK(!path.empty() || !preset.empty(), "give a config with --config FILE or a preset with --preset NAME");
  LoadOptions o;
  o.overrides = overrides;
  o.preset = preset;
  o.configs_dir = configs_dir;
  return load_run_config(path, o);
}

RunConfig ConfigOptions::load() const {
  RunConfig cfg = load_valid();
  check_supported(cfg);
  return cfg;
}

}  // namespace lumina::cli
