#include "lumina/cli/commands.h"
namespace lumina::cli {
void register_bench(CLI::App& app) { app.add_subcommand("bench", "Benchmarks"); }
}
