#include "lumina/model/accounting.h"

#include "lumina/model/layer_kinds.h"
#include "lumina/model/mod_routing.h"
#include "lumina/model/moe_layout.h"

namespace lumina {

ParamCounts count_params(const ModelConfig& cfg) {
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size, L = cfg.num_layers, F = cfg.ffn_size();
  const int64_t D = cfg.head_dim();
  const int64_t swiglu = 3 * C * F;  // gate, up, down of one SwiGLU FFN (dense or one expert)
  ParamCounts p;
  p.embedding = V * C;
  p.lm_head = cfg.tie_word_embeddings ? 0 : V * C;
  p.norms = (2 * L + 1) * C;
  p.attention = L * (2 * C * cfg.num_heads * D + 2 * C * cfg.num_kv_heads * D);
  int64_t active_ffn = 0;  // FFN weights one token passes through, all layers
  for (int64_t l = 0; l < L; ++l) {
    if (is_moe_layer(cfg, l)) {
      const auto E = static_cast<int64_t>(moe_layer_routable(cfg, l).size());
      p.moe_layers += 1;
      p.routers += E * C;
      p.experts += E * swiglu;
      active_ffn += E * C + cfg.moe_top_k * swiglu;
    } else {
      p.ffn += swiglu;
      active_ffn += swiglu;
    }
    if (is_mod_layer(cfg, l)) {
      p.mod_layers += 1;
      if (cfg.mod_routing_type == "learned") p.mod_routers += 2 * C;
    }
  }
  p.total = p.embedding + p.lm_head + p.norms + p.attention + p.ffn + p.routers + p.experts + p.mod_routers;
  p.active = p.embedding + p.lm_head + p.norms + p.attention + active_ffn + p.mod_routers;
  p.active_matmul = p.attention + active_ffn + V * C;
  return p;
}

double train_flops_per_token(const ModelConfig& cfg, int64_t seq_len) {
  const ParamCounts p = count_params(cfg);
  return 6.0 * static_cast<double>(p.active_matmul) +
         12.0 * static_cast<double>(cfg.num_layers * cfg.hidden_size * seq_len);
}

double mod_train_flops_per_token(const ModelConfig& cfg, int64_t seq_len) {
  double flops = train_flops_per_token(cfg, seq_len);
  if (!cfg.use_mod) return flops;
  const auto C = static_cast<double>(cfg.hidden_size), T = static_cast<double>(seq_len);
  const auto D = static_cast<double>(cfg.head_dim()), F = static_cast<double>(cfg.ffn_size());
  const double f = static_cast<double>(mod_capacity(seq_len, cfg.mod_capacity_factor)) / T;
  const double attention_weights =
      2.0 * C * static_cast<double>(cfg.num_heads) * D + 2.0 * C * static_cast<double>(cfg.num_kv_heads) * D;
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    if (!is_mod_layer(cfg, l)) continue;
    const double experts = static_cast<double>(moe_layer_routable(cfg, l).size());
    const double ffn_weights =
        is_moe_layer(cfg, l) ? experts * C + static_cast<double>(cfg.moe_top_k) * 3.0 * C * F : 3.0 * C * F;
    if (cfg.mod_ffn_only)
      flops -= 6.0 * (1.0 - f) * ffn_weights;
    else
      flops -= 6.0 * (1.0 - f) * (attention_weights + ffn_weights) + 12.0 * C * T * (1.0 - f * f);
    if (cfg.mod_routing_type == "learned") flops += 6.0 * 2.0 * C;
  }
  return flops;
}

}  // namespace lumina
