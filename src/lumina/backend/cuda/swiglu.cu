// SwiGLU over flat elements (16-byte packs when every pointer is aligned and
// numel is a multiple of the pack; single elements otherwise), math in f32:
//   forward:  out = silu(g) * u,  silu(g) = g * sigmoid(g)
//   backward: dgate = dout * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  dup = dout * silu(g)
// gate, up, out, dout, dgate, dup: (N, F), one dtype (f32, bf16, f16); outputs overwritten.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

template <class T, int VEC>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, int64_t packs) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Pack<T, VEC> g = load_pack<VEC>(gate + i * VEC), u = load_pack<VEC>(up + i * VEC);
    Pack<T, VEC> o;
    for (int k = 0; k < VEC; ++k) {
      const float gk = to_f32(g.v[k]);
      o.v[k] = from_f32<T>(gk * sigmoid(gk) * to_f32(u.v[k]));
    }
    store_pack<VEC>(out + i * VEC, o);
  }
}

template <class T, int VEC>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t packs) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Pack<T, VEC> g = load_pack<VEC>(gate + i * VEC), u = load_pack<VEC>(up + i * VEC);
    const Pack<T, VEC> d = load_pack<VEC>(dout + i * VEC);
    Pack<T, VEC> dg, du;
    for (int k = 0; k < VEC; ++k) {
      const float gk = to_f32(g.v[k]), uk = to_f32(u.v[k]), dk = to_f32(d.v[k]);
      const float s = sigmoid(gk);
      dg.v[k] = from_f32<T>(dk * uk * s * (1.0f + gk * (1.0f - s)));
      du.v[k] = from_f32<T>(dk * gk * s);
    }
    store_pack<VEC>(dgate + i * VEC, dg);
    store_pack<VEC>(dup + i * VEC, du);
  }
}

void check_swiglu(const char* op, std::initializer_list<std::pair<const Tensor*, const char*>> tensors,
                  const Tensor& like) {
  for (const auto& [t, name] : tensors) {
    expect_device(*t, op, name);
    expect_dtype(*t, like.dtype, op, name);
    LUMINA_CHECK(t->shape == like.shape, "{}: {} is {}, expected {} like gate", op, name, t->shape.str(),
                 like.shape.str());
  }
}

}  // namespace

void CudaBackend::swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) {
  const char* op = "swiglu_forward";
  check_swiglu(op, {{&out, "out"}, {&gate, "gate"}, {&up, "up"}}, gate);
  const int64_t n = gate.numel();
  if (n == 0) return;
  NvtxRange range(op);
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  dispatch_float(gate.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* o = static_cast<T*>(out.data);
    const auto* g = static_cast<const T*>(gate.data);
    const auto* u = static_cast<const T*>(up.data);
    constexpr int kVec = kPack16<T>;
    if (n % kVec == 0 && aligned_16(o) && aligned_16(g) && aligned_16(u))
      swiglu_forward_kernel<T, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream_>>>(
          o, g, u, n / kVec);
    else
      swiglu_forward_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(o, g, u, n);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) {
  const char* op = "swiglu_backward";
  check_swiglu(op, {{&dgate, "dgate"}, {&dup, "dup"}, {&dout, "dout"}, {&gate, "gate"}, {&up, "up"}}, gate);
  const int64_t n = gate.numel();
  if (n == 0) return;
  NvtxRange range(op);
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  dispatch_float(gate.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* dg = static_cast<T*>(dgate.data);
    auto* du = static_cast<T*>(dup.data);
    const auto* d = static_cast<const T*>(dout.data);
    const auto* g = static_cast<const T*>(gate.data);
    const auto* u = static_cast<const T*>(up.data);
    constexpr int kVec = kPack16<T>;
    if (n % kVec == 0 && aligned_16(dg) && aligned_16(du) && aligned_16(d) && aligned_16(g) && aligned_16(u))
      swiglu_backward_kernel<T, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream_>>>(
          dg, du, d, g, u, n / kVec);
    else
      swiglu_backward_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream_>>>(dg, du, d, g, u,
                                                                                                   n);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
