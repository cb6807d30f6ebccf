#pragma once
// What every module's forward/backward needs: the backend, the parameters
// (master copies and gradients) and the weights in compute dtype.
#include "lumina/backend/backend.h"
#include "lumina/model/param_store.h"

namespace lumina {

struct ModelContext {
  Backend* backend = nullptr;
  ParamStore* params = nullptr;
  // Weights in the activation dtype. Equal to params->params_flat() when the
  // compute dtype is the master dtype; otherwise a cast copy refreshed before
  // each forward (same layout, so the same offsets).
  Tensor weights_flat;
  DType act_dtype = DType::f32;   // activations
  DType stat_dtype = DType::f32;  // saved statistics (rstd, lse, losses): f64 on the f64 path, else f32
  // Training-only randomness (MoE routing noise and expert dropout, MoD random
  // routing): off in evaluation and generation. Draws are keyed by
  // (seed, purpose, step, index) through Rng, so a resumed run draws the same.
  bool training = false;
  uint64_t seed = 0;
  int64_t step = 0;      // optimizer step the forward belongs to
  int64_t micro = 0;     // micro-batch index within the step
  // Mixture-of-Depths layers decide per token without seeing later tokens, as
  // generation does (mod.h), instead of top-k over each sequence.
  bool mod_causal = false;
  // Backward only: d(objective) / d(sum of the model's auxiliary losses of the
  // last forward), e.g. the MoE aux + z losses (Transformer::backward sets it).
  double dloss_aux = 0.0;

  Backend& be() const { return *backend; }
  Tensor weight(ParamId id) const { return params->in_layout(weights_flat, id); }
  // Parameter id's gradient for an op that adds into it (zeroed first when this is
  // the step's first write: ParamStore::grad_to_accumulate). GEMMs take beta from
  // ParamStore::grad_beta instead (linear_backward).
  Tensor grad(ParamId id) const { return params->grad_to_accumulate(id); }
};

// The dtype of saved statistics for activations in `act`: f64 on the f64 path, else f32.
inline DType stat_dtype_for(DType act) { return act == DType::f64 ? DType::f64 : DType::f32; }

// y (N,out) = x (N,in) @ W^T (W: (out,in), torch.nn.Linear layout); beta = 1 adds into y.
inline void linear_forward(const ModelContext& c, Tensor y, const Tensor& x, ParamId w, double beta = 0.0) {
  c.be().gemm(y, x, false, c.weight(w), true, 1.0, beta);
}

// y (N,out) = skip (N,out) + x (N,in) @ W^T: a residual connection in the GEMM (skip may be y).
inline void linear_forward_add(const ModelContext& c, Tensor y, const Tensor& x, ParamId w, const Tensor& skip) {
  c.be().gemm_add(y, x, false, c.weight(w), true, skip);
}

// `count` weights declared one after another with one (out, in) shape, as one GEMM
// over their stacked (count*out, in) matrix W = [W_0; W_1; ...]:
//   forward:  y (N, count*out) = x W^T (each weight's outputs side by side in a row);
//   backward: dW += dy^T x (= on the step's first write, ParamStore::grad_beta);
//             dx (N, in) = dy W (+ dx when dx_beta = 1).
inline void stacked_linear_forward(const ModelContext& c, Tensor y, const Tensor& x, ParamId first, int count) {
  c.be().gemm(y, x, false, c.params->stacked(c.weights_flat, first, count), true, 1.0, 0.0);
}
inline void stacked_linear_backward(const ModelContext& c, Tensor dx, const Tensor& dy, const Tensor& x, ParamId first,
                                    int count, double dx_beta = 0.0) {
  const double beta = c.params->grad_beta(first, count);
  c.be().gemm(c.params->stacked(c.params->grads_flat(), first, count), dy, true, x, false, 1.0, beta);
  c.be().gemm(dx, dy, false, c.params->stacked(c.weights_flat, first, count), false, 1.0, dx_beta);
}

// One weight: dW (out,in) += dy^T x (= on the step's first write);  dx (N,in) = dy W (+ dx when dx_beta = 1).
inline void linear_backward(const ModelContext& c, Tensor dx, const Tensor& dy, const Tensor& x, ParamId w,
                            double dx_beta = 0.0) {
  stacked_linear_backward(c, dx, dy, x, w, 1, dx_beta);
}

}  // namespace lumina
