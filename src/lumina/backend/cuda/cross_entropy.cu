// Cross-entropy over one chunk of rows, fused: one block per row.
//   losses[n] = lse - logits[n, target], lse = max + log(sum exp(x - max)), with the
//   row's argmax (first index on ties; skipped when argmax is empty); then, when
//   dlosses is given, logits[n, :] = dlosses[n] * (softmax - onehot(target)),
//   written in place in the logits' dtype.
// Rows of up to kMaxThreads * kMaxThreadPacks packs (V <= 32768 in bf16/f16)
// are read once into registers: max and argmax, then sum exp, then the gradient,
// all from registers. Longer rows take two streaming passes with an online
// max / sum-exp (rescaled when the max grows).
// Masked rows (target < 0): loss 0 and gradient 0, argmax still computed. A target
// >= V raises kTargetOutOfRange (thrown at the next sync); its loss is NaN.
// logits f32, bf16 or f16 (math in f32); losses and dlosses f32; targets, argmax i32.
#include <cmath>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kMaxThreads = 512;
constexpr int kMaxThreadPacks = 8;  // packs per thread held in registers by the register kernel

// Running softmax statistics and argmax of a set of logits.
struct RowStats {
  float max;      // -inf when empty
  float sum_exp;  // sum of exp(x - max)
  float best;     // value at best_index
  int best_index; // -1 when empty

  __device__ void add(float x, int index) {
    if (x > max) {
      sum_exp = sum_exp * expf(max - x) + 1.0f;  // exp(-inf) = 0 for the first element
      max = x;
    } else if (x != -INFINITY) {
      sum_exp += expf(x - max);
    }
    if (best_index < 0 || x > best) {
      best = x;
      best_index = index;
    }
  }

  __device__ void merge(const RowStats& o) {
    const float m = fmaxf(max, o.max);
    if (m != -INFINITY)
      sum_exp = (max == -INFINITY ? 0.0f : sum_exp * expf(max - m)) +
                (o.max == -INFINITY ? 0.0f : o.sum_exp * expf(o.max - m));
    max = m;
    if (o.best_index >= 0 && (best_index < 0 || o.best > best || (o.best == best && o.best_index < best_index))) {
      best = o.best;
      best_index = o.best_index;
    }
  }
};

__device__ RowStats shuffle_xor(const RowStats& s, int offset) {
  RowStats o;
  o.max = __shfl_xor_sync(0xffffffffu, s.max, offset);
  o.sum_exp = __shfl_xor_sync(0xffffffffu, s.sum_exp, offset);
  o.best = __shfl_xor_sync(0xffffffffu, s.best, offset);
  o.best_index = __shfl_xor_sync(0xffffffffu, s.best_index, offset);
  return o;
}

// Merge over the block in a fixed order; every thread gets the result.
__device__ RowStats block_merge(RowStats s) {
  __shared__ RowStats warp_stats[32];
  for (int offset = 16; offset > 0; offset >>= 1) s.merge(shuffle_xor(s, offset));
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  __syncthreads();
  if (lane == 0) warp_stats[warp] = s;
  __syncthreads();
  RowStats t{-INFINITY, 0.0f, -INFINITY, -1};
  if (lane < static_cast<int>(blockDim.x >> 5)) t = warp_stats[lane];
  for (int offset = 16; offset > 0; offset >>= 1) t.merge(shuffle_xor(t, offset));
  return t;
}

// (value, index) of the row maximum: larger value wins, the lower index on ties.
struct ArgMax {
  float value;  // -inf when empty
  int index;    // -1 when empty

  __device__ void merge(float v, int i) {
    if (i >= 0 && (index < 0 || v > value || (v == value && i < index))) {
      value = v;
      index = i;
    }
  }
};

__device__ ArgMax block_argmax(ArgMax a) {
  __shared__ ArgMax warp_best[32];
  for (int offset = 16; offset > 0; offset >>= 1)
    a.merge(__shfl_xor_sync(0xffffffffu, a.value, offset), __shfl_xor_sync(0xffffffffu, a.index, offset));
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  __syncthreads();
  if (lane == 0) warp_best[warp] = a;
  __syncthreads();
  ArgMax t{-INFINITY, -1};
  if (lane < static_cast<int>(blockDim.x >> 5)) t = warp_best[lane];
  for (int offset = 16; offset > 0; offset >>= 1)
    t.merge(__shfl_xor_sync(0xffffffffu, t.value, offset), __shfl_xor_sync(0xffffffffu, t.index, offset));
  return t;
}

// Thread t holds packs t, t + blockDim.x, ... (< packs, at most MAXP) of its row.
template <class T, int VEC, int MAXP>
__global__ void cross_entropy_registers_kernel(T* logits, float* losses, int32_t* argmax, const int32_t* targets,
                                               const float* dlosses, int64_t rows, int64_t vocab,
                                               unsigned* errors) {
  const int64_t packs = vocab / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    T* x = logits + row * vocab;
    const int32_t target = targets[row];
    const bool bad_target = target >= vocab;
    Pack<T, VEC> v[MAXP];
    ArgMax best{-INFINITY, -1};
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      const int64_t p = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
      if (p >= packs) continue;
      v[j] = load_pack<VEC>(x + p * VEC);
      for (int k = 0; k < VEC; ++k) best.merge(to_f32(v[j].v[k]), static_cast<int>(p * VEC + k));
    }
    best = block_argmax(best);
    const float max = best.value;
    float sum_exp = 0.0f;
    if (max != -INFINITY) {
#pragma unroll
      for (int j = 0; j < MAXP; ++j) {
        if (threadIdx.x + static_cast<int64_t>(j) * blockDim.x >= packs) continue;
        for (int k = 0; k < VEC; ++k) sum_exp += expf(to_f32(v[j].v[k]) - max);
      }
    }
    const float lse = max + logf(block_sum(sum_exp));
    if (threadIdx.x == 0) {
      if (bad_target) atomicOr(errors, kTargetOutOfRange);
      losses[row] = target < 0 ? 0.0f : (bad_target ? NAN : lse - to_f32(x[target]));
      if (argmax) argmax[row] = best.index;
    }
    if (dlosses == nullptr) continue;
    __syncthreads();  // thread 0 has read x[target] before it is overwritten
    const float scale = (target < 0 || bad_target) ? 0.0f : dlosses[row];
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      const int64_t p = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
      if (p >= packs) continue;
      for (int k = 0; k < VEC; ++k) {
        const float prob = expf(to_f32(v[j].v[k]) - lse);
        v[j].v[k] = from_f32<T>(scale * (prob - (p * VEC + k == target ? 1.0f : 0.0f)));
      }
      store_pack<VEC>(x + p * VEC, v[j]);
    }
  }
}

template <class T, int VEC>
__global__ void cross_entropy_kernel(T* logits, float* losses, int32_t* argmax, const int32_t* targets,
                                     const float* dlosses, int64_t rows, int64_t vocab, unsigned* errors) {
  const int64_t packs = vocab / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    T* x = logits + row * vocab;
    const int32_t target = targets[row];
    const bool bad_target = target >= vocab;
    float target_logit = 0.0f;
    if (threadIdx.x == 0 && target >= 0 && !bad_target) target_logit = to_f32(x[target]);

    RowStats s{-INFINITY, 0.0f, -INFINITY, -1};
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack<T, VEC> v = load_pack<VEC>(x + p * VEC);
      for (int k = 0; k < VEC; ++k) s.add(to_f32(v.v[k]), static_cast<int>(p * VEC + k));
    }
    s = block_merge(s);
    const float lse = s.max + logf(s.sum_exp);
    if (threadIdx.x == 0) {
      if (bad_target) atomicOr(errors, kTargetOutOfRange);
      losses[row] = target < 0 ? 0.0f : (bad_target ? NAN : lse - target_logit);
      if (argmax) argmax[row] = s.best_index;
    }
    if (dlosses == nullptr) continue;
    const float scale = (target < 0 || bad_target) ? 0.0f : dlosses[row];
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, VEC> v = load_pack<VEC>(x + p * VEC);
      for (int k = 0; k < VEC; ++k) {
        const int64_t c = p * VEC + k;
        const float prob = expf(to_f32(v.v[k]) - lse);
        v.v[k] = from_f32<T>(scale * (prob - (c == target ? 1.0f : 0.0f)));
      }
      store_pack<VEC>(x + p * VEC, v);
    }
  }
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
  if (rows == 0) return;
  NvtxRange range(op);
  dispatch_float(logits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* lp = static_cast<T*>(logits.data);
    auto* losses_p = static_cast<float*>(losses.data);
    auto* argmax_p = static_cast<int32_t*>(argmax.data);
    const auto* targets_p = static_cast<const int32_t*>(targets.data);
    const auto* dl = static_cast<const float*>(dlosses.data);
    constexpr int kVec = kPack16<T>;
    const unsigned blocks = grid_blocks(rows, 1, 65535);
    const bool packed = vocab % kVec == 0 && aligned_16(lp);
    if (packed && vocab / kVec <= int64_t{kMaxThreads} * kMaxThreadPacks)
      cross_entropy_registers_kernel<T, kVec, kMaxThreadPacks>
          <<<blocks, row_threads((vocab / kVec + kMaxThreadPacks - 1) / kMaxThreadPacks, kMaxThreads), 0, stream_>>>(
              lp, losses_p, argmax_p, targets_p, dl, rows, vocab, device_errors_);
    else if (packed)
      cross_entropy_kernel<T, kVec><<<blocks, row_threads(vocab / kVec, kMaxThreads), 0, stream_>>>(
          lp, losses_p, argmax_p, targets_p, dl, rows, vocab, device_errors_);
    else
      cross_entropy_kernel<T, 1><<<blocks, row_threads(vocab, kMaxThreads), 0, stream_>>>(
          lp, losses_p, argmax_p, targets_p, dl, rows, vocab, device_errors_);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
