// Rotary position embedding, Hugging Face rotate-half layout, in place on x (B, T, H, D).
// For each (b, t, h) at position p = pos_offset + t and i < D/2, with c = cos[p, i], s = sin[p, i]:
//   forward:  x_i' = x_i c - x_{i+D/2} s,   x_{i+D/2}' = x_{i+D/2} c + x_i s
//   backward: the transpose rotation (angle -p w_i):
//             dx_i' = dx_i c + dx_{i+D/2} s, dx_{i+D/2}' = dx_{i+D/2} c - dx_i s
#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

// Rotates the `heads` vectors of one token (heads * D values) by the angles of one position.
// direction = +1 forward, -1 backward (sin negated).
template <class T>
LUMINA_CPU_CLONES void rope_token(T* __restrict x, const T* __restrict cos, const T* __restrict sin, int64_t heads,
                                  int64_t half, T direction) {
  for (int64_t h = 0; h < heads; ++h) {
    T* lo = x + h * 2 * half;
    T* hi = lo + half;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const T c = cos[i], s = direction * sin[i];
      const T a = lo[i], b = hi[i];
      lo[i] = a * c - b * s;
      hi[i] = b * c + a * s;
    }
  }
}

void rope_apply(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset, bool forward, const char* op) {
  cpu::check_host(x, op, "x");
  cpu::check_host_dtype(cos, x.dtype, op, "cos");
  cpu::check_host_dtype(sin, x.dtype, op, "sin");
  LUMINA_CHECK(x.rank() == 4, "{}: x must be (B, T, H, D), got {}", op, x.shape.str());
  const int64_t batch = x.dim(0), seq = x.dim(1), heads = x.dim(2), head_dim = x.dim(3);
  LUMINA_CHECK(head_dim % 2 == 0, "{}: head dim {} must be even", op, head_dim);
  const int64_t half = head_dim / 2;
  LUMINA_CHECK(cos.rank() == 2 && cos.dim(1) == half && sin.shape == cos.shape,
               "{}: cos/sin must both be (P, {}) for head dim {}, got {} and {}", op, half, head_dim,
               cos.shape.str(), sin.shape.str());
  LUMINA_CHECK(pos_offset >= 0 && pos_offset + seq <= cos.dim(0),
               "{}: positions {}..{} exceed the {} rows of the cos/sin tables (raise max_position_embeddings)", op,
               pos_offset, pos_offset + seq - 1, cos.dim(0));
  cpu::dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* xp = x.ptr<T>();
    const T* cp = cos.ptr<T>();
    const T* sp = sin.ptr<T>();
    const T direction = forward ? T(1) : T(-1);
    const int64_t tokens = batch * seq;
#pragma omp parallel for schedule(static) if (tokens * heads * head_dim > 32768)
    for (int64_t i = 0; i < tokens; ++i) {
      const int64_t pos = pos_offset + i % seq;
      rope_token(xp + i * heads * head_dim, cp + pos * half, sp + pos * half, heads, half, direction);
    }
  });
}

}  // namespace

void CpuBackend::rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope_apply(x, cos, sin, pos_offset, true, "rope_forward");
}

void CpuBackend::rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope_apply(dx, cos, sin, pos_offset, false, "rope_backward");
}

}  // namespace lumina
