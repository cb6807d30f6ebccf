#pragma once
// Tiny models and batches shared by the model tests.
#include <cstdint>
#include <vector>

#include "lumina/core/rng.h"
#include "lumina/model/model_config.h"

namespace lumina::test {

// A model small enough for finite differences over its parameters: GQA 2:1, head dim 4.
inline ModelConfig tiny_config(bool tied) {
  ModelConfig c;
  c.vocab_size = 11;
  c.hidden_size = 8;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = tied;
  c.init_std = 0.3;  // larger than usual so every path carries gradient well above rounding noise
  return c;
}

// tiny_config (untied) with 4 layers, MoE FFNs in layers 1 and 3 (every_2nd) and
// dense ones in 0 and 2: 4 experts, top_k, temperature 0.7, aux and z weights
// large enough that their gradients count. capacity_factor <= 0: dropless.
inline ModelConfig tiny_moe_config(int64_t top_k, double capacity_factor) {
  ModelConfig c = tiny_config(false);
  c.num_layers = 4;
  c.use_moe = true;
  c.moe_pattern = "every_2nd";
  c.num_experts = 4;
  c.moe_top_k = top_k;
  c.dropless = capacity_factor <= 0.0;
  c.capacity_factor = c.dropless ? 1.0 : capacity_factor;
  c.routing_temperature = 0.7;
  c.load_balancing_weight = 0.3;
  c.router_z_loss_weight = 0.2;
  return c;
}

// cfg with learned Mixture-of-Depths routing at capacity 0.5 in every layer.
inline ModelConfig with_learned_mod(ModelConfig cfg) {
  cfg.use_mod = true;
  cfg.mod_routing_type = "learned";
  cfg.mod_capacity_factor = 0.5;
  return cfg;
}

// A small trainable model (usual init): hidden 32, 4 heads, 2 kv heads, ffn 64.
inline ModelConfig small_config(int64_t vocab, int64_t max_positions) {
  ModelConfig c = tiny_config(false);
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.intermediate_size = 64;
  c.max_position_embeddings = max_positions;
  c.init_std = 0.02;
  return c;
}

// Random token ids in [0, vocab); with mask_every > 0 every mask_every-th target is -1.
inline std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed, int mask_every = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  const Rng rng(seed, RngPurpose::test, 0);
  for (int64_t i = 0; i < n; ++i) {
    t[static_cast<size_t>(i)] = static_cast<int32_t>(rng.bits(static_cast<uint64_t>(i)) % static_cast<uint32_t>(vocab));
    if (mask_every > 0 && i % mask_every == mask_every - 1) t[static_cast<size_t>(i)] = -1;
  }
  return t;
}

}  // namespace lumina::test
