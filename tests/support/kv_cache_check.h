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

}  // namespace lumina::test
