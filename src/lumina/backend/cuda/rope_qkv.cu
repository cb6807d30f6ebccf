// Fused split + RoPE of one stacked q/k/v projection (backend.h, rope_qkv_*).
// qkv (B, T, Hq + 2 Hkv, D): per token the Hq query heads, the Hkv key heads,
// then the Hkv value heads. Forward: q, k = rope(their part), v = copy;
// backward: the transpose (rotation with -sin), gathered into dqkv.
// One thread moves VEC consecutive pairs (i, i + D/2) of one head row, 16-byte
// packs when half_dim allows; query/key heads rotate, value heads copy. A
// position outside the table sets kPositionOutOfRange and leaves the token's
// outputs unwritten.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

struct QkvDims {
  int64_t tokens, seq_len, q_heads, kv_heads, half_dim;
  int64_t table_rows;
};

// forward: stacked -> split; backward (direction -1): split -> stacked.
template <class T, class Table, int VEC>
__global__ void rope_qkv_kernel(T* stacked, T* q, T* k, T* v, const Table* cos, const Table* sin,
                                const int32_t* positions, QkvDims d, bool forward, unsigned* errors) {
  const int64_t heads = d.q_heads + 2 * d.kv_heads, groups_per_row = d.half_dim / VEC;
  const int64_t groups = d.tokens * heads * groups_per_row;
  const float direction = forward ? 1.0f : -1.0f;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i0 = (g % groups_per_row) * VEC;
    const int64_t row = g / groups_per_row;  // (token, stacked head)
    const int64_t token = row / heads, head = row % heads;
    int64_t pos = token % d.seq_len;
    if (positions) {
      pos = positions[token];
      if (pos < 0 || pos >= d.table_rows) {
        atomicOr(errors, kPositionOutOfRange);
        continue;
      }
    }
    T* packed_head = stacked + row * 2 * d.half_dim;
    T* split_head;
    bool rotate = true;
    if (head < d.q_heads) {
      split_head = q + (token * d.q_heads + head) * 2 * d.half_dim;
    } else if (head < d.q_heads + d.kv_heads) {
      split_head = k + (token * d.kv_heads + head - d.q_heads) * 2 * d.half_dim;
    } else {
      split_head = v + (token * d.kv_heads + head - d.q_heads - d.kv_heads) * 2 * d.half_dim;
      rotate = false;
    }
    const T* in = forward ? packed_head : split_head;
    T* out = forward ? split_head : packed_head;
    Pack<T, VEC> lo = load_pack<VEC>(in + i0), hi = load_pack<VEC>(in + i0 + d.half_dim);
    if (rotate) {
      const int64_t table = pos * d.half_dim + i0;
      const Pack<Table, VEC> c = load_pack<VEC>(cos + table), s = load_pack<VEC>(sin + table);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float cj = to_f32(c.v[j]), sj = direction * to_f32(s.v[j]);
        const float x0 = to_f32(lo.v[j]), x1 = to_f32(hi.v[j]);
        lo.v[j] = from_f32<T>(x0 * cj - x1 * sj);
        hi.v[j] = from_f32<T>(x1 * cj + x0 * sj);
      }
    }
    store_pack<VEC>(out + i0, lo);
    store_pack<VEC>(out + i0 + d.half_dim, hi);
  }
}

template <class T, class Table>
void launch(const CudaBackend& be, T* stacked, T* q, T* k, T* v, const Table* cos, const Table* sin,
            const int32_t* positions, const QkvDims& d, bool forward) {
  constexpr int kVec = kPack16<T>;
  const bool packed = d.half_dim % kVec == 0 && aligned_16(stacked) && aligned_16(q) && aligned_16(k) &&
                      aligned_16(v) && aligned_16(cos) && aligned_16(sin);
  const int64_t threads_needed = d.tokens * (d.q_heads + 2 * d.kv_heads) * d.half_dim / (packed ? kVec : 1);
  const unsigned blocks = grid_blocks(threads_needed, kThreads, 16LL * be.multiprocessor_count());
  if (packed)
    rope_qkv_kernel<T, Table, kVec><<<blocks, kThreads, 0, be.stream()>>>(stacked, q, k, v, cos, sin, positions, d,
                                                                          forward, be.device_errors());
  else
    rope_qkv_kernel<T, Table, 1><<<blocks, kThreads, 0, be.stream()>>>(stacked, q, k, v, cos, sin, positions, d,
                                                                       forward, be.device_errors());
  LUMINA_CUDA_CHECK_LAUNCH();
}

void rope_qkv(const CudaBackend& be, const char* op, bool forward, const Tensor& stacked, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  for (const auto& [t, name] : {std::pair{&stacked, "qkv"}, {&q, "q"}, {&k, "k"}, {&v, "v"}, {&cos, "cos"},
                                {&sin, "sin"}})
    expect_device(*t, op, name);
  for (const auto& [t, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}}) expect_dtype(*t, stacked.dtype, op, name);
  LUMINA_CHECK(q.rank() == 4 && k.rank() == 4, "{}: q and k must be (B, T, H, D), got {} and {}", op,
               q.shape.str(), k.shape.str());
  const int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), Hkv = k.dim(2), D = q.dim(3);
  check_shape(k, Shape{B, T, Hkv, D}, "rope_qkv: k");
  check_shape(v, Shape{B, T, Hkv, D}, "rope_qkv: v (as k)");
  check_shape(stacked, Shape{B, T, Hq + 2 * Hkv, D}, "rope_qkv: qkv (B, T, Hq + 2 Hkv, D)");
  LUMINA_CHECK(D % 2 == 0, "{}: head dim D = {} must be even", op, D);
  LUMINA_CHECK(cos.rank() == 2 && cos.dim(1) == D / 2, "{}: cos must be (P, D/2 = {}), got {}", op, D / 2,
               cos.shape.str());
  check_shape(sin, cos.shape, "rope_qkv: sin (as cos)");
  LUMINA_CHECK(cos.dtype == sin.dtype && (cos.dtype == stacked.dtype || cos.dtype == DType::f32),
               "{}: cos/sin must both be {} or f32, got {} and {}", op, dtype_name(stacked.dtype),
               dtype_name(cos.dtype), dtype_name(sin.dtype));
  if (positions.empty()) {
    LUMINA_CHECK(T <= cos.dim(0), "{}: positions 0..{} need a table of at least {} rows, got {}", op, T - 1, T,
                 cos.dim(0));
  } else {
    expect_device(positions, op, "positions");
    expect_dtype(positions, DType::i32, op, "positions");
    check_shape(positions, Shape{B * T}, "rope_qkv: positions (B*T)");
  }
  if (q.numel() == 0) return;
  NvtxRange range(op);
  const QkvDims d{B * T, T, Hq, Hkv, D / 2, cos.dim(0)};
  const auto* pos = positions.empty() ? nullptr : static_cast<const int32_t*>(positions.data);
  dispatch_float(stacked.dtype, op, [&](auto tag) {
    using E = decltype(tag);
    auto* sp = static_cast<E*>(stacked.data);
    auto* qp = static_cast<E*>(q.data);
    auto* kp = static_cast<E*>(k.data);
    auto* vp = static_cast<E*>(v.data);
    if (cos.dtype == DType::f32 && stacked.dtype != DType::f32)
      launch(be, sp, qp, kp, vp, static_cast<const float*>(cos.data), static_cast<const float*>(sin.data), pos, d,
             forward);
    else
      launch(be, sp, qp, kp, vp, static_cast<const E*>(cos.data), static_cast<const E*>(sin.data), pos, d, forward);
  });
}

}  // namespace

void CudaBackend::rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos,
                                   const Tensor& sin, const Tensor& positions) {
  rope_qkv(*this, "rope_qkv_forward", true, qkv, q, k, v, cos, sin, positions);
}

void CudaBackend::rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                    const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  rope_qkv(*this, "rope_qkv_backward", false, dqkv, dq, dk, dv, cos, sin, positions);
}

}  // namespace lumina
