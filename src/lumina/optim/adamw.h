#pragma once
// AdamW over a ParamStore's flat buffers (decoupled weight decay, Loshchilov &
// Hutter 2019): m and v are f32 (or f64) flat buffers of the same layout as
// the parameters; weight decay is skipped for parameters declared without it
// (norm weights). Frozen ranges of the store (ParamStore::frozen: pruned
// experts) are not touched at all: no update, no decay, their m and v kept.
#include "lumina/backend/backend.h"
#include "lumina/model/param_store.h"

namespace lumina {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(ParamStore& params, const AdamWConfig& cfg);

  // One update with learning rate lr; grad_scale multiplies every gradient first
  // (global-norm clipping, loss-scale undo). Increments the step counter.
  // compute_copy: empty, or a flat tensor laid out as the parameters (the model's
  // compute-dtype weights, Transformer::compute_weights) that receives every
  // updated range rounded to its dtype in the same pass; frozen ranges do not
  // change, so their copy is left as it is.
  void step(double lr, double grad_scale, Tensor compute_copy = Tensor{});

  const AdamWConfig& config() const { return cfg_; }
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  Tensor m_flat() const { return m_; }
  Tensor v_flat() const { return v_; }

 private:
  ParamStore& params_;
  AdamWConfig cfg_;
  Buffer m_buffer_, v_buffer_;
  Tensor m_, v_;
  int64_t step_ = 0;
};

// Global L2 norm of all gradients (f64 accumulation).
double grad_global_norm(ParamStore& params);
// Factor that scales gradients to norm max_norm when they exceed it (1 otherwise;
// max_norm <= 0 disables clipping).
double clip_scale(double grad_norm, double max_norm);

}  // namespace lumina
