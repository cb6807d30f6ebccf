// RMSNorm over the last dim C of x (N, C):
//   forward:  rstd (N) = 1 / sqrt(mean_c(x^2) + eps),  y (N, C) = x * rstd * w
//   backward: dx (N, C) += rstd * (w*dy - x * rstd^2 * mean_c(w*dy*x))   (accumulates: x is the residual)
//             dw (C)    += sum_n dy * x * rstd                           (parameter gradient: +=)
// y may alias x. Rows are independent (parallel over row chunks). dw is a column sum, done
// in a second pass over column chunks, each adding rows in order, so its
// value does not depend on the thread count.
#include <cmath>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

constexpr int64_t kRowChunk = 16;

template <class T>
LUMINA_CPU_CLONES void rmsnorm_forward_rows(T* y, T* rstd, const T* x, const T* w, T eps, int64_t rows,
                                            int64_t channels) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * channels;
    T* yr = y + r * channels;
    T sum_sq = 0;
#pragma omp simd reduction(+ : sum_sq)
    for (int64_t c = 0; c < channels; ++c) sum_sq += xr[c] * xr[c];
    const T s = T(1) / std::sqrt(sum_sq / static_cast<T>(channels) + eps);
    rstd[r] = s;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) yr[c] = xr[c] * s * w[c];
  }
}

template <class T>
LUMINA_CPU_CLONES void rmsnorm_backward_dx_rows(T* __restrict dx, const T* __restrict dy, const T* __restrict x,
                                                const T* __restrict w, const T* __restrict rstd, int64_t rows,
                                                int64_t channels) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* dyr = dy + r * channels;
    const T* xr = x + r * channels;
    T* dxr = dx + r * channels;
    T dot = 0;  // sum_c w*dy*x
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < channels; ++c) dot += w[c] * dyr[c] * xr[c];
    const T s = rstd[r];
    const T coef = s * s * dot / static_cast<T>(channels);
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) dxr[c] += s * (w[c] * dyr[c] - xr[c] * coef);
  }
}

// dw[c0:c1] += sum_n dy[n, c] * x[n, c] * rstd[n], rows in order.
template <class T>
LUMINA_CPU_CLONES void rmsnorm_backward_dw_columns(T* __restrict dw, const T* __restrict dy, const T* __restrict x,
                                                   const T* __restrict rstd, int64_t rows, int64_t channels,
                                                   int64_t c0, int64_t c1) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* dyr = dy + r * channels;
    const T* xr = x + r * channels;
    const T s = rstd[r];
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) dw[c] += dyr[c] * xr[c] * s;
  }
}

void check_rmsnorm_args(const Tensor& x, const Tensor& w, const Tensor& rstd, const char* op) {
  cpu::check_host(x, op, "x");
  cpu::check_host_dtype(w, x.dtype, op, "w");
  cpu::check_host_dtype(rstd, x.dtype, op, "rstd");
  LUMINA_CHECK(x.rank() >= 1, "{}: x must have rank >= 1", op);
  const Tensor x2 = x.flatten_2d();
  check_shape(w, Shape{x2.dim(1)}, op);
  LUMINA_CHECK(rstd.numel() == x2.dim(0), "{}: rstd has {} elements, x has {} rows", op, rstd.numel(), x2.dim(0));
}

}  // namespace

void CpuBackend::rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) {
  check_rmsnorm_args(x, w, rstd, "rmsnorm_forward");
  cpu::check_host_dtype(y, x.dtype, "rmsnorm_forward", "y");
  check_shape(y, x.shape, "rmsnorm_forward: y");
  const int64_t rows = x.flatten_2d().dim(0), channels = x.dim(-1);
  cpu::dispatch_float(x.dtype, "rmsnorm_forward", [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.ptr<T>();
    T* sp = rstd.ptr<T>();
    const T* xp = x.ptr<T>();
    const T* wp = w.ptr<T>();
    cpu::parallel_chunks(rows, kRowChunk, [&](int64_t begin, int64_t end) {
      rmsnorm_forward_rows(yp + begin * channels, sp + begin, xp + begin * channels, wp, static_cast<T>(eps),
                           end - begin, channels);
    });
  });
}

void CpuBackend::rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Tensor& rstd) {
  check_rmsnorm_args(x, w, rstd, "rmsnorm_backward");
  cpu::check_host_dtype(dx, x.dtype, "rmsnorm_backward", "dx");
  cpu::check_host_dtype(dw, x.dtype, "rmsnorm_backward", "dw");
  cpu::check_host_dtype(dy, x.dtype, "rmsnorm_backward", "dy");
  check_shape(dx, x.shape, "rmsnorm_backward: dx");
  check_shape(dy, x.shape, "rmsnorm_backward: dy");
  check_shape(dw, w.shape, "rmsnorm_backward: dw");
  const int64_t rows = x.flatten_2d().dim(0), channels = x.dim(-1);
  cpu::dispatch_float(x.dtype, "rmsnorm_backward", [&](auto tag) {
    using T = decltype(tag);
    T* dxp = dx.ptr<T>();
    T* dwp = dw.ptr<T>();
    const T* dyp = dy.ptr<T>();
    const T* xp = x.ptr<T>();
    const T* wp = w.ptr<T>();
    const T* sp = rstd.ptr<T>();
    cpu::parallel_chunks(rows, kRowChunk, [&](int64_t begin, int64_t end) {
      rmsnorm_backward_dx_rows(dxp + begin * channels, dyp + begin * channels, xp + begin * channels, wp,
                               sp + begin, end - begin, channels);
    });
    // Column chunks of 32 elements (whole cache lines for f32 and f64).
    cpu::parallel_chunks(channels, 32, [&](int64_t c0, int64_t c1) {
      rmsnorm_backward_dw_columns(dwp, dyp, xp, sp, rows, channels, c0, c1);
    });
  });
}

}  // namespace lumina
