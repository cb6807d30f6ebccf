#pragma once
// OptimConfig: optimizer, learning-rate schedule and loss scaling, as the
// [optim] section of a run config. Plain data; defaults live here, the field
// table (config/fields_optim.cpp) gives each field its range and help.
#include <cstdint>
#include <string>

namespace lumina {

struct OptimConfig {
  // ---- optimizer ---------------------------------------------------------------
  std::string optimizer = "adamw";  // adamw | muon | muon_8bit | galore
  double learning_rate = 3e-4;      // peak learning rate (after warmup)
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;       // decoupled (AdamW); never applied to norms
  double gradient_clip_val = 1.0;  // max global L2 norm of the gradients; 0: no clipping

  // ---- muon (hidden-layer matrices; the rest uses AdamW) ----------------------------
  double muon_learning_rate = 0.02;
  double muon_momentum = 0.95;
  bool muon_nesterov = true;
  int64_t muon_ns_steps = 5;  // Newton-Schulz iterations of the orthogonalisation

  // ---- galore (low-rank gradient projection) --------------------------------------
  int64_t galore_rank = 256;
  int64_t galore_update_freq = 200;  // steps between recomputing the projection
  double galore_scale = 0.25;

  // ---- learning-rate schedule ----------------------------------------------------------
  std::string lr_schedule = "cosine";  // cosine | linear | constant | wsd
  int64_t warmup_steps = 0;            // > 0 wins over warmup_fraction
  double warmup_fraction = 0.02;       // of the total optimizer steps
  double min_lr_ratio = 0.1;           // final lr = min_lr_ratio * learning_rate
  double wsd_decay_fraction = 0.2;     // wsd: fraction of the steps spent decaying at the end

  // ---- dynamic loss scaling (fp16 only) ---------------------------------------------
  double init_scale = 65536.0;  // 2^16
  double scale_factor = 2.0;    // growth on scale_window clean steps, backoff on overflow
  int64_t scale_window = 2000;
  double min_scale = 1.0;

  bool operator==(const OptimConfig&) const = default;
};

}  // namespace lumina
