// SwiGLU over (N, F) elements (16-byte packs when every pointer is aligned and
// the row length is a multiple of the pack; single elements otherwise), math in f32:
//   forward:  out = silu(g) * u,  silu(g) = g * sigmoid(g)
//   backward: dgate = dout * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  dup = dout * silu(g)
// out and dout are (N, F). gate/up (and dgate/dup) are either two (N, F) tensors
// or the two halves of each row of one (N, 2F) tensor (the packed ops); one
// dtype (f32, bf16, f16); outputs overwritten.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"
#include "lumina/backend/swiglu_checks.h"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kThreads = 256;

// Where gate and up live, in packs of VEC: element pack i of the (N, F) output is
// row i / cols, column i % cols; its gate pack is at row * stride + column of
// `gate`, its up pack at the same offset of `up`. Apart: stride = cols; packed
// [gate | up] rows: up = gate + cols, stride = 2 cols.
struct GateUpLayout {
  int64_t cols, stride;
  __device__ int64_t offset(int64_t i) const {
    const int64_t row = i / cols;
    return row * stride + (i - row * cols);
  }
};

template <class T, int VEC>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, GateUpLayout layout, int64_t packs) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = layout.offset(i);
    const Pack<T, VEC> g = load_pack<VEC>(gate + at * VEC), u = load_pack<VEC>(up + at * VEC);
    Pack<T, VEC> o;
    for (int k = 0; k < VEC; ++k) {
      const float gk = to_f32(g.v[k]);
      o.v[k] = from_f32<T>(gk * sigmoid(gk) * to_f32(u.v[k]));
    }
    store_pack<VEC>(out + i * VEC, o);
  }
}

// dgate and dup share gate and up's layout.
template <class T, int VEC>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up,
                                       GateUpLayout layout, int64_t packs) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = layout.offset(i);
    const Pack<T, VEC> g = load_pack<VEC>(gate + at * VEC), u = load_pack<VEC>(up + at * VEC);
    const Pack<T, VEC> d = load_pack<VEC>(dout + i * VEC);
    Pack<T, VEC> dg, du;
    for (int k = 0; k < VEC; ++k) {
      const float gk = to_f32(g.v[k]), uk = to_f32(u.v[k]), dk = to_f32(d.v[k]);
      const float s = sigmoid(gk);
      dg.v[k] = from_f32<T>(dk * uk * s * (1.0f + gk * (1.0f - s)));
      du.v[k] = from_f32<T>(dk * gk * s);
    }
    store_pack<VEC>(dgate + at * VEC, dg);
    store_pack<VEC>(dup + at * VEC, du);
  }
}

// Launches over (rows, cols) elements; gate/up (and dgate/dup) `stride` elements
// apart per row. 16-byte packs when cols and stride are multiples of the pack and
// every pointer is aligned.
template <class T>
void launch_swiglu_forward(cudaStream_t stream, int sms, T* out, const T* gate, const T* up, int64_t rows,
                           int64_t cols, int64_t stride) {
  constexpr int kVec = kPack16<T>;
  const int64_t n = rows * cols, max_blocks = 16LL * sms;
  if (cols % kVec == 0 && stride % kVec == 0 && aligned_16(out) && aligned_16(gate) && aligned_16(up))
    swiglu_forward_kernel<T, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream>>>(
        out, gate, up, GateUpLayout{cols / kVec, stride / kVec}, n / kVec);
  else
    swiglu_forward_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream>>>(
        out, gate, up, GateUpLayout{cols, stride}, n);
  LUMINA_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_swiglu_backward(cudaStream_t stream, int sms, T* dgate, T* dup, const T* dout, const T* gate, const T* up,
                            int64_t rows, int64_t cols, int64_t stride) {
  constexpr int kVec = kPack16<T>;
  const int64_t n = rows * cols, max_blocks = 16LL * sms;
  if (cols % kVec == 0 && stride % kVec == 0 && aligned_16(dgate) && aligned_16(dup) && aligned_16(dout) &&
      aligned_16(gate) && aligned_16(up))
    swiglu_backward_kernel<T, kVec><<<grid_blocks(n / kVec, kThreads, max_blocks), kThreads, 0, stream>>>(
        dgate, dup, dout, gate, up, GateUpLayout{cols / kVec, stride / kVec}, n / kVec);
  else
    swiglu_backward_kernel<T, 1><<<grid_blocks(n, kThreads, max_blocks), kThreads, 0, stream>>>(
        dgate, dup, dout, gate, up, GateUpLayout{cols, stride}, n);
  LUMINA_CUDA_CHECK_LAUNCH();
}

using Operands = std::initializer_list<std::pair<const Tensor*, const char*>>;

void check_device_dtype(const char* op, Operands tensors, DType dtype) {
  for (const auto& [t, name] : tensors) {
    expect_device(*t, op, name);
    expect_dtype(*t, dtype, op, name);
  }
}

// Device, dtype and shape as gate.
void check_swiglu(const char* op, Operands tensors, const Tensor& gate) {
  check_device_dtype(op, tensors, gate.dtype);
  for (const auto& [t, name] : tensors)
    LUMINA_CHECK(t->shape == gate.shape, "{}: {} is {}, expected {} like gate", op, name, t->shape.str(),
                 gate.shape.str());
}

}  // namespace

void CudaBackend::swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) {
  const char* op = "swiglu_forward";
  check_swiglu(op, {{&out, "out"}, {&gate, "gate"}, {&up, "up"}}, gate);
  const int64_t n = gate.numel();
  if (n == 0) return;
  NvtxRange range(op);
  dispatch_float(gate.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    launch_swiglu_forward(stream_, multiprocessor_count_, static_cast<T*>(out.data), static_cast<const T*>(gate.data),
                          static_cast<const T*>(up.data), 1, n, n);
  });
}

void CudaBackend::swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) {
  const char* op = "swiglu_backward";
  check_swiglu(op, {{&dgate, "dgate"}, {&dup, "dup"}, {&dout, "dout"}, {&gate, "gate"}, {&up, "up"}}, gate);
  const int64_t n = gate.numel();
  if (n == 0) return;
  NvtxRange range(op);
  dispatch_float(gate.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    launch_swiglu_backward(stream_, multiprocessor_count_, static_cast<T*>(dgate.data), static_cast<T*>(dup.data),
                           static_cast<const T*>(dout.data), static_cast<const T*>(gate.data),
                           static_cast<const T*>(up.data), 1, n, n);
  });
}

void CudaBackend::swiglu_packed_forward(Tensor out, const Tensor& gate_up) {
  const char* op = "swiglu_packed_forward";
  check_device_dtype(op, {{&out, "out"}, {&gate_up, "gate_up"}}, out.dtype);
  const int64_t F = check_swiglu_packed(op, gate_up, Tensor{}, out, "out");
  const int64_t rows = out.dim(0);
  if (rows * F == 0) return;
  NvtxRange range(op);
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const auto* gu = static_cast<const T*>(gate_up.data);
    launch_swiglu_forward(stream_, multiprocessor_count_, static_cast<T*>(out.data), gu, gu + F, rows, F, 2 * F);
  });
}

void CudaBackend::swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) {
  const char* op = "swiglu_packed_backward";
  check_device_dtype(op, {{&dout, "dout"}, {&gate_up, "gate_up"}, {&dgate_up, "dgate_up"}}, dout.dtype);
  const int64_t F = check_swiglu_packed(op, gate_up, dgate_up, dout, "dout");
  const int64_t rows = dout.dim(0);
  if (rows * F == 0) return;
  NvtxRange range(op);
  dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* dgu = static_cast<T*>(dgate_up.data);
    const auto* gu = static_cast<const T*>(gate_up.data);
    launch_swiglu_backward(stream_, multiprocessor_count_, dgu, dgu + F, static_cast<const T*>(dout.data), gu, gu + F,
                           rows, F, 2 * F);
  });
}

}  // namespace lumina
