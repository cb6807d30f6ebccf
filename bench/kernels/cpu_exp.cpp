// exp for the f32 kernels: the polynomial exp_approx (backend/cpu/simd.h)
// against std::exp in the same multiversioned loop (GCC does not vectorise
// std::exp without -ffast-math, so it runs one libm call per element).
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "lumina/backend/cpu/simd.h"

namespace lumina {
namespace {

constexpr int64_t kElems = 1 << 16;  // one softmax block's worth, L2-resident

LUMINA_CPU_CLONES void exp_approx_loop(float* out, const float* in, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = cpu::exp_approx(in[i]);
}

LUMINA_CPU_CLONES void exp_std_loop(float* out, const float* in, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i]);
}

template <void (*Loop)(float*, const float*, int64_t)>
void BM_CpuExp(benchmark::State& state) {
  std::vector<float> in(kElems), out(kElems);
  for (int64_t i = 0; i < kElems; ++i) in[static_cast<size_t>(i)] = -20.0f + 40.0f * static_cast<float>(i) / kElems;
  for (auto _ : state) {
    Loop(out.data(), in.data(), kElems);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kElems);
}
BENCHMARK(BM_CpuExp<exp_approx_loop>)->Name("BM_CpuExpApprox");
BENCHMARK(BM_CpuExp<exp_std_loop>)->Name("BM_CpuExpStd");

}  // namespace
}  // namespace lumina
