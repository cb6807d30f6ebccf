// Cross-entropy over one chunk of rows, fused with its backward: one block per row.
//   logits (N, V) f32, bf16 or f16 (math in f32); targets (N) i32; losses (N) f32;
//   argmax (N) i32, may be empty; dlosses (N) f32, may be empty. Per row, m = max_j x_j:
//   lse       = m + log(sum_j exp(x_j - m))
//   losses[n] = lse - x[target]                  (0 when target < 0: masked)
//   argmax[n] = first j with x_j = m             (computed on masked rows too)
//   with dlosses, x is OVERWRITTEN in its dtype with
//   dx_j      = dlosses[n] * (exp(x_j - m) / sum - [j = target])   (all 0 on masked rows)
// A target >= V raises kTargetOutOfRange (thrown at the next sync); its loss is NaN,
// its gradient 0.
//
// Pass 1 streams the row once with 16-byte loads (kLoadPacks in flight per thread):
// every thread keeps a running max, sum exp (rescaled when its max grows) and
// first argmax over its elements in ascending index order, then the block merges
// them in a fixed order (bitwise reproducible). Pass 2 writes the gradient. So
// that pass 2 need not read the row from device memory again, pass 1 also copies
// the row's packs into shared memory: up to half an SM's shared memory per block,
// so at least two rows are in flight per SM (three at V = 32768 in bf16: 64 KB
// each, 192 KB of an H100's 228 KB). Packs past that budget (rows over ~112 KB on
// an H100: f32 V > 28672, bf16/f16 V > 57344) are read again from global memory,
// each thread's last pack first, as those were read last and are the likeliest
// still to be in L2.
// Rows need not start on 16 bytes (odd V, offset views): the elements before the
// row's first 16-byte boundary (head) and after its last whole pack (tail), fewer
// than a pack each, take one thread each. Logits are assumed element-aligned.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;  // most threads per block (one row)
constexpr int kWarps = kThreads / 32;
constexpr int kLoadPacks = 8;   // pass 1: 16-byte loads per thread in flight before the first is used
constexpr int kStorePacks = 4;  // pass 2: packs per thread per step (mostly from shared memory)
constexpr int kMinBlocksPerSm = 3;  // registers capped at 80 per thread: three staged rows per SM fit

// Running softmax statistics of a set of logits.
struct RowStats {
  float max;      // -inf while no logit above -inf was seen
  float sum_exp;  // sum of exp(x - max); 0 or NaN while max is -inf
  int best;       // first index of max; -1 while max is -inf
};

__device__ __forceinline__ RowStats empty_stats() { return RowStats{-INFINITY, 0.0f, -1}; }

// exp(x) as 2^(x log2 e) on the special function unit: relative error about 2^-22
// plus |x| * 2^-24 from the rounded product; results below 2^-126 flush to 0
// (__expf, which keeps them, needs extra instructions around the unit).
__device__ __forceinline__ float fast_exp(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x * 1.4426950408889634f));
  return y;
}

// Sum of x[0..N) as a pairwise tree (N a power of two); x is clobbered.
template <int N>
__device__ __forceinline__ float tree_sum(float (&x)[N]) {
  static_assert((N & (N - 1)) == 0, "tree_sum takes a power of two");
#pragma unroll
  for (int width = N / 2; width > 0; width /= 2)
#pragma unroll
    for (int k = 0; k < width; ++k) x[k] += x[k + width];
  return x[0];
}

// Adds N logits with indices first .. first + N - 1. A thread adds its logits in
// ascending index order, so a strictly larger max is the first of its value.
template <int N>
__device__ __forceinline__ void add_logits(RowStats& s, const float (&x)[N], int first) {
  float pack_max = x[0];
#pragma unroll
  for (int k = 1; k < N; ++k) pack_max = fmaxf(pack_max, x[k]);  // NaN only if all are
  if (pack_max > s.max) {
    s.sum_exp *= expf(s.max - pack_max);  // 0 while max was -inf (NaN stays NaN)
    s.max = pack_max;
    int k_best = N - 1;
#pragma unroll
    for (int k = N - 1; k >= 0; --k)
      if (x[k] == pack_max) k_best = k;
    s.best = first + k_best;
  }
  // While max is -inf every logit so far is -inf (exp 0) or NaN (kept: the loss turns NaN).
  const float shift = s.max == -INFINITY ? 0.0f : s.max;
  float e[N];
#pragma unroll
  for (int k = 0; k < N; ++k) e[k] = fast_exp(x[k] - shift);
  s.sum_exp += tree_sum(e);
}

// The statistics of the union. Exactly symmetric in a and b (products are kept
// out of FMA contraction), so a butterfly leaves the same bits in every lane.
__device__ __forceinline__ RowStats merge(const RowStats& a, const RowStats& b) {
  RowStats r;
  r.max = fmaxf(a.max, b.max);
  // A side whose max is -inf holds a sum of 0 or NaN: weight 0 keeps the NaN.
  const float wa = a.max == -INFINITY ? 0.0f : expf(a.max - r.max);
  const float wb = b.max == -INFINITY ? 0.0f : expf(b.max - r.max);
  r.sum_exp = __fmul_rn(a.sum_exp, wa) + __fmul_rn(b.sum_exp, wb);
  const bool take_b = b.best >= 0 && (a.best < 0 || b.max > a.max || (b.max == a.max && b.best < a.best));
  r.best = take_b ? b.best : a.best;
  return r;
}

__device__ __forceinline__ RowStats warp_merge(RowStats s) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    RowStats o;
    o.max = __shfl_xor_sync(0xffffffffu, s.max, offset);
    o.sum_exp = __shfl_xor_sync(0xffffffffu, s.sum_exp, offset);
    o.best = __shfl_xor_sync(0xffffffffu, s.best, offset);
    s = merge(s, o);
  }
  return s;
}

// Merge over the block (blockDim.x a multiple of 32, at most kThreads) in a fixed
// order; every thread gets the same result. Once per kernel (warp_stats is not
// guarded against a second call).
__device__ RowStats block_merge(RowStats s) {
  __shared__ RowStats warp_stats[kWarps];
  s = warp_merge(s);
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  if (lane == 0) warp_stats[warp] = s;
  __syncthreads();
  return warp_merge(lane < static_cast<int>(blockDim.x >> 5) ? warp_stats[lane] : empty_stats());
}

// The kPack16<T> elements of a 16-byte word (element 0 in the low bits), in f32.
template <class T>
__device__ __forceinline__ void unpack(const uint4& w, float (&x)[kPack16<T>]) {
  const unsigned u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same_v<T, float>) {
      x[i] = __uint_as_float(u[i]);
    } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      x[2 * i] = __uint_as_float(u[i] << 16);
      x[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    } else {
      x[2 * i] = __half2float(__ushort_as_half(static_cast<unsigned short>(u[i] & 0xffffu)));
      x[2 * i + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(u[i] >> 16)));
    }
  }
}

// x rounded to nearest-even into T, as one 16-byte word.
template <class T>
__device__ __forceinline__ uint4 pack(const float (&x)[kPack16<T>]) {
  unsigned u[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same_v<T, float>) {
      u[i] = __float_as_uint(x[i]);
    } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(x[2 * i], x[2 * i + 1]);
      u[i] = static_cast<unsigned>(__bfloat16_as_ushort(h.x)) | (static_cast<unsigned>(__bfloat16_as_ushort(h.y)) << 16);
    } else {
      const __half2 h = __floats2half2_rn(x[2 * i], x[2 * i + 1]);
      u[i] = static_cast<unsigned>(__half_as_ushort(h.x)) | (static_cast<unsigned>(__half_as_ushort(h.y)) << 16);
    }
  }
  return make_uint4(u[0], u[1], u[2], u[3]);
}

// Block n takes row n. Pack p of the row covers elements head + p * kVec ..;
// thread t owns packs t, t + blockDim.x, ..., head element t and tail element
// tail_begin + t. stage (dynamic shared memory, stage_packs 16-byte words)
// keeps the row's first stage_packs packs between the passes; each word is
// written and read by its owning thread only.
template <class T>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSm)
    cross_entropy_kernel(T* logits, float* losses, int32_t* argmax, const int32_t* targets, const float* dlosses,
                         int vocab, int stage_packs, unsigned* errors) {
  constexpr int kVec = kPack16<T>;
  extern __shared__ uint4 stage[];
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  const int64_t row = blockIdx.x;
  T* x = logits + row * vocab;
  // Elements [0, head) lie before the row's first 16-byte boundary, packs cover
  // [head, tail_begin), [tail_begin, V) is the tail; head and tail < kVec.
  const int misaligned_bytes = static_cast<int>(reinterpret_cast<uintptr_t>(x) & 15u);
  const int head = min(vocab, misaligned_bytes == 0 ? 0 : (16 - misaligned_bytes) / static_cast<int>(sizeof(T)));
  const int packs = (vocab - head) / kVec;
  const int tail_begin = head + packs * kVec;
  const int staged = min(packs, stage_packs);
  uint4* body = reinterpret_cast<uint4*>(x + head);

  // Pass 1: statistics, this thread's elements in ascending index order.
  RowStats s = empty_stats();
  if (tid < head) {
    const float v[1] = {to_f32(x[tid])};
    add_logits(s, v, tid);
  }
  for (int p0 = tid; p0 < packs; p0 += kLoadPacks * threads) {
    uint4 w[kLoadPacks];
#pragma unroll
    for (int u = 0; u < kLoadPacks; ++u)
      if (p0 + u * threads < packs) w[u] = body[p0 + u * threads];
#pragma unroll
    for (int u = 0; u < kLoadPacks; ++u) {
      const int p = p0 + u * threads;
      if (p >= packs) break;
      if (p < staged) stage[p] = w[u];
      float v[kVec];
      unpack<T>(w[u], v);
      add_logits(s, v, head + p * kVec);
    }
  }
  if (tail_begin + tid < vocab) {
    const float v[1] = {to_f32(x[tail_begin + tid])};
    add_logits(s, v, tail_begin + tid);
  }
  const int32_t target = targets[row];
  const bool bad_target = target >= vocab;
  float target_logit = 0.0f;  // read before pass 2 can overwrite it (block_merge's barrier orders the two)
  if (tid == 0 && target >= 0 && !bad_target) target_logit = to_f32(x[target]);
  s = block_merge(s);
  if (tid == 0) {
    if (bad_target) atomicOr(errors, kTargetOutOfRange);
    losses[row] = target < 0 ? 0.0f : (bad_target ? NAN : s.max + logf(s.sum_exp) - target_logit);
    if (argmax) argmax[row] = max(s.best, 0);  // 0 when no logit is above -inf, as on the CPU
  }
  if (dlosses == nullptr) return;

  // Pass 2: dx_j = coef * exp(x_j - m) - [j = target] * scale, coef = scale / sum.
  const bool zero_row = target < 0 || bad_target;
  const float scale = zero_row ? 0.0f : dlosses[row];
  const float coef = scale / s.sum_exp;
  if (tid < head) {
    const float g = coef * fast_exp(to_f32(x[tid]) - s.max) - (tid == target ? scale : 0.0f);
    x[tid] = from_f32<T>(zero_row ? 0.0f : g);
  }
  if (tail_begin + tid < vocab) {
    const int j = tail_begin + tid;
    const float g = coef * fast_exp(to_f32(x[j]) - s.max) - (j == target ? scale : 0.0f);
    x[j] = from_f32<T>(zero_row ? 0.0f : g);
  }
  // This thread's packs, last first (the unstaged ones were read last in pass 1).
  const int own = tid < packs ? (packs - 1 - tid) / threads + 1 : 0;
  for (int i0 = own - 1; i0 >= 0; i0 -= kStorePacks) {
    uint4 w[kStorePacks];
    if (!zero_row) {
#pragma unroll
      for (int u = 0; u < kStorePacks; ++u) {
        const int p = tid + (i0 - u) * threads;
        if (i0 - u >= 0) w[u] = p < staged ? stage[p] : __ldcs(body + p);
      }
    }
#pragma unroll
    for (int u = 0; u < kStorePacks; ++u) {
      if (i0 - u < 0) break;
      const int p = tid + (i0 - u) * threads;
      uint4 out = make_uint4(0u, 0u, 0u, 0u);
      if (!zero_row) {
        float v[kVec];
        unpack<T>(w[u], v);
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] = coef * fast_exp(v[k] - s.max);
        const int first = head + p * kVec;
        if (static_cast<unsigned>(target - first) < static_cast<unsigned>(kVec)) {
#pragma unroll
          for (int k = 0; k < kVec; ++k)
            if (first + k == target) v[k] -= scale;
        }
        out = pack<T>(v);
      }
      __stcs(body + p, out);  // streaming: written once, not read again here
    }
  }
}

// Shared memory a block may stage its row in: half an SM's (so two rows fit per
// SM) less the per-block reservation and block_merge's static array, within the
// per-block limit; whole KB.
int64_t stage_budget_bytes(const CudaBackend::SharedMemoryLimits& limits) {
  constexpr int64_t kStaticBytes = sizeof(RowStats) * kWarps;
  const int64_t bytes =
      std::min(limits.per_block_optin, limits.per_multiprocessor / 2 - limits.reserved_per_block) - kStaticBytes;
  return std::max<int64_t>(bytes, 0) / 1024 * 1024;
}

}  // namespace

void CudaBackend::cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                                const Tensor& dlosses) {
  const char* op = "cross_entropy";
  expect_device(logits, op, "logits");
  expect_device(losses, op, "losses");
  expect_device(targets, op, "targets");
  expect_dtype(losses, DType::f32, op, "losses");
  expect_dtype(targets, DType::i32, op, "targets");
  const Tensor x = logits.flatten_2d();
  const int64_t rows = x.dim(0), vocab = x.dim(1);
  check_shape(losses, Shape{rows}, "cross_entropy: losses");
  if (!argmax.empty()) {
    expect_device(argmax, op, "argmax");
    expect_dtype(argmax, DType::i32, op, "argmax");
    check_shape(argmax, Shape{rows}, "cross_entropy: argmax");
  }
  check_shape(targets, Shape{rows}, "cross_entropy: targets");
  if (!dlosses.empty()) {
    expect_device(dlosses, op, "dlosses");
    expect_dtype(dlosses, DType::f32, op, "dlosses");
    check_shape(dlosses, Shape{rows}, "cross_entropy: dlosses");
  }
  LUMINA_CHECK(vocab > 0 && vocab < (int64_t{1} << 31), "{}: vocab size {} out of range", op, vocab);
  LUMINA_CHECK(rows < (int64_t{1} << 31), "{}: {} rows exceed the grid's 2^31 - 1 blocks (pass fewer rows per call)",
               op, rows);
  if (rows == 0) return;
  NvtxRange range(op);
  dispatch_float(logits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = kPack16<T>;
    const auto* dl = static_cast<const float*>(dlosses.data);
    // Staging only pays when pass 2 runs; up to the whole row (vocab / kVec packs).
    const int64_t stage_packs = dl == nullptr ? 0 : std::min<int64_t>(vocab / kVec, stage_budget_bytes(shared_memory_) / 16);
    const size_t stage_bytes = static_cast<size_t>(stage_packs) * 16;
    auto kernel = cross_entropy_kernel<T>;
    if (stage_bytes > 0) {
      LUMINA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(stage_bytes)));
      LUMINA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                             cudaSharedmemCarveoutMaxShared));
    }
    // Enough threads for kLoadPacks packs each, 32 to kThreads.
    const int threads = row_threads((vocab / kVec + kLoadPacks - 1) / kLoadPacks, kThreads);
    kernel<<<static_cast<unsigned>(rows), threads, stage_bytes, stream_>>>(
        static_cast<T*>(logits.data), static_cast<float*>(losses.data), static_cast<int32_t*>(argmax.data),
        static_cast<const int32_t*>(targets.data), dl, static_cast<int>(vocab), static_cast<int>(stage_packs),
        device_errors_);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
