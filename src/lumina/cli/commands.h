#pragma once
// Each subcommand lives in its own file and registers itself on the app.
// A command's callback throws lumina::Error for bad input; main() prints it
// as one line and exits with status 2.
#include <CLI/CLI.hpp>

namespace lumina::cli {

void register_model_info(CLI::App& app);
void register_bench(CLI::App& app);
void register_bench_moe(CLI::App& bench);  // `bench moe` under the bench command (bench_moe.cpp)
void register_config(CLI::App& app);
void register_train(CLI::App& app);
void register_generate(CLI::App& app);
void register_eval(CLI::App& app);
void register_report(CLI::App& app);

}  // namespace lumina::cli
