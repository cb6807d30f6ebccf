#pragma once
// Mixture-of-experts feed-forward (Mixtral-style, with Switch capacity and losses):
//   logits (N,E) = x Wr^T;  routing on the host (moe_routing.h): top-k, renormalised
//   weights w, capacity drops;  out_n += sum_{kept (e, w)} w * expert_e(x_n),
//   expert_e(x) = (silu(x W1_e^T) * (x W3_e^T)) W2_e^T.
// x (N,C); Wr (E,C); W1, W3 (E,F,C) gate/up; W2 (E,C,F) down.
//
// Parameters: prefix + "gate.weight" (Wr) and ONE tensor per expert weight,
// prefix + "experts.w1" / "experts.w3" / "experts.w2" with a leading expert
// dim, so grouped GEMM and expert parallelism slice them. The Hugging Face
// export adapter (io/) splits them into Mixtral's per-expert names
// "experts.{j}.w1.weight" etc.
//
// Data flow: kept assignments are gathered per expert into contiguous rows
// (R <= N*k rows, grouped by expert, token order within an expert), each
// expert runs three GEMMs on views of its weight slices, and the weighted
// results are scattered back (added) into the residual. Only the router
// logits, the expert gate/up pre-activations and the host routing are kept
// for backward; the gathered inputs, h and the expert outputs are recomputed.
// The discrete choices (top-k, capacity) are held fixed in backward.
//
// CPU-first: the logits go to the host for routing and gather/scatter is one
// backend copy/axpy per row; a device permute op replaces both for CUDA.
// routing_noise_std and expert_dropout are not implemented yet: the
// constructor rejects non-zero values rather than ignore them.
#include <cstddef>
#include <string>
#include <vector>

#include "lumina/core/arena.h"
#include "lumina/model/context.h"
#include "lumina/model/model_config.h"
#include "lumina/model/moe_routing.h"

namespace lumina {

class MoeFfn {
 public:
  struct Activations {
    Tensor logits;       // (N, E) raw router logits
    Tensor gate, up;     // (N*k, F) expert pre-activations, first R rows used
    MoeRouting routing;  // host: choices, weights, kept rows, statistics
  };
  struct Scratch {
    Tensor xg;                    // (N*k, C) gathered expert inputs
    Tensor y;                     // (N*k, C) expert outputs; in backward d(expert input)
    Tensor dy;                    // (N*k, C) d(expert output)
    Tensor h, dgate, dup, dh;     // (N*k, F)
    Tensor dots;                  // (N*k) dresidual_n . y_r, the gradient of each combine weight
    Tensor dlogits;               // (N, E)
    std::vector<double> host_a, host_b;  // host copies (logits, dots, dlogits)
    std::vector<std::byte> staging;      // host bytes in the activation dtype
  };

  // prefix: "model.layers.{i}.block_sparse_moe." (Hugging Face names).
  MoeFfn(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix);
  Activations plan(Arena& arena, DType act, int64_t N) const;
  Scratch plan_scratch(Arena& arena, DType act, int64_t N) const;

  // residual (N,C) += moe(x). Returns the step's statistics, including the
  // weighted aux and z losses (the caller adds them to the training loss).
  const MoeStats& forward(const ModelContext& c, const Tensor& x, Tensor residual, Activations& a, Scratch& s) const;
  // dx (N,C) = d/dx given dresidual (N,C) and dloss_scale = d(total loss)/d(aux + z); overwritten.
  // Parameter gradients accumulate (+=), the router's including the aux and z losses.
  void backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, double dloss_scale,
                const Activations& a, Scratch& s) const;

  const MoeRoutingParams& routing_params() const { return routing_; }

  ParamId router, w1, w3, w2;

 private:
  MoeRoutingParams routing_;
  int64_t hidden_, ffn_;
};

}  // namespace lumina
