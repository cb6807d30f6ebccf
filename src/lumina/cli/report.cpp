// lumina report: a self-contained HTML page (summary, charts, config, log tail) of a training run.
#include <fmt/format.h>

#include <filesystem>

#include "lumina/cli/commands.h"
#include "lumina/io/html_report.h"

namespace lumina::cli {

void register_report(CLI::App& app) {
  struct Args {
    std::string run_dir, output;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("report", "Write a self-contained HTML report (summary, charts, config, log) of a run");
  cmd->add_option("--run", args->run_dir, "Run directory (<train.output_dir>/<train.experiment_name>)")->required();
  cmd->add_option("--output", args->output, "HTML file to write (default: <run>/report.html)");
  cmd->callback([args] {
    const std::string output =
        args->output.empty() ? (std::filesystem::path(args->run_dir) / "report.html").string() : args->output;
    write_html_report(args->run_dir, output);
    fmt::print("report: {}\n", output);
  });
}

}  // namespace lumina::cli
