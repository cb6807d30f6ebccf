// Rotary position embedding, Hugging Face rotate-half layout, in place.
// x (B, T, H, D): pairs (i, i + D/2), i < D/2, at position p = pos_offset + t:
//   forward:  x_i' = x_i cos - x_{i+D/2} sin;  x_{i+D/2}' = x_{i+D/2} cos + x_i sin
//   backward: the transpose (inverse) rotation, i.e. the forward with -sin.
// cos/sin: tables (P, D/2), P >= pos_offset + T, in x's dtype or f32.
// One thread per pair; consecutive threads take consecutive i (coalesced).
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

// direction: +1 forward, -1 backward.
template <class T, class Table>
__global__ void rope_kernel(T* x, const Table* cos, const Table* sin, int64_t pairs, int64_t seq_len, int64_t heads,
                            int64_t half_dim, int64_t pos_offset, float direction) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < pairs;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half_dim;
    const int64_t row = idx / half_dim;                   // (b, t, h) flattened
    const int64_t t = (row / heads) % seq_len;
    const int64_t table = (pos_offset + t) * half_dim + i;
    const float c = to_f32(cos[table]), s = direction * to_f32(sin[table]);
    T* head = x + row * 2 * half_dim;
    const float x0 = to_f32(head[i]), x1 = to_f32(head[i + half_dim]);
    head[i] = from_f32<T>(x0 * c - x1 * s);
    head[i + half_dim] = from_f32<T>(x1 * c + x0 * s);
  }
}

void rope(const CudaBackend& be, const char* op, Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset,
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
  LUMINA_CHECK(pos_offset >= 0 && pos_offset + seq_len <= cos.dim(0),
               "{}: positions {}..{} need a table of at least {} rows, got {}", op, pos_offset,
               pos_offset + seq_len - 1, pos_offset + seq_len, cos.dim(0));
  LUMINA_CHECK(cos.dtype == sin.dtype && (cos.dtype == x.dtype || cos.dtype == DType::f32),
               "{}: cos/sin must both be {} or f32, got {} and {}", op, dtype_name(x.dtype), dtype_name(cos.dtype),
               dtype_name(sin.dtype));
  const int64_t pairs = x.numel() / 2;
  if (pairs == 0) return;
  NvtxRange range(op);
  const unsigned blocks = grid_blocks(pairs, kThreads, 16LL * be.multiprocessor_count());
  dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* xp = static_cast<T*>(x.data);
    if (cos.dtype == DType::f32 && x.dtype != DType::f32)
      rope_kernel<T, float><<<blocks, kThreads, 0, be.stream()>>>(xp, static_cast<const float*>(cos.data),
                                                                  static_cast<const float*>(sin.data), pairs, seq_len,
                                                                  heads, half_dim, pos_offset, direction);
    else
      rope_kernel<T, T><<<blocks, kThreads, 0, be.stream()>>>(xp, static_cast<const T*>(cos.data),
                                                              static_cast<const T*>(sin.data), pairs, seq_len, heads,
                                                              half_dim, pos_offset, direction);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void CudaBackend::rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope(*this, "rope_forward", x, cos, sin, pos_offset, 1.0f);
}

void CudaBackend::rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope(*this, "rope_backward", dx, cos, sin, pos_offset, -1.0f);
}

}  // namespace lumina
