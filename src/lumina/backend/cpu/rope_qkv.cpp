// Fused split + RoPE of one stacked q/k/v projection (backend.h, rope_qkv_*).
// qkv (B, T, Hq + 2 Hkv, D): per token the Hq query heads, the Hkv key heads,
// then the Hkv value heads. For a head at position p and i < D/2, with
// c = cos[p, i], s = sin[p, i] (s negated in backward, the transpose rotation):
//   out_i = in_i c - in_{i+D/2} s,   out_{i+D/2} = in_{i+D/2} c + in_i s.
// Value heads are copied unrotated.
#include <cstring>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

// out (D) = rotation of in (D) by one position's angles; direction +1 forward, -1 backward.
template <class T>
LUMINA_CPU_CLONES void rotate_head(T* __restrict out, const T* __restrict in, const T* __restrict cos,
                                   const T* __restrict sin, int64_t half, T direction) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const T c = cos[i], s = direction * sin[i];
    const T a = in[i], b = in[i + half];
    out[i] = a * c - b * s;
    out[i + half] = b * c + a * s;
  }
}

struct QkvShape {
  int64_t tokens, seq, q_heads, kv_heads, head_dim;
};

// Checks the operands of either direction; `qkv` is the stacked tensor, q/k/v the split ones.
QkvShape check_qkv(const char* op, const Tensor& qkv, const Tensor& q, const Tensor& k, const Tensor& v,
                   const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  for (const auto& [t, name] : {std::pair{&qkv, "qkv"}, {&q, "q"}, {&k, "k"}, {&v, "v"}}) {
    cpu::check_host(*t, op, name);
    LUMINA_CHECK(t->dtype == qkv.dtype, "{}: {} is {}, qkv is {}", op, name, dtype_name(t->dtype),
                 dtype_name(qkv.dtype));
  }
  cpu::check_host_dtype(cos, qkv.dtype, op, "cos");
  cpu::check_host_dtype(sin, qkv.dtype, op, "sin");
  LUMINA_CHECK(q.rank() == 4 && k.rank() == 4, "{}: q and k must be (B, T, H, D), got {} and {}", op, q.shape.str(),
               k.shape.str());
  const int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), Hkv = k.dim(2), D = q.dim(3);
  check_shape(k, Shape{B, T, Hkv, D}, "rope_qkv: k");
  check_shape(v, Shape{B, T, Hkv, D}, "rope_qkv: v (as k)");
  check_shape(qkv, Shape{B, T, Hq + 2 * Hkv, D}, "rope_qkv: qkv (B, T, Hq + 2 Hkv, D)");
  LUMINA_CHECK(D % 2 == 0, "{}: head dim {} must be even", op, D);
  LUMINA_CHECK(cos.rank() == 2 && cos.dim(1) == D / 2 && sin.shape == cos.shape,
               "{}: cos/sin must both be (P, {}) for head dim {}, got {} and {}", op, D / 2, D, cos.shape.str(),
               sin.shape.str());
  if (positions.empty()) {
    LUMINA_CHECK(T <= cos.dim(0), "{}: positions 0..{} exceed the {} rows of the cos/sin tables", op, T - 1,
                 cos.dim(0));
  } else {
    cpu::check_rope_positions(positions, B * T, cos.dim(0), op);
  }
  return {B * T, T, Hq, Hkv, D};
}

// forward: split qkv into q, k, v (rotating q, k); backward: the transpose, gathering into qkv.
void rope_qkv(const char* op, bool forward, Tensor qkv, Tensor q, Tensor k, Tensor v, const Tensor& cos,
              const Tensor& sin, const Tensor& positions) {
  const QkvShape s = check_qkv(op, qkv, q, k, v, cos, sin, positions);
  cpu::dispatch_float(qkv.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = s.head_dim, half = D / 2, heads = s.q_heads + 2 * s.kv_heads;
    const T direction = forward ? T(1) : T(-1);
    T* stacked = qkv.ptr<T>();
    T* split[3] = {q.ptr<T>(), k.ptr<T>(), v.ptr<T>()};
    const int64_t split_heads[3] = {s.q_heads, s.kv_heads, s.kv_heads};
    const int32_t* pos = positions.empty() ? nullptr : positions.ptr<int32_t>();
#pragma omp parallel for schedule(static) if (s.tokens * heads * D > 32768)
    for (int64_t n = 0; n < s.tokens; ++n) {
      const int64_t p = pos ? pos[n] : n % s.seq;
      const T* c = cos.ptr<T>() + p * half;
      const T* sn = sin.ptr<T>() + p * half;
      int64_t head = 0;  // head index within the stacked row
      for (int part = 0; part < 3; ++part)
        for (int64_t h = 0; h < split_heads[part]; ++h, ++head) {
          T* packed = stacked + (n * heads + head) * D;
          T* single = split[part] + (n * split_heads[part] + h) * D;
          T* out = forward ? single : packed;
          const T* in = forward ? packed : single;
          if (part == 2)
            std::memcpy(out, in, static_cast<size_t>(D) * sizeof(T));
          else
            rotate_head(out, in, c, sn, half, direction);
        }
    }
  });
}

}  // namespace

void CpuBackend::rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos,
                                  const Tensor& sin, const Tensor& positions) {
  rope_qkv("rope_qkv_forward", true, qkv, q, k, v, cos, sin, positions);
}

void CpuBackend::rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                   const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  rope_qkv("rope_qkv_backward", false, dqkv, dq, dk, dv, cos, sin, positions);
}

}  // namespace lumina
