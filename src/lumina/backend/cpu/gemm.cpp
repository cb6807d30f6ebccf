// gemm: c (M,N) = alpha * op(a) @ op(b) + beta * c through OpenBLAS.
// Leading dims are flattened: a (B,T,C) is the matrix (B*T, C). With the
// OpenMP flavour of OpenBLAS the call uses all OpenMP threads when made
// outside a parallel region and runs single-threaded inside one.
// gemm_batched: c[g] (M,N) = alpha op(a[g]) op(b[g]) + beta c[g] for g < G, one
// BLAS call per entry in g order, each exactly the call gemm would make.
#include <cblas.h>

#include <algorithm>
#include <utility>

#include "lumina/backend/cpu/cpu_backend.h"

namespace lumina {

namespace {

// A tensor as a row-major matrix: rows = product of leading dims, cols = last dim.
struct MatrixDims {
  int64_t rows, cols;
};

MatrixDims matrix_dims(const Tensor& t, const char* name) {
  LUMINA_CHECK(t.rank() >= 1, "gemm: {} must have rank >= 1, got shape {}", name, t.shape.str());
  const int64_t cols = t.dim(-1);
  return {cols ? t.numel() / cols : 0, cols};
}

}  // namespace

namespace cpu {

void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

}  // namespace cpu

void CpuBackend::gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                      double beta) {
  cpu::check_host(c, "gemm", "c");
  cpu::check_host_dtype(a, c.dtype, "gemm", "a");
  cpu::check_host_dtype(b, c.dtype, "gemm", "b");
  const MatrixDims ad = matrix_dims(a, "a"), bd = matrix_dims(b, "b"), cd = matrix_dims(c, "c");
  // op(a) (M,K), op(b) (K,N), c (M,N).
  const int64_t m = trans_a ? ad.cols : ad.rows, k = trans_a ? ad.rows : ad.cols;
  const int64_t kb = trans_b ? bd.cols : bd.rows, n = trans_b ? bd.rows : bd.cols;
  LUMINA_CHECK(k == kb && cd.rows == m && cd.cols == n,
               "gemm: shapes do not agree: op(a) is ({}, {}) from a {}{}, op(b) is ({}, {}) from b {}{}, c is {} "
               "(needs ({}, {}))",
               m, k, a.shape.str(), trans_a ? "^T" : "", kb, n, b.shape.str(), trans_b ? "^T" : "", c.shape.str(), m,
               n);
  if (m == 0 || n == 0) return;
  cpu::dispatch_float(c.dtype, "gemm", [&](auto tag) {
    using T = decltype(tag);
    T* cp = c.ptr<T>();
    if (k == 0) {  // empty sum: c = beta * c
      for (int64_t i = 0; i < m * n; ++i) cp[i] = beta == 0.0 ? T(0) : static_cast<T>(beta) * cp[i];
      return;
    }
    cpu::blas_gemm(trans_a, trans_b, m, n, k, static_cast<T>(alpha), a.ptr<T>(), std::max<int64_t>(ad.cols, 1),
              b.ptr<T>(), std::max<int64_t>(bd.cols, 1), static_cast<T>(beta), cp, n);
  });
}

void CpuBackend::gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) {
  cpu::check_host(c, "gemm_add", "c");
  cpu::check_host_dtype(c, d.dtype, "gemm_add", "c");
  LUMINA_CHECK(c.numel() == d.numel() && c.flatten_2d().shape == d.flatten_2d().shape,
               "gemm_add: c has shape {}, d {}; they must agree", c.shape.str(), d.shape.str());
  if (c.data != d.data) copy(d, c);
  gemm(d, a, trans_a, b, trans_b, 1.0, 1.0);
}

void CpuBackend::gemm_batched(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                              double beta) {
  cpu::check_host(c, "gemm_batched", "c");
  cpu::check_host_dtype(a, c.dtype, "gemm_batched", "a");
  cpu::check_host_dtype(b, c.dtype, "gemm_batched", "b");
  for (auto [t, name] : {std::pair{&a, "a"}, {&b, "b"}, {&c, "c"}})
    LUMINA_CHECK(t->rank() == 3, "gemm_batched: {} must be 3-D (G, rows, cols), got shape {}", name,
                 t->shape.str());
  // a[g] (M,K) or (K,M), b[g] (K,N) or (N,K), c[g] (M,N).
  const int64_t groups = c.dim(0), m = c.dim(1), n = c.dim(2);
  const int64_t k = trans_a ? a.dim(1) : a.dim(2);
  LUMINA_CHECK(a.dim(0) == groups && b.dim(0) == groups,
               "gemm_batched: batch dims differ: a {}, b {}, c {} (all need the same leading G)", a.shape.str(),
               b.shape.str(), c.shape.str());
  check_shape(a, trans_a ? Shape{groups, k, m} : Shape{groups, m, k}, "gemm_batched: a (as op(a[g]) is (M,K))");
  check_shape(b, trans_b ? Shape{groups, n, k} : Shape{groups, k, n}, "gemm_batched: b (as op(b[g]) is (K,N))");
  if (groups == 0 || m == 0 || n == 0) return;
  cpu::dispatch_float(c.dtype, "gemm_batched", [&](auto tag) {
    using T = decltype(tag);
    T* cp = c.ptr<T>();
    if (k == 0) {  // empty sums: c = beta * c
      for (int64_t i = 0; i < c.numel(); ++i) cp[i] = beta == 0.0 ? T(0) : static_cast<T>(beta) * cp[i];
      return;
    }
    const T* ap = a.ptr<T>();
    const T* bp = b.ptr<T>();
    for (int64_t g = 0; g < groups; ++g)
      cpu::blas_gemm(trans_a, trans_b, m, n, k, static_cast<T>(alpha), ap + g * m * k, a.dim(2), bp + g * k * n,
                     b.dim(2), static_cast<T>(beta), cp + g * m * n, n);
  });
}

}  // namespace lumina
