// [data]: files, format, tokenizer, loader, filters (DataConfig, data/data_config.h).
#include "lumina/config/field_builder.h"

namespace lumina {

void add_data_fields(std::vector<Field>& fields) {
  using D = DataConfig;
  SectionBuilder<D> s(fields, "data", &RunConfig::data);

  s.list(&D::train_files, "train_files", "Base text for training (txt or jsonl with a \"text\" field).");
  s.list(&D::validation_files, "validation_files", "Base text for evaluation.");
  s.needs(Feature::training_modes);
  s.list(&D::finetuning_files, "finetuning_files",
         "Chat jsonl for finetuning_only and hybrid modes (\"conversation\" or \"messages\": [{role, content}]).");
  s.list(&D::finetuning_validation_files, "finetuning_validation_files", "Chat jsonl for evaluation.");
  s.needs(Feature::core);
  s.choice(&D::format, "format", {{"auto"}, {"txt"}, {"jsonl"}, {"chat_jsonl", Feature::chat_data}},
           "Input format; auto: from the extension and the first record.");
  s.real(&D::validation_split, "validation_split", at_least(0), below(1),
         "Fraction of the training documents held out for evaluation when no validation files are given.");

  s.choice(&D::tokenizer, "tokenizer",
           {{"byte"}, {"sentencepiece", Feature::sentencepiece}, {"hf_json", Feature::hf_tokenizer}},
           "byte: raw UTF-8 bytes (ids 0-255); sentencepiece: a .model file; hf_json: a Hugging Face "
           "tokenizer.json (BPE).");
  s.text(&D::tokenizer_path, "tokenizer_path", "Tokenizer file for sentencepiece and hf_json; empty for byte.");

  s.needs(Feature::async_loader);
  s.integer(&D::num_workers, "num_workers", at_least(0), at_most(256),
            "Loader threads; 0: load on the training thread.");
  s.integer(&D::prefetch_depth, "prefetch_depth", at_least(1), at_most(1024),
            "Batches prepared ahead of the step loop.");

  s.needs(Feature::quality_filters);
  s.flag(&D::automatic_data_cleaning, "automatic_data_cleaning",
         "Drop malformed samples and normalize whitespace and encoding before tokenizing.");
  s.real(&D::quality_threshold, "quality_threshold", at_least(0), at_most(1),
         "Samples scoring below it are filtered out (with automatic_data_cleaning).");
  s.needs(Feature::dedup);
  s.flag(&D::deduplicate, "deduplicate", "Drop exact duplicate documents.");
  s.needs(Feature::curriculum);
  s.flag(&D::use_curriculum, "use_curriculum", "Order training samples from easy to hard.");
  s.real(&D::curriculum_aggressiveness, "curriculum_aggressiveness", at_least(0), at_most(1),
         "0: plain order, 1: strictly easy to hard.");
  s.flag(&D::difficulty_sampling, "difficulty_sampling", "Sample examples with a high loss history more often.");
}

}  // namespace lumina
