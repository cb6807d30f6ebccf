// [model]: the architecture (ModelConfig, model/model_config.h).
#include "lumina/config/field_builder.h"

namespace lumina {

void add_model_fields(std::vector<Field>& fields) {
  using M = ModelConfig;
  SectionBuilder<M> s(fields, "model", &RunConfig::model);

  // ---- dense decoder ----
  s.integer(&M::vocab_size, "vocab_size", at_least(2), at_most(4294967296.0),
            "Vocabulary size: rows of the embedding and LM head. At least 256 with the byte tokenizer.");
  s.integer(&M::hidden_size, "hidden_size", at_least(2), at_most(65536),
            "Width of the residual stream (d_model). Must be a multiple of num_heads.");
  s.integer(&M::num_layers, "num_layers", at_least(1), at_most(1024), "Number of transformer blocks.");
  s.integer(&M::num_heads, "num_heads", at_least(1), at_most(1024),
            "Attention query heads; head_dim = hidden_size / num_heads must be even (RoPE).");
  s.integer(&M::num_kv_heads, "num_kv_heads", at_least(1), at_most(1024),
            "Key/value heads (grouped-query attention); must divide num_heads. Equal to num_heads: "
            "multi-head attention.");
  s.integer(&M::intermediate_size, "intermediate_size", at_least(0), at_most(1048576),
            "SwiGLU hidden width. 0: 8/3 * hidden_size rounded up to a multiple of 256.");
  s.integer(&M::max_position_embeddings, "max_position_embeddings", at_least(1), at_most(1048576),
            "Longest sequence the model is built for (RoPE tables, KV cache); train.seq_len must not exceed it.");
  s.real(&M::rope_theta, "rope_theta", above(0), unbounded,
         "RoPE base frequency: 10000 (original), 500000 or 1e6 for long context.");
  s.real(&M::rms_norm_eps, "rms_norm_eps", above(0), below(1), "Epsilon inside RMSNorm's square root.");
  s.flag(&M::tie_word_embeddings, "tie_word_embeddings",
         "Share the embedding matrix with the LM head (no lm_head.weight on disk).");
  s.real(&M::init_std, "init_std", above(0), at_most(1),
         "Std of the normal weight init; o_proj and down_proj use init_std / sqrt(2 * num_layers).");

  // ---- mixture of experts ----
  s.needs(Feature::moe);
  s.flag(&M::use_moe, "use_moe", "Replace each block's FFN with a mixture of experts (see moe_pattern).");
  s.integer(&M::num_experts, "num_experts", at_least(1), at_most(4096), "Experts per MoE layer.");
  s.integer(&M::moe_top_k, "moe_top_k", at_least(1), at_most(64),
            "Experts each token is routed to; at most num_experts.");
  s.real(&M::capacity_factor, "capacity_factor", above(0), at_most(64),
         "Expert capacity = ceil(tokens * moe_top_k / num_experts * capacity_factor); overflow tokens "
         "are dropped and pass through the residual.");
  s.real(&M::load_balancing_weight, "load_balancing_weight", at_least(0), at_most(10),
         "Weight of the Switch load-balancing loss num_experts * sum_e f_e * P_e.");
  s.real(&M::routing_temperature, "routing_temperature", above(0), at_most(100),
         "Router logits are divided by it before the softmax: < 1 sharper, > 1 more uniform.");
  s.real(&M::routing_noise_std, "routing_noise_std", at_least(0), at_most(10),
         "Std of Gaussian noise added to the raw router logits in training only, before the temperature; "
         "drawn per (step, micro-batch, layer, token, expert) from train.seed (0: none).");
  s.real(&M::expert_dropout, "expert_dropout", at_least(0), below(1),
         "Training only: each expert of a MoE layer is left out of routing for a whole micro-batch with this "
         "probability (masked out of the router softmax); when fewer than moe_top_k remain, the dropped ones "
         "closest to surviving are restored.");
  s.flag(&M::dropless, "dropless", "No capacity limit: no dropped tokens (the expert GEMMs run as a loop).");
  s.choice(&M::moe_gemm, "moe_gemm", {{"auto"}, {"loop"}, {"grouped"}, {"grouped_tile_rounding"}},
           "Expert GEMMs. loop: one GEMM per expert on its exact rows (reads the row counts back once per "
           "layer); grouped: one batched GEMM over per-expert slabs of capacity rows (no host sync, needs a "
           "capacity); grouped_tile_rounding: slabs rounded up to the 128-row GEMM tile, the capacity raised "
           "to fill them; auto: grouped on a GPU unless dropless, else loop.");
  s.real(&M::router_z_loss_weight, "router_z_loss_weight", at_least(0), at_most(10),
         "Weight of the router z-loss mean(logsumexp(logits)^2) (0: off).");
  s.choice(&M::moe_pattern, "moe_pattern",
           {{"all"}, {"every_2nd"}, {"every_3rd"}, {"every_4th"}, {"sandwich"}},
           "Which layers (0-based) get the MoE FFN: all; every_2nd / every_3rd / every_4th: the layers "
           "with layer % n == n - 1 (layers 1, 3, 5, ... for every_2nd); sandwich: all but the first "
           "dense_start_layers and the last dense_end_layers. The others keep the dense SwiGLU FFN.");
  s.integer(&M::dense_start_layers, "dense_start_layers", at_least(0), at_most(1024),
            "moe_pattern = sandwich: dense layers at the bottom.");
  s.integer(&M::dense_end_layers, "dense_end_layers", at_least(0), at_most(1024),
            "moe_pattern = sandwich: dense layers at the top.");

  // ---- mixture of depths ----
  s.needs(Feature::mod);
  s.flag(&M::use_mod, "use_mod", "Mixture of depths: a router picks which tokens run each MoD layer; "
                                 "the rest skip it through the residual.");
  s.real(&M::mod_capacity_factor, "mod_capacity_factor", above(0), at_most(1),
         "Fraction of each sequence's tokens that run a MoD layer: k = round(factor * seq_len), at least 1.");
  s.choice(&M::mod_routing_type, "mod_routing_type", {{"learned"}, {"static"}, {"random"}},
           "learned: a router scores tokens (top-k per sequence; a predictor decides causally at generation); "
           "static: evenly spaced positions; random: an ablation baseline (evaluation uses the static pattern).");
  s.integer(&M::mod_start_layer, "mod_start_layer", at_least(0), at_most(1023),
            "First layer with MoD routing; less than num_layers.");
  s.integer(&M::mod_end_layer, "mod_end_layer", at_least(-1), at_most(1023),
            "Last layer with MoD routing (inclusive); -1: the last layer.");
  s.integer(&M::mod_every_n, "mod_every_n", at_least(1), at_most(1024),
            "Apply MoD to every n-th layer of [mod_start_layer, mod_end_layer].");
  s.flag(&M::mod_ffn_only, "mod_ffn_only", "Route only the FFN; attention stays dense for all tokens. "
                                           "Combines with use_moe: routed tokens then run the MoE FFN.");
  s.integer(&M::mod_capacity_anneal_steps, "mod_capacity_anneal_steps", at_least(0), unbounded,
            "Steps over which capacity anneals from 1.0 down to mod_capacity_factor (0: start at the target).");

  // ---- multi-token prediction ----
  s.needs(Feature::mtp);
  s.integer(&M::mtp_num_heads, "mtp_num_heads", at_least(0), at_most(16),
            "Extra heads predicting tokens t+2 .. t+1+n (0: off).");
  s.real(&M::mtp_loss_weight, "mtp_loss_weight", at_least(0), at_most(10),
         "Weight of the multi-token prediction loss, averaged over the extra heads.");

  // ---- memory ----
  s.needs(Feature::gradient_checkpointing);
  s.flag(&M::gradient_checkpointing, "gradient_checkpointing",
         "Recompute each block's forward in its backward instead of storing activations.");
  s.needs(Feature::core);
  s.choice(&M::recompute_norms, "recompute_norms", {{"none"}, {"attention"}, {"both"}},
           "rmsnorm outputs the backward recomputes instead of keeping: none (fastest; keeps 2 (tokens, "
           "hidden_size) activations per layer), attention (keeps the FFN's) or both (least memory).");
}

}  // namespace lumina
