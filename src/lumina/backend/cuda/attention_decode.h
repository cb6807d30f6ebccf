#pragma once
// Split-key ("flash-decoding") causal GQA forward for KV-cache calls with few
// queries: q_len <= kDecodeMaxQueries < kv_len. Per key/value head, the keys
// are cut into chunks processed by separate blocks, each writing, per query
// row, a partial softmax (max, sum, unnormalised output) to f32 scratch; a
// second pass combines the chunks in a fixed order (deterministic). This keeps
// the GPU busy where one warp per query row (attention_reference.h) would
// leave it idle: decoding has batch * q_heads rows, often fewer than 100.
// Tensors and layout as in attention_shape.h; head_dim <= 256.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "lumina/backend/cuda/attention_shape.h"
#include "lumina/core/dtype.h"

namespace lumina {

constexpr int64_t kDecodeMaxQueries = 16;

// How many key chunks to use: about two blocks per multiprocessor, at least 16
// keys a chunk, and at most what `scratch_bytes` holds. 0 when not even one fits.
int64_t attention_decode_chunks(const AttentionShape& shape, int multiprocessors, size_t scratch_bytes);

// Scratch the call needs for `chunks` chunks: f32 (B*Tq*Hq, chunks, head_dim + 2).
size_t attention_decode_scratch_bytes(const AttentionShape& shape, int64_t chunks);

// out (B,Tq,Hq,D), lse (B,Hq,Tq) f32 <- q (B,Tq,Hq,D), k/v (B,Tk,Hkv,D); dtype f32, bf16 or f16.
void attention_decode_forward(const AttentionShape& shape, DType dtype, int64_t chunks, void* out, float* lse,
                              const void* q, const void* k, const void* v, void* scratch, cudaStream_t stream);

}  // namespace lumina
