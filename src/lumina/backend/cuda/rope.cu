// Rotary position embedding, Hugging Face rotate-half layout, in place.
// x (B, T, H, D): pairs (i, i + D/2), i < D/2, at position p = pos_offset + t
// (rope_positions_*: p = positions[b*T + t], an i32 device array; a position
// outside the table sets kPositionOutOfRange and leaves that token unrotated):
//   forward:  x_i' = x_i cos - x_{i+D/2} sin;  x_{i+D/2}' = x_{i+D/2} cos + x_i sin
//   backward: the transpose (inverse) rotation, i.e. the forward with -sin.
// cos/sin: tables (P, D/2), P >= pos_offset + T, in x's dtype or f32.
// Packed path (half_dim a multiple of the 16-byte pack, aligned tensors): one
// thread rotates VEC consecutive pairs with 16-byte loads and one index
// decomposition; otherwise one thread per pair. Consecutive threads take
// consecutive i (coalesced).
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

// Where the tokens sit: pos_offset + t, or positions[token] when positions is
// non-null (checked against the table's rows).
struct RopePositions {
  int64_t offset = 0;
  const int32_t* positions = nullptr;
  int64_t table_rows = 0;
  unsigned* errors = nullptr;
};

// direction: +1 forward, -1 backward. Each thread: VEC consecutive pairs
// (i0 .. i0+VEC-1, i0 a multiple of VEC) of one head row.
template <class T, class Table, int VEC>
__global__ void rope_kernel(T* x, const Table* cos, const Table* sin, int64_t pairs, int64_t seq_len, int64_t heads,
                            int64_t half_dim, RopePositions where, float direction) {
  const int64_t groups_per_row = half_dim / VEC;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < pairs / VEC;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i0 = (g % groups_per_row) * VEC;
    const int64_t row = g / groups_per_row;  // (b, t, h) flattened
    const int64_t token = row / heads;       // (b, t) flattened
    int64_t pos = where.offset + token % seq_len;
    if (where.positions) {
      pos = where.positions[token];
      if (pos < 0 || pos >= where.table_rows) {
        atomicOr(where.errors, kPositionOutOfRange);
        continue;
      }
    }
    const int64_t table = pos * half_dim + i0;
    T* head = x + row * 2 * half_dim;
    const Pack<Table, VEC> c = load_pack<VEC>(cos + table), s = load_pack<VEC>(sin + table);
    Pack<T, VEC> lo = load_pack<VEC>(head + i0), hi = load_pack<VEC>(head + i0 + half_dim);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float ck = to_f32(c.v[k]), sk = direction * to_f32(s.v[k]);
      const float x0 = to_f32(lo.v[k]), x1 = to_f32(hi.v[k]);
      lo.v[k] = from_f32<T>(x0 * ck - x1 * sk);
      hi.v[k] = from_f32<T>(x1 * ck + x0 * sk);
    }
    store_pack<VEC>(head + i0, lo);
    store_pack<VEC>(head + i0 + half_dim, hi);
  }
}

template <class T, class Table>
void launch_rope(const CudaBackend& be, T* x, const Table* cos, const Table* sin, int64_t pairs, int64_t seq_len,
                 int64_t heads, int64_t half_dim, const RopePositions& where, float direction) {
  constexpr int kVec = kPack16<T>;
  const bool packed = half_dim % kVec == 0 && aligned_16(x) && aligned_16(cos) && aligned_16(sin);
  const int64_t threads_needed = packed ? pairs / kVec : pairs;
  const unsigned blocks = grid_blocks(threads_needed, kThreads, 16LL * be.multiprocessor_count());
  if (packed)
    rope_kernel<T, Table, kVec><<<blocks, kThreads, 0, be.stream()>>>(x, cos, sin, pairs, seq_len, heads, half_dim,
                                                                      where, direction);
  else
    rope_kernel<T, Table, 1><<<blocks, kThreads, 0, be.stream()>>>(x, cos, sin, pairs, seq_len, heads, half_dim,
                                                                   where, direction);
  LUMINA_CUDA_CHECK_LAUNCH();
}

// where.positions: null (positions pos_offset + t, checked here) or an i32 device array of B*T entries.
void rope(const CudaBackend& be, const char* op, Tensor x, const Tensor& cos, const Tensor& sin, RopePositions where,
          float direction) {
  expect_device(x, op, "x");
  expect_device(cos, op, "cos");
  expect_device(sin, op, "sin");
  LUMINA_CHECK(x.rank() == 4, "{}: x must be (B, T, H, D), got {}", op, x.shape.str());
  const int64_t seq_len = x.dim(1), heads = x.dim(2), head_dim = x.dim(3);
  LUMINA_CHECK(head_dim % 2 == 0, "{}: head dim D = {} must be even", op, head_dim);
  const int64_t half_dim = head_dim / 2;
  LUMINA_CHECK(cos.rank() == 2 && cos.dim(1) == half_dim, "{}: cos must be (P, D/2 = {}), got {}", op, half_dim,
               cos.shape.str());
  check_shape(sin, cos.shape, "rope: sin (as cos)");
  if (!where.positions)
    LUMINA_CHECK(where.offset >= 0 && where.offset + seq_len <= cos.dim(0),
                 "{}: positions {}..{} need a table of at least {} rows, got {}", op, where.offset,
                 where.offset + seq_len - 1, where.offset + seq_len, cos.dim(0));
  where.table_rows = cos.dim(0);
  where.errors = be.device_errors();
  LUMINA_CHECK(cos.dtype == sin.dtype && (cos.dtype == x.dtype || cos.dtype == DType::f32),
               "{}: cos/sin must both be {} or f32, got {} and {}", op, dtype_name(x.dtype), dtype_name(cos.dtype),
               dtype_name(sin.dtype));
  const int64_t pairs = x.numel() / 2;
  if (pairs == 0) return;
  NvtxRange range(op);
  dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* xp = static_cast<T*>(x.data);
    if (cos.dtype == DType::f32 && x.dtype != DType::f32)
      launch_rope(be, xp, static_cast<const float*>(cos.data), static_cast<const float*>(sin.data), pairs, seq_len,
                  heads, half_dim, where, direction);
    else
      launch_rope(be, xp, static_cast<const T*>(cos.data), static_cast<const T*>(sin.data), pairs, seq_len, heads,
                  half_dim, where, direction);
  });
}

}  // namespace

void CudaBackend::rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope(*this, "rope_forward", x, cos, sin, RopePositions{pos_offset}, 1.0f);
}

void CudaBackend::rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope(*this, "rope_backward", dx, cos, sin, RopePositions{pos_offset}, -1.0f);
}

namespace {
RopePositions device_positions(const char* op, const Tensor& x, const Tensor& positions) {
  expect_device(positions, op, "positions");
  expect_dtype(positions, DType::i32, op, "positions");
  LUMINA_CHECK(x.rank() == 4 && positions.numel() == x.dim(0) * x.dim(1),
               "{}: positions must hold one entry per token of x (B, T, H, D) = {}, got {}", op, x.shape.str(),
               positions.shape.str());
  RopePositions where;
  where.positions = static_cast<const int32_t*>(positions.data);
  return where;
}
}  // namespace

void CudaBackend::rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  rope(*this, "rope_positions_forward", x, cos, sin, device_positions("rope_positions_forward", x, positions), 1.0f);
}

void CudaBackend::rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  rope(*this, "rope_positions_backward", dx, cos, sin, device_positions("rope_positions_backward", dx, positions),
       -1.0f);
}

}  // namespace lumina
