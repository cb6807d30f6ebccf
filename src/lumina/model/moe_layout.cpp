#include "lumina/model/moe_layout.h"

#include <algorithm>

#include <fmt/format.h>

#include "lumina/core/error.h"

namespace lumina {

std::vector<uint8_t> moe_layer_routable(const ModelConfig& cfg, int64_t layer) {
  const auto it = cfg.moe_layout.find(layer);
  if (it != cfg.moe_layout.end()) return it->second;
  return std::vector<uint8_t>(static_cast<size_t>(cfg.num_experts), 1);
}

ModelConfig with_expert_added(const ModelConfig& cfg, int64_t layer) {
  ModelConfig out = cfg;
  std::vector<uint8_t> routable = moe_layer_routable(cfg, layer);
  routable.push_back(1);
  out.moe_layout[layer] = std::move(routable);
  return out;
}

ModelConfig with_expert_pruned(const ModelConfig& cfg, int64_t layer, int64_t expert) {
  std::vector<uint8_t> routable = moe_layer_routable(cfg, layer);
  const auto E = static_cast<int64_t>(routable.size());
  LUMINA_CHECK(expert >= 0 && expert < E, "prune expert {} of layer {}: the layer has experts 0..{}", expert, layer,
               E - 1);
  LUMINA_CHECK(routable[static_cast<size_t>(expert)], "prune expert {} of layer {}: it is already pruned", expert,
               layer);
  routable[static_cast<size_t>(expert)] = 0;
  const auto left = std::count(routable.begin(), routable.end(), uint8_t{1});
  LUMINA_CHECK(left >= cfg.moe_top_k,
               "prune expert {} of layer {}: it would leave {} routable experts, fewer than model.moe_top_k = {}",
               expert, layer, left, cfg.moe_top_k);
  ModelConfig out = cfg;
  out.moe_layout[layer] = std::move(routable);
  return out;
}

std::string moe_layout_text(const ModelConfig& cfg) {
  if (cfg.moe_layout.empty()) return fmt::format("{} experts in every MoE layer", cfg.num_experts);
  std::string out;
  for (const auto& [layer, routable] : cfg.moe_layout) {
    std::vector<size_t> pruned;
    for (size_t e = 0; e < routable.size(); ++e)
      if (!routable[e]) pruned.push_back(e);
    out += fmt::format("{}layer {}: {} experts", out.empty() ? "" : "; ", layer, routable.size());
    if (!pruned.empty()) out += fmt::format(", pruned {}", fmt::join(pruned, ", "));
  }
  return out;
}

}  // namespace lumina
