#pragma once
// DataConfig: input files, their format and tokenizer, and the loader, as
// the [data] section of a run config. Plain data; defaults live here, the
// field table (config/fields_data.cpp) gives ranges and help.
#include <cstdint>
#include <string>
#include <vector>

namespace lumina {

struct DataConfig {
  // ---- files ------------------------------------------------------------------------------
  std::vector<std::string> train_files;       // base text (txt / jsonl)
  std::vector<std::string> validation_files;  // base text for evaluation
  std::vector<std::string> finetuning_files;  // chat jsonl (finetuning and hybrid modes)
  std::vector<std::string> finetuning_validation_files;
  std::string format = "auto";  // auto | txt | jsonl | chat_jsonl
  double validation_split = 0.0;  // held out from train files when no validation files are given

  // ---- tokenizer ----------------------------------------------------------------------------
  std::string tokenizer = "byte";  // byte | sentencepiece | hf_json
  std::string tokenizer_path;      // .model (sentencepiece) or tokenizer.json (hf_json)

  // ---- loader --------------------------------------------------------------------------------
  int64_t num_workers = 2;
  int64_t prefetch_depth = 4;  // batches prepared ahead of the step loop

  // ---- quality, dedup, curriculum ---------------------------------------------------------
  bool automatic_data_cleaning = false;
  double quality_threshold = 0.85;
  bool deduplicate = false;
  bool use_curriculum = false;
  double curriculum_aggressiveness = 0.5;  // 0: plain order, 1: strictly easy to hard
  bool difficulty_sampling = false;        // sample hard examples (by loss history) more often

  bool operator==(const DataConfig&) const = default;
};

}  // namespace lumina
