// gemm: c (M,N) = alpha * op(a) @ op(b) + beta * c on cuBLASLt (gemm_runner.h);
// gemm_add: d = op(a) @ op(b) + c, cuBLASLt reading C and writing D (two pointers).
// gemm_batched: the same for G entries, c[g] = alpha op(a[g]) op(b[g]) + beta c[g],
// as one strided-batch cuBLASLt call.
// Dtypes: a and b share one of f32, bf16, f16; c has their dtype, or f32 when
// they are bf16/f16 (weight gradients accumulated with beta = 1 into the f32
// gradient buffer). Accumulation is always f32.
#include <algorithm>
#include <utility>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_check.h"
#include "lumina/backend/cuda/gemm_runner.h"

namespace lumina {

namespace {

// Device and dtype checks shared by gemm and gemm_batched (`op` names the caller).
void check_operands(const Tensor& c, const Tensor& a, const Tensor& b, const char* op) {
  for (const Tensor* t : {&c, &a, &b})
    LUMINA_CHECK(t->device == Device::cuda, "{}: operands must be GPU tensors, got a {} tensor", op,
                 device_name(t->device));
  LUMINA_CHECK(a.dtype == b.dtype, "{}: a is {} but b is {}; cast them to one dtype", op, dtype_name(a.dtype),
               dtype_name(b.dtype));
  const bool half_inputs = a.dtype == DType::bf16 || a.dtype == DType::f16;
  LUMINA_CHECK(a.dtype == DType::f32 || half_inputs, "{}: dtype {} is not supported on CUDA (f32, bf16, f16)", op,
               dtype_name(a.dtype));
  LUMINA_CHECK(c.dtype == a.dtype || (half_inputs && c.dtype == DType::f32),
               "{}: c must be {} or f32 for {} inputs, got {}", op, dtype_name(a.dtype), dtype_name(a.dtype),
               dtype_name(c.dtype));
}

}  // namespace

void CudaBackend::gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                       double beta) {
  run_gemm(c, c, a, trans_a, b, trans_b, alpha, beta);
}

void CudaBackend::gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) {
  LUMINA_CHECK(c.device == Device::cuda && c.dtype == d.dtype && c.flatten_2d().shape == d.flatten_2d().shape,
               "gemm_add: c ({} {} tensor {}) must be a GPU tensor of d's dtype and shape ({} {})",
               device_name(c.device), dtype_name(c.dtype), c.shape.str(), dtype_name(d.dtype), d.shape.str());
  run_gemm(d, c, a, trans_a, b, trans_b, 1.0, 1.0);
}

// c = alpha op(a) op(b) + beta c_in (c_in: c's dtype and shape, read only when beta != 0; it may be c).
void CudaBackend::run_gemm(Tensor c, const Tensor& c_in, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                           double alpha, double beta) {
  check_operands(c, a, b, "gemm");
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
  if (p.k == 0) {  // empty sum: c = beta * c_in
    if (beta == 0.0) {
      fill(c, 0.0);
      return;
    }
    if (c_in.data != c.data) copy(c, c_in);
    scale(c, beta);
    return;
  }
  cuda::NvtxRange range("gemm");
  p.align_a = GemmRunner::alignment_bytes(a.data);
  p.align_b = GemmRunner::alignment_bytes(b.data);
  p.align_c = std::min(GemmRunner::alignment_bytes(c.data), GemmRunner::alignment_bytes(c_in.data));
  gemm_->run(p, c.data, c_in.data, a.data, b.data, static_cast<float>(alpha), static_cast<float>(beta), stream_);
}

void CudaBackend::gemm_batched(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                               double beta) {
  check_operands(c, a, b, "gemm_batched");
  for (auto [t, name] : {std::pair{&a, "a"}, {&b, "b"}, {&c, "c"}})
    LUMINA_CHECK(t->rank() == 3, "gemm_batched: {} must be 3-D (G, rows, cols), got shape {}", name,
                 t->shape.str());
  // a[g] (M,K) or (K,M), b[g] (K,N) or (N,K), c[g] (M,N).
  GemmProblem p;
  p.batch = c.dim(0);
  p.m = c.dim(1);
  p.n = c.dim(2);
  p.k = trans_a ? a.dim(1) : a.dim(2);
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.ab = a.dtype;
  p.c = c.dtype;
  LUMINA_CHECK(a.dim(0) == p.batch && b.dim(0) == p.batch,
               "gemm_batched: batch dims differ: a {}, b {}, c {} (all need the same leading G)", a.shape.str(),
               b.shape.str(), c.shape.str());
  check_shape(a, trans_a ? Shape{p.batch, p.k, p.m} : Shape{p.batch, p.m, p.k},
              "gemm_batched: a (as op(a[g]) is (M,K))");
  check_shape(b, trans_b ? Shape{p.batch, p.n, p.k} : Shape{p.batch, p.k, p.n},
              "gemm_batched: b (as op(b[g]) is (K,N))");
  if (p.batch == 0 || p.m == 0 || p.n == 0) return;
  if (p.k == 0) {  // empty sums: c = beta * c
    if (beta == 0.0) fill(c, 0.0);
    else scale(c, beta);
    return;
  }
  cuda::NvtxRange range("gemm_batched");
  if (p.batch > 1) {  // batch 1 is a plain gemm: no strides, the same cached plan as gemm's
    p.stride_a = p.m * p.k;
    p.stride_b = p.k * p.n;
    p.stride_c = p.m * p.n;
  }
  p.align_a = GemmRunner::alignment_bytes(a.data, p.stride_a * static_cast<int64_t>(dtype_size_bytes(a.dtype)));
  p.align_b = GemmRunner::alignment_bytes(b.data, p.stride_b * static_cast<int64_t>(dtype_size_bytes(b.dtype)));
  p.align_c = GemmRunner::alignment_bytes(c.data, p.stride_c * static_cast<int64_t>(dtype_size_bytes(c.dtype)));
  gemm_->run(p, c.data, c.data, a.data, b.data, static_cast<float>(alpha), static_cast<float>(beta), stream_);
}

}  // namespace lumina
