#include "lumina/model/mod_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lumina/core/error.h"

namespace lumina {

ModRoutingType mod_routing_type_from_string(const std::string& name) {
  if (name == "learned") return ModRoutingType::learned;
  if (name == "static") return ModRoutingType::static_pattern;
  if (name == "random") return ModRoutingType::random;
  fail("model.mod_routing_type = \"{}\": use learned, static or random", name);
}

double mod_capacity_fraction(double target, int64_t anneal_steps, int64_t step) {
  if (anneal_steps <= 0) return target;
  const double progress =
      static_cast<double>(std::clamp<int64_t>(step, 0, anneal_steps)) / static_cast<double>(anneal_steps);
  return 1.0 + (target - 1.0) * progress;
}

int64_t mod_capacity(int64_t seq_len, double fraction) {
  return std::clamp<int64_t>(std::llround(fraction * static_cast<double>(seq_len)), 1, seq_len);
}

bool mod_static_selected(int64_t t, int64_t seq_len, int64_t k) {
  return t == 0 || (t * k) / seq_len > ((t - 1) * k) / seq_len;
}

void mod_select_static(int64_t seq_len, int64_t k, std::vector<int32_t>& out) {
  for (int64_t j = 0; j < k; ++j) out.push_back(static_cast<int32_t>((j * seq_len + k - 1) / k));  // ceil(j T / k)
}

namespace {
// The k positions of [0, T) that come first under `before` (a strict order), increasing.
template <class Before>
void select_first_k(int64_t seq_len, int64_t k, Before&& before, std::vector<int32_t>& out) {
  std::vector<int32_t> order(static_cast<size_t>(seq_len));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  std::sort(order.begin(), order.begin() + k);
  out.insert(out.end(), order.begin(), order.begin() + k);
}
}  // namespace

void mod_select_top_k(const double* scores, int64_t seq_len, int64_t k, std::vector<int32_t>& out) {
  select_first_k(
      seq_len, k, [scores](int32_t a, int32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); },
      out);
}

void mod_select_random(const Rng& rng, uint64_t first_index, int64_t seq_len, int64_t k, std::vector<int32_t>& out) {
  std::vector<uint32_t> keys(static_cast<size_t>(seq_len));
  for (int64_t t = 0; t < seq_len; ++t) keys[static_cast<size_t>(t)] = rng.bits(first_index + static_cast<uint64_t>(t));
  select_first_k(
      seq_len, k,
      [&keys](int32_t a, int32_t b) {
        const uint32_t ka = keys[static_cast<size_t>(a)], kb = keys[static_cast<size_t>(b)];
        return ka < kb || (ka == kb && a < b);
      },
      out);
}

double mod_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }

double mod_predictor_bce(double logit, bool selected) {
  const double softplus = std::max(logit, 0.0) + std::log1p(std::exp(-std::fabs(logit)));
  return softplus - (selected ? logit : 0.0);
}

}  // namespace lumina
