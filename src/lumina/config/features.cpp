#include "lumina/config/features.h"

#include <array>

#include "lumina/core/error.h"

namespace lumina {

namespace {
// One row per feature; `implemented` is the switch check_supported() reads.
constexpr std::array kFeatures = {
    FeatureInfo{Feature::core, "core training", true},
    FeatureInfo{Feature::cuda, "the CUDA backend", true},
    FeatureInfo{Feature::fp16, "fp16 compute and loss scaling", true},
    FeatureInfo{Feature::bf16, "bf16 compute", true},
    FeatureInfo{Feature::fp8, "fp8 GEMMs", false},
    FeatureInfo{Feature::moe, "MoE", true},
    FeatureInfo{Feature::mod, "MoD", true},
    FeatureInfo{Feature::mtp, "multi-token prediction", false},
    FeatureInfo{Feature::gradient_checkpointing, "gradient checkpointing", false},
    FeatureInfo{Feature::muon, "the Muon optimizer", false},
    FeatureInfo{Feature::muon_8bit, "8-bit Muon state", false},
    FeatureInfo{Feature::galore, "GaLore", false},
    FeatureInfo{Feature::chat_data, "chat jsonl data", false},
    FeatureInfo{Feature::training_modes, "finetuning and hybrid training modes", false},
    FeatureInfo{Feature::sentencepiece, "the SentencePiece tokenizer", false},
    FeatureInfo{Feature::hf_tokenizer, "the tokenizer.json BPE tokenizer", false},
    FeatureInfo{Feature::quality_filters, "data quality filters", false},
    FeatureInfo{Feature::dedup, "data deduplication", false},
    FeatureInfo{Feature::curriculum, "curriculum and difficulty sampling", false},
    FeatureInfo{Feature::async_loader, "the async prefetching loader", false},
    FeatureInfo{Feature::collider, "Collider token filtering", false},
    FeatureInfo{Feature::early_stopping, "early stopping", false},
    FeatureInfo{Feature::tensorboard, "TensorBoard event files", false},
    FeatureInfo{Feature::html_report, "the HTML report", true},
    FeatureInfo{Feature::orchestrator, "the adaptive orchestrator", false},
    FeatureInfo{Feature::chinchilla, "Chinchilla planning", false},
    FeatureInfo{Feature::data_parallel, "multi-process data parallelism", false},
    FeatureInfo{Feature::zero, "ZeRO sharding", false},
    FeatureInfo{Feature::cpu_offload, "CPU offload of optimizer state", false},
    FeatureInfo{Feature::expert_parallel, "expert parallelism", false},
};
}  // namespace

const FeatureInfo& feature_info(Feature feature) {
  for (const FeatureInfo& info : kFeatures)
    if (info.feature == feature) return info;
  fail("internal: feature {} has no row in config/features.cpp", static_cast<int>(feature));
}

}  // namespace lumina
