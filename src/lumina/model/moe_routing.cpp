#include "lumina/model/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "lumina/core/error.h"
#include "lumina/core/rng.h"

namespace lumina {

uint64_t moe_draw_index(const MoeDrawKey& key, int64_t token, int64_t expert) {
  LUMINA_CHECK(key.micro >= 0 && key.micro < (int64_t{1} << 16), "MoE draws: micro-batch {} is outside [0, 65536)",
               key.micro);
  LUMINA_CHECK(key.layer >= 0 && key.layer < (int64_t{1} << 10), "MoE draws: layer {} is outside [0, 1024)", key.layer);
  LUMINA_CHECK(token >= 0 && token < (int64_t{1} << 24),
               "MoE draws: token {} is outside [0, 2^24): lower train.batch_size * train.seq_len", token);
  LUMINA_CHECK(expert >= 0 && expert < (int64_t{1} << 14), "MoE draws: expert {} is outside [0, 16384)", expert);
  return static_cast<uint64_t>(key.micro) << 48 | static_cast<uint64_t>(key.layer) << 38 |
         static_cast<uint64_t>(token) << 14 | static_cast<uint64_t>(expert);
}

int64_t moe_capacity(int64_t tokens, int64_t available_experts, const MoeRoutingParams& p) {
  if (p.dropless) return tokens * p.top_k;
  const double exact =
      static_cast<double>(tokens * p.top_k) / static_cast<double>(available_experts) * p.capacity_factor;
  // The 1e-9 keeps a product that should be an integer (e.g. 2.0000000000000004) from rounding up.
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(exact - 1e-9)));
}

int64_t moe_available_experts(const MoeRoutingParams& p, const MoeDrawKey* training, std::vector<uint8_t>& available) {
  const int64_t E = p.num_experts;
  LUMINA_CHECK(p.routable.empty() || static_cast<int64_t>(p.routable.size()) == E,
               "MoE routing: the routable mask has {} entries for {} experts", p.routable.size(), E);
  if (p.routable.empty()) available.assign(static_cast<size_t>(E), 1);
  else available = p.routable;
  if (!training || p.expert_dropout <= 0.0) return 0;
  const Rng rng(training->seed, RngPurpose::expert_dropout, static_cast<uint64_t>(training->step));
  std::vector<std::pair<double, int32_t>> dropped;  // (u_e, e)
  int64_t left = 0;
  for (int64_t e = 0; e < E; ++e) {
    if (!available[static_cast<size_t>(e)]) continue;
    const double u = rng.uniform(moe_draw_index(*training, 0, e));
    if (u < p.expert_dropout) {
      available[static_cast<size_t>(e)] = 0;
      dropped.emplace_back(u, static_cast<int32_t>(e));
    } else {
      ++left;
    }
  }
  // Restore the dropped experts closest to surviving (largest u_e, then lower id) up to top_k.
  std::sort(dropped.begin(), dropped.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  size_t restored = 0;
  for (; left < p.top_k && restored < dropped.size(); ++left, ++restored)
    available[static_cast<size_t>(dropped[restored].second)] = 1;
  return static_cast<int64_t>(dropped.size() - restored);
}

void moe_route(const double* logits, int64_t tokens, const MoeRoutingParams& p, const MoeDrawKey* training,
               MoeRouting& out) {
  const int64_t N = tokens, E = p.num_experts, k = p.top_k;
  LUMINA_CHECK(E >= 1 && k >= 1 && k <= E, "MoE routing: moe_top_k = {} must be in [1, num_experts = {}]", k, E);
  LUMINA_CHECK(p.temperature > 0.0, "MoE routing: routing_temperature = {} must be > 0", p.temperature);
  out.stats.experts_dropped = moe_available_experts(p, training, out.available);
  const auto EA = static_cast<int64_t>(std::count(out.available.begin(), out.available.end(), uint8_t{1}));
  LUMINA_CHECK(EA >= k, "MoE routing: {} routable experts, fewer than moe_top_k = {}", EA, k);
  out.tokens = N;
  out.experts = E;
  out.top_k = k;
  out.available_experts = EA;
  out.capacity = moe_capacity(N, EA, p);
  out.probs.resize(static_cast<size_t>(N * E));
  out.lse.resize(static_cast<size_t>(N));
  out.choice.resize(static_cast<size_t>(N * k));
  out.weight.resize(static_cast<size_t>(N * k));
  out.kept.resize(static_cast<size_t>(N * k));
  out.assigned.assign(static_cast<size_t>(E), 0);
  out.stats.expert_utilization.assign(static_cast<size_t>(E), 0.0);

  std::vector<int32_t> order;  // the available experts, ranked per token
  for (int64_t e = 0; e < E; ++e)
    if (out.available[static_cast<size_t>(e)]) order.push_back(static_cast<int32_t>(e));
  const bool noisy = training && p.noise_std > 0.0;
  const Rng noise(training ? training->seed : 0, RngPurpose::routing_noise,
                  training ? static_cast<uint64_t>(training->step) : 0);
  std::vector<double> s(static_cast<size_t>(E));
  double entropy_sum = 0.0, lse_sq_sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const double* l = logits + n * E;
    double* pr = out.probs.data() + n * E;
    // s = (l + noise) / T over A; p = softmax(s), computed as exp(s - max) / sum; 0 outside A.
    double max_s = -INFINITY;
    for (const int32_t e : order) {
      const double shift = noisy ? p.noise_std * noise.normal(moe_draw_index(*training, n, e)) : 0.0;
      s[static_cast<size_t>(e)] = (l[e] + shift) / p.temperature;
      max_s = std::max(max_s, s[static_cast<size_t>(e)]);
    }
    std::fill(pr, pr + E, 0.0);
    double sum = 0.0;
    for (const int32_t e : order) sum += (pr[e] = std::exp(s[static_cast<size_t>(e)] - max_s));
    for (const int32_t e : order) pr[e] /= sum;
    const double lse = max_s + std::log(sum);
    out.lse[static_cast<size_t>(n)] = lse;
    lse_sq_sum += lse * lse;
    for (const int32_t e : order)
      if (pr[e] > 0.0) entropy_sum -= pr[e] * std::log(pr[e]);
    // Top-k of the available experts by decreasing probability; ties go to the lower expert id.
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return pr[a] > pr[b] || (pr[a] == pr[b] && a < b); });
    double chosen_sum = 0.0;
    for (int64_t j = 0; j < k; ++j) chosen_sum += pr[order[static_cast<size_t>(j)]];
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = order[static_cast<size_t>(j)];
      out.choice[static_cast<size_t>(n * k + j)] = e;
      out.weight[static_cast<size_t>(n * k + j)] = pr[e] / chosen_sum;
      ++out.assigned[static_cast<size_t>(e)];
    }
  }

  // Capacity, first come first served in (token, choice) order; then group kept rows by expert.
  std::vector<int64_t> fill(static_cast<size_t>(E), 0);
  out.stats.tokens_dropped = 0;
  for (int64_t slot = 0; slot < N * k; ++slot) {
    int64_t& used = fill[static_cast<size_t>(out.choice[static_cast<size_t>(slot)])];
    const bool fits = used < out.capacity;
    out.kept[static_cast<size_t>(slot)] = fits ? 1 : 0;
    if (fits) ++used;
    else ++out.stats.tokens_dropped;
  }
  out.row_begin.assign(static_cast<size_t>(E + 1), 0);
  for (int64_t e = 0; e < E; ++e)
    out.row_begin[static_cast<size_t>(e + 1)] = out.row_begin[static_cast<size_t>(e)] + fill[static_cast<size_t>(e)];
  out.row_token.resize(static_cast<size_t>(out.rows()));
  out.row_slot.resize(static_cast<size_t>(out.rows()));
  std::vector<int64_t> next(out.row_begin.begin(), out.row_begin.end() - 1);
  for (int64_t slot = 0; slot < N * k; ++slot) {
    if (!out.kept[static_cast<size_t>(slot)]) continue;
    const int64_t r = next[static_cast<size_t>(out.choice[static_cast<size_t>(slot)])]++;
    out.row_token[static_cast<size_t>(r)] = slot / k;
    out.row_slot[static_cast<size_t>(r)] = slot;
  }

  // Losses and statistics. f_e = assigned_e / (N k); P_e = mean_n p_{n,e} (both 0 outside A).
  double balance = 0.0;
  for (int64_t e = 0; e < E; ++e) {
    const double f = static_cast<double>(out.assigned[static_cast<size_t>(e)]) / static_cast<double>(N * k);
    double P = 0.0;
    for (int64_t n = 0; n < N; ++n) P += out.probs[static_cast<size_t>(n * E + e)];
    P /= static_cast<double>(N);
    balance += f * P;
    out.stats.expert_utilization[static_cast<size_t>(e)] = f;
  }
  out.stats.aux_loss = p.load_balancing_weight * static_cast<double>(EA) * balance;
  out.stats.z_loss = p.z_loss_weight * lse_sq_sum / static_cast<double>(N);
  out.stats.routing_entropy = entropy_sum / static_cast<double>(N);
}

void moe_route_backward(const MoeRouting& r, const MoeRoutingParams& p, const double* dweight, double dloss_scale,
                        double* dlogits) {
  const int64_t N = r.tokens, E = r.experts, k = r.top_k;
  // d aux / d p_{n,e} = lbw * E_A * f_e / N (the same for every token; 0 outside A, where f_e = 0).
  std::vector<double> daux_dp(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e)
    daux_dp[static_cast<size_t>(e)] = dloss_scale * p.load_balancing_weight * static_cast<double>(r.available_experts) *
                                      static_cast<double>(r.assigned[static_cast<size_t>(e)]) /
                                      static_cast<double>(N * k) / static_cast<double>(N);
  for (int64_t n = 0; n < N; ++n) {
    const double* pr = r.probs.data() + n * E;
    double* ds = dlogits + n * E;  // gradient w.r.t. the tempered logits s, scaled by 1/T at the end
    // Aux loss through the softmax: ds_e = p_e (a_e - sum_e' p_e' a_e').
    double mean_a = 0.0;
    for (int64_t e = 0; e < E; ++e) mean_a += pr[e] * daux_dp[static_cast<size_t>(e)];
    // z-loss: d (lse^2) / d s_e = 2 lse p_e.
    const double dz = dloss_scale * p.z_loss_weight * 2.0 * r.lse[static_cast<size_t>(n)] / static_cast<double>(N);
    for (int64_t e = 0; e < E; ++e) ds[e] = pr[e] * (daux_dp[static_cast<size_t>(e)] - mean_a) + dz * pr[e];
    // Combine weights: w = softmax of s over the chosen set, so
    // ds_{S_j} += w_j (g_j - sum_i w_i g_i), g = dweight of kept assignments (0 for dropped ones).
    double mean_g = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      const size_t slot = static_cast<size_t>(n * k + j);
      if (r.kept[slot]) mean_g += r.weight[slot] * dweight[slot];
    }
    for (int64_t j = 0; j < k; ++j) {
      const size_t slot = static_cast<size_t>(n * k + j);
      const double g = r.kept[slot] ? dweight[slot] : 0.0;
      ds[r.choice[slot]] += r.weight[slot] * (g - mean_g);
    }
    for (int64_t e = 0; e < E; ++e) ds[e] /= p.temperature;
  }
}

}  // namespace lumina
