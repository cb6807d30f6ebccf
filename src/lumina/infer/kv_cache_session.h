#pragma once
// Incremental decoding with a KV cache (batch 1): feed a prompt once, then one
// token at a time; each call returns the logits of the last fed position.
// Uses the model's own modules (Block::forward_cached), so the math is the
// training math. In MoE layers the routing (and its capacity limit) covers the
// tokens of one append() call. MoD layers decide per token without looking
// ahead (mod.h: the predictor, or the static pattern) and cache only the tokens
// they run, so each layer's cache has its own length.
#include <vector>

#include "lumina/core/arena.h"
#include "lumina/model/transformer.h"

namespace lumina {

class KvCacheSession {
 public:
  // max_tokens: cache capacity (<= max_position_embeddings).
  KvCacheSession(Transformer& model, int64_t max_tokens);

  // Appends n tokens; returns logits (V) of the last one, as f64 on the host.
  std::vector<double> append(const int32_t* tokens, int64_t n);
  void reset();
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }

 private:
  Transformer& model_;
  int64_t capacity_;
  int64_t length_ = 0;
  Arena arena_;
  std::vector<Tensor> k_cache_, v_cache_;  // per layer (P, Hkv, D)
  std::vector<int64_t> cache_len_;         // per layer: tokens cached (length_ except in MoD layers)
  Tensor tokens_, x_, logits_, logits_f32_;
  Block::CachedScratch scratch_;  // shared by all layers
};

}  // namespace lumina
