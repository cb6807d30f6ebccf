// Elementwise ops over the flat elements of a tensor: fill, cast, axpy, scale.
// Each kernel is a grid-stride loop over packs of VEC elements: 16-byte packs
// when every pointer is 16-byte aligned and numel is a multiple of VEC, single
// elements otherwise. Math in f32, stores rounded to nearest-even.
#include <cmath>
#include <initializer_list>
#include <type_traits>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

// Grid-stride index of this thread and the grid's stride, in packs.
__device__ __forceinline__ int64_t first_index() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// x[i] = value.
template <class T, int VEC>
__global__ void fill_kernel(T* x, int64_t packs, T value) {
  Pack<T, VEC> p;
  for (int k = 0; k < VEC; ++k) p.v[k] = value;
  for (int64_t i = first_index(); i < packs; i += grid_stride()) store_pack<VEC>(x + i * VEC, p);
}

// dst[i] = src[i] converted (through f32).
template <class D, class S, int VEC>
__global__ void cast_kernel(D* dst, const S* src, int64_t packs) {
  for (int64_t i = first_index(); i < packs; i += grid_stride()) {
    const Pack<S, VEC> s = load_pack<VEC>(src + i * VEC);
    Pack<D, VEC> d;
    for (int k = 0; k < VEC; ++k) d.v[k] = from_f32<D>(to_f32(s.v[k]));
    store_pack<VEC>(dst + i * VEC, d);
  }
}

// y[i] += alpha * x[i].
template <class T, int VEC>
__global__ void axpy_kernel(T* y, const T* x, int64_t packs, float alpha) {
  for (int64_t i = first_index(); i < packs; i += grid_stride()) {
    Pack<T, VEC> yv = load_pack<VEC>(y + i * VEC);
    const Pack<T, VEC> xv = load_pack<VEC>(x + i * VEC);
    for (int k = 0; k < VEC; ++k) yv.v[k] = from_f32<T>(to_f32(yv.v[k]) + alpha * to_f32(xv.v[k]));
    store_pack<VEC>(y + i * VEC, yv);
  }
}

// x[i] *= alpha.
template <class T, int VEC>
__global__ void scale_kernel(T* x, int64_t packs, float alpha) {
  for (int64_t i = first_index(); i < packs; i += grid_stride()) {
    Pack<T, VEC> v = load_pack<VEC>(x + i * VEC);
    for (int k = 0; k < VEC; ++k) v.v[k] = from_f32<T>(alpha * to_f32(v.v[k]));
    store_pack<VEC>(x + i * VEC, v);
  }
}

// True when n elements at every pointer can be walked in packs of `vec` elements of `elem_bytes`.
bool packable(int64_t n, int vec, size_t elem_bytes, std::initializer_list<const void*> pointers) {
  if (n % vec != 0) return false;
  for (const void* p : pointers)
    if ((reinterpret_cast<uintptr_t>(p) % (static_cast<size_t>(vec) * elem_bytes)) != 0) return false;
  return true;
}

template <class T>
void launch_fill(const CudaBackend& be, T* x, int64_t n, T value) {
  const int64_t max_blocks = 16LL * be.multiprocessor_count();
  if (packable(n, kPack16<T>, sizeof(T), {x})) {
    const int64_t packs = n / kPack16<T>;
    fill_kernel<T, kPack16<T>><<<grid_blocks(packs, kThreads, max_blocks), kThreads, 0, be.stream()>>>(x, packs, value);
  } else {
    fill_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, be.stream()>>>(x, n, value);
  }
  LUMINA_CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::fill(Tensor dst, double value) {
  expect_device(dst, "fill", "dst");
  const int64_t n = dst.numel();
  if (n == 0) return;
  NvtxRange range("fill");
  if (dst.dtype == DType::i32) {
    LUMINA_CHECK(std::nearbyint(value) == value && std::fabs(value) <= 2147483647.0,
                 "fill: {} is not an i32 value", value);
    launch_fill(*this, static_cast<int32_t*>(dst.data), n, static_cast<int32_t>(value));
    return;
  }
  dispatch_float(dst.dtype, "fill", [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (std::is_same_v<T, float>) v = static_cast<float>(value);
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) v = __float2bfloat16_rn(static_cast<float>(value));
    else v = __float2half_rn(static_cast<float>(value));
    launch_fill(*this, static_cast<T*>(dst.data), n, v);
  });
}

void CudaBackend::cast(Tensor dst, const Tensor& src) {
  expect_device(dst, "cast", "dst");
  expect_device(src, "cast", "src");
  LUMINA_CHECK(dst.numel() == src.numel(), "cast: dst {} and src {} differ in size", dst.shape.str(),
               src.shape.str());
  const int64_t n = dst.numel();
  if (n == 0) return;
  if (dst.dtype == src.dtype) {
    copy(dst, src);
    return;
  }
  NvtxRange range("cast");
  constexpr int kVec = 4;  // 16 bytes of f32, 8 of bf16/f16
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  dispatch_float(dst.dtype, "cast", [&](auto dst_tag) {
    dispatch_float(src.dtype, "cast", [&](auto src_tag) {
      using D = decltype(dst_tag);
      using S = decltype(src_tag);
      auto* d = static_cast<D*>(dst.data);
      const auto* s = static_cast<const S*>(src.data);
      if (packable(n, kVec, sizeof(D), {d}) && packable(n, kVec, sizeof(S), {s}))
        cast_kernel<D, S, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream_>>>(d, s, n / kVec);
      else
        cast_kernel<D, S, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(d, s, n);
      LUMINA_CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::axpy(Tensor y, const Tensor& x, double alpha) {
  expect_device(y, "axpy", "y");
  expect_device(x, "axpy", "x");
  LUMINA_CHECK(y.dtype == x.dtype, "axpy: y is {} but x is {}", dtype_name(y.dtype), dtype_name(x.dtype));
  check_shape(x, y.shape, "axpy: x (as y)");
  const int64_t n = y.numel();
  if (n == 0) return;
  NvtxRange range("axpy");
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  dispatch_float(y.dtype, "axpy", [&](auto tag) {
    using T = decltype(tag);
    auto* yp = static_cast<T*>(y.data);
    const auto* xp = static_cast<const T*>(x.data);
    constexpr int kVec = kPack16<T>;
    if (packable(n, kVec, sizeof(T), {yp, xp}))
      axpy_kernel<T, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream_>>>(
          yp, xp, n / kVec, static_cast<float>(alpha));
    else
      axpy_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(yp, xp, n,
                                                                                        static_cast<float>(alpha));
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::scale(Tensor x, double alpha) {
  expect_device(x, "scale", "x");
  const int64_t n = x.numel();
  if (n == 0) return;
  NvtxRange range("scale");
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  dispatch_float(x.dtype, "scale", [&](auto tag) {
    using T = decltype(tag);
    auto* xp = static_cast<T*>(x.data);
    constexpr int kVec = kPack16<T>;
    if (packable(n, kVec, sizeof(T), {xp}))
      scale_kernel<T, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream_>>>(
          xp, n / kVec, static_cast<float>(alpha));
    else
      scale_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(xp, n,
                                                                                         static_cast<float>(alpha));
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
