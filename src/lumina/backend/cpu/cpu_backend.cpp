#include "lumina/backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <fmt/format.h>
#include <omp.h>
#include <strings.h>

#include <mutex>

#include "lumina/core/log.h"

namespace lumina {

namespace {

void log_blas_kernels() { log_debug("OpenBLAS kernels: {}", openblas_get_corename()); }

}  // namespace

// OpenBLAS picks its kernels from the CPU model; a CPU it does not know (0.3.21
// and AMD Zen 5, say) falls back to AVX2 or older kernels that run GEMMs at
// half the speed the AVX-512 ones reach.
bool openblas_skips_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  const bool cpu_has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const char* core = openblas_get_corename();
  const bool blas_uses_avx512 = core && (strcasecmp(core, "SkylakeX") == 0 || strcasecmp(core, "Cooperlake") == 0 ||
                                         strcasecmp(core, "SapphireRapids") == 0);
  return cpu_has_avx512 && !blas_uses_avx512;
#else
  return false;
#endif
}

std::string CpuBackend::name() const {
  return fmt::format("cpu (OpenBLAS {}, {} threads)", openblas_get_corename(), omp_get_max_threads());
}

Buffer CpuBackend::allocate(size_t bytes) { return Buffer::host(bytes); }

namespace cpu {

void check_host(const Tensor& t, const char* op, const char* name) {
  LUMINA_CHECK(t.device == Device::cpu, "{}: {} is a {} tensor; the CPU backend needs host tensors (copy it first)",
               op, name, device_name(t.device));
  LUMINA_CHECK(t.data != nullptr || t.numel() == 0, "{}: {} has no data (null tensor of shape {})", op, name,
               t.shape.str());
}

void check_host_dtype(const Tensor& t, DType want, const char* op, const char* name) {
  check_host(t, op, name);
  LUMINA_CHECK(t.dtype == want, "{}: {} has dtype {}, expected {}", op, name, dtype_name(t.dtype), dtype_name(want));
}

}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend() {
  static std::once_flag logged;
  std::call_once(logged, log_blas_kernels);
  return std::make_unique<CpuBackend>();
}

}  // namespace lumina
