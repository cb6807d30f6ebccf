// lumina: one binary, one subcommand per job (see `lumina --help`).
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "lumina/backend/backend.h"
#include "lumina/cli/commands.h"
#include "lumina/core/error.h"

namespace {

// OpenBLAS reads OPENBLAS_CORETYPE once, when it loads; on an AVX-512 CPU it
// does not recognise, the process re-executes itself with the AVX-512 kernels
// selected. Setting OPENBLAS_CORETYPE yourself (to anything) turns this off.
void prefer_avx512_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || !lumina::openblas_skips_avx512()) return;
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: go on with the default kernels
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

int main(int argc, char** argv) {
  prefer_avx512_blas_kernels(argv);
  CLI::App app{"lumina: train dense, MoE, MoD and hybrid LLMs from a TOML config", "lumina"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lumina 0.1.0");
  lumina::cli::register_train(app);
  lumina::cli::register_generate(app);
  lumina::cli::register_eval(app);
  lumina::cli::register_report(app);
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
