// [optim]: optimizer, learning-rate schedule, loss scaling (OptimConfig, optim/optim_config.h).
#include "lumina/config/field_builder.h"

namespace lumina {

void add_optim_fields(std::vector<Field>& fields) {
  using O = OptimConfig;
  SectionBuilder<O> s(fields, "optim", &RunConfig::optim);

  s.choice(&O::optimizer, "optimizer",
           {{"adamw"}, {"muon", Feature::muon}, {"muon_8bit", Feature::muon_8bit}, {"galore", Feature::galore}},
           "adamw; muon (orthogonalised momentum for hidden matrices, AdamW for the rest); muon_8bit "
           "(muon with 8-bit state); galore (AdamW on a low-rank projection of the gradients).");
  s.real(&O::learning_rate, "learning_rate", above(0), at_most(10), "Peak learning rate, reached after warmup.");
  s.real(&O::beta1, "beta1", at_least(0), below(1), "AdamW first-moment decay.");
  s.real(&O::beta2, "beta2", at_least(0), below(1), "AdamW second-moment decay.");
  s.real(&O::eps, "eps", above(0), below(1), "AdamW denominator epsilon.");
  s.real(&O::weight_decay, "weight_decay", at_least(0), at_most(10),
         "Decoupled weight decay; never applied to norm weights.");
  s.real(&O::gradient_clip_val, "gradient_clip_val", at_least(0), unbounded,
         "Clip the global gradient L2 norm to this value (0: no clipping).");

  s.needs(Feature::muon);
  s.real(&O::muon_learning_rate, "muon_learning_rate", above(0), at_most(10),
         "Learning rate of the Muon-updated matrices.");
  s.real(&O::muon_momentum, "muon_momentum", at_least(0), below(1), "Muon momentum.");
  s.flag(&O::muon_nesterov, "muon_nesterov", "Nesterov momentum in Muon.");
  s.integer(&O::muon_ns_steps, "muon_ns_steps", at_least(1), at_most(20),
            "Newton-Schulz iterations orthogonalising each update.");

  s.needs(Feature::galore);
  s.integer(&O::galore_rank, "galore_rank", at_least(1), at_most(65536),
            "Rank of the GaLore gradient projection; below the smaller side of each projected matrix.");
  s.integer(&O::galore_update_freq, "galore_update_freq", at_least(1), unbounded,
            "Optimizer steps between recomputing the projection (SVD of the gradient).");
  s.real(&O::galore_scale, "galore_scale", above(0), at_most(10), "Scale applied to the projected-back update.");

  s.needs(Feature::core);
  s.choice(&O::lr_schedule, "lr_schedule", {{"cosine"}, {"linear"}, {"constant"}, {"wsd"}},
           "After warmup: cosine or linear decay to min_lr_ratio * learning_rate, constant, or wsd "
           "(warmup-stable-decay: constant, then linear decay over the last wsd_decay_fraction of the steps).");
  s.integer(&O::warmup_steps, "warmup_steps", at_least(0), unbounded,
            "Linear warmup length in optimizer steps; when > 0 it wins over warmup_fraction.");
  s.real(&O::warmup_fraction, "warmup_fraction", at_least(0), below(1),
         "Linear warmup length as a fraction of the total optimizer steps (used when warmup_steps = 0).");
  s.real(&O::min_lr_ratio, "min_lr_ratio", at_least(0), at_most(1),
         "Final learning rate as a fraction of learning_rate (cosine, linear, wsd).");
  s.real(&O::wsd_decay_fraction, "wsd_decay_fraction", above(0), at_most(1),
         "wsd: fraction of the total steps spent in the final decay.");

  s.needs(Feature::fp16);
  s.real(&O::init_scale, "init_scale", above(0), unbounded, "fp16 dynamic loss scaling: initial scale (2^16).");
  s.real(&O::scale_factor, "scale_factor", above(1), unbounded,
         "fp16: the scale is multiplied by it after scale_window clean steps and divided by it on overflow.");
  s.integer(&O::scale_window, "scale_window", at_least(1), unbounded,
            "fp16: overflow-free steps before the scale grows.");
  s.real(&O::min_scale, "min_scale", above(0), unbounded, "fp16: the scale never drops below it.");
}

}  // namespace lumina
