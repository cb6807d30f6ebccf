// MoE router, forward and backward (backend.h, "mixture of experts"), one warp
// per token: lane l holds experts l, l + 32, ... (LANE_E of them, E <= 256) in
// registers. Math in f32; logits / dlogits in the activation dtype (f32, bf16,
// f16), every other float tensor f32, indices i32.
//   forward: s = (logits + noise) * inv_temperature over the available experts A;
//            probs = softmax_A(s) (0 outside A), lse = logsumexp_A(s); top-k by k
//            rounds of warp argmax (ties to the lower id); weight = renormalised probs.
//   sums (E+2) without atomics: each of P <= kMaxBlocks blocks adds its tokens
//   (warp w of block b takes tokens b*W + w, stepping by P*W) per warp, then
//   its warps in order, into partials (P, E+2); a second kernel adds the P
//   partials per column in block order. P depends only on N: reproducible.
//   backward: ds_e = p_e (a_e - sum p a) + z_coef lse p_e + [e = choice_j] w_j (g_j - sum_i w_i g_i),
//             dlogits = ds * inv_temperature  (g_j = dweight_j where slot_row >= 0, else 0).
// With fewer than k available experts (the CPU throws) the missing choices
// are -1 with weight 0; moe_dispatch drops such slots.
#include <algorithm>
#include <climits>
#include <cmath>
#include <type_traits>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/moe_common.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kWarps = 8;             // tokens in flight per block, one warp each
constexpr int64_t kMaxBlocks = 1024;  // router forward: partial sums per block
constexpr int kSumThreads = 128;

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// probs (N,E), lse (N), choice (N,k), weight (N,k); partials (gridDim.x, E+2).
template <class T, int LANE_E>
__global__ void __launch_bounds__(32 * kWarps)
    moe_router_forward_kernel(float* probs, float* lse, int32_t* choice, float* weight, float* partials,
                              const T* logits, const float* noise, const int32_t* available, int64_t tokens,
                              int experts, int top_k, float inv_temperature) {
  __shared__ float warp_sums[kWarps][kMoeMaxExperts + 2];
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  unsigned avail = 0;  // bit i: expert lane + 32 i is available
#pragma unroll
  for (int i = 0; i < LANE_E; ++i)
    if (lane + 32 * i < experts && available[lane + 32 * i] == 1) avail |= 1u << i;
  float acc[LANE_E];  // this warp's sum of probs over its tokens
#pragma unroll
  for (int i = 0; i < LANE_E; ++i) acc[i] = 0.0f;
  float entropy_acc = 0.0f, lse_sq_acc = 0.0f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t n = blockIdx.x * static_cast<int64_t>(kWarps) + warp; n < tokens; n += stride) {
    const int64_t row = n * experts;
    float p[LANE_E];
    float max_s = -INFINITY;
#pragma unroll
    for (int i = 0; i < LANE_E; ++i) {
      p[i] = -INFINITY;
      if (avail >> i & 1u) {
        const int e = lane + 32 * i;
        float s = to_f32(logits[row + e]);
        if (noise) s += noise[row + e];
        p[i] = s * inv_temperature;
        max_s = fmaxf(max_s, p[i]);
      }
    }
    max_s = warp_max(max_s);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < LANE_E; ++i) {
      p[i] = (avail >> i & 1u) ? expf(p[i] - max_s) : 0.0f;
      sum += p[i];
    }
    sum = warp_sum(sum);
    float entropy = 0.0f;
#pragma unroll
    for (int i = 0; i < LANE_E; ++i) {
      p[i] = p[i] / sum;
      if (lane + 32 * i < experts) probs[row + lane + 32 * i] = p[i];
      if (p[i] > 0.0f) entropy -= p[i] * logf(p[i]);
      acc[i] += p[i];
    }
    entropy = warp_sum(entropy);
    const float token_lse = max_s + logf(sum);
    if (lane == 0) lse[n] = token_lse;
    entropy_acc += entropy;
    lse_sq_acc += token_lse * token_lse;
    // Top-k: each round every lane offers its best untaken expert, the warp keeps the
    // largest p (ties: lower id); lane j keeps round j's winner. Warp-uniform throughout.
    unsigned taken = 0;
    float chosen_sum = 0.0f, my_p = 0.0f;
    int my_e = -1;
    for (int j = 0; j < top_k; ++j) {
      float best_p = -1.0f;
      int best_e = INT_MAX;
#pragma unroll
      for (int i = 0; i < LANE_E; ++i)
        if (((avail & ~taken) >> i & 1u) && p[i] > best_p) {
          best_p = p[i];
          best_e = lane + 32 * i;
        }
      for (int offset = 16; offset > 0; offset >>= 1) {
        const float other_p = __shfl_xor_sync(0xffffffffu, best_p, offset);
        const int other_e = __shfl_xor_sync(0xffffffffu, best_e, offset);
        if (other_p > best_p || (other_p == best_p && other_e < best_e)) {
          best_p = other_p;
          best_e = other_e;
        }
      }
      if (best_e == INT_MAX) break;  // fewer than k available experts
      if ((best_e & 31) == lane) taken |= 1u << (best_e >> 5);
      if (lane == j) {
        my_p = best_p;
        my_e = best_e;
      }
      chosen_sum += best_p;
    }
    if (lane < top_k) {
      choice[n * top_k + lane] = my_e;
      weight[n * top_k + lane] = my_e >= 0 ? my_p / chosen_sum : 0.0f;
    }
  }
#pragma unroll
  for (int i = 0; i < LANE_E; ++i)
    if (lane + 32 * i < experts) warp_sums[warp][lane + 32 * i] = acc[i];
  if (lane == 0) {
    warp_sums[warp][experts] = entropy_acc;
    warp_sums[warp][experts + 1] = lse_sq_acc;
  }
  __syncthreads();
  for (int c = static_cast<int>(threadIdx.x); c < experts + 2; c += static_cast<int>(blockDim.x)) {
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) total += warp_sums[w][c];
    partials[blockIdx.x * static_cast<int64_t>(experts + 2) + c] = total;
  }
}

// sums (columns) = sum over the partials (count, columns), in partial order.
__global__ void moe_router_sums_kernel(float* sums, const float* partials, int64_t count, int columns) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= columns) return;
  float total = 0.0f;
  for (int64_t b = 0; b < count; ++b) total += partials[b * columns + c];
  sums[c] = total;
}

// dlogits (N,E) from probs (N,E), lse (N), choice/weight/slot_row/dweight (N,k), assigned (E).
template <class T, int LANE_E>
__global__ void __launch_bounds__(32 * kWarps)
    moe_router_backward_kernel(T* dlogits, const float* probs, const float* lse, const int32_t* choice,
                               const float* weight, const int32_t* slot_row, const float* dweight,
                               const int32_t* assigned, int64_t tokens, int experts, int top_k, float inv_temperature,
                               double aux_coef, float z_coef) {
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  float a[LANE_E];  // d aux / d p_e = aux_coef * assigned_e
#pragma unroll
  for (int i = 0; i < LANE_E; ++i)
    a[i] = lane + 32 * i < experts ? static_cast<float>(aux_coef * assigned[lane + 32 * i]) : 0.0f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t n = blockIdx.x * static_cast<int64_t>(kWarps) + warp; n < tokens; n += stride) {
    const int64_t row = n * experts;
    float p[LANE_E], mean_a = 0.0f;
#pragma unroll
    for (int i = 0; i < LANE_E; ++i) {
      p[i] = lane + 32 * i < experts ? probs[row + lane + 32 * i] : 0.0f;
      mean_a += p[i] * a[i];
    }
    mean_a = warp_sum(mean_a);
    const float dz = z_coef * lse[n];
    float ds[LANE_E];
#pragma unroll
    for (int i = 0; i < LANE_E; ++i) ds[i] = p[i] * (a[i] - mean_a) + dz * p[i];
    // Lane j < k holds choice j: w_j, g_j; mean_g = sum_j w_j g_j in j order.
    int c = -1;
    float w = 0.0f, g = 0.0f;
    if (lane < top_k) {
      const int64_t slot = n * top_k + lane;
      c = choice[slot];
      w = weight[slot];
      g = slot_row[slot] >= 0 ? dweight[slot] : 0.0f;
    }
    float mean_g = 0.0f;
    for (int j = 0; j < top_k; ++j) mean_g += __shfl_sync(0xffffffffu, w * g, j);
    const float add = w * (g - mean_g);
    for (int j = 0; j < top_k; ++j) {
      const int cj = __shfl_sync(0xffffffffu, c, j);
      const float add_j = __shfl_sync(0xffffffffu, add, j);
#pragma unroll
      for (int i = 0; i < LANE_E; ++i)
        if (cj == lane + 32 * i) ds[i] += add_j;
    }
#pragma unroll
    for (int i = 0; i < LANE_E; ++i)
      if (lane + 32 * i < experts) dlogits[row + lane + 32 * i] = from_f32<T>(ds[i] * inv_temperature);
  }
}

// Calls f(std::integral_constant<int, LANE_E>) with the smallest LANE_E in {1, 2, 4, 8}, 32 LANE_E >= E.
template <class F>
void dispatch_lane_experts(int64_t experts, F&& f) {
  if (experts <= 32) f(std::integral_constant<int, 1>{});
  else if (experts <= 64) f(std::integral_constant<int, 2>{});
  else if (experts <= 128) f(std::integral_constant<int, 4>{});
  else f(std::integral_constant<int, kMoeMaxExperts / 32>{});
}

void check_inv_temperature(double inv_temperature, const char* op) {
  LUMINA_CHECK(inv_temperature > 0.0 && std::isfinite(inv_temperature),
               "{}: inv_temperature = {} must be finite and > 0 (routing_temperature > 0)", op, inv_temperature);
}

}  // namespace

void CudaBackend::moe_router_forward(Tensor probs, Tensor lse, Tensor choice, Tensor weight, Tensor sums,
                                     const Tensor& logits, const Tensor& noise, const Tensor& available,
                                     double inv_temperature) {
  const char* op = "moe_router_forward";
  expect_device(logits, op, "logits");
  LUMINA_CHECK(logits.rank() == 2, "{}: logits must be (N, E), got {}", op, logits.shape.str());
  LUMINA_CHECK(choice.rank() == 2, "{}: choice must be (N, k), got {}", op, choice.shape.str());
  const int64_t N = logits.dim(0), E = logits.dim(1), k = choice.dim(1);
  check_moe_sizes(E, k, op);
  check_moe_operand(choice, DType::i32, Shape{N, k}, op, "choice");
  check_moe_operand(probs, DType::f32, Shape{N, E}, op, "probs");
  check_moe_operand(lse, DType::f32, Shape{N}, op, "lse");
  check_moe_operand(weight, DType::f32, Shape{N, k}, op, "weight");
  check_moe_operand(sums, DType::f32, Shape{E + 2}, op, "sums");
  check_moe_operand(available, DType::i32, Shape{E}, op, "available");
  if (!noise.empty()) check_moe_operand(noise, DType::f32, Shape{N, E}, op, "noise");
  check_inv_temperature(inv_temperature, op);
  NvtxRange range(op);
  if (N == 0) {
    LUMINA_CUDA_CHECK(cudaMemsetAsync(sums.data, 0, sums.bytes(), stream_));
    return;
  }
  const int64_t blocks = std::min<int64_t>((N + kWarps - 1) / kWarps, kMaxBlocks);
  auto* partials = static_cast<float*>(scratch(static_cast<size_t>(blocks * (E + 2)) * sizeof(float), op));
  dispatch_float(logits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_lane_experts(E, [&](auto lane_e) {
      moe_router_forward_kernel<T, decltype(lane_e)::value><<<static_cast<unsigned>(blocks), 32 * kWarps, 0, stream_>>>(
          static_cast<float*>(probs.data), static_cast<float*>(lse.data), static_cast<int32_t*>(choice.data),
          static_cast<float*>(weight.data), partials, static_cast<const T*>(logits.data),
          static_cast<const float*>(noise.data), static_cast<const int32_t*>(available.data), N, static_cast<int>(E),
          static_cast<int>(k), static_cast<float>(inv_temperature));
    });
    LUMINA_CUDA_CHECK_LAUNCH();
  });
  const int columns = static_cast<int>(E + 2);
  moe_router_sums_kernel<<<static_cast<unsigned>((columns + kSumThreads - 1) / kSumThreads), kSumThreads, 0, stream_>>>(
      static_cast<float*>(sums.data), partials, blocks, columns);
  LUMINA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::moe_router_backward(Tensor dlogits, const Tensor& probs, const Tensor& lse, const Tensor& choice,
                                      const Tensor& weight, const Tensor& slot_row, const Tensor& dweight,
                                      const Tensor& assigned, double inv_temperature, double aux_coef, double z_coef) {
  const char* op = "moe_router_backward";
  expect_device(probs, op, "probs");
  LUMINA_CHECK(probs.rank() == 2, "{}: probs must be (N, E), got {}", op, probs.shape.str());
  LUMINA_CHECK(choice.rank() == 2, "{}: choice must be (N, k), got {}", op, choice.shape.str());
  const int64_t N = probs.dim(0), E = probs.dim(1), k = choice.dim(1);
  check_moe_sizes(E, k, op);
  expect_device(dlogits, op, "dlogits");
  LUMINA_CHECK(dlogits.shape == probs.shape, "{}: dlogits has shape {}, expected {}", op, dlogits.shape.str(),
               probs.shape.str());
  check_moe_operand(probs, DType::f32, Shape{N, E}, op, "probs");
  check_moe_operand(lse, DType::f32, Shape{N}, op, "lse");
  check_moe_operand(choice, DType::i32, Shape{N, k}, op, "choice");
  check_moe_operand(weight, DType::f32, Shape{N, k}, op, "weight");
  check_moe_operand(dweight, DType::f32, Shape{N, k}, op, "dweight");
  check_moe_operand(assigned, DType::i32, Shape{E}, op, "assigned");
  check_moe_indices(slot_row, N * k, op, "slot_row");
  check_inv_temperature(inv_temperature, op);
  if (N == 0) return;
  NvtxRange range(op);
  const unsigned blocks = grid_blocks(N, kWarps, 16LL * multiprocessor_count_);
  dispatch_float(dlogits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_lane_experts(E, [&](auto lane_e) {
      moe_router_backward_kernel<T, decltype(lane_e)::value><<<blocks, 32 * kWarps, 0, stream_>>>(
          static_cast<T*>(dlogits.data), static_cast<const float*>(probs.data), static_cast<const float*>(lse.data),
          static_cast<const int32_t*>(choice.data), static_cast<const float*>(weight.data),
          static_cast<const int32_t*>(slot_row.data), static_cast<const float*>(dweight.data),
          static_cast<const int32_t*>(assigned.data), N, static_cast<int>(E), static_cast<int>(k),
          static_cast<float>(inv_temperature), aux_coef, static_cast<float>(z_coef));
    });
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
