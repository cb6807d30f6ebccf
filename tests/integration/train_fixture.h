#pragma once
// A small training run driven through the CLI, shared by the integration tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cli_process.h"
#include "support/synthetic_corpus.h"
#include "support/test_files.h"

namespace lumina::test {

// [model] lines that make the run's model a mixture of experts: layer 0 dense,
// layer 1 MoE with 4 experts, top-2, capacity 1.25 (drops happen), z-loss on.
inline const std::string kMoeModelLines =
    "use_moe = true\nnum_experts = 4\nmoe_top_k = 2\nmoe_pattern = \"every_2nd\"\nrouter_z_loss_weight = 0.001\n";

// Writes corpus.txt and run.toml into `dir`: a model slow enough (tens of ms a
// step on 2 cores) for a test to signal it mid-run, 30 steps, a checkpoint every 10.
// model_lines: extra [model] lines (e.g. kMoeModelLines).
inline std::string write_run_config(const std::string& dir, int max_steps = 30, const std::string& model_lines = "") {
  write_synthetic_corpus(dir + "/corpus.txt", 400, 3);
  const std::string path = dir + "/run.toml";
  std::ofstream(path) << "[model]\nvocab_size = 259\nhidden_size = 96\nnum_layers = 2\nnum_heads = 2\n"
                         "num_kv_heads = 1\nintermediate_size = 256\nmax_position_embeddings = 128\n" + model_lines +
                         "[train]\nexperiment_name = \"run\"\noutput_dir = \"" + dir + "/out\"\nbatch_size = 8\n"
                         "seq_len = 128\nmax_steps = " + std::to_string(max_steps) + "\neval_interval = 0\n"
                         "log_interval = 10\nsave_every_n_batches = 10\nsave_total_limit = 0\n"
                         "[optim]\nlearning_rate = 2e-3\nwarmup_steps = 3\n"
                         "[data]\ntrain_files = [\"" + dir + "/corpus.txt\"]\nvalidation_split = 0.05\n";
  return path;
}

inline std::string run_dir(const std::string& dir) { return dir + "/out/run"; }

// step -> loss text of the training rows of a metrics.jsonl (the text: equality is bit equality).
inline std::map<int64_t, std::string> train_losses(const std::string& dir) {
  std::map<int64_t, std::string> out;
  std::ifstream in(run_dir(dir) + "/metrics/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    if (row.contains("loss")) out[row["step"].get<int64_t>()] = row["loss"].dump();
  }
  return out;
}

inline int64_t metric_rows(const std::string& dir) { return static_cast<int64_t>(train_losses(dir).size()); }

// step -> text of the whole training row less its timings (elapsed_s, tokens_per_second).
inline std::map<int64_t, std::string> train_rows_without_timings(const std::string& dir) {
  std::map<int64_t, std::string> out;
  std::ifstream in(run_dir(dir) + "/metrics/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto row = nlohmann::json::parse(line);
    if (!row.contains("loss")) continue;
    row.erase("elapsed_s");
    row.erase("tokens_per_second");
    out[row["step"].get<int64_t>()] = row.dump();
  }
  return out;
}

}  // namespace lumina::test
