// SwiGLU, element-wise over (N, F). Outputs may alias inputs (each element's
// inputs are read before its outputs are written). The packed ops take gate
// and up as the two halves of each row of one (N, 2F) tensor.
//   forward:  out = silu(gate) * up,  silu(g) = g * sigmoid(g),  sigmoid(g) = 1 / (1 + exp(-g))
//   backward: dgate = dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  dup = dout * silu(g)  (overwritten)
#include <algorithm>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"
#include "lumina/backend/swiglu_checks.h"

namespace lumina {

namespace {

constexpr int64_t kChunkElems = 8192;

template <class T>
LUMINA_CPU_CLONES void swiglu_forward_range(T* out, const T* gate, const T* up, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + cpu::exp_approx(-g));
    out[i] = g * sig * up[i];
  }
}

template <class T>
LUMINA_CPU_CLONES void swiglu_backward_range(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i], u = up[i], dy = dout[i];
    const T sig = T(1) / (T(1) + cpu::exp_approx(-g));
    const T silu = g * sig;
    dgate[i] = dy * u * (sig + silu * (T(1) - sig));
    dup[i] = dy * silu;
  }
}

}  // namespace

void CpuBackend::swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) {
  cpu::check_host(out, "swiglu_forward", "out");
  cpu::check_host_dtype(gate, out.dtype, "swiglu_forward", "gate");
  cpu::check_host_dtype(up, out.dtype, "swiglu_forward", "up");
  check_shape(gate, out.shape, "swiglu_forward: gate");
  check_shape(up, out.shape, "swiglu_forward: up");
  cpu::dispatch_float(out.dtype, "swiglu_forward", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.ptr<T>();
    const T* g = gate.ptr<T>();
    const T* u = up.ptr<T>();
    cpu::parallel_chunks(out.numel(), kChunkElems, [&](int64_t begin, int64_t end) {
      swiglu_forward_range(o + begin, g + begin, u + begin, end - begin);
    });
  });
}

void CpuBackend::swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) {
  cpu::check_host(dout, "swiglu_backward", "dout");
  cpu::check_host_dtype(dgate, dout.dtype, "swiglu_backward", "dgate");
  cpu::check_host_dtype(dup, dout.dtype, "swiglu_backward", "dup");
  cpu::check_host_dtype(gate, dout.dtype, "swiglu_backward", "gate");
  cpu::check_host_dtype(up, dout.dtype, "swiglu_backward", "up");
  check_shape(dgate, dout.shape, "swiglu_backward: dgate");
  check_shape(dup, dout.shape, "swiglu_backward: dup");
  check_shape(gate, dout.shape, "swiglu_backward: gate");
  check_shape(up, dout.shape, "swiglu_backward: up");
  cpu::dispatch_float(dout.dtype, "swiglu_backward", [&](auto tag) {
    using T = decltype(tag);
    T* dg = dgate.ptr<T>();
    T* du = dup.ptr<T>();
    const T* dy = dout.ptr<T>();
    const T* g = gate.ptr<T>();
    const T* u = up.ptr<T>();
    cpu::parallel_chunks(dout.numel(), kChunkElems, [&](int64_t begin, int64_t end) {
      swiglu_backward_range(dg + begin, du + begin, dy + begin, g + begin, u + begin, end - begin);
    });
  });
}

void CpuBackend::swiglu_packed_forward(Tensor out, const Tensor& gate_up) {
  const char* op = "swiglu_packed_forward";
  cpu::check_host(out, op, "out");
  cpu::check_host_dtype(gate_up, out.dtype, op, "gate_up");
  const int64_t F = check_swiglu_packed(op, gate_up, Tensor{}, out, "out");
  if (F == 0) return;
  cpu::dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.ptr<T>();
    const T* gu = gate_up.ptr<T>();
    cpu::parallel_chunks(out.dim(0), std::max<int64_t>(1, kChunkElems / F), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) swiglu_forward_range(o + r * F, gu + 2 * r * F, gu + (2 * r + 1) * F, F);
    });
  });
}

void CpuBackend::swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) {
  const char* op = "swiglu_packed_backward";
  cpu::check_host(dout, op, "dout");
  cpu::check_host_dtype(dgate_up, dout.dtype, op, "dgate_up");
  cpu::check_host_dtype(gate_up, dout.dtype, op, "gate_up");
  const int64_t F = check_swiglu_packed(op, gate_up, dgate_up, dout, "dout");
  if (F == 0) return;
  cpu::dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* dgu = dgate_up.ptr<T>();
    const T* dy = dout.ptr<T>();
    const T* gu = gate_up.ptr<T>();
    cpu::parallel_chunks(dout.dim(0), std::max<int64_t>(1, kChunkElems / F), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        swiglu_backward_range(dgu + 2 * r * F, dgu + (2 * r + 1) * F, dy + r * F, gu + 2 * r * F,
                              gu + (2 * r + 1) * F, F);
    });
  });
}

}  // namespace lumina
