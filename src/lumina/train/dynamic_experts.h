#pragma once
// Dynamic experts: a MoE layer gains an expert or has one pruned, mid-run.
//
// The model and its AdamW are rebuilt for the new expert layout
// (ModelConfig::moe_layout, model/moe_layout.h) and every flat buffer moves
// over by parameter name (copy_by_name): weights, gradients and both AdamW
// moments; the step counter is kept. Rebuilding briefly holds both models.
//
// add_expert(layer, source): the new expert j (= the layer's old count)
// starts as a near-copy of `source`:
//   w1/w3/w2[j] = w[source] + N(0, (kNewExpertNoise * init_std_w)^2)
//   router row j = router row source + N(0, (kNewExpertNoise * init_std)^2)
// drawn from Rng(seed, expert_init, step), index keyed by the layer and the
// tensor; its gradients and AdamW moments start at zero. The copied router
// row gives j nearly the source's logit, so j takes over part of the
// source's tokens and returns nearly the same output: with top-1 routing the
// model's outputs move only by the noise; with top-k > 1 a token that ranked
// the source first now ranks the copy second and loses its old second expert.
//
// prune_expert(layer, e): the expert stays in the tensors (and checkpoints)
// but is never routed, and its router row and expert slices are frozen
// (ParamStore::freeze): zero gradients, and AdamW neither updates nor decays them.
#include <cstdint>
#include <memory>
#include <vector>

#include "lumina/model/transformer.h"
#include "lumina/optim/adamw.h"

namespace lumina {

// The new expert's noise std relative to the init std of each tensor.
inline constexpr double kNewExpertNoise = 0.01;

// A model in training and its optimizer: rebuilt together when the expert layout changes.
struct TrainingModel {
  std::unique_ptr<Transformer> model;
  std::unique_ptr<AdamW> optimizer;
  int64_t batch_size = 0, seq_len = 0;  // the micro-batch shape the model is prepared for
};

// Builds cfg's model on `backend` (f32 master weights, act_dtype activations),
// initialised from seed, prepared for (B, T) micro-batches, with a fresh AdamW.
TrainingModel build_training_model(const ModelConfig& cfg, Backend& backend, DType act_dtype, uint64_t seed, int64_t B,
                                   int64_t T, const AdamWConfig& adamw);

// Rebuilds m for `next`, the same model with another expert layout, moving all
// state by name; tensors that grew get zeros in their new rows.
void relayout(TrainingModel& m, const ModelConfig& next);

void add_expert(TrainingModel& m, int64_t layer, int64_t source, uint64_t seed, int64_t step);
void prune_expert(TrainingModel& m, int64_t layer, int64_t expert);

// The routable expert with the largest utilization (ties: the lower id).
int64_t busiest_expert(const std::vector<double>& utilization, const std::vector<uint8_t>& routable);

}  // namespace lumina
