#include "lumina/backend/cuda/attention_reference.h"

#include <cmath>

#include "lumina/backend/cuda/attention_rows.cuh"

// One warp per row (attention_rows.cuh), f32 arithmetic:
//   forward (per query row i):  s_j = scale q_i.k_j for keys j <= pos(i); online
//                               softmax; out_i = sum_j p_ij v_j; lse_i = m + log l
//   dq (per query row i):       delta_i = dout_i.out_i; p_ij = exp(s_ij - lse_i)
//                               dq_i = scale sum_j p_ij (dout_i.v_j - delta_i) k_j
//   dk, dv (per key row j):     over the query heads of j's group and rows i >= j:
//                               dv_j = sum p_ij dout_i;  dk_j = scale sum ds_ij q_i

namespace lumina {
namespace {

using namespace attention_rows;

// One warp per query row (b, t, h), rows numbered ((b * Tq + t) * Hq + h).
template <class T>
__global__ void attention_reference_forward_kernel(AttentionShape s, float scale, T* out, float* lse, const T* q,
                                                   const T* k, const T* v) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= s.batch * s.q_len * s.q_heads) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int D = static_cast<int>(s.head_dim);
  const int64_t h = row % s.q_heads, t = row / s.q_heads % s.q_len, b = row / (s.q_heads * s.q_len);
  const int64_t kv_head = h / (s.q_heads / s.kv_heads);
  const Row qi = load_row(q + row * D, D, lane);

  OnlineSoftmax softmax;
  const int64_t last = s.kv_len - s.q_len + t;  // keys 0..last are visible
  for (int64_t j = 0; j <= last; ++j) {
    const int64_t kv_row = (b * s.kv_len + j) * s.kv_heads + kv_head;
    softmax.add(dot(qi, load_row(k + kv_row * D, D, lane)) * scale, load_row(v + kv_row * D, D, lane));
  }
  store_row(out + row * D, softmax.acc, 1.0f / softmax.sum, D, lane);
  if (lane == 0) lse[(b * s.q_heads + h) * s.q_len + t] = softmax.max + logf(softmax.sum);
}

// dq: one warp per query row (b, t, h).
template <class T>
__global__ void attention_reference_dq_kernel(AttentionShape s, float scale, T* dq, const T* dout, const T* q,
                                              const T* k, const T* v, const T* out, const float* lse) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= s.batch * s.q_len * s.q_heads) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int D = static_cast<int>(s.head_dim);
  const int64_t h = row % s.q_heads, t = row / s.q_heads % s.q_len, b = row / (s.q_heads * s.q_len);
  const int64_t kv_head = h / (s.q_heads / s.kv_heads);
  const Row qi = load_row(q + row * D, D, lane);
  const Row dout_i = load_row(dout + row * D, D, lane);
  const float delta = dot(dout_i, load_row(out + row * D, D, lane));
  const float lse_i = lse[(b * s.q_heads + h) * s.q_len + t];

  Row acc{};
  for (int64_t j = 0; j <= t; ++j) {
    const int64_t kv_row = (b * s.kv_len + j) * s.kv_heads + kv_head;
    const Row kj = load_row(k + kv_row * D, D, lane);
    const float p = expf(dot(qi, kj) * scale - lse_i);
    const float dp = dot(dout_i, load_row(v + kv_row * D, D, lane));
    axpy(acc, p * (dp - delta), kj);
  }
  store_row(dq + row * D, acc, scale, D, lane);
}

// dk, dv: one warp per key row (b, j, kv_head), rows numbered ((b * T + j) * Hkv + kv_head).
template <class T>
__global__ void attention_reference_dkdv_kernel(AttentionShape s, float scale, T* dk, T* dv, const T* dout,
                                                const T* q, const T* k, const T* v, const T* out, const float* lse) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= s.batch * s.kv_len * s.kv_heads) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int D = static_cast<int>(s.head_dim);
  const int64_t kv_head = row % s.kv_heads, j = row / s.kv_heads % s.kv_len, b = row / (s.kv_heads * s.kv_len);
  const Row kj = load_row(k + row * D, D, lane);
  const Row vj = load_row(v + row * D, D, lane);

  const int64_t group = s.q_heads / s.kv_heads;
  Row dk_acc{}, dv_acc{};
  for (int64_t g = 0; g < group; ++g) {
    const int64_t h = kv_head * group + g;
    for (int64_t i = j; i < s.q_len; ++i) {
      const int64_t q_row = (b * s.q_len + i) * s.q_heads + h;
      const Row qi = load_row(q + q_row * D, D, lane);
      const Row dout_i = load_row(dout + q_row * D, D, lane);
      const float delta = dot(dout_i, load_row(out + q_row * D, D, lane));
      const float p = expf(dot(qi, kj) * scale - lse[(b * s.q_heads + h) * s.q_len + i]);
      const float dp = dot(dout_i, vj);
      axpy(dv_acc, p, dout_i);
      axpy(dk_acc, p * (dp - delta), qi);
    }
  }
  store_row(dk + row * D, dk_acc, scale, D, lane);
  store_row(dv + row * D, dv_acc, 1.0f, D, lane);
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

void check_shape(const AttentionShape& s) {
  LUMINA_CHECK(s.head_dim > 0 && s.head_dim <= kMaxHeadDim, "reference attention supports head_dim 1..{}, got {}",
               kMaxHeadDim, s.head_dim);
  LUMINA_CHECK(s.kv_heads > 0 && s.q_heads % s.kv_heads == 0 && s.q_len <= s.kv_len,
               "reference attention: Hq={} must be a multiple of Hkv={} and Tq={} at most Tk={}", s.q_heads,
               s.kv_heads, s.q_len, s.kv_len);
}

}  // namespace

void attention_reference_forward(const AttentionShape& s, DType dtype, void* out, float* lse, const void* q,
                                 const void* k, const void* v, cudaStream_t stream) {
  if (s.empty()) return;
  check_shape(s);
  cuda::dispatch_float(dtype, "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    attention_reference_forward_kernel<T><<<blocks_for(s.batch * s.q_len * s.q_heads), kWarpsPerBlock * kWarp, 0,
                                            stream>>>(s, s.scale(), static_cast<T*>(out), lse,
                                                      static_cast<const T*>(q), static_cast<const T*>(k),
                                                      static_cast<const T*>(v));
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void attention_reference_backward(const AttentionShape& s, DType dtype, void* dq, void* dk, void* dv,
                                  const void* dout, const void* q, const void* k, const void* v, const void* out,
                                  const float* lse, cudaStream_t stream) {
  if (s.empty()) return;
  check_shape(s);
  LUMINA_CHECK(s.q_len == s.kv_len, "attention backward needs q_len == kv_len, got {} and {}", s.q_len, s.kv_len);
  cuda::dispatch_float(dtype, "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    const auto* dout_t = static_cast<const T*>(dout);
    const auto* q_t = static_cast<const T*>(q);
    const auto* k_t = static_cast<const T*>(k);
    const auto* v_t = static_cast<const T*>(v);
    const auto* out_t = static_cast<const T*>(out);
    attention_reference_dq_kernel<T><<<blocks_for(s.batch * s.q_len * s.q_heads), kWarpsPerBlock * kWarp, 0,
                                       stream>>>(s, s.scale(), static_cast<T*>(dq), dout_t, q_t, k_t, v_t, out_t, lse);
    LUMINA_CUDA_CHECK_LAUNCH();
    attention_reference_dkdv_kernel<T><<<blocks_for(s.batch * s.kv_len * s.kv_heads), kWarpsPerBlock * kWarp, 0,
                                         stream>>>(s, s.scale(), static_cast<T*>(dk), static_cast<T*>(dv), dout_t,
                                                   q_t, k_t, v_t, out_t, lse);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
