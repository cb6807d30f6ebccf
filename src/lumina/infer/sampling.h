#pragma once
// Next-token sampling from logits: temperature, top-k, top-p (nucleus).
// temperature == 0 is greedy (argmax). Draws are Philox(seed, sampling, draw_index),
// so a seed reproduces a generation exactly.
#include <cstdint>
#include <vector>

namespace lumina {

struct SamplingOptions {
  double temperature = 1.0;
  int64_t top_k = 0;    // 0: no top-k cut
  double top_p = 1.0;   // 1: no nucleus cut
  uint64_t seed = 0;
};

// Throws when an option is out of range (temperature < 0, top_p outside (0, 1], top_k < 0).
void validate_sampling(const SamplingOptions& opt);
int32_t sample_token(const std::vector<double>& logits, const SamplingOptions& opt, uint64_t draw_index);

}  // namespace lumina
