#include "lumina/backend/cuda/attention_decode.h"

#include <algorithm>

#include "lumina/backend/cuda/attention_rows.cuh"

// Query rows are numbered r = (b * Tq + t) * Hq + h; partial p = r * chunks + c.
//   partial pass, block (c, b * Hkv + kv_head), one warp per query row of the
//   group: keys j in chunk c with j <= Tk - Tq + t feed an OnlineSoftmax ->
//   acc[p] (D floats), stats[p] = (max, sum); a row with no visible key in the
//   chunk writes max = -inf, sum = 0, acc = 0.
//   combine pass, one warp per query row: M = max_c max_c, w_c = exp(max_c - M),
//   out = sum_c w_c acc_c / sum_c w_c sum_c, lse = M + log(sum_c w_c sum_c).
// Key 0 is visible to every query, so chunk 0 always contributes and M is finite.

namespace lumina {
namespace {

using namespace attention_rows;

constexpr int64_t kMinKeysPerChunk = 16;

template <class T>
__global__ void attention_decode_partial_kernel(AttentionShape s, float scale, int64_t chunks, int64_t chunk_len,
                                                const T* q, const T* k, const T* v, float* acc, float* stats) {
  const int64_t chunk = blockIdx.x;
  const int64_t b = blockIdx.y / s.kv_heads, kv_head = blockIdx.y % s.kv_heads;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int warp = static_cast<int>(threadIdx.x / kWarp);
  const int D = static_cast<int>(s.head_dim);
  const int64_t group = s.q_heads / s.kv_heads;
  const int64_t begin = chunk * chunk_len;
  const int64_t end = begin + chunk_len < s.kv_len ? begin + chunk_len : s.kv_len;
  for (int64_t r = warp; r < s.q_len * group; r += kWarpsPerBlock) {
    const int64_t t = r / group, h = kv_head * group + r % group;
    const int64_t q_row = (b * s.q_len + t) * s.q_heads + h;
    const Row qi = load_row(q + q_row * D, D, lane);
    const int64_t last_visible = s.kv_len - s.q_len + t;
    const int64_t stop = end - 1 < last_visible ? end - 1 : last_visible;
    OnlineSoftmax softmax;
    for (int64_t j = begin; j <= stop; ++j) {
      const int64_t kv_row = (b * s.kv_len + j) * s.kv_heads + kv_head;
      softmax.add(dot(qi, load_row(k + kv_row * D, D, lane)) * scale, load_row(v + kv_row * D, D, lane));
    }
    const int64_t p = q_row * chunks + chunk;
    store_row(acc + p * D, softmax.acc, 1.0f, D, lane);
    if (lane == 0) {
      stats[2 * p] = softmax.max;
      stats[2 * p + 1] = softmax.sum;
    }
  }
}

template <class T>
__global__ void attention_decode_combine_kernel(AttentionShape s, int64_t chunks, const float* acc,
                                                const float* stats, T* out, float* lse) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= s.batch * s.q_len * s.q_heads) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int D = static_cast<int>(s.head_dim);
  const int64_t h = row % s.q_heads, t = row / s.q_heads % s.q_len, b = row / (s.q_heads * s.q_len);
  const float* row_stats = stats + 2 * row * chunks;
  float global_max = -INFINITY;
  for (int64_t c = 0; c < chunks; ++c) global_max = fmaxf(global_max, row_stats[2 * c]);
  float sum = 0.0f;
  Row total{};
  for (int64_t c = 0; c < chunks; ++c) {
    const float chunk_max = row_stats[2 * c];
    if (chunk_max == -INFINITY) continue;  // no visible key in this chunk
    const float w = expf(chunk_max - global_max);
    sum += w * row_stats[2 * c + 1];
    axpy(total, w, load_row(acc + (row * chunks + c) * D, D, lane));
  }
  store_row(out + row * D, total, 1.0f / sum, D, lane);
  if (lane == 0) lse[(b * s.q_heads + h) * s.q_len + t] = global_max + logf(sum);
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

int64_t attention_decode_chunks(const AttentionShape& s, int multiprocessors, size_t scratch_bytes) {
  const int64_t blocks_per_chunk = s.batch * s.kv_heads;
  int64_t chunks = std::max<int64_t>(1, 2 * multiprocessors / std::max<int64_t>(1, blocks_per_chunk));
  chunks = std::min(chunks, (s.kv_len + kMinKeysPerChunk - 1) / kMinKeysPerChunk);
  const size_t per_chunk = attention_decode_scratch_bytes(s, 1);
  chunks = std::min<int64_t>(chunks, static_cast<int64_t>(scratch_bytes / per_chunk));
  return std::max<int64_t>(chunks, 0);
}

size_t attention_decode_scratch_bytes(const AttentionShape& s, int64_t chunks) {
  return static_cast<size_t>(s.batch * s.q_len * s.q_heads * chunks * (s.head_dim + 2)) * sizeof(float);
}

void attention_decode_forward(const AttentionShape& s, DType dtype, int64_t chunks, void* out, float* lse,
                              const void* q, const void* k, const void* v, void* scratch, cudaStream_t stream) {
  if (s.empty()) return;
  LUMINA_CHECK(s.head_dim > 0 && s.head_dim <= kMaxHeadDim && s.kv_heads > 0 && s.q_heads % s.kv_heads == 0 &&
                   s.q_len <= s.kv_len && chunks >= 1,
               "decode attention: bad call (D={}, Hq={}, Hkv={}, Tq={}, Tk={}, chunks={})", s.head_dim, s.q_heads,
               s.kv_heads, s.q_len, s.kv_len, chunks);
  const int64_t chunk_len = (s.kv_len + chunks - 1) / chunks;
  const int64_t rows = s.batch * s.q_len * s.q_heads;
  float* acc = static_cast<float*>(scratch);
  float* stats = acc + rows * chunks * s.head_dim;
  cuda::dispatch_float(dtype, "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(s.batch * s.kv_heads));
    attention_decode_partial_kernel<T><<<grid, kWarpsPerBlock * kWarp, 0, stream>>>(
        s, s.scale(), chunks, chunk_len, static_cast<const T*>(q), static_cast<const T*>(k),
        static_cast<const T*>(v), acc, stats);
    LUMINA_CUDA_CHECK_LAUNCH();
    attention_decode_combine_kernel<T><<<blocks_for(rows), kWarpsPerBlock * kWarp, 0, stream>>>(
        s, chunks, acc, stats, static_cast<T*>(out), lse);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
