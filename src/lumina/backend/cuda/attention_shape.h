#pragma once
// The extents of one causal grouped-query attention call, shared by the cuDNN
// path (attention_cudnn.h) and the reference kernels (attention_reference.h).
//
// Layout ("BSHD", contiguous): q, out, dq, dout (batch, q_len, q_heads, head_dim);
// k, v, dk, dv (batch, kv_len, kv_heads, head_dim); lse (batch, q_heads, q_len) f32.
// Query head h reads key/value head h / (q_heads / kv_heads). Query t sits at
// position kv_len - q_len + t and sees keys 0..that position.
#include <cmath>
#include <cstdint>
#include <tuple>

namespace lumina {

struct AttentionShape {
  int64_t batch = 0;
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t q_heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;

  int64_t group_size() const { return q_heads / kv_heads; }  // query heads per key/value head
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }
  bool empty() const { return batch == 0 || q_len == 0; }
  auto key() const { return std::tie(batch, q_len, kv_len, q_heads, kv_heads, head_dim); }
};

}  // namespace lumina
