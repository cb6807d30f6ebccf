#pragma once
// Host-side MoE routing math, in f64: from router logits to the expert
// assignment of every token, the combine weights, the auxiliary losses and
// the routing statistics; and the gradient of all of it w.r.t. the logits.
//
// A pass may choose only its *available* experts A: the routable ones (not
// pruned), minus, in training, those expert dropout removed for the
// micro-batch (moe_available_experts). Unavailable experts are masked out of
// the softmax (probability exactly 0), so everything below ranges over A and
// E_A = |A| is the expert count of the capacity and the aux loss.
// For token n with logits l (E):
//   s = (l + noise) / T                     (T = routing_temperature; noise ~ N(0, noise_std^2)
//                                            in training only, else 0)
//   p = softmax(s) over A, 0 elsewhere      (E)   router distribution
//   S = top-k of p over A (ties: lower id)  chosen experts, by decreasing p
//   w_j = p_{S_j} / sum_{i in S} p_i        (k)   renormalised combine weights
// Capacity per expert = ceil(N*k/E_A * capacity_factor) (unless dropless).
// Assignments are admitted in token order, and within a token in choice
// order, first come first served; one that finds its expert full is dropped
// (that token gets nothing from that expert; its other experts still count).
// Losses (weighted, as the layer returns them):
//   aux = load_balancing_weight * E_A * sum_e f_e P_e,
//         f_e = assignments to e (before capacity) / (N*k),  P_e = mean_n p_{n,e}
//         (unavailable experts have f_e = P_e = 0; a uniform routing over A gives aux = weight)
//   z   = router_z_loss_weight * mean_n logsumexp_A(s_n)^2   (on the tempered logits s, over A)
// Gradients: the top-k choice, f_e, the capacity decision, the available set
// and the noise are held fixed (piecewise constant; the noise is a constant
// shift, so d/dl = d/d(l + noise)); gradients flow through w (via p) and
// through P_e and logsumexp. Unavailable experts get exactly zero gradient.
#include <cstdint>
#include <vector>

namespace lumina {

struct MoeRoutingParams {
  int64_t num_experts = 8;
  int64_t top_k = 2;
  double capacity_factor = 1.25;
  bool dropless = false;
  double temperature = 1.0;
  double load_balancing_weight = 0.01;
  double z_loss_weight = 0.0;
  double noise_std = 0.0;         // training only: std of the Gaussian noise on the raw logits
  double expert_dropout = 0.0;    // training only: probability of dropping an expert for a micro-batch
  std::vector<uint8_t> routable;  // (E) 0: pruned, never chosen (train and eval); empty: all routable
};

// What a training pass's random draws are keyed by: Rng(seed, purpose, step)
// with draw index (micro, layer, token, expert) packed into 64 bits (16, 10,
// 24 and 14 bits: micro < 65536, layer < 1024, token < 2^24, expert < 16384),
// so no two draws of a step collide.
struct MoeDrawKey {
  uint64_t seed = 0;
  int64_t step = 0, micro = 0, layer = 0;
};
uint64_t moe_draw_index(const MoeDrawKey& key, int64_t token, int64_t expert);

// Per-step routing statistics (from the same pass as the routing).
struct MoeStats {
  std::vector<double> expert_utilization;  // (E): assignments to e (before capacity) / (N*k); sums to 1,
                                           // 0 for pruned and dropped experts
  double routing_entropy = 0.0;            // mean_n -sum_e p log p of the router distribution, in nats
  int64_t tokens_dropped = 0;              // assignments dropped by capacity (a token may count up to k times)
  int64_t experts_dropped = 0;             // routable experts expert dropout removed from this pass
  double aux_loss = 0.0;                   // weighted load-balancing loss
  double z_loss = 0.0;                     // weighted router z-loss
};

struct MoeRouting {
  int64_t tokens = 0, experts = 0, top_k = 0;
  int64_t available_experts = 0;       // E_A
  int64_t capacity = 0;                // per expert; tokens * top_k when dropless
  std::vector<uint8_t> available;      // (E) 1: the pass may choose the expert
  std::vector<double> probs;           // (N, E) p: softmax of the tempered logits over A, 0 elsewhere
  std::vector<double> lse;             // (N) logsumexp of the tempered logits over A
  std::vector<int32_t> choice;         // (N, k) chosen experts, by decreasing probability
  std::vector<double> weight;          // (N, k) renormalised combine weights
  std::vector<uint8_t> kept;           // (N, k) 1 when the assignment fits in its expert's capacity
  std::vector<int64_t> assigned;       // (E) assignments before capacity
  // Kept assignments grouped by expert, in token order: expert e owns rows
  // [row_begin[e], row_begin[e+1]); row r serves token row_token[r] via slot
  // row_slot[r] = n * k + j (its choice index j).
  std::vector<int64_t> row_begin;      // (E + 1)
  std::vector<int64_t> row_token;      // (R), R = kept assignments
  std::vector<int64_t> row_slot;       // (R)
  MoeStats stats;

  int64_t rows() const { return row_begin.empty() ? 0 : row_begin.back(); }
};

// Capacity per expert for N tokens over `available_experts` experts; N * k when dropless.
int64_t moe_capacity(int64_t tokens, int64_t available_experts, const MoeRoutingParams& p);

// available (E) = the experts a pass may choose; returns how many expert dropout removed.
// Evaluation (training == nullptr): the routable experts. Training: routable expert e
// drops when u_e < expert_dropout, u_e = Rng(seed, expert_dropout, step).uniform(
// moe_draw_index(key, 0, e)): one draw per (micro, layer, expert), the same for every
// token. When fewer than top_k would remain, the dropped experts with the largest u_e
// (ties: lower id) are restored until top_k are available.
int64_t moe_available_experts(const MoeRoutingParams& p, const MoeDrawKey* training, std::vector<uint8_t>& available);

// Routes N tokens from their raw router logits (N, E), row-major. training: the
// pass's draw key (noise and expert dropout), nullptr in evaluation. The noise of
// token n, expert e is noise_std * Rng(seed, routing_noise, step).normal(moe_draw_index(key, n, e)).
// `out` is reused across calls (its vectors keep their capacity).
void moe_route(const double* logits, int64_t tokens, const MoeRoutingParams& p, const MoeDrawKey* training,
               MoeRouting& out);

// dlogits (N, E) = d/d(raw logits) of
//   sum_{n,j kept} dweight[n*k+j] * w_{n,j}  +  dloss_scale * (aux + z),
// dweight (N, k) being the upstream gradient of the combine weights
// (entries of dropped assignments are ignored). Overwrites dlogits.
void moe_route_backward(const MoeRouting& r, const MoeRoutingParams& p, const double* dweight, double dloss_scale,
                        double* dlogits);

}  // namespace lumina
