// adamw_update: one kernel over a flat f32 range (param, grad, m, v):
//   g = grad * grad_scale;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p),  mhat = m / (1 - b1^t), vhat = v / (1 - b2^t).
// Bias corrections are computed on the host in f64; the update runs in f32,
// float4 packs when every pointer is 16-byte aligned and numel % 4 == 0. With a
// param_copy, the updated p is also stored rounded to the copy's dtype (the
// model's bf16/f16 compute weights), saving cast's second pass over p.
#include <cmath>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

struct AdamWScalars {
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  float bias_correction1, bias_correction2;  // 1 - beta^t
};

// copy: nullptr, or the updated param rounded to C (as cast rounds).
template <int VEC, class C>
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, C* copy, int64_t packs,
                             AdamWScalars s) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Pack<float, VEC> p = load_pack<VEC>(param + i * VEC);
    const Pack<float, VEC> g = load_pack<VEC>(grad + i * VEC);
    Pack<float, VEC> mv = load_pack<VEC>(m + i * VEC);
    Pack<float, VEC> vv = load_pack<VEC>(v + i * VEC);
    Pack<C, VEC> pc;
    for (int k = 0; k < VEC; ++k) {
      const float gk = g.v[k] * s.grad_scale;
      mv.v[k] = s.beta1 * mv.v[k] + (1.0f - s.beta1) * gk;
      vv.v[k] = s.beta2 * vv.v[k] + (1.0f - s.beta2) * gk * gk;
      const float mhat = mv.v[k] / s.bias_correction1;
      const float vhat = vv.v[k] / s.bias_correction2;
      p.v[k] -= s.lr * (mhat / (sqrtf(vhat) + s.eps) + s.weight_decay * p.v[k]);
      pc.v[k] = from_f32<C>(p.v[k]);
    }
    store_pack<VEC>(param + i * VEC, p);
    store_pack<VEC>(m + i * VEC, mv);
    store_pack<VEC>(v + i * VEC, vv);
    if (copy != nullptr) store_pack<VEC>(copy + i * VEC, pc);
  }
}

}  // namespace

void CudaBackend::adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                               Tensor param_copy) {
  const char* op = "adamw_update";
  expect_device(param, op, "param");
  expect_device(grad, op, "grad");
  expect_device(m, op, "m");
  expect_device(v, op, "v");
  expect_dtype(param, DType::f32, op, "param");
  expect_dtype(grad, DType::f32, op, "grad");
  expect_dtype(m, DType::f32, op, "m");
  expect_dtype(v, DType::f32, op, "v");
  const int64_t n = param.numel();
  LUMINA_CHECK(grad.numel() == n && m.numel() == n && v.numel() == n,
               "adamw_update: param, grad, m, v must have one numel, got {}, {}, {}, {}", n, grad.numel(), m.numel(),
               v.numel());
  const bool with_copy = !param_copy.empty();
  if (with_copy) {
    expect_device(param_copy, op, "param_copy");
    LUMINA_CHECK(param_copy.numel() == n, "adamw_update: param_copy {} must have param's {} elements",
                 param_copy.shape.str(), n);
  }
  LUMINA_CHECK(h.step >= 1, "adamw_update: step is 1-based, got {}", h.step);
  if (n == 0) return;
  NvtxRange range(op);
  AdamWScalars s{};
  s.lr = static_cast<float>(h.lr);
  s.beta1 = static_cast<float>(h.beta1);
  s.beta2 = static_cast<float>(h.beta2);
  s.eps = static_cast<float>(h.eps);
  s.weight_decay = static_cast<float>(h.weight_decay);
  s.grad_scale = static_cast<float>(h.grad_scale);
  s.bias_correction1 = static_cast<float>(1.0 - std::pow(h.beta1, static_cast<double>(h.step)));
  s.bias_correction2 = static_cast<float>(1.0 - std::pow(h.beta2, static_cast<double>(h.step)));
  auto* p = static_cast<float*>(param.data);
  const auto* g = static_cast<const float*>(grad.data);
  auto* mp = static_cast<float*>(m.data);
  auto* vp = static_cast<float*>(v.data);
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  dispatch_float(with_copy ? param_copy.dtype : DType::f32, op, [&](auto tag) {
    using C = decltype(tag);
    auto* copy = with_copy ? static_cast<C*>(param_copy.data) : nullptr;
    const bool copy_aligned = (reinterpret_cast<uintptr_t>(copy) % (4 * sizeof(C))) == 0;
    if (n % 4 == 0 && aligned_16(p) && aligned_16(g) && aligned_16(mp) && aligned_16(vp) && copy_aligned)
      adamw_kernel<4, C><<<grid_blocks(n / 4, kThreads, max_blocks), kThreads, 0, stream_>>>(p, g, mp, vp, copy,
                                                                                              n / 4, s);
    else
      adamw_kernel<1, C><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(p, g, mp, vp, copy, n, s);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
