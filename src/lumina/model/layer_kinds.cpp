#include "lumina/model/layer_kinds.h"

#include "lumina/core/error.h"

namespace lumina {

bool is_moe_layer(const ModelConfig& cfg, int64_t layer) {
  if (!cfg.use_moe) return false;
  const std::string& p = cfg.moe_pattern;
  if (p == "all") return true;
  if (p == "every_2nd") return layer % 2 == 1;
  if (p == "every_3rd") return layer % 3 == 2;
  if (p == "every_4th") return layer % 4 == 3;
  if (p == "sandwich") return layer >= cfg.dense_start_layers && layer < cfg.num_layers - cfg.dense_end_layers;
  fail("model.moe_pattern = \"{}\" is not a pattern: use all, every_2nd, every_3rd, every_4th or sandwich", p);
}

int64_t moe_layer_count(const ModelConfig& cfg) {
  int64_t count = 0;
  for (int64_t l = 0; l < cfg.num_layers; ++l) count += is_moe_layer(cfg, l) ? 1 : 0;
  return count;
}

bool is_mod_layer(const ModelConfig& cfg, int64_t layer) {
  const int64_t end = cfg.mod_end_layer < 0 ? cfg.num_layers - 1 : cfg.mod_end_layer;
  return cfg.use_mod && layer >= cfg.mod_start_layer && layer <= end &&
         (layer - cfg.mod_start_layer) % cfg.mod_every_n == 0;
}

}  // namespace lumina
