#include "lumina/train/moe_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lumina/core/error.h"

namespace lumina {

double utilization_cv(const std::vector<double>& utilization) {
  if (utilization.empty()) return 0.0;
  const auto E = static_cast<double>(utilization.size());
  double mean = 0.0;
  for (double u : utilization) mean += u;
  mean /= E;
  if (mean <= 0.0) return 0.0;
  double var = 0.0;
  for (double u : utilization) var += (u - mean) * (u - mean);
  return std::sqrt(var / E) / mean;
}

void MoeStepStats::add(const ForwardResult& r) {
  if (layers_.empty()) {
    layers_.resize(r.moe_layers.size());
    for (size_t i = 0; i < layers_.size(); ++i) layers_[i].layer = r.moe_layers[i].layer;
  }
  LUMINA_CHECK(r.moe_layers.size() == layers_.size(), "internal: a micro-batch reported {} MoE layers, another {}",
               r.moe_layers.size(), layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const MoeLayerStats& in = r.moe_layers[i];
    Layer& l = layers_[i];
    l.assignments += in.assignments;
    l.dropped += in.stats.tokens_dropped;
    l.aux += in.stats.aux_loss;
    l.z += in.stats.z_loss;
    l.entropy += in.stats.routing_entropy;
    const std::vector<double>& u = in.stats.expert_utilization;
    if (l.utilization.size() < u.size()) l.utilization.resize(u.size(), 0.0);
    for (size_t e = 0; e < u.size(); ++e) l.utilization[e] += u[e];
  }
  micro_batches_ += 1;
}

nlohmann::json MoeStepStats::to_json() const {
  const auto M = static_cast<double>(std::max<int64_t>(micro_batches_, 1));
  const auto L = static_cast<double>(std::max<size_t>(layers_.size(), 1));
  double aux = 0.0, z = 0.0, entropy = 0.0, cv = 0.0;
  int64_t dropped = 0, assignments = 0;
  size_t experts = 0;
  for (const Layer& l : layers_) experts = std::max(experts, l.utilization.size());
  std::vector<double> utilization(experts, 0.0);
  nlohmann::json layers = nlohmann::json::object();
  for (const Layer& l : layers_) {
    std::vector<double> u = l.utilization;
    for (double& v : u) v /= M;
    const double layer_cv = utilization_cv(u);
    layers[std::to_string(l.layer)] = {{"utilization", u},        {"utilization_cv", layer_cv},
                                       {"entropy", l.entropy / M}, {"tokens_dropped", l.dropped},
                                       {"aux_loss", l.aux / M},    {"z_loss", l.z / M}};
    for (size_t e = 0; e < u.size(); ++e) utilization[e] += u[e] / L;
    aux += l.aux / M;
    z += l.z / M;
    entropy += l.entropy / M / L;
    cv += layer_cv / L;
    dropped += l.dropped;
    assignments += l.assignments;
  }
  return {{"aux_loss", aux},
          {"z_loss", z},
          {"entropy", entropy},
          {"tokens_dropped", dropped},
          {"dropped_fraction", assignments > 0 ? static_cast<double>(dropped) / static_cast<double>(assignments) : 0.0},
          {"utilization", utilization},
          {"utilization_cv", cv},
          {"layers", layers}};
}

std::string MoeStepStats::progress_text() const {
  const nlohmann::json j = to_json();
  return fmt::format("moe aux {:.4f} | drop {:.1f}% | entropy {:.2f}", j["aux_loss"].get<double>(),
                     100.0 * j["dropped_fraction"].get<double>(), j["entropy"].get<double>());
}

}  // namespace lumina
