#include "lumina/train/mod_metrics.h"

#include <fmt/format.h>

namespace lumina {

void ModStepStats::add(const ForwardResult& r) {
  if (r.mod_layers.empty()) return;
  if (layers_.empty()) {
    for (const ModLayerStats& l : r.mod_layers) layers_.push_back({l.layer});
  }
  LUMINA_CHECK(layers_.size() == r.mod_layers.size(), "internal: {} MoD layers in one micro-batch, {} in another",
               r.mod_layers.size(), layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const ModLayerStats& l = r.mod_layers[i];
    layers_[i].tokens += l.tokens;
    layers_[i].processed += l.processed;
    layers_[i].predictor_loss += l.predictor_loss;
    layers_[i].predictor_accuracy += l.predictor_accuracy;
  }
  depth_ += r.mod_average_depth;
  flops_saved_ += r.mod_flops_saved;
  micro_batches_ += 1;
}

nlohmann::json ModStepStats::to_json() const {
  const auto micro = static_cast<double>(micro_batches_);
  const auto layers = static_cast<double>(layers_.size());
  nlohmann::json per_layer = nlohmann::json::object();
  double capacity = 0.0, predictor_loss = 0.0, predictor_accuracy = 0.0;
  int64_t processed = 0, skipped = 0;
  for (const Layer& l : layers_) {
    const double c = static_cast<double>(l.processed) / static_cast<double>(l.tokens);
    nlohmann::json j = {{"capacity", c}, {"tokens_processed", l.processed}, {"tokens_skipped", l.tokens - l.processed}};
    if (learned_) {
      j["predictor_loss"] = l.predictor_loss / micro;
      j["predictor_accuracy"] = l.predictor_accuracy / micro;
    }
    per_layer[std::to_string(l.layer)] = j;
    capacity += c / layers;
    predictor_loss += l.predictor_loss / micro / layers;
    predictor_accuracy += l.predictor_accuracy / micro / layers;
    processed += l.processed;
    skipped += l.tokens - l.processed;
  }
  nlohmann::json out = {{"capacity", capacity},          {"tokens_processed", processed},
                        {"tokens_skipped", skipped},     {"average_depth", depth_ / micro},
                        {"flops_saved", flops_saved_ / micro}};
  if (learned_) {
    out["predictor_loss"] = predictor_loss;
    out["predictor_accuracy"] = predictor_accuracy;
  }
  out["layers"] = per_layer;
  return out;
}

std::string ModStepStats::progress_text() const {
  return fmt::format("mod depth {:.2f}/{} | flops -{:.1f}%", depth_ / static_cast<double>(micro_batches_), num_layers_,
                     100.0 * flops_saved_ / static_cast<double>(micro_batches_));
}

}  // namespace lumina
