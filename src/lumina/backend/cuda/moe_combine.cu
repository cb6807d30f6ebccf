// MoE token permutation (backend.h, "mixture of experts"): gather token rows
// into expert rows, and the weighted combine of expert rows back into tokens
// with its backward. One warp per row (gather, padding) or per token (combine),
// walking C in 16-byte packs when C and every pointer allow, single elements
// otherwise; math in f32. x, rows, y, out, dout, dy: activation dtype (f32,
// bf16, f16); weight, dweight (N,k) f32; slot_row (N*k), row_token (R) i32.
//   gather:   rows (R,C) = x (N,C) [row_token], 0 where row_token < 0
//   combine:  out (N,C) = (out if accumulate, else 0) + sum_j w_{n,j} y[slot_row[n*k+j]]
//             over kept slots (slot_row >= 0), in j order (no atomics: one warp owns a token)
//   backward: dy[slot_row[n*k+j]] = w_{n,j} dout_n (w = 1 when weight is empty, as in the
//             combine); dweight_{n,j} = dout_n . y[slot_row]
//             (per-lane partials, then a warp butterfly: fixed order), 0 at dropped slots;
//             rows with row_token < 0 are zeroed by a second kernel (disjoint rows).
// Indices out of range (never produced by moe_dispatch) count as absent.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/moe_common.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kWarps = 8;  // rows / tokens in flight per block, one warp each

template <class T, int VEC>
__device__ __forceinline__ void zero_row(T* row, int64_t packs, int lane) {
  Pack<T, VEC> zero;
  for (int v = 0; v < VEC; ++v) zero.v[v] = from_f32<T>(0.0f);
  for (int64_t p = lane; p < packs; p += 32) store_pack<VEC>(row + p * VEC, zero);
}

// rows (R, packs*VEC) from x (N, packs*VEC).
template <class T, int VEC>
__global__ void __launch_bounds__(32 * kWarps)
    moe_gather_kernel(T* rows, const T* x, const int32_t* row_token, int64_t row_count, int64_t tokens, int64_t packs) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (int64_t r = first_warp<kWarps>(); r < row_count; r += warp_stride<kWarps>()) {
    const int32_t token = row_token[r];
    T* dst = rows + r * packs * VEC;
    if (token < 0 || token >= tokens) {
      zero_row<T, VEC>(dst, packs, lane);
      continue;
    }
    const T* src = x + token * packs * VEC;
    for (int64_t p = lane; p < packs; p += 32) store_pack<VEC>(dst + p * VEC, load_pack<VEC>(src + p * VEC));
  }
}

// The k (<= kMoeMaxTopK) kept rows and weights of token n, in every lane's registers.
struct TokenSlots {
  int64_t row[kMoeMaxTopK];
  float w[kMoeMaxTopK];
};

__device__ __forceinline__ TokenSlots load_slots(const int32_t* slot_row, const float* weight, int64_t n, int top_k,
                                                 int64_t row_count) {
  TokenSlots t;
#pragma unroll
  for (int j = 0; j < kMoeMaxTopK; ++j) {
    t.row[j] = -1;
    t.w[j] = 0.0f;
    if (j < top_k) {
      const int32_t r = slot_row[n * top_k + j];
      t.row[j] = r >= 0 && r < row_count ? r : -1;
      t.w[j] = weight ? weight[n * top_k + j] : 1.0f;
    }
  }
  return t;
}

// out (N, packs*VEC) from y (R, packs*VEC).
template <class T, int VEC>
__global__ void __launch_bounds__(32 * kWarps)
    moe_combine_kernel(T* out, const T* y, const int32_t* slot_row, const float* weight, int64_t tokens,
                       int64_t row_count, int top_k, int64_t packs, bool accumulate) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t channels = packs * VEC;
  for (int64_t n = first_warp<kWarps>(); n < tokens; n += warp_stride<kWarps>()) {
    const TokenSlots t = load_slots(slot_row, weight, n, top_k, row_count);
    T* o = out + n * channels;
    for (int64_t p = lane; p < packs; p += 32) {
      float acc[VEC];
      if (accumulate) {
        const Pack<T, VEC> ov = load_pack<VEC>(o + p * VEC);
        for (int v = 0; v < VEC; ++v) acc[v] = to_f32(ov.v[v]);
      } else {
        for (int v = 0; v < VEC; ++v) acc[v] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kMoeMaxTopK; ++j) {
        if (t.row[j] < 0) continue;
        const Pack<T, VEC> yv = load_pack<VEC>(y + t.row[j] * channels + p * VEC);
        for (int v = 0; v < VEC; ++v) acc[v] += t.w[j] * to_f32(yv.v[v]);
      }
      Pack<T, VEC> ov;
      for (int v = 0; v < VEC; ++v) ov.v[v] = from_f32<T>(acc[v]);
      store_pack<VEC>(o + p * VEC, ov);
    }
  }
}

// dy rows of the kept slots and dweight (N,k).
template <class T, int VEC>
__global__ void __launch_bounds__(32 * kWarps)
    moe_combine_backward_kernel(T* dy, float* dweight, const T* dout, const T* y, const int32_t* slot_row,
                                const float* weight, int64_t tokens, int64_t row_count, int top_k, int64_t packs) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t channels = packs * VEC;
  for (int64_t n = first_warp<kWarps>(); n < tokens; n += warp_stride<kWarps>()) {
    const TokenSlots t = load_slots(slot_row, weight, n, top_k, row_count);
    const T* d = dout + n * channels;
    float dot[kMoeMaxTopK];
#pragma unroll
    for (int j = 0; j < kMoeMaxTopK; ++j) dot[j] = 0.0f;
    for (int64_t p = lane; p < packs; p += 32) {
      const Pack<T, VEC> dv = load_pack<VEC>(d + p * VEC);
#pragma unroll
      for (int j = 0; j < kMoeMaxTopK; ++j) {
        if (t.row[j] < 0) continue;
        const Pack<T, VEC> yv = load_pack<VEC>(y + t.row[j] * channels + p * VEC);
        Pack<T, VEC> g;
        for (int v = 0; v < VEC; ++v) {
          const float dk = to_f32(dv.v[v]);
          dot[j] += dk * to_f32(yv.v[v]);
          g.v[v] = from_f32<T>(t.w[j] * dk);
        }
        store_pack<VEC>(dy + t.row[j] * channels + p * VEC, g);
      }
    }
#pragma unroll
    for (int j = 0; j < kMoeMaxTopK; ++j) {
      if (j >= top_k) break;  // warp-uniform
      const float total = warp_sum(dot[j]);
      if (lane == 0) dweight[n * top_k + j] = t.row[j] >= 0 ? total : 0.0f;
    }
  }
}

// dy rows with row_token < 0 = 0.
template <class T, int VEC>
__global__ void __launch_bounds__(32 * kWarps)
    moe_zero_unfilled_rows_kernel(T* dy, const int32_t* row_token, int64_t row_count, int64_t packs) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (int64_t r = first_warp<kWarps>(); r < row_count; r += warp_stride<kWarps>())
    if (row_token[r] < 0) zero_row<T, VEC>(dy + r * packs * VEC, packs, lane);
}

// Throws unless t is a GPU tensor of dtype `want`, rank 2, with C columns.
void check_rows(const Tensor& t, DType want, int64_t channels, const char* op, const char* name) {
  expect_device(t, op, name);
  expect_dtype(t, want, op, name);
  LUMINA_CHECK(t.rank() == 2 && t.dim(1) == channels, "{}: {} must be (rows, C = {}), got {}", op, name, channels,
               t.shape.str());
}

}  // namespace

void CudaBackend::moe_gather(Tensor rows, const Tensor& x, const Tensor& row_token) {
  const char* op = "moe_gather";
  expect_device(x, op, "x");
  LUMINA_CHECK(x.rank() == 2, "{}: x must be (N, C), got {}", op, x.shape.str());
  const int64_t N = x.dim(0), C = x.dim(1);
  check_rows(rows, x.dtype, C, op, "rows");
  const int64_t R = rows.dim(0);
  check_moe_operand(row_token, DType::i32, Shape{R}, op, "row_token");
  if (R == 0 || C == 0) return;
  NvtxRange range(op);
  const unsigned blocks = grid_blocks(R, kWarps, 16LL * multiprocessor_count_);
  dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_vec<T>(C, {rows.data, x.data}, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      moe_gather_kernel<T, kVec>
          <<<blocks, 32 * kWarps, 0, stream_>>>(static_cast<T*>(rows.data), static_cast<const T*>(x.data),
                                                static_cast<const int32_t*>(row_token.data), R, N, C / kVec);
    });
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::moe_combine(Tensor out, const Tensor& y, const Tensor& slot_row, const Tensor& weight,
                              bool accumulate) {
  const char* op = "moe_combine";
  expect_device(out, op, "out");
  LUMINA_CHECK(out.rank() == 2, "{}: out must be (N, C), got {}", op, out.shape.str());
  const int64_t N = out.dim(0), C = out.dim(1);
  check_rows(y, out.dtype, C, op, "y");
  const int64_t R = y.dim(0);
  LUMINA_CHECK(N > 0 || slot_row.numel() == 0, "{}: out has no tokens but slot_row has {} slots", op, slot_row.numel());
  const int64_t k = !weight.empty() ? weight.dim(-1) : (N > 0 ? slot_row.numel() / N : 0);
  if (!weight.empty()) check_moe_operand(weight, DType::f32, Shape{N, k}, op, "weight");
  check_moe_indices(slot_row, N * k, op, "slot_row");
  LUMINA_CHECK(N == 0 || (k >= 1 && k <= kMoeMaxTopK), "{}: k = {} slots per token; CUDA takes 1 to {}", op, k,
               kMoeMaxTopK);
  if (N == 0 || C == 0) return;
  NvtxRange range(op);
  const unsigned blocks = grid_blocks(N, kWarps, 16LL * multiprocessor_count_);
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_vec<T>(C, {out.data, y.data}, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      moe_combine_kernel<T, kVec><<<blocks, 32 * kWarps, 0, stream_>>>(
          static_cast<T*>(out.data), static_cast<const T*>(y.data), static_cast<const int32_t*>(slot_row.data),
          static_cast<const float*>(weight.data), N, R, static_cast<int>(k), C / kVec, accumulate);
    });
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::moe_combine_backward(Tensor dy, Tensor dweight, const Tensor& dout, const Tensor& y,
                                       const Tensor& slot_row, const Tensor& weight, const Tensor& row_token) {
  const char* op = "moe_combine_backward";
  expect_device(dout, op, "dout");
  LUMINA_CHECK(dout.rank() == 2, "{}: dout must be (N, C), got {}", op, dout.shape.str());
  LUMINA_CHECK(dweight.rank() == 2, "{}: dweight must be (N, k), got {}", op, dweight.shape.str());
  const int64_t N = dout.dim(0), C = dout.dim(1), k = dweight.dim(1);
  check_rows(y, dout.dtype, C, op, "y");
  const int64_t R = y.dim(0);
  check_moe_operand(dy, dout.dtype, Shape{R, C}, op, "dy");
  check_moe_operand(dweight, DType::f32, Shape{N, k}, op, "dweight");
  if (!weight.empty()) check_moe_operand(weight, DType::f32, Shape{N, k}, op, "weight");
  check_moe_operand(row_token, DType::i32, Shape{R}, op, "row_token");
  check_moe_indices(slot_row, N * k, op, "slot_row");
  LUMINA_CHECK(N == 0 || (k >= 1 && k <= kMoeMaxTopK), "{}: k = {} slots per token; CUDA takes 1 to {}", op, k,
               kMoeMaxTopK);
  NvtxRange range(op);
  dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_vec<T>(C, {dy.data, dout.data, y.data}, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      auto* dyp = static_cast<T*>(dy.data);
      if (R > 0 && C > 0) {
        moe_zero_unfilled_rows_kernel<T, kVec>
            <<<grid_blocks(R, kWarps, 16LL * multiprocessor_count_), 32 * kWarps, 0, stream_>>>(
                dyp, static_cast<const int32_t*>(row_token.data), R, C / kVec);
        LUMINA_CUDA_CHECK_LAUNCH();
      }
      if (N > 0) {
        moe_combine_backward_kernel<T, kVec>
            <<<grid_blocks(N, kWarps, 16LL * multiprocessor_count_), 32 * kWarps, 0, stream_>>>(
                dyp, static_cast<float*>(dweight.data), static_cast<const T*>(dout.data), static_cast<const T*>(y.data),
                static_cast<const int32_t*>(slot_row.data), static_cast<const float*>(weight.data), N, R,
                static_cast<int>(k), C / kVec);
        LUMINA_CUDA_CHECK_LAUNCH();
      }
    });
  });
}

}  // namespace lumina
