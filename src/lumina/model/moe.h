#pragma once
// Mixture-of-experts feed-forward (Mixtral-style, with Switch capacity and losses):
//   logits (N,E) = x Wr^T;  routing (Backend::moe_router_forward): top-k,
//   renormalised weights w, capacity drops (moe_dispatch);
//   out_n += sum_{kept (e, w)} w * expert_e(x_n),
//   expert_e(x) = (silu(x W1_e^T) * (x W3_e^T)) W2_e^T.
// x (N,C); Wr (E,C); W1, W3 (E,F,C) gate/up; W2 (E,C,F) down.
// The routing math is moe_routing.h's (its host functions are the oracle of the ops).
//
// Parameters: prefix + "gate.weight" (Wr) and ONE tensor per expert weight,
// prefix + "experts.w1" / "experts.w3" / "experts.w2" with a leading expert
// dim, so grouped GEMM and expert parallelism slice them.
//
// Data flow, all on the device (no per-token host work): router -> dispatch
// (kept assignments grouped into expert-contiguous rows) -> gather the rows'
// inputs xg -> expert GEMMs -> weighted combine added into the residual.
// Backward: combine backward (dy rows, combine-weight gradients), expert
// GEMMs, an unweighted combine of the rows' input gradients, router backward.
// xg, gate, up, h and y are kept for backward. The discrete choices (top-k,
// capacity) are held fixed in backward.
//
// Expert GEMM variants (ModelConfig::moe_gemm):
//   loop    rows packed by expert; one GEMM per expert on its rows. The
//           per-expert row counts are read back to the host once per forward
//           (one synchronisation per layer); backward reuses them. On a GPU each
//           expert's group is rounded up to 128 rows (zero rows), so GEMM shapes
//           recur across steps and their tuned algorithms are reused.
//   grouped every expert owns a slab of S = round_up(capacity, 8) rows (unused
//           rows are zero) and each GEMM is one batched call over the E slabs:
//           no host synchronisation; the padding costs (E S - kept rows) rows of
//           compute. Needs a capacity (not dropless). With expert dropout the
//           capacity is clamped to the slab sized for all routable experts.
//   grouped_tile_rounding  grouped with S rounded up to the GEMM tile (128 rows)
//           and the capacity raised to S: the tile's rows compute anyway, so
//           they take tokens that would have been dropped.
//   auto    grouped on a GPU unless dropless, else loop.
//
// Training only (ModelContext::training): Gaussian routing noise on the logits
// and expert dropout, drawn on the host from (seed, step, micro, layer)
// (moe_routing.h) and uploaded (no synchronisation). Pruned experts
// (ModelConfig::moe_layout) are never routed and their slices of the router and
// expert tensors are frozen in the ParamStore; they receive exactly zero gradient.
//
// Statistics (utilization, entropy, drops, aux and z losses) stay on the device
// until collect_stats(), which the Transformer calls once the forward pass is queued.
#include <cstddef>
#include <string>
#include <vector>

#include "lumina/core/arena.h"
#include "lumina/model/context.h"
#include "lumina/model/model_config.h"
#include "lumina/model/moe_routing.h"

namespace lumina {

enum class MoeGemm { loop, grouped, grouped_tile_rounding };

// How one pass lays out its expert rows (host values).
struct MoeLayout {
  MoeGemm gemm = MoeGemm::loop;
  int64_t capacity = 0;      // per expert, after the variant's clamping / rounding
  int64_t group_stride = 0;  // slab rows per expert (grouped variants), 0 when packed
  int64_t row_align = 1;     // packed groups are rounded up to this many rows
  int64_t rows = 0;          // expert rows the pass uses (R)
};

// The routing of the last forward, downloaded (tests, diagnostics).
struct MoeRoutingSnapshot {
  std::vector<int32_t> choice;    // (N, k)
  std::vector<int32_t> slot_row;  // (N, k), -1 where dropped
  std::vector<int32_t> assigned;  // (E)
};

class MoeFfn {
 public:
  struct Activations {
    Tensor logits;                    // (N, E) act: raw router logits (E: this layer's experts)
    Tensor probs, lse, weight, sums;  // (N, E), (N), (N, k), (E + 2) stat (Backend::moe_router_forward)
    Tensor choice, slot_row;          // (N, k) i32
    Tensor row_token;                 // (R) i32
    Tensor group_begin, assigned;     // (E + 1), (E) i32
    Tensor available;                 // (E) i32: experts this pass may choose
    Tensor xg, y;                     // (R, C) expert inputs and outputs
    Tensor gate, up, h;               // (R, F)
    // host: the pass's shape and layout, its available experts, per-expert rows (loop)
    int64_t tokens = 0, available_experts = 0, experts_dropped = 0;
    MoeLayout layout;
    std::vector<uint8_t> available_host;  // (E)
    std::vector<int32_t> group_begin_host;  // (E + 1) read back (loop)
    std::vector<int32_t> available_i32;     // (E) staged for upload
    std::vector<int32_t> assigned_host;     // (E) read back by collect_stats
    MoeStats stats;                       // filled by collect_stats
  };
  struct Scratch {
    Tensor noise;                  // (N, E) stat: routing noise (training, noise_std > 0)
    Tensor dy, dxg;                // (R, C): d(expert output), d(expert input)
    Tensor dh, dgate, dup;         // (R, F)
    Tensor dweight;                // (N, k) stat
    Tensor dlogits;                // (N, E) act
    std::vector<double> host_a, host_b;  // host values (noise, statistics)
    std::vector<std::byte> staging;      // host bytes in a device dtype
  };

  // prefix: "model.layers.{i}.block_sparse_moe." (Hugging Face names); layer: i, which
  // keys the training draws and picks the layer's experts from cfg.moe_layout.
  MoeFfn(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix, int64_t layer);
  Activations plan(Arena& arena, DType act, int64_t N) const;
  Scratch plan_scratch(Arena& arena, DType act, int64_t N) const;
  // a and s may be planned for more tokens than N, and s for a layer with more
  // experts (one scratch serves all layers): the leading parts are used.

  // residual (N,C) += moe(x).
  void forward(const ModelContext& c, const Tensor& x, Tensor residual, Activations& a, Scratch& s) const;
  // Downloads the last forward's statistics into a.stats, including the weighted
  // aux and z losses (the caller adds them to the training loss).
  const MoeStats& collect_stats(Backend& be, Activations& a, Scratch& s) const;
  MoeRoutingSnapshot snapshot(Backend& be, const Activations& a) const;
  // dx (N,C) = d/dx given dresidual (N,C) and dloss_scale = d(total loss)/d(aux + z); overwritten.
  // Parameter gradients accumulate (+=), the router's including the aux and z losses.
  void backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, double dloss_scale,
                const Activations& a, Scratch& s) const;

  const MoeRoutingParams& routing_params() const { return routing_; }
  int64_t layer() const { return layer_; }

  ParamId router, w1, w3, w2;

 private:
  // The layout of a pass of N tokens with `available` experts on `device`.
  MoeLayout layout(int64_t N, int64_t available, Device device) const;
  int64_t planned_rows(int64_t N) const;  // rows of every layout a pass of <= N tokens may use

  MoeRoutingParams routing_;
  std::string gemm_;  // ModelConfig::moe_gemm
  int64_t layer_, hidden_, ffn_;
};

}  // namespace lumina
