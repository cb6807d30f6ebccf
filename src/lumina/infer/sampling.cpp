#include "lumina/infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lumina/core/error.h"
#include "lumina/core/rng.h"

namespace lumina {

void validate_sampling(const SamplingOptions& opt) {
  LUMINA_CHECK(opt.temperature >= 0.0, "--temperature {} must be >= 0 (0 = greedy)", opt.temperature);
  LUMINA_CHECK(opt.top_k >= 0, "--top-k {} must be >= 0 (0 = off)", opt.top_k);
  LUMINA_CHECK(opt.top_p > 0.0 && opt.top_p <= 1.0, "--top-p {} must be in (0, 1]", opt.top_p);
}

int32_t sample_token(const std::vector<double>& logits, const SamplingOptions& opt, uint64_t draw_index) {
  const auto V = static_cast<int64_t>(logits.size());
  LUMINA_CHECK(V > 0, "sample_token: empty logits");
  if (opt.temperature == 0.0)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());

  // Candidates sorted by logit, highest first (ties by id, so the order is deterministic).
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = opt.top_k > 0 ? std::min(opt.top_k, V) : V;

  // Softmax over the kept candidates at the given temperature.
  std::vector<double> p(static_cast<size_t>(keep));
  const double top = logits[ids[0]] / opt.temperature;
  double sum = 0.0;
  for (int64_t i = 0; i < keep; ++i) sum += p[i] = std::exp(logits[ids[i]] / opt.temperature - top);
  // Nucleus: the smallest prefix whose probability reaches top_p.
  if (opt.top_p < 1.0) {
    double cumulative = 0.0;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += p[i] / sum;
      if (cumulative >= opt.top_p) {
        keep = i + 1;
        break;
      }
    }
    sum = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  const double u = Rng(opt.seed, RngPurpose::sampling, 0).uniform(draw_index) * sum;
  double acc = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace lumina
