#pragma once
// ModelConfig: the architecture, as the [model] section of a run config.
// Plain data; the field table (config/fields_model.cpp) gives each field its
// default, range and help, and validate_model_config() the cross-field rules.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lumina {

struct ModelConfig {
  // ---- dense decoder --------------------------------------------------------
  int64_t vocab_size = 256;
  int64_t hidden_size = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 2;
  int64_t num_kv_heads = 2;
  int64_t intermediate_size = 0;  // 0: 8/3 * hidden_size rounded up to a multiple of 256
  int64_t max_position_embeddings = 256;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = true;
  double init_std = 0.02;  // residual projections (o_proj, down_proj) use init_std / sqrt(2 * num_layers)

  // ---- mixture of experts ------------------------------------------------------
  bool use_moe = false;
  int64_t num_experts = 8;
  int64_t moe_top_k = 2;
  double capacity_factor = 1.25;
  double load_balancing_weight = 0.01;
  double routing_temperature = 1.0;
  double routing_noise_std = 0.0;
  double expert_dropout = 0.0;
  bool dropless = false;
  std::string moe_gemm = "auto";  // auto | loop | grouped | grouped_tile_rounding (moe.h)
  double router_z_loss_weight = 0.0;
  std::string moe_pattern = "all";  // all | every_2nd | every_3rd | every_4th | sandwich
  int64_t dense_start_layers = 0;
  int64_t dense_end_layers = 0;
  // Dynamic experts (add_expert / prune_expert, train.expert_events): MoE layer ->
  // its experts' routable mask (size = that layer's expert count; 0 = pruned, frozen).
  // Layers not listed have num_experts experts, all routable. Not a TOML field: a
  // checkpoint's trainer_state.json carries it (model/moe_layout.h).
  std::map<int64_t, std::vector<uint8_t>> moe_layout;

  // ---- mixture of depths -------------------------------------------------------
  bool use_mod = false;
  double mod_capacity_factor = 0.5;
  std::string mod_routing_type = "learned";  // learned | static | random
  int64_t mod_start_layer = 0;
  int64_t mod_end_layer = -1;  // -1: the last layer
  int64_t mod_every_n = 1;
  bool mod_ffn_only = false;
  int64_t mod_capacity_anneal_steps = 0;

  // ---- multi-token prediction -----------------------------------------------------
  int64_t mtp_num_heads = 0;  // extra heads predicting tokens t+2 .. t+1+n
  double mtp_loss_weight = 0.3;

  // ---- memory ----------------------------------------------------------------------
  bool gradient_checkpointing = false;
  // Which rmsnorm outputs the backward recomputes instead of keeping:
  // "none" (keep both; 2 (N, C) activations per layer), "attention" (keep the
  // FFN's, recompute the attention's) or "both" (keep neither).
  std::string recompute_norms = "none";

  bool operator==(const ModelConfig&) const = default;

  int64_t head_dim() const { return hidden_size / num_heads; }
  // intermediate_size, resolved (8/3 * hidden rounded up to 256 when 0).
  int64_t ffn_size() const {
    if (intermediate_size > 0) return intermediate_size;
    const int64_t raw = (8 * hidden_size + 2) / 3;
    return (raw + 255) / 256 * 256;
  }
};

}  // namespace lumina
