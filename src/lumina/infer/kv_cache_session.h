#pragma once
// Incremental decoding with a KV cache (batch 1): feed a prompt once, then one
// token at a time; each call returns the logits of the last fed position.
// Uses the model's own modules (AttentionLayer::forward_cached, SwiGLUMlp), so
// the math is the training math.
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
  void reset() { length_ = 0; }
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }

 private:
  Transformer& model_;
  int64_t capacity_;
  int64_t length_ = 0;
  Arena arena_;
  std::vector<Tensor> k_cache_, v_cache_;  // per layer (P, Hkv, D)
  Tensor tokens_, x_, norm_, rstd_, logits_, logits_f32_;
  AttentionLayer::Activations attn_;
  SwiGLUMlp::Activations mlp_;
};

}  // namespace lumina
