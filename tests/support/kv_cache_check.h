#pragma once
// KV-cache decoding against full recomputation, shared by the dense and MoE
// generation tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "lumina/infer/kv_cache_session.h"

namespace lumina::test {

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// One session takes a 3-token prompt at once, then the rest of `tokens` one at a
// time; at every prefix length t a fresh session fed tokens[0, t) at once must give
// the same last-position logits within `tolerance` (max |difference|). Returns the
// first session's final length.
inline int64_t expect_incremental_matches_full(Transformer& model, const std::vector<int32_t>& tokens,
                                               double tolerance) {
  const auto T = static_cast<int64_t>(tokens.size());
  KvCacheSession incremental(model, T);
  std::vector<double> step_logits = incremental.append(tokens.data(), 3);
  for (int64_t t = 3; t <= T; ++t) {
    KvCacheSession full(model, T);
    const std::vector<double> reference = full.append(tokens.data(), t);
    EXPECT_LE(max_abs_diff(step_logits, reference), tolerance) << "prefix length " << t;
    if (t < T) step_logits = incremental.append(tokens.data() + t, 1);
  }
  return incremental.length();
}

// How expect_sessions_agree bounds max |logit difference|.
enum class LogitBound { absolute, scaled_by_largest_logit };

// Two models with the same weights (one on the GPU, one on the CPU) decode
// `tokens` in KV-cache sessions: a `prompt`-token prompt, then one token at a
// time. At every length their last-position logits agree within `tolerance`,
// or tolerance * max(1, max |reference logit|) with scaled_by_largest_logit.
// Returns the first model's last logits.
inline std::vector<double> expect_sessions_agree(Transformer& model, Transformer& reference_model,
                                                 const std::vector<int32_t>& tokens, int64_t prompt, double tolerance,
                                                 LogitBound bound) {
  const auto T = static_cast<int64_t>(tokens.size());
  KvCacheSession session(model, T), reference(reference_model, T);
  std::vector<double> got = session.append(tokens.data(), prompt);
  std::vector<double> ref = reference.append(tokens.data(), prompt);
  for (int64_t t = prompt;; ++t) {
    double scale = 1.0;
    if (bound == LogitBound::scaled_by_largest_logit)
      for (double v : ref) scale = std::max(scale, std::fabs(v));
    EXPECT_LE(max_abs_diff(got, ref), tolerance * scale) << "after " << t << " tokens";
    if (t == T) return got;
    got = session.append(tokens.data() + t, 1);
    ref = reference.append(tokens.data() + t, 1);
  }
}

}  // namespace lumina::test
