// lumina: one binary, one subcommand per job (see `lumina --help`).
#include <fmt/format.h>

#include <cstdio>

#include "lumina/cli/commands.h"
#include "lumina/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"lumina: train dense, MoE, MoD and hybrid LLMs from a TOML config", "lumina"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lumina 0.1.0");
  lumina::cli::register_train(app);
  lumina::cli::register_generate(app);
  lumina::cli::register_eval(app);
  lumina::cli::register_model_info(app);
  lumina::cli::register_bench(app);
  lumina::cli::register_config(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lumina::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 3;
  }
  return 0;
}
