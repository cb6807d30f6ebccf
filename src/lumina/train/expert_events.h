#pragma once
// train.expert_events: scheduled dynamic-expert changes (dynamic_experts.h).
// Each entry is one of
//   "add <layer> @ <step>"            a new expert in MoE layer <layer>, a near-copy
//                                     of the layer's busiest routable expert
//   "prune <layer> <expert> @ <step>" expert <expert> of layer <layer> is pruned
// applied by the trainer before the optimizer step that follows the first
// <step> steps (so metrics row <step> + 1 is the first with the change);
// entries of the same step apply in list order. A new expert takes the next
// index of its layer, so a later entry can prune it. The busiest expert is the
// one with the largest utilization on the step's first micro-batch under
// evaluation routing (no noise, no dropout): a function of the weights and the
// data, so a resumed run picks the same one.
#include <cstdint>
#include <string>
#include <vector>

#include "lumina/model/model_config.h"
#include "lumina/train/dynamic_experts.h"

namespace lumina {

struct ExpertEvent {
  enum class Kind { add, prune };
  Kind kind = Kind::add;
  int64_t layer = 0;
  int64_t expert = -1;  // prune only
  int64_t step = 0;
  std::string text;     // the config entry, for messages
};

// Parses the entries, sorted by step (stable: list order within a step). Errors
// name train.expert_events and the bad entry.
std::vector<ExpertEvent> parse_expert_events(const std::vector<std::string>& entries);

// Parses and checks the entries against the model: MoE layers only, experts that
// exist (counting earlier adds) and are not pruned yet, at least moe_top_k
// routable experts left.
void validate_expert_events(const std::vector<std::string>& entries, const ModelConfig& model);

// `base` with every event of a step before `step` applied: the expert layout a
// run has when it starts step `step`.
ModelConfig expert_layout_at(const ModelConfig& base, const std::vector<ExpertEvent>& events, int64_t step);

// Applies the events of step `step` to m, in order, logging each. tokens and
// targets (B*T each): the step's first micro-batch, which picks the busiest
// expert that an "add" copies.
void apply_expert_events(TrainingModel& m, const std::vector<ExpertEvent>& events, int64_t step, uint64_t seed,
                         const int32_t* tokens, const int32_t* targets);

// Throws when a checkpoint of step `step` written with the expert layout of
// `resumed` cannot come from `base` and its events (another num_experts or
// other train.expert_events before `step`); `checkpoint` names it.
void check_resumed_expert_layout(const ModelConfig& resumed, const ModelConfig& base,
                                 const std::vector<ExpertEvent>& events, int64_t step, const std::string& checkpoint);

}  // namespace lumina
