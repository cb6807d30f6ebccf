// RMSNorm, forward and backward (16-byte packs).
//   forward:  rstd (N) = 1 / sqrt(mean_c(x^2) + eps);  y (N, C) = x * rstd * w.
//   backward: dx (N, C) += rstd * (w*dy - x * rstd^2 * mean_c(w*dy*x))   (accumulates: residual stream)
//             dw (C) f32 += sum_n dy * x * rstd
// Rows of up to 32 * kMaxLanePacks packs (C <= 2048 in bf16/f16, 1024 in f32)
// take one warp per row: the row stays in registers between the reduction and
// the update, and the row sum is a warp shuffle (no block barrier per row).
// Wider or unaligned rows take one block per row.
// dw without atomics: each of P <= kMaxPartials blocks walks a fixed set of
// rows and keeps its own dw partial in shared memory (a slice per warp, or per
// block with each thread owning fixed columns); a second kernel adds the P partials in
// a fixed order (32 column-owning slices per column, then the slices). P depends
// only on N and C, so results are bitwise reproducible.
// x, y, w, dy, dx share one dtype (f32, bf16, f16); rstd and dw are f32.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

#include <algorithm>
#include <type_traits>

namespace lumina {

namespace {

using namespace cuda;

constexpr int64_t kMaxPartials = 1024;  // blocks of the backward (dw partials) at most: bounds the reduce's reads
constexpr size_t kDefaultSharedBytes = 48 * 1024;
constexpr int kMaxLanePacks = 8;         // packs per lane held in registers by the warp-per-row kernels
constexpr int kRowWarps = 8;             // warps (rows in flight) per block of the warp-per-row kernels

// Resident blocks per SM asked of the compiler for MAXP packs per lane: the
// register budget per thread is 65536 / (32 * kRowWarps * blocks), so wide rows
// (MAXP 6, 8: C = 1536, 2048 in bf16) get one block and no spills. The backward
// holds three row packs per slot (x, dy, dx) to the forward's two.
constexpr int forward_min_blocks(int maxp) { return maxp <= 3 ? 3 : maxp <= 4 ? 2 : 1; }
constexpr int backward_min_blocks(int maxp) { return maxp <= 4 ? 2 : 1; }

// ---- one warp per row --------------------------------------------------------------------
// Lane l owns packs l, l + 32, ... (< packs) of every row it visits; MAXP bounds
// their count (a compile-time size keeps them in registers). The forward walks
// its rows with the next row's load in flight while the current one is reduced
// and stored (the grid is sized to the resident blocks, so warps loop).
template <class T, int VEC, int MAXP>
__global__ void __launch_bounds__(32 * kRowWarps, forward_min_blocks(MAXP))
    rmsnorm_forward_warp_kernel(T* y, float* rstd, const T* x, const T* w, int64_t rows, int64_t packs, float eps) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t warps = warp_stride<kRowWarps>();
  const float channels = static_cast<float>(packs * VEC);
  Pack<T, VEC> wv[MAXP], xv[MAXP];
  auto load_row = [&](Pack<T, VEC>(&dst)[MAXP], int64_t row) {
#pragma unroll
    for (int j = 0; j < MAXP; ++j)
      if (lane + 32 * j < packs) dst[j] = load_pack<VEC>(x + (row * packs + lane + 32 * j) * VEC);
  };
#pragma unroll
  for (int j = 0; j < MAXP; ++j)
    if (lane + 32 * j < packs) wv[j] = load_pack<VEC>(w + (lane + 32 * j) * VEC);
  int64_t row = first_warp<kRowWarps>();
  if (row < rows) load_row(xv, row);
  while (row < rows) {
    const int64_t next = row + warps;
    Pack<T, VEC> xn[MAXP];
    if (next < rows) load_row(xn, next);
    float sum_squares = 0.0f;
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (lane + 32 * j >= packs) continue;
      for (int k = 0; k < VEC; ++k) sum_squares += to_f32(xv[j].v[k]) * to_f32(xv[j].v[k]);
    }
    const float r = rsqrtf(warp_sum(sum_squares) / channels + eps);
    if (lane == 0) rstd[row] = r;
    T* yr = y + row * packs * VEC;
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (lane + 32 * j >= packs) continue;
      Pack<T, VEC> yv;
      for (int k = 0; k < VEC; ++k) yv.v[k] = from_f32<T>(to_f32(xv[j].v[k]) * r * to_f32(wv[j].v[k]));
      store_pack<VEC>(yr + (lane + 32 * j) * VEC, yv);
      xv[j] = xn[j];
    }
    row = next;
  }
}

// Resident blocks per SM of a warp-per-row kernel (32 * kRowWarps threads, no
// dynamic shared memory), asked of the driver once per kernel rather than per
// call. It only sizes the forward's grid (the kernel loops over its rows), so
// one answer serves every device of the process.
template <auto Kernel>
int resident_blocks_per_sm() {
  static const int blocks = [] {
    int resident = 0;
    LUMINA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, Kernel, 32 * kRowWarps, 0));
    return std::max(1, resident);
  }();
  return blocks;
}

// Block b handles rows b * kRowWarps + warp, stepping by gridDim.x * kRowWarps.
// Shared memory (rmsnorm_backward_warp_shared_bytes): w as packs [j][lane]
// (pack lane + 32 j), then one f32 dw slice per warp laid out [j][k4][lane] in
// float4s (k4: the 4-float quarters of a pack), so a warp's 16-byte accesses
// touch consecutive addresses. A lane owns the same columns of every row, so
// its dw slots are its own: no atomics, no barrier per row.
// Each row's x, dy and dx are all loaded before the warp sum (one memory round
// trip per row). dw_partials (gridDim.x, C): the block's sum over its rows of
// dy * x * rstd, its warps added in warp order.
template <class T, int VEC, int MAXP>
__global__ void __launch_bounds__(32 * kRowWarps, backward_min_blocks(MAXP))
    rmsnorm_backward_warp_kernel(T* dx, float* dw_partials, const T* dy, const T* x, const T* w, const float* rstd,
                                 int64_t rows, int64_t packs) {
  constexpr int kQuarters = VEC / 4;                  // float4s per pack of dw
  constexpr int kSliceFloat4s = MAXP * kQuarters * 32;  // one warp's dw slice
  extern __shared__ float4 shared[];
  float4* dw_slices = shared;  // (kRowWarps, MAXP, kQuarters, 32)
  auto* w_packs = reinterpret_cast<Pack<T, VEC>*>(dw_slices + kRowWarps * kSliceFloat4s);  // (MAXP, 32)
  const int lane = static_cast<int>(threadIdx.x & 31u), warp_in_block = static_cast<int>(threadIdx.x >> 5);
  const int64_t channels = packs * VEC;
  for (int i = static_cast<int>(threadIdx.x); i < kRowWarps * kSliceFloat4s; i += blockDim.x)
    dw_slices[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int i = static_cast<int>(threadIdx.x); i < packs; i += blockDim.x) w_packs[i] = load_pack<VEC>(w + i * VEC);
  __syncthreads();
  float4* dw_mine = dw_slices + warp_in_block * kSliceFloat4s;
  const int64_t first = blockIdx.x * static_cast<int64_t>(kRowWarps) + warp_in_block;
  for (int64_t row = first; row < rows; row += static_cast<int64_t>(gridDim.x) * kRowWarps) {
    const int64_t offset = row * channels;
    const float r = rstd[row];
    Pack<T, VEC> xv[MAXP], dyv[MAXP], dxv[MAXP];
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (lane + 32 * j >= packs) continue;
      xv[j] = load_pack<VEC>(x + offset + (lane + 32 * j) * VEC);
      dyv[j] = load_pack<VEC>(dy + offset + (lane + 32 * j) * VEC);
      dxv[j] = load_pack<VEC>(dx + offset + (lane + 32 * j) * VEC);
    }
    float dot = 0.0f;  // sum_c w * dy * x
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (lane + 32 * j >= packs) continue;
      const Pack<T, VEC> wv = w_packs[lane + 32 * j];
      for (int k = 0; k < VEC; ++k) dot += to_f32(wv.v[k]) * to_f32(dyv[j].v[k]) * to_f32(xv[j].v[k]);
    }
    const float coef = r * r * warp_sum(dot) / static_cast<float>(channels);  // rstd^2 * mean(w dy x)
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (lane + 32 * j >= packs) continue;
      const Pack<T, VEC> wv = w_packs[lane + 32 * j];
      float dw_row[VEC];
      for (int k = 0; k < VEC; ++k) {
        const float xk = to_f32(xv[j].v[k]), dyk = to_f32(dyv[j].v[k]);
        dxv[j].v[k] = from_f32<T>(to_f32(dxv[j].v[k]) + r * (to_f32(wv.v[k]) * dyk - xk * coef));
        dw_row[k] = dyk * xk * r;
      }
      store_pack<VEC>(dx + offset + (lane + 32 * j) * VEC, dxv[j]);
      for (int q = 0; q < kQuarters; ++q) {
        float4& slot = dw_mine[(j * kQuarters + q) * 32 + lane];
        float4 acc = slot;
        acc.x += dw_row[4 * q];
        acc.y += dw_row[4 * q + 1];
        acc.z += dw_row[4 * q + 2];
        acc.w += dw_row[4 * q + 3];
        slot = acc;
      }
    }
  }
  __syncthreads();
  // Float4 i of a slice is columns (lane + 32 j) * VEC + 4 q .. + 3 with i = (j * kQuarters + q) * 32 + lane.
  for (int i = static_cast<int>(threadIdx.x); i < kSliceFloat4s; i += blockDim.x) {
    const int i_lane = i % 32, q = (i / 32) % kQuarters, j = i / (32 * kQuarters);
    const int64_t pack = i_lane + 32 * j;
    if (pack >= packs) continue;
    float4 sum = dw_slices[i];
    for (int wi = 1; wi < kRowWarps; ++wi) {
      const float4 s = dw_slices[wi * kSliceFloat4s + i];
      sum.x += s.x;
      sum.y += s.y;
      sum.z += s.z;
      sum.w += s.w;
    }
    *reinterpret_cast<float4*>(dw_partials + blockIdx.x * channels + pack * VEC + 4 * q) = sum;
  }
}

// Dynamic shared memory of rmsnorm_backward_warp_kernel<T, VEC, MAXP>.
template <class T, int VEC, int MAXP>
constexpr size_t rmsnorm_backward_warp_shared_bytes() {
  return static_cast<size_t>(kRowWarps) * MAXP * 32 * VEC * sizeof(float) + MAXP * 32 * sizeof(Pack<T, VEC>);
}

// Calls f(std::integral_constant<int, MAXP>) with the smallest MAXP in {1, 2, 3, 4, 6, 8}
// that holds `lane_packs` packs per lane (3: C = 768 in bf16; every unused slot costs registers).
template <class F>
void dispatch_lane_packs(int64_t lane_packs, F&& f) {
  if (lane_packs <= 1) f(std::integral_constant<int, 1>{});
  else if (lane_packs <= 2) f(std::integral_constant<int, 2>{});
  else if (lane_packs <= 3) f(std::integral_constant<int, 3>{});
  else if (lane_packs <= 4) f(std::integral_constant<int, 4>{});
  else if (lane_packs <= 6) f(std::integral_constant<int, 6>{});
  else f(std::integral_constant<int, kMaxLanePacks>{});
}

// ---- one block per row -----------------------------------------------------------------

template <class T, int VEC>
__global__ void rmsnorm_forward_kernel(T* y, float* rstd, const T* x, const T* w, int64_t rows, int64_t packs,
                                       float eps) {
  const float channels = static_cast<float>(packs * VEC);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * packs * VEC;
    T* yr = y + row * packs * VEC;
    float sum_squares = 0.0f;
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack<T, VEC> xv = load_pack<VEC>(xr + p * VEC);
      for (int k = 0; k < VEC; ++k) sum_squares += to_f32(xv.v[k]) * to_f32(xv.v[k]);
    }
    const float r = rsqrtf(block_sum(sum_squares) / channels + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack<T, VEC> xv = load_pack<VEC>(xr + p * VEC);
      const Pack<T, VEC> wv = load_pack<VEC>(w + p * VEC);
      Pack<T, VEC> yv;
      for (int k = 0; k < VEC; ++k) yv.v[k] = from_f32<T>(to_f32(xv.v[k]) * r * to_f32(wv.v[k]));
      store_pack<VEC>(yr + p * VEC, yv);
    }
  }
}

// dw_partials (gridDim.x, C): this block's sum over its rows of dy * x * rstd.
template <class T, int VEC>
__global__ void rmsnorm_backward_kernel(T* dx, float* dw_partials, const T* dy, const T* x, const T* w,
                                        const float* rstd, int64_t rows, int64_t packs) {
  extern __shared__ float dw_block[];  // (C), column c owned by the thread of pack c / VEC
  const int64_t channels = packs * VEC;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x)
    for (int k = 0; k < VEC; ++k) dw_block[p * VEC + k] = 0.0f;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t offset = row * channels;
    const float r = rstd[row];
    float dot = 0.0f;  // sum_c w * dy * x
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack<T, VEC> xv = load_pack<VEC>(x + offset + p * VEC);
      const Pack<T, VEC> dyv = load_pack<VEC>(dy + offset + p * VEC);
      const Pack<T, VEC> wv = load_pack<VEC>(w + p * VEC);
      for (int k = 0; k < VEC; ++k) dot += to_f32(wv.v[k]) * to_f32(dyv.v[k]) * to_f32(xv.v[k]);
    }
    const float coef = r * r * block_sum(dot) / static_cast<float>(channels);  // rstd^2 * mean(w dy x)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack<T, VEC> xv = load_pack<VEC>(x + offset + p * VEC);
      const Pack<T, VEC> dyv = load_pack<VEC>(dy + offset + p * VEC);
      const Pack<T, VEC> wv = load_pack<VEC>(w + p * VEC);
      Pack<T, VEC> dxv = load_pack<VEC>(dx + offset + p * VEC);
      for (int k = 0; k < VEC; ++k) {
        const float xk = to_f32(xv.v[k]), dyk = to_f32(dyv.v[k]);
        dxv.v[k] = from_f32<T>(to_f32(dxv.v[k]) + r * (to_f32(wv.v[k]) * dyk - xk * coef));
        dw_block[p * VEC + k] += dyk * xk * r;
      }
      store_pack<VEC>(dx + offset + p * VEC, dxv);
    }
  }
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x)
    for (int k = 0; k < VEC; ++k) dw_partials[blockIdx.x * channels + p * VEC + k] = dw_block[p * VEC + k];
}

// dw (C) += sum over the partials (count, C). Block (kReduceColumns, kReduceSlices)
// owns kReduceColumns columns: thread (c, s) adds partials s, s + kReduceSlices, ...
// in order (a warp reads 32 consecutive columns of one partial), then slice
// sums are added in slice order. The order depends only on count: reproducible.
constexpr int kReduceColumns = 32, kReduceSlices = 32;
__global__ void rmsnorm_dw_reduce_kernel(float* dw, const float* partials, int64_t count, int64_t channels) {
  __shared__ float slice_sums[kReduceSlices][kReduceColumns];
  const int column = static_cast<int>(threadIdx.x), slice = static_cast<int>(threadIdx.y);
  const int64_t c = blockIdx.x * static_cast<int64_t>(kReduceColumns) + column;
  float acc = 0.0f;
  if (c < channels)
    for (int64_t b = slice; b < count; b += kReduceSlices) acc += partials[b * channels + c];
  slice_sums[slice][column] = acc;
  __syncthreads();
  if (slice != 0 || c >= channels) return;
  float total = 0.0f;
  for (int s = 0; s < kReduceSlices; ++s) total += slice_sums[s][column];
  dw[c] += total;
}

void check_operands(const char* op, std::initializer_list<std::pair<const Tensor*, const char*>> tensors,
                    DType dtype) {
  for (const auto& [t, name] : tensors) {
    expect_device(*t, op, name);
    expect_dtype(*t, dtype, op, name);
  }
}

}  // namespace

void CudaBackend::rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) {
  const char* op = "rmsnorm_forward";
  check_operands(op, {{&y, "y"}, {&w, "w"}}, x.dtype);
  expect_device(x, op, "x");
  expect_device(rstd, op, "rstd");
  expect_dtype(rstd, DType::f32, op, "rstd");
  const Tensor x2 = x.flatten_2d();
  const int64_t rows = x2.dim(0), channels = x2.dim(1);
  check_shape(y.flatten_2d(), x2.shape, "rmsnorm_forward: y (as x)");
  check_shape(w, Shape{channels}, "rmsnorm_forward: w");
  check_shape(rstd, Shape{rows}, "rmsnorm_forward: rstd");
  if (rows == 0 || channels == 0) return;
  NvtxRange range(op);
  dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* yp = static_cast<T*>(y.data);
    const auto* xp = static_cast<const T*>(x.data);
    const auto* wp = static_cast<const T*>(w.data);
    auto* rp = static_cast<float*>(rstd.data);
    constexpr int kVec = kPack16<T>;
    const unsigned blocks = grid_blocks(rows, 1, 65535);
    const bool packed = channels % kVec == 0 && aligned_16(yp) && aligned_16(xp) && aligned_16(wp);
    const int64_t lane_packs = (channels / kVec + 31) / 32;
    if (packed && lane_packs <= kMaxLanePacks)
      dispatch_lane_packs(lane_packs, [&](auto maxp) {
        constexpr auto kernel = rmsnorm_forward_warp_kernel<T, kVec, decltype(maxp)::value>;
        const int64_t max_blocks = resident_blocks_per_sm<kernel>() * static_cast<int64_t>(multiprocessor_count_);
        kernel<<<grid_blocks(rows, kRowWarps, max_blocks), 32 * kRowWarps, 0, stream_>>>(
            yp, rp, xp, wp, rows, channels / kVec, static_cast<float>(eps));
      });
    else if (packed)
      rmsnorm_forward_kernel<T, kVec><<<blocks, row_threads(channels / kVec, 1024), 0, stream_>>>(
          yp, rp, xp, wp, rows, channels / kVec, static_cast<float>(eps));
    else
      rmsnorm_forward_kernel<T, 1><<<blocks, row_threads(channels, 1024), 0, stream_>>>(yp, rp, xp, wp, rows,
                                                                                        channels,
                                                                                        static_cast<float>(eps));
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                   const Tensor& rstd) {
  const char* op = "rmsnorm_backward";
  check_operands(op, {{&dx, "dx"}, {&dy, "dy"}, {&w, "w"}}, x.dtype);
  expect_device(x, op, "x");
  check_operands(op, {{&dw, "dw (parameter gradients are f32)"}, {&rstd, "rstd"}}, DType::f32);
  const Tensor x2 = x.flatten_2d();
  const int64_t rows = x2.dim(0), channels = x2.dim(1);
  check_shape(dx.flatten_2d(), x2.shape, "rmsnorm_backward: dx (as x)");
  check_shape(dy.flatten_2d(), x2.shape, "rmsnorm_backward: dy (as x)");
  check_shape(w, Shape{channels}, "rmsnorm_backward: w");
  check_shape(dw, Shape{channels}, "rmsnorm_backward: dw");
  check_shape(rstd, Shape{rows}, "rmsnorm_backward: rstd");
  if (rows == 0 || channels == 0) return;
  NvtxRange range(op);
  const size_t row_bytes = static_cast<size_t>(channels) * sizeof(float);
  dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* dxp = static_cast<T*>(dx.data);
    const auto* dyp = static_cast<const T*>(dy.data);
    const auto* xp = static_cast<const T*>(x.data);
    const auto* wp = static_cast<const T*>(w.data);
    const auto* rp = static_cast<const float*>(rstd.data);
    constexpr int kVec = kPack16<T>;
    const bool packed = channels % kVec == 0 && aligned_16(dxp) && aligned_16(dyp) && aligned_16(xp) && aligned_16(wp);
    const int64_t row_lane_packs = (channels / kVec + 31) / 32;
    const bool warp_rows = packed && row_lane_packs <= kMaxLanePacks;
    // Partials: one per block. A warp-per-row block takes >= kWarpRows rows per warp, so
    // its set-up (staging w, zeroing dw) and closing sum are spread over >= kRowWarps * kWarpRows rows.
    constexpr int64_t kWarpRows = 4;
    const int64_t block_rows = warp_rows ? kRowWarps * kWarpRows : 1;
    int64_t partials = std::min<int64_t>((rows + block_rows - 1) / block_rows, kMaxPartials);
    if (static_cast<size_t>(partials) * row_bytes > kScratchBytes)
      partials = static_cast<int64_t>(kScratchBytes / row_bytes);
    LUMINA_CHECK(partials >= 1, "{}: C = {} is too wide for the scratch reserve", op, channels);
    auto* dw_partials = static_cast<float*>(scratch(static_cast<size_t>(partials) * row_bytes, op));
    auto set_shared = [&](auto kernel, size_t bytes) {
      if (bytes > kDefaultSharedBytes)
        LUMINA_CUDA_CHECK(
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    };
    if (warp_rows) {
      dispatch_lane_packs(row_lane_packs, [&](auto maxp) {
        constexpr int kMaxp = decltype(maxp)::value;
        auto kernel = rmsnorm_backward_warp_kernel<T, kVec, kMaxp>;
        constexpr size_t shared_bytes = rmsnorm_backward_warp_shared_bytes<T, kVec, kMaxp>();
        set_shared(kernel, shared_bytes);
        kernel<<<static_cast<unsigned>(partials), 32 * kRowWarps, shared_bytes, stream_>>>(
            dxp, dw_partials, dyp, xp, wp, rp, rows, channels / kVec);
      });
    } else {
      auto kernel = packed ? rmsnorm_backward_kernel<T, kVec> : rmsnorm_backward_kernel<T, 1>;
      const int vec = packed ? kVec : 1;
      set_shared(kernel, row_bytes);
      kernel<<<static_cast<unsigned>(partials), row_threads(channels / vec, 1024), row_bytes, stream_>>>(
          dxp, dw_partials, dyp, xp, wp, rp, rows, channels / vec);
    }
    LUMINA_CUDA_CHECK_LAUNCH();
    rmsnorm_dw_reduce_kernel<<<static_cast<unsigned>((channels + kReduceColumns - 1) / kReduceColumns),
                               dim3(kReduceColumns, kReduceSlices), 0, stream_>>>(static_cast<float*>(dw.data),
                                                                                 dw_partials, partials, channels);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
