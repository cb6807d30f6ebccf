#pragma once
// Device-side building blocks of the CUDA kernels (nvcc only): element types
// and their f32 conversions, 16-byte packs, warp/block reductions, dtype
// dispatch and argument checks shared by the op files.
//
// All arithmetic inside kernels is f32 (f64 for sum_squares); bf16/f16 are
// storage types, converted on load and rounded to nearest-even on store.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "lumina/backend/cuda/cuda_check.h"
#include "lumina/core/tensor.h"

namespace lumina::cuda {

// ---- element types -----------------------------------------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }

template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }

// Calls f(T{}) with the device type of a float dtype: float (f32), __nv_bfloat16
// (bf16), __half (f16). Any other dtype is an error naming the op.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::bf16: f(__nv_bfloat16{}); return;
    case DType::f16: f(__half{}); return;
    default: fail("{}: dtype {} is not supported on CUDA (use f32, bf16 or f16)", op, dtype_name(t));
  }
}

// ---- 16-byte packs -------------------------------------------------------------------
// N elements loaded or stored with one instruction (16 bytes when N = 16 / sizeof(T)).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <int N, class T>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}
template <int N, class T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, N>& x) {
  *reinterpret_cast<Pack<T, N>*>(p) = x;
}

// Elements of T in 16 bytes.
template <class T>
constexpr int kPack16 = static_cast<int>(16 / sizeof(T));

inline bool aligned_16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Calls f(std::integral_constant<int, VEC>): the 16-byte pack when C is a multiple of it
// and every pointer is 16-byte aligned, else 1.
template <class T, class F>
void dispatch_vec(int64_t channels, std::initializer_list<const void*> pointers, F&& f) {
  constexpr int kVec = kPack16<T>;
  bool packed = channels % kVec == 0;
  for (const void* p : pointers) packed = packed && aligned_16(p);
  if (packed) f(std::integral_constant<int, kVec>{});
  else f(std::integral_constant<int, 1>{});
}

// ---- one warp per item (row, token) -------------------------------------------------------
// A grid-stride loop with WARPS warps per block: this warp's first item, and the stride.
template <int WARPS>
__device__ __forceinline__ int64_t first_warp() {
  return blockIdx.x * static_cast<int64_t>(WARPS) + (threadIdx.x >> 5);
}
template <int WARPS>
__device__ __forceinline__ int64_t warp_stride() {
  return static_cast<int64_t>(gridDim.x) * WARPS;
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- reductions --------------------------------------------------------------------------
// Butterfly sum: every lane ends with the same, bitwise identical value.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block in a fixed order; every thread gets the result.
// blockDim.x must be a multiple of 32. Safe to call several times in a row.
template <class T>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T warp_totals[32];
  v = warp_sum(v);
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  __syncthreads();  // an earlier call's readers are done with warp_totals
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x >> 5);
  return warp_sum(lane < warps ? warp_totals[lane] : T(0));
}

// ---- launch shapes and argument checks --------------------------------------------------
// Blocks for a grid-stride loop over `items` with `threads` per block, at most `max_blocks`.
inline unsigned grid_blocks(int64_t items, int threads, int64_t max_blocks) {
  int64_t blocks = (items + threads - 1) / threads;
  if (blocks > max_blocks) blocks = max_blocks;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// Threads for one block that walks a row of `packs` packs: a multiple of 32 in [32, max_threads].
inline int row_threads(int64_t packs, int max_threads) {
  int64_t t = (packs + 31) / 32 * 32;
  if (t > max_threads) t = max_threads;
  return static_cast<int>(t < 32 ? 32 : t);
}

// Throws unless t lives on the GPU.
inline void expect_device(const Tensor& t, const char* op, const char* name) {
  LUMINA_CHECK(t.device == Device::cuda, "{}: {} is a {} tensor; the CUDA backend takes GPU tensors", op, name,
               device_name(t.device));
}

// Throws unless t has dtype `want`.
inline void expect_dtype(const Tensor& t, DType want, const char* op, const char* name) {
  LUMINA_CHECK(t.dtype == want, "{}: {} must be {}, got {}", op, name, dtype_name(want), dtype_name(t.dtype));
}

}  // namespace lumina::cuda
