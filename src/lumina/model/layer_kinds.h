#pragma once
// Which layers are special, from the config alone (model construction,
// accounting and model-info agree by calling the same functions).
#include <cstdint>

#include "lumina/model/model_config.h"

namespace lumina {

// Mixture-of-Experts: use_moe and the layer fits model.moe_pattern:
//   all: every layer; every_2nd: layers 1, 3, 5, ...; every_3rd: 2, 5, 8, ...;
//   every_4th: 3, 7, 11, ...; sandwich: all but the first dense_start_layers
//   and the last dense_end_layers.
bool is_moe_layer(const ModelConfig& cfg, int64_t layer);
// Number of MoE layers.
int64_t moe_layer_count(const ModelConfig& cfg);

// Mixture-of-Depths: use_mod and layer is in [mod_start_layer, end] (end =
// mod_end_layer, or the last layer when -1) and (layer - mod_start_layer) % mod_every_n == 0.
bool is_mod_layer(const ModelConfig& cfg, int64_t layer);

}  // namespace lumina
