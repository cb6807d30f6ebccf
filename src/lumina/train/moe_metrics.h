#pragma once
// MoE statistics of one optimizer step, from the forward passes of its
// micro-batches (no extra pass), for the step's metrics.jsonl row and a short
// part of the progress line. The row's "moe" object:
//   aux_loss, z_loss    weighted losses summed over the MoE layers, mean over the
//                       micro-batches (the step objective's share, transformer.h)
//   entropy             routing entropy in nats, mean over layers and micro-batches
//   tokens_dropped      assignments dropped by capacity, all layers and micro-batches
//   dropped_fraction    tokens_dropped / assignments routed (tokens * moe_top_k per layer)
//   utilization         (E) each expert's share of the assignments, mean over layers
//                       (sums to 1; layers with fewer experts count 0 for the missing ones)
//   utilization_cv      the spread: coefficient of variation std / mean of a layer's
//                       utilization over its experts (0: perfectly balanced; sqrt(E - 1):
//                       everything on one expert), mean over layers
//   layers              {"<layer index>": {utilization, utilization_cv, entropy,
//                       tokens_dropped, aux_loss, z_loss}} for every MoE layer
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lumina/model/transformer.h"

namespace lumina {

// std / mean of the utilization over the experts (population std); 0 for an empty or all-zero vector.
double utilization_cv(const std::vector<double>& utilization);

class MoeStepStats {
 public:
  void add(const ForwardResult& micro_batch);  // one micro-batch's forward
  bool empty() const { return layers_.empty(); }
  nlohmann::json to_json() const;
  std::string progress_text() const;  // "moe aux 0.0102 | drop 1.3% | entropy 1.95"

 private:
  struct Layer {
    int64_t layer = 0, assignments = 0, dropped = 0;
    double aux = 0.0, z = 0.0, entropy = 0.0;  // sums over micro-batches
    std::vector<double> utilization;           // sum over micro-batches
  };
  std::vector<Layer> layers_;
  int64_t micro_batches_ = 0;
};

}  // namespace lumina
