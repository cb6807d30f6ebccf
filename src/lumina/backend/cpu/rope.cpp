// Rotary position embedding, Hugging Face rotate-half layout, in place on x (B, T, H, D).
// For each (b, t, h) at position p = pos_offset + t (rope_positions_*: p = positions[b*T + t])
// and i < D/2, with c = cos[p, i], s = sin[p, i]:
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

// Checks x (B,T,H,D) and the (P, D/2) tables.
void rope_check(const Tensor& x, const Tensor& cos, const Tensor& sin, const char* op) {
  cpu::check_host(x, op, "x");
  cpu::check_host_dtype(cos, x.dtype, op, "cos");
  cpu::check_host_dtype(sin, x.dtype, op, "sin");
  LUMINA_CHECK(x.rank() == 4, "{}: x must be (B, T, H, D), got {}", op, x.shape.str());
  const int64_t head_dim = x.dim(3);
  LUMINA_CHECK(head_dim % 2 == 0, "{}: head dim {} must be even", op, head_dim);
  const int64_t half = head_dim / 2;
  LUMINA_CHECK(cos.rank() == 2 && cos.dim(1) == half && sin.shape == cos.shape,
               "{}: cos/sin must both be (P, {}) for head dim {}, got {} and {}", op, half, head_dim,
               cos.shape.str(), sin.shape.str());
}

// Rotates every token i of x (B*T tokens) by the angles of position position_of(i).
template <class PositionOf>
void rope_rotate(Tensor x, const Tensor& cos, const Tensor& sin, bool forward, const char* op,
                 PositionOf&& position_of) {
  const int64_t tokens = x.dim(0) * x.dim(1), heads = x.dim(2), head_dim = x.dim(3), half = head_dim / 2;
  cpu::dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* xp = x.ptr<T>();
    const T* cp = cos.ptr<T>();
    const T* sp = sin.ptr<T>();
    const T direction = forward ? T(1) : T(-1);
#pragma omp parallel for schedule(static) if (tokens * heads * head_dim > 32768)
    for (int64_t i = 0; i < tokens; ++i) {
      const int64_t pos = position_of(i);
      rope_token(xp + i * heads * head_dim, cp + pos * half, sp + pos * half, heads, half, direction);
    }
  });
}

void rope_apply(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset, bool forward, const char* op) {
  rope_check(x, cos, sin, op);
  const int64_t seq = x.dim(1);
  LUMINA_CHECK(pos_offset >= 0 && pos_offset + seq <= cos.dim(0),
               "{}: positions {}..{} exceed the {} rows of the cos/sin tables (raise max_position_embeddings)", op,
               pos_offset, pos_offset + seq - 1, cos.dim(0));
  rope_rotate(x, cos, sin, forward, op, [&](int64_t i) { return pos_offset + i % seq; });
}

void rope_apply_positions(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions, bool forward,
                          const char* op) {
  rope_check(x, cos, sin, op);
  const int32_t* pos = cpu::check_rope_positions(positions, x.dim(0) * x.dim(1), cos.dim(0), op);
  rope_rotate(x, cos, sin, forward, op, [pos](int64_t i) { return static_cast<int64_t>(pos[i]); });
}

}  // namespace

const int32_t* cpu::check_rope_positions(const Tensor& positions, int64_t tokens, int64_t table_rows, const char* op) {
  cpu::check_host_dtype(positions, DType::i32, op, "positions");
  LUMINA_CHECK(positions.numel() == tokens, "{}: positions must hold one entry per token (B*T = {}), got {}", op,
               tokens, positions.shape.str());
  const int32_t* pos = positions.ptr<int32_t>();
  for (int64_t i = 0; i < tokens; ++i)
    LUMINA_CHECK(pos[i] >= 0 && pos[i] < table_rows,
                 "{}: position {} of token {} is outside the {} rows of the cos/sin tables (raise "
                 "max_position_embeddings)", op, pos[i], i, table_rows);
  return pos;
}

void CpuBackend::rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope_apply(x, cos, sin, pos_offset, true, "rope_forward");
}

void CpuBackend::rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  rope_apply(dx, cos, sin, pos_offset, false, "rope_backward");
}

void CpuBackend::rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  rope_apply_positions(x, cos, sin, positions, true, "rope_positions_forward");
}

void CpuBackend::rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  rope_apply_positions(dx, cos, sin, positions, false, "rope_positions_backward");
}

}  // namespace lumina
