#pragma once
// MoD statistics of one optimizer step, from the forward passes of its
// micro-batches (no extra pass), for the step's metrics.jsonl row and a short
// part of the progress line. The row's "mod" object:
//   capacity            tokens that ran a MoD layer's routed part / tokens reaching it,
//                       mean over the MoD layers and micro-batches
//   tokens_processed    routed tokens, summed over the MoD layers and micro-batches
//   tokens_skipped      tokens that passed a MoD layer unchanged, same sums
//   average_depth       layers run per token (dense layers count 1), mean over micro-batches
//   flops_saved         fraction of the decoder layers' forward FLOPs saved against dense,
//                       mean over micro-batches (from the shapes that ran, model/mod.h)
//   predictor_loss      learned routing: the causal predictors' mean BCE, mean over layers
//   predictor_accuracy  learned routing: fraction of tokens whose predictor decision
//                       matches the top-k selection, mean over layers
//   layers              {"<layer index>": {capacity, tokens_processed, tokens_skipped
//                       [, predictor_loss, predictor_accuracy]}} for every MoD layer
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lumina/model/transformer.h"

namespace lumina {

class ModStepStats {
 public:
  ModStepStats(bool learned, int64_t num_layers) : learned_(learned), num_layers_(num_layers) {}
  void add(const ForwardResult& micro_batch);  // one micro-batch's forward
  bool empty() const { return layers_.empty(); }
  nlohmann::json to_json() const;
  std::string progress_text() const;  // "mod depth 1.50/2 | flops -37.5%": average depth of num_layers

 private:
  struct Layer {
    int64_t layer = 0, tokens = 0, processed = 0;
    double predictor_loss = 0.0, predictor_accuracy = 0.0;  // sums over micro-batches
  };
  bool learned_;
  int64_t num_layers_;
  std::vector<Layer> layers_;
  int64_t micro_batches_ = 0;
  double depth_ = 0.0, flops_saved_ = 0.0;  // sums over micro-batches
};

}  // namespace lumina
