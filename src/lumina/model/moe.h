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
// Training only (ModelContext::training): Gaussian routing noise on the logits
// and expert dropout, drawn from (seed, step, micro, layer) (moe_routing.h).
// Pruned experts (ModelConfig::moe_layout) are never routed and their slices
// of the router and expert tensors are frozen in the ParamStore; they receive
// exactly zero gradient (no rows; their router logit is masked, p = 0).
//
// CPU-first: the logits go to the host for routing; the row gathers are one
// embedding-lookup op each, but the weighted scatter-add back, the combine
// weights' gradients (dots) and the row weighting in backward are still one
// tiny backend op per row (a device permute/unpermute op should replace them).
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
    Tensor logits;       // (N, E) raw router logits (E: this layer's experts)
    Tensor gate, up;     // (N*k, F) expert pre-activations, first R rows used
    Tensor row_token;    // (N*k) i32 on the device: routing.row_token, for the row gathers
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
    std::vector<int32_t> host_rows;      // routing.row_token as i32, staged for the device
  };

  // prefix: "model.layers.{i}.block_sparse_moe." (Hugging Face names); layer: i, which
  // keys the training draws and picks the layer's experts from cfg.moe_layout.
  MoeFfn(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix, int64_t layer);
  Activations plan(Arena& arena, DType act, int64_t N) const;
  Scratch plan_scratch(Arena& arena, DType act, int64_t N) const;
  // a and s may be planned for more tokens than N, and s for a layer with more
  // experts (one scratch serves all layers): the leading parts are used.

  // residual (N,C) += moe(x). Returns the step's statistics, including the
  // weighted aux and z losses (the caller adds them to the training loss).
  const MoeStats& forward(const ModelContext& c, const Tensor& x, Tensor residual, Activations& a, Scratch& s) const;
  // dx (N,C) = d/dx given dresidual (N,C) and dloss_scale = d(total loss)/d(aux + z); overwritten.
  // Parameter gradients accumulate (+=), the router's including the aux and z losses.
  void backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, double dloss_scale,
                const Activations& a, Scratch& s) const;

  const MoeRoutingParams& routing_params() const { return routing_; }
  int64_t layer() const { return layer_; }

  ParamId router, w1, w3, w2;

 private:
  MoeRoutingParams routing_;
  int64_t layer_, hidden_, ffn_;
};

}  // namespace lumina
