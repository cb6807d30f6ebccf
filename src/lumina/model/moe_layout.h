#pragma once
// Per-layer experts of a MoE model once dynamic expert events changed them
// (ModelConfig::moe_layout): a layer's expert count may grow past
// model.num_experts (add) and experts may be pruned (frozen and never routed,
// but kept with their weights so the checkpoint and the expert indices stay).
#include <cstdint>
#include <string>
#include <vector>

#include "lumina/model/model_config.h"

namespace lumina {

// MoE layer `layer`'s routable mask (size = its expert count; 0 = pruned).
std::vector<uint8_t> moe_layer_routable(const ModelConfig& cfg, int64_t layer);

// cfg with one more (routable) expert in `layer`: it gets index = the old count.
ModelConfig with_expert_added(const ModelConfig& cfg, int64_t layer);
// cfg with expert `expert` of `layer` pruned. Refuses an unknown or already
// pruned expert, and a prune that leaves fewer than moe_top_k routable experts.
ModelConfig with_expert_pruned(const ModelConfig& cfg, int64_t layer, int64_t expert);

// For messages: "layer 1: 5 experts, pruned 3; layer 2: 4 experts, pruned 0, 2", or
// "num_experts experts in every MoE layer" when no layer changed.
std::string moe_layout_text(const ModelConfig& cfg);

}  // namespace lumina
