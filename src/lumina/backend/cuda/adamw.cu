// adamw_update: one kernel over a flat f32 range (param, grad, m, v):
//   g = grad * grad_scale;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p),  mhat = m / (1 - b1^t), vhat = v / (1 - b2^t).
// Bias corrections are computed on the host in f64; the update runs in f32,
// float4 packs when every pointer is 16-byte aligned and numel % 4 == 0.
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

template <int VEC>
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t packs, AdamWScalars s) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Pack<float, VEC> p = load_pack<VEC>(param + i * VEC);
    const Pack<float, VEC> g = load_pack<VEC>(grad + i * VEC);
    Pack<float, VEC> mv = load_pack<VEC>(m + i * VEC);
    Pack<float, VEC> vv = load_pack<VEC>(v + i * VEC);
    for (int k = 0; k < VEC; ++k) {
      const float gk = g.v[k] * s.grad_scale;
      mv.v[k] = s.beta1 * mv.v[k] + (1.0f - s.beta1) * gk;
      vv.v[k] = s.beta2 * vv.v[k] + (1.0f - s.beta2) * gk * gk;
      const float mhat = mv.v[k] / s.bias_correction1;
      const float vhat = vv.v[k] / s.bias_correction2;
      p.v[k] -= s.lr * (mhat / (sqrtf(vhat) + s.eps) + s.weight_decay * p.v[k]);
    }
    store_pack<VEC>(param + i * VEC, p);
    store_pack<VEC>(m + i * VEC, mv);
    store_pack<VEC>(v + i * VEC, vv);
  }
}

}  // namespace

void CudaBackend::adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h) {
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
  if (n % 4 == 0 && aligned_16(p) && aligned_16(g) && aligned_16(mp) && aligned_16(vp))
    adamw_kernel<4><<<grid_blocks(n / 4, kThreads, max_blocks), kThreads, 0, stream_>>>(p, g, mp, vp, n / 4, s);
  else
    adamw_kernel<1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(p, g, mp, vp, n, s);
  LUMINA_CUDA_CHECK_LAUNCH();
}

}  // namespace lumina
