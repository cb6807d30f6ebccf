// gemm: c (M,N) = alpha * op(a) @ op(b) + beta * c on cuBLASLt (gemm_runner.h).
// Dtypes: a and b share one of f32, bf16, f16; c has their dtype, or f32 when
// they are bf16/f16 (weight gradients accumulated with beta = 1 into the f32
// gradient buffer). Accumulation is always f32.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_check.h"
#include "lumina/backend/cuda/gemm_runner.h"

namespace lumina {

void CudaBackend::gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                       double beta) {
  for (const Tensor* t : {static_cast<const Tensor*>(&c), &a, &b})
    LUMINA_CHECK(t->device == Device::cuda, "gemm: operands must be GPU tensors, got a {} tensor",
                 device_name(t->device));
  LUMINA_CHECK(a.dtype == b.dtype, "gemm: a is {} but b is {}; cast them to one dtype", dtype_name(a.dtype),
               dtype_name(b.dtype));
  const bool half_inputs = a.dtype == DType::bf16 || a.dtype == DType::f16;
  LUMINA_CHECK(a.dtype == DType::f32 || half_inputs, "gemm: dtype {} is not supported on CUDA (f32, bf16, f16)",
               dtype_name(a.dtype));
  LUMINA_CHECK(c.dtype == a.dtype || (half_inputs && c.dtype == DType::f32),
               "gemm: c must be {} or f32 for {} inputs, got {}", dtype_name(a.dtype), dtype_name(a.dtype),
               dtype_name(c.dtype));
  const Tensor a2 = a.flatten_2d(), b2 = b.flatten_2d(), c2 = c.flatten_2d();
  GemmProblem p;
  p.m = c2.dim(0);
  p.n = c2.dim(1);
  p.k = trans_a ? a2.dim(0) : a2.dim(1);
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.ab = a.dtype;
  p.c = c.dtype;
  check_shape(a2, trans_a ? Shape{p.k, p.m} : Shape{p.m, p.k}, "gemm: a (flattened, as op(a) is (M,K))");
  check_shape(b2, trans_b ? Shape{p.n, p.k} : Shape{p.k, p.n}, "gemm: b (flattened, as op(b) is (K,N))");
  if (p.m == 0 || p.n == 0) return;
  if (p.k == 0) {  // empty sum: c = beta * c
    if (beta == 0.0) fill(c, 0.0);
    else scale(c, beta);
    return;
  }
  cuda::NvtxRange range("gemm");
  p.align_a = GemmRunner::alignment_bytes(a.data);
  p.align_b = GemmRunner::alignment_bytes(b.data);
  p.align_c = GemmRunner::alignment_bytes(c.data);
  gemm_->run(p, c.data, a.data, b.data, static_cast<float>(alpha), static_cast<float>(beta), stream_);
}

}  // namespace lumina
