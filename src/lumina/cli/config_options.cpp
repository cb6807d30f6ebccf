#include "lumina/cli/config_options.h"

#include "lumina/core/error.h"

namespace lumina::cli {

void ConfigOptions::add_to(CLI::App& cmd) {
  cmd.add_option("-c,--config", path, "Run config (TOML)")->check(CLI::ExistingFile);
  cmd.add_option("--preset", preset, "Start from configs/<preset>.toml (debug, b1, ...)");
  cmd.add_option("--set", overrides, "Override a field: section.field=value (repeatable)")->take_all();
}

RunConfig ConfigOptions::load() const {
  LUMINA_CHECK(!path.empty() || !preset.empty(), "give a config with --config FILE or a preset with --preset NAME");
  LoadOptions o;
  o.overrides = overrides;
  o.preset = preset;
  RunConfig cfg = load_run_config(path, o);
  check_supported(cfg);
  return cfg;
}

}  // namespace lumina::cli
