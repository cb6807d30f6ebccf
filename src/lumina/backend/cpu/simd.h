#pragma once
// Vectorisation helpers for the CPU kernels.
//
// The build has no -march=native (binaries must run on any x86-64), so hot
// loops are compiled several times with GCC function multiversioning and the
// best version is picked at load time: x86-64-v4 (AVX-512), x86-64-v3
// (AVX2 + FMA) and the baseline. Put LUMINA_CPU_CLONES on a function whose
// body is a loop; keep OpenMP parallel regions OUTSIDE such functions (the
// outlined parallel body would not be cloned) and call the cloned function
// per row or per chunk from inside the region.
//
// exp_approx<T>: exp for the vectorised loops. f32: Cody-Waite range
// reduction x = n ln2 + r, |r| <= ln2/2, a degree-7 Taylor polynomial of
// exp(r) (truncation error < 1e-8 relative) and scaling by 2^n in two halves,
// so the result is within 2 ulp of exp(x) for x in [-87.3, 88.7] (checked in
// tests/unit/test_cpu_ops_simd.cpp); denormal results lose precision, x < -104
// gives 0, x > 88.73 gives +inf and NaN stays NaN. No branches, no calls: GCC
// vectorises loops that use it. f64 (the reference path) uses std::exp.
#include <bit>
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#define LUMINA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LUMINA_CPU_CLONES
#endif

namespace lumina::cpu {

[[gnu::always_inline]] inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;             // 355/512: n * kLn2Hi is exact for |n| < 2^15
  constexpr float kLn2Lo = -2.12194440054690583e-4f;  // ln 2 - kLn2Hi
  constexpr float kRound = 12582912.0f;              // 1.5 * 2^23: adding it rounds to an integer
  // Clamp (NaN compares false and passes through unchanged).
  x = x < -104.0f ? -104.0f : x;
  x = x > 89.0f ? 89.0f : x;
  const float t = x * kLog2e + kRound;
  const float n = t - kRound;  // round(x / ln 2)
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n = 2^(n/2) * 2^(n - n/2): each half stays a normal float for n in [-150, 129].
  const int32_t e = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
  const int32_t e_half = e >> 1;
  const float scale_a = std::bit_cast<float>((e_half + 127) << 23);
  const float scale_b = std::bit_cast<float>((e - e_half + 127) << 23);
  return p * scale_a * scale_b;
}

[[gnu::always_inline]] inline double exp_approx(double x) { return std::exp(x); }

}  // namespace lumina::cpu
