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
  int64_t ffn = 0;            // dense SwiGLU weights of the dense layers
  int64_t routers = 0;        // MoE router weights (E x C per MoE layer)
  int64_t experts = 0;        // MoE expert weights (E x 3 x C x F per MoE layer), all experts
  int64_t moe_layers = 0;     // layers with an MoE FFN (layer_kinds.h)
  int64_t mod_routers = 0;    // MoD router and predictor weights (2 x C per learned-routing MoD layer)
  int64_t mod_layers = 0;     // layers with MoD routing (layer_kinds.h)
  // Parameters one token uses: everything but the experts it is not routed to
  // (per MoE layer the router and moe_top_k experts count).
  int64_t active = 0;
  // Matmul weights a token passes through, excluding the embedding lookup but
  // counting the LM head (V*C even when tied) and, per MoE layer, the router
  // and moe_top_k experts — the reference MFU convention.
  int64_t active_matmul = 0;
};

ParamCounts count_params(const ModelConfig& cfg);

// Training FLOPs per token, reference convention (shared/reference/README.md):
// 6 * active_matmul + 12 * num_layers * hidden_size * seq_len (attention scores).
// MoE layers count their active experts only (capacity drops are not subtracted).
// MoD routing is not subtracted either (all tokens run every layer): see below.
double train_flops_per_token(const ModelConfig& cfg, int64_t seq_len);

// What a MoD model is expected to run per token at its target capacity, same
// convention: with f = k / seq_len, k = mod_capacity(seq_len, mod_capacity_factor),
// a MoD layer runs its matmul weights W (attention, and the FFN's active weights)
// for a fraction f of the tokens and its attention scores among f * seq_len
// tokens: 6 f W + 12 hidden seq_len f^2 instead of 6 W + 12 hidden seq_len
// (mod_ffn_only: only the FFN's part scales by f), plus 6 x 2 hidden for the
// router and predictor (learned routing). Equals train_flops_per_token without MoD.
double mod_train_flops_per_token(const ModelConfig& cfg, int64_t seq_len);

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
