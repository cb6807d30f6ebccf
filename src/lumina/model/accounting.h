#pragma once
// Parameter, FLOP and memory accounting from the config alone (nothing is
// allocated), so `lumina model-info` works for presets far larger than memory.
#include <cstdint>

#include "lumina/model/model_config.h"

namespace lumina {

struct ParamCounts {
  int64_t total = 0;          // every parameter element
  int64_t embedding = 0;      // model.embed_tokens
  int64_t lm_head = 0;        // separate head weight (0 when tied)
  int64_t norms = 0;          // rmsnorm weights
  int64_t attention = 0;      // q, k, v, o projections, all layers
  int64_t ffn = 0;            // dense SwiGLU weights, all layers
  // Matmul weights a token passes through, excluding the embedding lookup but
  // counting the LM head (V*C even when tied) — the reference MFU convention.
  int64_t active_matmul = 0;
};

ParamCounts count_params(const ModelConfig& cfg);

// Training FLOPs per token, reference convention (shared/reference/README.md):
// 6 * active_matmul + 12 * num_layers * hidden_size * seq_len (attention scores).
double train_flops_per_token(const ModelConfig& cfg, int64_t seq_len);

struct MemoryPlan {
  int64_t weights_bytes = 0;      // master weights (f32)
  int64_t compute_weights_bytes = 0;  // low-precision copy (0 when computing in the master dtype)
  int64_t grads_bytes = 0;        // f32
  int64_t optimizer_bytes = 0;    // AdamW m and v, f32
  int64_t activations_bytes = 0;  // activations + backward scratch for one micro-batch
  int64_t total_bytes() const {
    return weights_bytes + compute_weights_bytes + grads_bytes + optimizer_bytes + activations_bytes;
  }
};

}  // namespace lumina
