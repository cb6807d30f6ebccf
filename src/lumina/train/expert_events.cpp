#include "lumina/train/expert_events.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <sstream>

#include "lumina/core/error.h"
#include "lumina/core/log.h"
#include "lumina/model/layer_kinds.h"
#include "lumina/model/moe_layout.h"

namespace lumina {

namespace {

constexpr const char* kSyntax = "use \"add <layer> @ <step>\" or \"prune <layer> <expert> @ <step>\"";

bool parse_count(const std::string& word, int64_t& out) {
  const char* end = word.data() + word.size();
  const auto [ptr, ec] = std::from_chars(word.data(), end, out);
  return ec == std::errc() && ptr == end && out >= 0;
}

ExpertEvent parse_one(const std::string& entry) {
  std::istringstream in(entry);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  ExpertEvent e;
  e.text = entry;
  const bool add = words.size() == 4 && words[0] == "add", prune = words.size() == 5 && words[0] == "prune";
  LUMINA_CHECK(add || prune, "train.expert_events entry \"{}\" is not an event: {}", entry, kSyntax);
  e.kind = add ? ExpertEvent::Kind::add : ExpertEvent::Kind::prune;
  const size_t at = words.size() - 2;
  LUMINA_CHECK(words[at] == "@", "train.expert_events entry \"{}\": expected \"@ <step>\" at the end; {}", entry,
               kSyntax);
  LUMINA_CHECK(parse_count(words[1], e.layer), "train.expert_events entry \"{}\": layer \"{}\" is not a number >= 0",
               entry, words[1]);
  if (prune)
    LUMINA_CHECK(parse_count(words[2], e.expert),
                 "train.expert_events entry \"{}\": expert \"{}\" is not a number >= 0", entry, words[2]);
  LUMINA_CHECK(parse_count(words[at + 1], e.step), "train.expert_events entry \"{}\": step \"{}\" is not a number >= 0",
               entry, words[at + 1]);
  return e;
}

ModelConfig apply(const ModelConfig& cfg, const ExpertEvent& e) {
  LUMINA_CHECK(e.layer < cfg.num_layers && is_moe_layer(cfg, e.layer),
               "train.expert_events entry \"{}\": layer {} is not a MoE layer of this model (model.num_layers = {}, "
               "use_moe = {}, moe_pattern = \"{}\")",
               e.text, e.layer, cfg.num_layers, cfg.use_moe, cfg.moe_pattern);
  try {
    return e.kind == ExpertEvent::Kind::add ? with_expert_added(cfg, e.layer)
                                            : with_expert_pruned(cfg, e.layer, e.expert);
  } catch (const Error& err) {
    throw err.with_context(fmt::format("train.expert_events entry \"{}\"", e.text));
  }
}

}  // namespace

std::vector<ExpertEvent> parse_expert_events(const std::vector<std::string>& entries) {
  std::vector<ExpertEvent> events;
  for (const std::string& entry : entries) events.push_back(parse_one(entry));
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return events;
}

void validate_expert_events(const std::vector<std::string>& entries, const ModelConfig& model) {
  expert_layout_at(model, parse_expert_events(entries), std::numeric_limits<int64_t>::max());
}

void apply_expert_events(TrainingModel& m, const std::vector<ExpertEvent>& events, int64_t step, uint64_t seed,
                         const int32_t* tokens, const int32_t* targets) {
  for (const ExpertEvent& e : events) {
    if (e.step != step) continue;
    if (e.kind == ExpertEvent::Kind::prune) {
      prune_expert(m, e.layer, e.expert);
      log_info("step {}: \"{}\": expert {} of layer {} pruned (frozen, no longer routed)", step, e.text, e.expert,
               e.layer);
      continue;
    }
    // The busiest expert under evaluation routing on the step's first micro-batch.
    m.model->set_training_step(false, seed, step, 0);
    const ForwardResult r = m.model->forward(tokens, targets, 0.0);
    const auto stats = std::find_if(r.moe_layers.begin(), r.moe_layers.end(),
                                    [&](const MoeLayerStats& s) { return s.layer == e.layer; });
    LUMINA_CHECK(stats != r.moe_layers.end(), "\"{}\": layer {} is not a MoE layer", e.text, e.layer);
    const std::vector<uint8_t> routable = moe_layer_routable(m.model->config(), e.layer);
    const int64_t source = busiest_expert(stats->stats.expert_utilization, routable);
    add_expert(m, e.layer, source, seed, step);
    log_info("step {}: \"{}\": layer {} gets expert {}, a near-copy of its busiest expert {} (utilization {:.3f})",
             step, e.text, e.layer, routable.size(), source,
             stats->stats.expert_utilization[static_cast<size_t>(source)]);
  }
}

void check_resumed_expert_layout(const ModelConfig& resumed, const ModelConfig& base,
                                 const std::vector<ExpertEvent>& events, int64_t step, const std::string& checkpoint) {
  const ModelConfig expected = expert_layout_at(base, events, step);
  LUMINA_CHECK(resumed.moe_layout == expected.moe_layout,
               "checkpoint {} has experts {}, but this config gives {} at step {} (model.num_experts = {} and the "
               "train.expert_events before step {}): resume with the config the checkpoint was written with",
               checkpoint, moe_layout_text(resumed), moe_layout_text(expected), step, base.num_experts, step);
}

ModelConfig expert_layout_at(const ModelConfig& base, const std::vector<ExpertEvent>& events, int64_t step) {
  ModelConfig cfg = base;
  for (const ExpertEvent& e : events)
    if (e.step < step) cfg = apply(cfg, e);
  return cfg;
}

}  // namespace lumina
