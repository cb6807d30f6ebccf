#pragma once
// Device building blocks of the simple attention kernels (attention_reference.cu,
// attention_decode.cu): one warp owns one row of head_dim values, lane l
// holding elements l, l + 32, l + 64, ... (at most 8 per lane, head_dim <= 256),
// in f32. Dot products are butterfly warp sums, so every lane holds the result.
#include <cmath>

#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina::attention_rows {

constexpr int kWarp = 32;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarp;
constexpr int kWarpsPerBlock = 4;

struct Row {
  float x[kPerLane];
};

template <class T>
__device__ __forceinline__ Row load_row(const T* row, int head_dim, int lane) {
  Row r;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    r.x[i] = d < head_dim ? cuda::to_f32(row[d]) : 0.0f;
  }
  return r;
}

// row = r * factor, rounded to T.
template <class T>
__device__ __forceinline__ void store_row(T* row, const Row& r, float factor, int head_dim, int lane) {
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    if (d < head_dim) row[d] = cuda::from_f32<T>(r.x[i] * factor);
  }
}

__device__ __forceinline__ float dot(const Row& a, const Row& b) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) s += a.x[i] * b.x[i];
  return cuda::warp_sum(s);
}

// y += a * x
__device__ __forceinline__ void axpy(Row& y, float a, const Row& x) {
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) y.x[i] += a * x.x[i];
}

// Streaming softmax-weighted sum over scores s_j and value rows v_j:
//   max = max_j s_j,  sum = sum_j exp(s_j - max),  acc = sum_j exp(s_j - max) v_j
// so that softmax(s) . v = acc / sum and log-sum-exp(s) = max + log(sum).
struct OnlineSoftmax {
  float max = -INFINITY;
  float sum = 0.0f;
  Row acc{};

  __device__ __forceinline__ void add(float score, const Row& value) {
    const float new_max = fmaxf(max, score);
    const float correction = expf(max - new_max);  // 0 for the first score (max = -inf)
    const float p = expf(score - new_max);
    sum = sum * correction + p;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) acc.x[i] = acc.x[i] * correction + p * value.x[i];
    max = new_max;
  }
};

}  // namespace lumina::attention_rows
