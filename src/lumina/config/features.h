#pragma once
// Features the config can ask for, and whether this build implements each.
// When a feature lands, flip its `implemented` in features.cpp (one line):
// check_supported() then accepts every field tagged with it, and
// docs/config.md must be regenerated (`lumina config docs --output docs/config.md`).
#include <string_view>

namespace lumina {

enum class Feature {
  core,  // the dense decoder, AdamW, lr schedules, fp32 on CPU, byte tokenizer, txt/jsonl
  cuda,
  fp16,
  bf16,
  fp8,
  moe,
  mod,
  mtp,
  gradient_checkpointing,
  muon,
  muon_8bit,
  galore,
  chat_data,
  training_modes,
  sentencepiece,
  hf_tokenizer,
  quality_filters,
  dedup,
  curriculum,
  async_loader,
  collider,
  early_stopping,
  tensorboard,
  html_report,
  orchestrator,
  chinchilla,
  data_parallel,
  zero,
  cpu_offload,
  expert_parallel,
};

struct FeatureInfo {
  Feature feature;
  std::string_view name;  // as users call it: "MoE", "bf16 compute"
  bool implemented;
};

const FeatureInfo& feature_info(Feature feature);

}  // namespace lumina
