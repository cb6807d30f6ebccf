#pragma once
// Host-side MoE routing math, in f64: from router logits to the expert
// assignment of every token, the combine weights, the auxiliary losses and
// the routing statistics; and the gradient of all of it w.r.t. the logits.
//
// For token n with logits l (E):
//   s = l / T                               (T = routing_temperature)
//   p = softmax(s)                          (E)   full router distribution
//   S = top-k of p (ties: lower expert id)  chosen experts, by decreasing p
//   w_j = p_{S_j} / sum_{i in S} p_i        (k)   renormalised combine weights
// Capacity per expert = ceil(N*k/E * capacity_factor) (unless dropless).
// Assignments are admitted in token order, and within a token in choice
// order, first come first served; one that finds its expert full is dropped
// (that token gets nothing from that expert; its other experts still count).
// Losses (weighted, as the layer returns them):
//   aux = load_balancing_weight * E * sum_e f_e P_e,
//         f_e = assignments to e (before capacity) / (N*k),  P_e = mean_n p_{n,e}
//   z   = router_z_loss_weight * mean_n logsumexp(s_n)^2   (on the tempered logits s)
// Gradients: the top-k choice, f_e and the capacity decision are held fixed
// (piecewise constant); gradients flow through w (via p) and through P_e and
// logsumexp.
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
};

// Per-step routing statistics (from the same pass as the routing).
struct MoeStats {
  std::vector<double> expert_utilization;  // (E): assignments to e (before capacity) / (N*k); sums to 1
  double routing_entropy = 0.0;            // mean_n -sum_e p log p of the full softmax, in nats
  int64_t tokens_dropped = 0;              // assignments dropped by capacity (a token may count up to k times)
  double aux_loss = 0.0;                   // weighted load-balancing loss
  double z_loss = 0.0;                     // weighted router z-loss
};

struct MoeRouting {
  int64_t tokens = 0, experts = 0, top_k = 0;
  int64_t capacity = 0;                // per expert; tokens * top_k when dropless
  std::vector<double> probs;           // (N, E) softmax of the tempered logits
  std::vector<double> lse;             // (N) logsumexp of the tempered logits
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

// Capacity per expert for N tokens; N * k when dropless.
int64_t moe_capacity(int64_t tokens, const MoeRoutingParams& p);

// Routes N tokens from their raw router logits (N, E), row-major.
// `out` is reused across calls (its vectors keep their capacity).
void moe_route(const double* logits, int64_t tokens, const MoeRoutingParams& p, MoeRouting& out);

// dlogits (N, E) = d/d(raw logits) of
//   sum_{n,j kept} dweight[n*k+j] * w_{n,j}  +  dloss_scale * (aux + z),
// dweight (N, k) being the upstream gradient of the combine weights
// (entries of dropped assignments are ignored). Overwrites dlogits.
void moe_route_backward(const MoeRouting& r, const MoeRoutingParams& p, const double* dweight, double dloss_scale,
                        double* dlogits);

}  // namespace lumina
