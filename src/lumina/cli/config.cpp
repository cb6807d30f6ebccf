#include "lumina/cli/commands.h"
namespace lumina::cli {
void register_config(CLI::App& app) { app.add_subcommand("config", "Config tools"); }
}
