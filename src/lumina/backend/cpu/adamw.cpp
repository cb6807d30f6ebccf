// AdamW on one flat range (param, grad, m, v: same numel and dtype, f32 or f64):
//   g = grad * grad_scale
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p),  mhat = m / (1 - b1^t), vhat = v / (1 - b2^t)
// The bias corrections are computed once in f64; the element loop runs in the
// tensors' dtype.
#include <cmath>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

template <class T>
struct AdamWCoefficients {
  T lr, beta1, beta2, one_minus_beta1, one_minus_beta2, inv_bias1, inv_bias2, eps, weight_decay, grad_scale;
};

template <class T>
LUMINA_CPU_CLONES void adamw_range(T* __restrict p, const T* __restrict grad, T* __restrict m, T* __restrict v,
                                   AdamWCoefficients<T> k, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] * k.grad_scale;
    const T mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const T vi = k.beta2 * v[i] + k.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const T update = (mi * k.inv_bias1) / (std::sqrt(vi * k.inv_bias2) + k.eps) + k.weight_decay * p[i];
    p[i] -= k.lr * update;
  }
}

}  // namespace

void CpuBackend::adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                              Tensor param_copy) {
  const char* op = "adamw_update";
  cpu::check_host(param, op, "param");
  cpu::check_host_dtype(grad, param.dtype, op, "grad");
  cpu::check_host_dtype(m, param.dtype, op, "m");
  cpu::check_host_dtype(v, param.dtype, op, "v");
  LUMINA_CHECK(grad.numel() == param.numel() && m.numel() == param.numel() && v.numel() == param.numel(),
               "{}: param {}, grad {}, m {}, v {} must have the same number of elements", op, param.shape.str(),
               grad.shape.str(), m.shape.str(), v.shape.str());
  LUMINA_CHECK(h.step >= 1, "{}: step is {}; AdamW steps are 1-based", op, h.step);
  LUMINA_CHECK(param_copy.empty() || param_copy.numel() == param.numel(),
               "{}: param_copy {} must have param's {} elements", op, param_copy.shape.str(), param.numel());
  const double inv_bias1 = 1.0 / (1.0 - std::pow(h.beta1, static_cast<double>(h.step)));
  const double inv_bias2 = 1.0 / (1.0 - std::pow(h.beta2, static_cast<double>(h.step)));
  cpu::dispatch_float(param.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const AdamWCoefficients<T> k{static_cast<T>(h.lr),           static_cast<T>(h.beta1),
                                 static_cast<T>(h.beta2),        static_cast<T>(1.0 - h.beta1),
                                 static_cast<T>(1.0 - h.beta2),  static_cast<T>(inv_bias1),
                                 static_cast<T>(inv_bias2),      static_cast<T>(h.eps),
                                 static_cast<T>(h.weight_decay), static_cast<T>(h.grad_scale)};
    T* pp = param.ptr<T>();
    const T* gp = grad.ptr<T>();
    T* mp = m.ptr<T>();
    T* vp = v.ptr<T>();
    cpu::parallel_chunks(param.numel(), 16384, [&](int64_t begin, int64_t end) {
      adamw_range(pp + begin, gp + begin, mp + begin, vp + begin, k, end - begin);
    });
  });
  if (!param_copy.empty()) cast(param_copy, param);
}

}  // namespace lumina
