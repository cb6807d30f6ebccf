// sum_squares: sum of x^2 over every element, accumulated in f64.
// Deterministic two-stage reduction: stage 1 has a grid fixed by numel alone
// (at most kMaxBlocks blocks), each block writing one f64 partial; stage 2,
// one block, sums the partials in a fixed tree order. The result is copied to
// pinned host memory and the stream synchronised.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

// partials (gridDim.x) = per-block sum of x^2 over the block's grid-stride packs.
template <class T, int VEC>
__global__ void sum_squares_partial_kernel(const T* x, int64_t packs, double* partials) {
  double acc = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Pack<T, VEC> v = load_pack<VEC>(x + i * VEC);
    for (int k = 0; k < VEC; ++k) {
      const double f = to_f32(v.v[k]);
      acc += f * f;
    }
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// *total = sum of partials[0, count), by one block.
__global__ void sum_partials_kernel(const double* partials, int count, double* total) {
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += static_cast<int>(blockDim.x)) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *total = acc;
}

}  // namespace

double CudaBackend::sum_squares(const Tensor& x) {
  expect_device(x, "sum_squares", "x");
  const int64_t n = x.numel();
  if (n == 0) return 0.0;
  NvtxRange range("sum_squares");
  auto* partials = static_cast<double*>(scratch((kMaxBlocks + 1) * sizeof(double), "sum_squares"));
  double* total = partials + kMaxBlocks;
  dispatch_float(x.dtype, "sum_squares", [&](auto tag) {
    using T = decltype(tag);
    const auto* xp = static_cast<const T*>(x.data);
    constexpr int kVec = kPack16<T>;
    unsigned blocks = 0;
    if (n % kVec == 0 && aligned_16(xp)) {
      blocks = grid_blocks(n / kVec, kThreads, kMaxBlocks);
      sum_squares_partial_kernel<T, kVec><<<blocks, kThreads, 0, stream_>>>(xp, n / kVec, partials);
    } else {
      blocks = grid_blocks(n, kThreads, kMaxBlocks);
      sum_squares_partial_kernel<T, 1><<<blocks, kThreads, 0, stream_>>>(xp, n, partials);
    }
    LUMINA_CUDA_CHECK_LAUNCH();
    sum_partials_kernel<<<1, 1024, 0, stream_>>>(partials, static_cast<int>(blocks), total);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
  auto* host_total = reinterpret_cast<double*>(static_cast<char*>(host_words_) + 8);
  LUMINA_CUDA_CHECK(cudaMemcpyAsync(host_total, total, sizeof(double), cudaMemcpyDeviceToHost, stream_));
  synchronize();
  return *host_total;
}

}  // namespace lumina
