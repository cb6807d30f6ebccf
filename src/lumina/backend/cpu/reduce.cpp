// Element-wise and reduction ops: copy, fill, cast, axpy, scale, sum_squares.
// All run over fixed-size chunks (parallel when there is more than one), so
// results never depend on the thread count.
#include <cstring>
#include <type_traits>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

constexpr int64_t kChunkElems = 16384;

// ---- copy ------------------------------------------------------------------------

void copy_bytes(char* dst, const char* src, size_t bytes) {
  constexpr int64_t kChunkBytes = 1 << 20;
  cpu::parallel_chunks(static_cast<int64_t>(bytes), kChunkBytes, [&](int64_t begin, int64_t end) {
    std::memcpy(dst + begin, src + begin, static_cast<size_t>(end - begin));
  });
}

// ---- cast: every float dtype to every float dtype ----------------------------------

double to_double(float x) { return x; }
double to_double(double x) { return x; }
double to_double(bf16 x) { return to_float(x); }
double to_double(f16 x) { return to_float(x); }
double to_double(fp8_e4m3 x) { return to_float(x); }
double to_double(fp8_e5m2 x) { return to_float(x); }

// Narrow formats round from f32 (core/dtype.h), so f64 -> bf16/f16/fp8 rounds twice.
template <class D>
D from_double(double x) {
  if constexpr (std::is_same_v<D, double>) return x;
  else if constexpr (std::is_same_v<D, float>) return static_cast<float>(x);
  else if constexpr (std::is_same_v<D, bf16>) return to_bf16(static_cast<float>(x));
  else if constexpr (std::is_same_v<D, f16>) return to_f16(static_cast<float>(x));
  else if constexpr (std::is_same_v<D, fp8_e4m3>) return to_e4m3(static_cast<float>(x));
  else return to_e5m2(static_cast<float>(x));
}

// Calls f(T{}) for the element type of a float dtype.
template <class F>
void dispatch_any_float(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16{}); return;
    case DType::f16: f(f16{}); return;
    case DType::e4m3: f(fp8_e4m3{}); return;
    case DType::e5m2: f(fp8_e5m2{}); return;
    default: fail("cast: {} is not a float dtype (cast converts between f32, f64, bf16, f16, e4m3, e5m2)",
                  dtype_name(t));
  }
}

// ---- fill ---------------------------------------------------------------------------

// The bytes of `value` stored as one element of dtype t.
template <class T>
void store_bits(void* out, T x) { std::memcpy(out, &x, sizeof(T)); }

void encode_element(DType t, double value, void* out) {
  switch (t) {
    case DType::i32: store_bits(out, static_cast<int32_t>(value)); return;
    case DType::i64: store_bits(out, static_cast<int64_t>(value)); return;
    case DType::u16: store_bits(out, static_cast<uint16_t>(value)); return;
    case DType::u32: store_bits(out, static_cast<uint32_t>(value)); return;
    case DType::u8: store_bits(out, static_cast<uint8_t>(value)); return;
    default: dispatch_any_float(t, [&](auto tag) { store_bits(out, from_double<decltype(tag)>(value)); });
  }
}

// dst[0, n) = the element whose bytes are `pattern` (E: an unsigned type of the element's size).
template <class E>
void fill_with_pattern(void* dst, int64_t n, const char* pattern) {
  E e;
  std::memcpy(&e, pattern, sizeof(E));
  E* d = static_cast<E*>(dst);
  cpu::parallel_chunks(n, kChunkElems, [&](int64_t begin, int64_t end) { std::fill(d + begin, d + end, e); });
}

// ---- axpy, scale, sum_squares -------------------------------------------------------------

template <class T>
LUMINA_CPU_CLONES void axpy_range(T* y, const T* x, T alpha, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
LUMINA_CPU_CLONES void scale_range(T* x, T alpha, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <class T>
LUMINA_CPU_CLONES double sum_squares_range(const T* x, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

}  // namespace

void CpuBackend::copy(Tensor dst, const Tensor& src) {
  cpu::check_host(dst, "copy", "dst");
  cpu::check_host(src, "copy", "src");
  LUMINA_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(),
               "copy: dst is {} {} but src is {} {} (copy needs the same dtype and numel; use cast to convert)",
               dtype_name(dst.dtype), dst.shape.str(), dtype_name(src.dtype), src.shape.str());
  if (dst.data == src.data || dst.bytes() == 0) return;
  copy_bytes(static_cast<char*>(dst.data), static_cast<const char*>(src.data), dst.bytes());
}

void CpuBackend::fill(Tensor dst, double value) {
  cpu::check_host(dst, "fill", "dst");
  char pattern[8];
  encode_element(dst.dtype, value, pattern);
  const int64_t n = dst.numel();
  switch (dtype_size_bytes(dst.dtype)) {
    case 1: return fill_with_pattern<uint8_t>(dst.data, n, pattern);
    case 2: return fill_with_pattern<uint16_t>(dst.data, n, pattern);
    case 4: return fill_with_pattern<uint32_t>(dst.data, n, pattern);
    default: return fill_with_pattern<uint64_t>(dst.data, n, pattern);
  }
}

void CpuBackend::cast(Tensor dst, const Tensor& src) {
  cpu::check_host(dst, "cast", "dst");
  cpu::check_host(src, "cast", "src");
  LUMINA_CHECK(dst.numel() == src.numel(), "cast: dst {} and src {} differ in numel", dst.shape.str(),
               src.shape.str());
  if (dst.dtype == src.dtype) return copy(dst, src);
  dispatch_any_float(src.dtype, [&](auto src_tag) {
    dispatch_any_float(dst.dtype, [&](auto dst_tag) {
      using S = decltype(src_tag);
      using D = decltype(dst_tag);
      const S* s = static_cast<const S*>(src.data);
      D* d = static_cast<D*>(dst.data);
      cpu::parallel_chunks(src.numel(), kChunkElems, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) d[i] = from_double<D>(to_double(s[i]));
      });
    });
  });
}

void CpuBackend::axpy(Tensor y, const Tensor& x, double alpha) {
  cpu::check_host(y, "axpy", "y");
  cpu::check_host_dtype(x, y.dtype, "axpy", "x");
  check_shape(x, y.shape, "axpy: x");
  cpu::dispatch_float(y.dtype, "axpy", [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.ptr<T>();
    const T* xp = x.ptr<T>();
    cpu::parallel_chunks(y.numel(), kChunkElems, [&](int64_t begin, int64_t end) {
      axpy_range(yp + begin, xp + begin, static_cast<T>(alpha), end - begin);
    });
  });
}

void CpuBackend::scale(Tensor x, double alpha) {
  cpu::check_host(x, "scale", "x");
  cpu::dispatch_float(x.dtype, "scale", [&](auto tag) {
    using T = decltype(tag);
    T* xp = x.ptr<T>();
    cpu::parallel_chunks(x.numel(), kChunkElems, [&](int64_t begin, int64_t end) {
      scale_range(xp + begin, static_cast<T>(alpha), end - begin);
    });
  });
}

// Fixed chunks, each summed in f64, then the chunk sums added in order.
double CpuBackend::sum_squares(const Tensor& x) {
  cpu::check_host(x, "sum_squares", "x");
  constexpr int64_t kSumChunkElems = 1 << 16;
  const int64_t n = x.numel();
  double total = 0.0;
  cpu::dispatch_float(x.dtype, "sum_squares", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.ptr<T>();
    const int64_t chunks = (n + kSumChunkElems - 1) / kSumChunkElems;
    // Partial sums of up to kMaxPartials chunks at a time, then added in chunk order.
    constexpr int64_t kMaxPartials = 256;
    double partial[kMaxPartials];
    for (int64_t first = 0; first < chunks; first += kMaxPartials) {
      const int64_t count = std::min(kMaxPartials, chunks - first);
#pragma omp parallel for schedule(static) if (count > 1)
      for (int64_t c = 0; c < count; ++c) {
        const int64_t begin = (first + c) * kSumChunkElems;
        partial[c] = sum_squares_range(xp + begin, std::min(n, begin + kSumChunkElems) - begin);
      }
      for (int64_t c = 0; c < count; ++c) total += partial[c];
    }
  });
  return total;
}

}  // namespace lumina
