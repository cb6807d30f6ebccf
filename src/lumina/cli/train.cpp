// lumina train: run (or resume) training from a config.
#include <fmt/format.h>

#include "lumina/cli/commands.h"
#include "lumina/cli/config_options.h"
#include "lumina/train/trainer.h"

namespace lumina::cli {

void register_train(CLI::App& app) {
  struct Args {
    ConfigOptions config;
    TrainOptions train;
    std::string device;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a config (Ctrl-C / SIGTERM: save and stop; "
                                              "SIGUSR1: save and go on)");
  args->config.add_to(*cmd);
  cmd->add_option("--resume", args->train.resume, "Resume from latest, best or a checkpoint directory");
  cmd->add_option("--device", args->device, "auto, cpu or cuda (same as --set train.device=...)");
  cmd->callback([args] {
    if (!args->device.empty()) args->config.overrides.push_back("train.device=" + args->device);
    const RunConfig cfg = args->config.load();
    const TrainSummary s = train(cfg, args->train);
    if (s.interrupted) {
      fmt::print("stopped at step {} after saving {}; resume with --resume latest\n", s.steps, s.last_checkpoint);
      return;
    }
    fmt::print("done: {} steps | last loss {:.4f}", s.steps, s.last_loss);
    if (s.val_loss > 0) {
      fmt::print(" | val loss {:.4f} | val bits/token {:.4f}", s.val_loss, s.val_bits_per_token);
      fmt::print(" ({:.1f}% below the unigram baseline {:.4f})",
                 100.0 * (1.0 - s.val_bits_per_token / s.unigram_bits_per_token), s.unigram_bits_per_token);
    }
    fmt::print("\nrun: {} | checkpoint: {}\n", s.run_dir, s.last_checkpoint);
  });
}

}  // namespace lumina::cli
