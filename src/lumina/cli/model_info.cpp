#include "lumina/cli/commands.h"
namespace lumina::cli {
void register_model_info(CLI::App& app) { app.add_subcommand("model-info", "Print parameters, FLOPs and memory plan"); }
}
