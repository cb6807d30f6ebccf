#pragma once
// Mixture-of-Depths (Raposo et al. 2024): a MoD layer runs only some tokens
// of each sequence; the others pass through unchanged.
//
// Which layers: is_mod_layer() (layer_kinds.h): use_mod, mod_start_layer <= l
// <= end (mod_end_layer, -1 = last) and (l - mod_start_layer) % mod_every_n == 0.
//
// Per sequence of T tokens, k = capacity tokens run the layer (mod_routing.h:
// k = clamp(round(c T), 1, T), c annealed linearly from 1.0 at step 0 to
// mod_capacity_factor at step mod_capacity_anneal_steps; evaluation uses the
// target mod_capacity_factor). Which k:
//   learned: router logit r_t = x_t . w_r (w_r (1, C), "model.layers.{i}.mod_router.weight");
//            the k largest r of the sequence (ties: lower position);
//   static:  the evenly spaced pattern t = ceil(j T / k), j < k;
//   random:  k positions drawn uniformly, keyed by (seed, RngPurpose::mod_routing,
//            step) and index ((micro * num_layers + layer) * B + b) * T + t;
//            evaluation (training off) uses the static pattern.
// Ties and order: selected positions are returned in increasing order.
// The routed tokens of a sequence keep their original order and form a
// compact sequence: the block runs on them alone (attention among routed tokens,
// causal in original order, RoPE at their original positions; an MoE FFN routes
// just them). With x the layer input:
//   out_t = x_t + g_t * (block(x)_t - x_t)  for routed t,   out_t = x_t otherwise,
//   g_t = sigmoid(r_t) (learned: the router learns through the scale), 1 (static, random).
// mod_ffn_only: attention runs for every token; only the FFN half is routed,
// the router scoring the post-attention residual mid (x above := mid).
// Gradients: the selection is held fixed; gradients flow through g into w_r and x.
//
// Causal decisions (generation, and forwards with ModelContext::mod_causal):
// top-k looks at the whole sequence, so a predictor p_t = sg(x_t) . w_p
// ("model.layers.{i}.mod_predictor.weight", (1, C), learned routing only) is
// trained alongside on stop-gradient inputs to predict whether t was selected:
// loss kModPredictorLossWeight * mean_t BCE(p_t, selected_t) per layer, an
// auxiliary loss (Transformer's dloss_aux) that reaches w_p only. In causal
// mode token t runs the layer iff sigmoid(p_t) > 0.5 (learned), or iff t is in
// the static pattern of a max_position_embeddings-token sequence at the target
// capacity (static and random). Sequences then route different counts.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lumina/core/arena.h"
#include "lumina/model/context.h"
#include "lumina/model/model_config.h"
#include "lumina/model/mod_routing.h"

namespace lumina {

// Weight of each MoD layer's predictor loss (mean BCE per token) in the objective.
inline constexpr double kModPredictorLossWeight = 0.01;

// One MoD layer's routing statistics of a forward pass.
struct ModLayerStats {
  int64_t layer = 0;
  int64_t tokens = 0;              // N = B * T tokens that reached the layer
  int64_t processed = 0;           // tokens that ran the routed part (R)
  double capacity = 0.0;           // processed / tokens
  double predictor_loss = 0.0;     // mean BCE over the N tokens (learned routing, else 0)
  double predictor_accuracy = 0.0; // fraction of tokens with (p > 0) == selected (learned routing, else 0)
  double flops = 0.0;              // forward FLOPs the layer ran (GEMMs and attention, from their shapes;
                                   // an MoE FFN's experts counted before capacity drops)
  double dense_flops = 0.0;        // the same layer run densely on all N tokens
};

class ModRouter {
 public:
  // A forward's routing as the host knows it: shapes and per-sequence counts.
  // Which tokens were routed lives on the device (Activations); snapshot() downloads it.
  struct Selection {
    int64_t batch = 0, seq_len = 0;
    std::vector<int64_t> begin;  // (B+1): sequence b owns compact rows [begin[b], begin[b+1])
    ModLayerStats stats;         // predictor_loss / predictor_accuracy filled by collect_stats()

    int64_t rows() const { return begin.empty() ? 0 : begin.back(); }
    bool uniform() const;  // every sequence routes the same number of tokens
  };
  // R routed tokens of N; compact row i holds token row_token[i].
  struct Activations {
    Tensor logits;             // (2, N) stat: router logits r (row 0), predictor logits p (row 1) (learned)
    Tensor row_token;          // (N) i32: the token of each compact row, first R used
    Tensor positions;          // (N) i32: the routed tokens' positions, first R used
    Tensor slot_row;           // (N) i32: each token's compact row, -1 if not routed
    Tensor gate;               // (N) stat: g of the routed tokens, 0 elsewhere
    Tensor sums;               // (2) stat: predictor BCE sum and agreement count (Backend::mod_predictor)
    Tensor xs;                 // (N, C): the routed tokens' inputs (gathered), first R rows used
    Tensor delta;              // (N, C): block(x) - x of the routed tokens, first R rows used
    Selection sel;
  };
  // Shared by all MoD layers.
  struct Scratch {
    Tensor dys;      // (N, C) d(block output) of the routed tokens
    Tensor dgate;    // (N) stat: dout_n . delta of the routed tokens, 0 elsewhere
    Tensor dlogits;  // (2, N) act dtype: d r (row 0), d p (row 1) (learned)
    // Host-side decisions (static and random routing, causal mode), staged for upload.
    std::vector<double> host, host_d;
    std::vector<std::byte> staging;
    std::vector<int32_t> host_rows, host_positions, host_slots;
  };

  ModRouter(ParamStore& ps, const ModelConfig& cfg, int layer);
  Activations plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const;
  static Scratch plan_scratch(Arena& arena, DType act, DType stat, int64_t B, int64_t T, int64_t hidden);

  // Chooses the routed tokens of x (N,C) = B sequences of T (see the top) into
  // a's device tensors and a.sel. Learned top-k runs on the device
  // (Backend::mod_select_top_k, no synchronisation); static and random
  // patterns are computed on the host and uploaded; causal decisions download
  // the predictor's logits (generation). first_position: the position of each
  // sequence's first token (generation appends at the cache length).
  // a and s may be planned for more tokens than N.
  void route(const ModelContext& c, const Tensor& x, int64_t B, int64_t T, Activations& a, Scratch& s,
             int64_t first_position = 0) const;
  // Downloads the predictor's loss and accuracy of the last route() into a.sel.stats (learned routing).
  const ModLayerStats& collect_stats(Backend& be, Activations& a) const;
  // The token of each compact row of the last route(), downloaded (R values).
  static std::vector<int32_t> snapshot(Backend& be, const Activations& a);

  // xs (R,C) = the routed rows of x (N,C).
  static void gather(Backend& be, Tensor xs, const Tensor& x, const Activations& a);
  // ys (R,C): in block(xs), out delta = ys - xs (kept for backward);
  // out (N,C) = x + g * delta on the routed rows, x elsewhere (out may be x).
  static void combine(Backend& be, Tensor out, Tensor ys, const Tensor& x, const Activations& a);

  // Backward, first half. dout (N,C) = d out. Writes dys (R,C) = g * dout[row]
  // (what the block's backward receives) and dgate = dout[row] . delta into s.
  static void backward_gates(Backend& be, const Tensor& dout, const Activations& a, Scratch& s);
  // Second half, after the block's backward turned dys into dxs (R,C) = d xs
  // (through the block and its own skip connection). In place on dresid (N,C),
  // in: d out, out: d x = d out + [routed rows] (dxs - g dout) + router and predictor terms:
  //   d r = dgate * g (1 - g);  dx += d r W_r;  d p = dloss_aux * kModPredictorLossWeight * d mean-BCE / d p;
  //   [dW_r; dW_p] += [d r; d p] x, one GEMM over the stacked (2, C) weights (p: no dx, stop-gradient).
  void backward_finish(const ModelContext& c, const Tensor& x, Tensor dresid, const Tensor& dxs,
                       const Activations& a, Scratch& s) const;

  ModRoutingType type() const { return type_; }
  bool ffn_only() const { return ffn_only_; }

  ParamId router = -1, predictor = -1;  // learned routing only

 private:
  // Host-side decisions (static, random, causal): picks per sequence, uploaded into a.
  void route_on_host(const ModelContext& c, int64_t B, int64_t T, int64_t k, Activations& a, Scratch& s,
                     int64_t first_position) const;

  ModRoutingType type_;
  double capacity_factor_;
  int64_t anneal_steps_;
  int64_t layer_, num_layers_, max_positions_, hidden_;
  bool ffn_only_;
};

}  // namespace lumina
