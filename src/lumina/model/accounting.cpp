#include "lumina/model/accounting.h"

namespace lumina {

ParamCounts count_params(const ModelConfig& cfg) {
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size, L = cfg.num_layers, F = cfg.ffn_size();
  const int64_t D = cfg.head_dim();
  ParamCounts p;
  p.embedding = V * C;
  p.lm_head = cfg.tie_word_embeddings ? 0 : V * C;
  p.norms = (2 * L + 1) * C;
  p.attention = L * (2 * C * cfg.num_heads * D + 2 * C * cfg.num_kv_heads * D);
  p.ffn = L * 3 * C * F;
  p.total = p.embedding + p.lm_head + p.norms + p.attention + p.ffn;
  p.active_matmul = p.attention + p.ffn + V * C;
  return p;
}

double train_flops_per_token(const ModelConfig& cfg, int64_t seq_len) {
  const ParamCounts p = count_params(cfg);
  return 6.0 * static_cast<double>(p.active_matmul) +
         12.0 * static_cast<double>(cfg.num_layers * cfg.hidden_size * seq_len);
}

}  // namespace lumina
