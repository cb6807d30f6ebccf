// MoE dispatch (backend.h, "mixture of experts"): the N*k slots (slot = n*k + j
// goes to expert choice[slot]) grouped into expert-contiguous rows, capacity
// first come first served in slot order, without a host sync. Indices are i32.
// The slots are cut into chunks of kChunkSlots; four kernels after a fill:
//   0. row_token = -1                                         (memset)
//   1. count:   chunk_offsets (chunks, E) = slots of expert e in chunk c (shared counters)
//   2. scan:    per expert, an exclusive scan over the chunks -> chunk_offsets = earlier
//               slots of e in earlier chunks; assigned_e = the total
//   3. groups:  group_begin from kept_e = min(assigned_e, capacity), row_align, group_stride
//   4. scatter: per chunk, rounds of 256 slots in slot order: rank = chunk offset + slots
//               of the chunk's earlier rounds + earlier warps of this round (per-warp
//               counts in shared memory) + earlier lanes of the warp (__match_any_sync);
//               kept iff rank < capacity: slot_row = group_begin[e] + rank,
//               row_token[slot_row] = n; else slot_row = -1.
// Integer sums only: results are exact and independent of scheduling. A choice
// outside [0, E) (the router's -1 when fewer than k experts are available) is dropped.
#include <algorithm>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/moe_common.cuh"
#include "lumina/backend/moe_checks.h"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;  // every dispatch kernel; also the slots of one round
constexpr int kWarps = kThreads / 32;
constexpr int64_t kChunkSlots = 4 * kThreads;  // slots per chunk (4 rounds of the scatter)

// Exclusive scan of v over the block (blockDim.x = kThreads, called by every thread,
// once per kernel); *total = the sum over the block.
__device__ int block_exclusive_scan(int v, int* total) {
  __shared__ int warp_totals[kWarps];
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  int inclusive = v;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const int up = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  if (lane == 31) warp_totals[warp] = inclusive;
  __syncthreads();
  int before = 0, sum = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += warp_totals[w];
    sum += warp_totals[w];
  }
  *total = sum;
  return before + inclusive - v;
}

// chunk_counts (chunks, E): slots of chunk blockIdx.x per expert.
__global__ void __launch_bounds__(kThreads)
    moe_dispatch_count_kernel(int32_t* chunk_counts, const int32_t* choice, int64_t slots, int experts) {
  __shared__ int counts[kMoeMaxExperts];
  for (int e = static_cast<int>(threadIdx.x); e < experts; e += kThreads) counts[e] = 0;
  __syncthreads();
  const int64_t begin = blockIdx.x * kChunkSlots, end = begin + kChunkSlots < slots ? begin + kChunkSlots : slots;
  for (int64_t s = begin + threadIdx.x; s < end; s += kThreads) {
    const int e = choice[s];
    if (e >= 0 && e < experts) atomicAdd(&counts[e], 1);
  }
  __syncthreads();
  for (int e = static_cast<int>(threadIdx.x); e < experts; e += kThreads)
    chunk_counts[blockIdx.x * static_cast<int64_t>(experts) + e] = counts[e];
}

// Block e: chunk_offsets[:, e] = exclusive scan of the counts over the chunks (in place);
// assigned[e] = their sum. Thread t owns a contiguous range of chunks.
__global__ void __launch_bounds__(kThreads)
    moe_dispatch_scan_kernel(int32_t* chunk_offsets, int32_t* assigned, int64_t chunks, int experts) {
  const int e = static_cast<int>(blockIdx.x);
  const int64_t per_thread = (chunks + kThreads - 1) / kThreads;
  const int64_t first = threadIdx.x * per_thread, last = first + per_thread < chunks ? first + per_thread : chunks;
  int local = 0;
  for (int64_t c = first; c < last; ++c) local += chunk_offsets[c * experts + e];
  int total = 0;
  int offset = block_exclusive_scan(local, &total);
  for (int64_t c = first; c < last; ++c) {
    const int count = chunk_offsets[c * experts + e];
    chunk_offsets[c * experts + e] = offset;
    offset += count;
  }
  if (threadIdx.x == 0) assigned[e] = total;
}

// group_begin (E+1), one block of kThreads >= E threads.
__global__ void __launch_bounds__(kThreads)
    moe_dispatch_groups_kernel(int32_t* group_begin, const int32_t* assigned, int experts, int capacity, int row_align,
                               int group_stride) {
  const int e = static_cast<int>(threadIdx.x);
  int padded = 0;  // round_up(kept_e, row_align)
  if (e < experts) padded = (min(assigned[e], capacity) + row_align - 1) / row_align * row_align;
  int total = 0;
  const int begin = block_exclusive_scan(padded, &total);
  if (e < experts) group_begin[e] = group_stride > 0 ? e * group_stride : begin;
  if (e == 0) group_begin[experts] = group_stride > 0 ? experts * group_stride : total;
}

// slot_row (N*k), row_token (R) for the slots of chunk blockIdx.x.
__global__ void __launch_bounds__(kThreads)
    moe_dispatch_scatter_kernel(int32_t* slot_row, int32_t* row_token, const int32_t* choice,
                                const int32_t* chunk_offsets, const int32_t* group_begin, int64_t slots, int top_k,
                                int experts, int capacity) {
  __shared__ int running[kMoeMaxExperts];              // earlier slots of e: earlier chunks and rounds
  __shared__ int warp_counts[kWarps][kMoeMaxExperts];  // this round: slots of e per warp
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  for (int e = static_cast<int>(threadIdx.x); e < experts; e += kThreads) {
    running[e] = chunk_offsets[blockIdx.x * static_cast<int64_t>(experts) + e];
    for (int w = 0; w < kWarps; ++w) warp_counts[w][e] = 0;
  }
  __syncthreads();
  const int64_t chunk_begin = blockIdx.x * kChunkSlots;
  const int64_t chunk_end = chunk_begin + kChunkSlots < slots ? chunk_begin + kChunkSlots : slots;
  for (int64_t round_begin = chunk_begin; round_begin < chunk_end; round_begin += kThreads) {
    const int64_t s = round_begin + threadIdx.x;
    int e = s < slots ? choice[s] : -1;
    if (e < 0 || e >= experts) e = -1;
    const unsigned same = __match_any_sync(0xffffffffu, e);
    const int rank_in_warp = __popc(same & ((1u << lane) - 1u));
    if (e >= 0 && rank_in_warp == 0) warp_counts[warp][e] = __popc(same);
    __syncthreads();
    if (e >= 0) {
      int rank = running[e] + rank_in_warp;
      for (int w = 0; w < warp; ++w) rank += warp_counts[w][e];
      const int row = rank < capacity ? group_begin[e] + rank : -1;
      slot_row[s] = row;
      if (row >= 0) row_token[row] = static_cast<int32_t>(s / top_k);
    } else if (s < slots) {
      slot_row[s] = -1;
    }
    __syncthreads();  // every thread has read running and warp_counts
    for (int ex = static_cast<int>(threadIdx.x); ex < experts; ex += kThreads) {
      int add = 0;
      for (int w = 0; w < kWarps; ++w) {
        add += warp_counts[w][ex];
        warp_counts[w][ex] = 0;
      }
      running[ex] += add;
    }
    __syncthreads();
  }
}

}  // namespace

void CudaBackend::moe_dispatch(Tensor slot_row, Tensor row_token, Tensor group_begin, Tensor assigned,
                               const Tensor& choice, int64_t capacity, int64_t row_align, int64_t group_stride) {
  const char* op = "moe_dispatch";
  expect_device(choice, op, "choice");
  LUMINA_CHECK(choice.rank() == 2, "{}: choice must be (N, k), got {}", op, choice.shape.str());
  LUMINA_CHECK(assigned.rank() == 1, "{}: assigned must be (E), got {}", op, assigned.shape.str());
  const int64_t N = choice.dim(0), k = choice.dim(1), E = assigned.dim(0), slots = N * k;
  LUMINA_CHECK(E >= 1 && E <= kMoeMaxExperts, "{}: {} experts; the CUDA MoE kernels take 1 to {}", op, E,
               kMoeMaxExperts);
  LUMINA_CHECK(k >= 1, "{}: choice has k = {} columns, expected >= 1", op, k);
  check_moe_operand(choice, DType::i32, Shape{N, k}, op, "choice");
  check_moe_operand(assigned, DType::i32, Shape{E}, op, "assigned");
  check_moe_operand(group_begin, DType::i32, Shape{E + 1}, op, "group_begin");
  check_moe_indices(slot_row, slots, op, "slot_row");
  expect_device(row_token, op, "row_token");
  expect_dtype(row_token, DType::i32, op, "row_token");
  LUMINA_CHECK(row_token.rank() == 1, "{}: row_token must be (R), got {}", op, row_token.shape.str());
  const int64_t R = row_token.numel();
  check_moe_dispatch_layout(op, E, slots, R, capacity, row_align, group_stride);
  NvtxRange range(op);
  const int64_t chunks = (slots + kChunkSlots - 1) / kChunkSlots;
  // The scan kernel reads chunk_offsets even with no chunks: keep the pointer valid.
  auto* chunk_offsets =
      static_cast<int32_t*>(scratch(static_cast<size_t>(std::max<int64_t>(chunks, 1) * E) * sizeof(int32_t), op));
  const int cap = static_cast<int>(std::min(capacity, slots));  // kept_e <= assigned_e <= slots
  auto* sr = static_cast<int32_t*>(slot_row.data);
  auto* rt = static_cast<int32_t*>(row_token.data);
  auto* gb = static_cast<int32_t*>(group_begin.data);
  auto* as = static_cast<int32_t*>(assigned.data);
  const auto* cp = static_cast<const int32_t*>(choice.data);
  if (R > 0) LUMINA_CUDA_CHECK(cudaMemsetAsync(rt, 0xff, row_token.bytes(), stream_));  // -1
  if (chunks > 0) {
    moe_dispatch_count_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream_>>>(chunk_offsets, cp, slots,
                                                                                       static_cast<int>(E));
    LUMINA_CUDA_CHECK_LAUNCH();
  }
  moe_dispatch_scan_kernel<<<static_cast<unsigned>(E), kThreads, 0, stream_>>>(chunk_offsets, as, chunks,
                                                                               static_cast<int>(E));
  LUMINA_CUDA_CHECK_LAUNCH();
  moe_dispatch_groups_kernel<<<1, kThreads, 0, stream_>>>(gb, as, static_cast<int>(E), cap, static_cast<int>(row_align),
                                                          static_cast<int>(group_stride));
  LUMINA_CUDA_CHECK_LAUNCH();
  if (chunks > 0) {
    moe_dispatch_scatter_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream_>>>(
        sr, rt, cp, chunk_offsets, gb, slots, static_cast<int>(k), static_cast<int>(E), cap);
    LUMINA_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace lumina
