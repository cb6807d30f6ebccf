// SwiGLU, element-wise over (N, F). Outputs may alias inputs (each element's
// inputs are read before its outputs are written).
//   forward:  out = silu(gate) * up,  silu(g) = g * sigmoid(g),  sigmoid(g) = 1 / (1 + exp(-g))
//   backward: dgate = dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  dup = dout * silu(g)  (overwritten)
#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

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

}  // namespace lumina
