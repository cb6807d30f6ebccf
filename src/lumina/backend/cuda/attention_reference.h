#pragma once
// Simple, obviously correct causal GQA attention kernels: one warp per query
// row (forward, dq) or per key row (dk, dv), f32 arithmetic, no atomics, so the
// backward is deterministic. They serve the f32 path and any bf16/f16 call that
// cuDNN's fused attention cannot take (e.g. head_dim not a multiple of 8).
// Tensors and layout as in attention_shape.h; head_dim <= 256. Shapes are
// checked; failures throw lumina::Error. Launches only: the work is queued on `stream`.
#include <cuda_runtime.h>

#include "lumina/backend/cuda/attention_shape.h"
#include "lumina/core/dtype.h"

namespace lumina {

// out (B,Tq,Hq,D), lse (B,Hq,Tq) f32 <- q (B,Tq,Hq,D), k/v (B,Tk,Hkv,D); dtype f32, bf16 or f16.
void attention_reference_forward(const AttentionShape& shape, DType dtype, void* out, float* lse, const void* q,
                                 const void* k, const void* v, cudaStream_t stream);

// dq (B,T,Hq,D), dk/dv (B,T,Hkv,D) overwritten; q_len == kv_len.
void attention_reference_backward(const AttentionShape& shape, DType dtype, void* dq, void* dk, void* dv,
                                  const void* dout, const void* q, const void* k, const void* v, const void* out,
                                  const float* lse, cudaStream_t stream);

}  // namespace lumina
