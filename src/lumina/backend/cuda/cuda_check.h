#pragma once
// Host-side helpers shared by every file of the CUDA backend (host compiler and
// nvcc alike): error checks that throw lumina::Error, NVTX ranges, and the
// bits kernels raise in CudaBackend::device_errors().
#include <cuda_runtime_api.h>

#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define LUMINA_HAVE_NVTX 1
#endif

namespace lumina::cuda {

// Throws lumina::Error "CUDA error <name> (<text>) in <expr> at <file>:<line>".
[[noreturn]] void fail_cuda(cudaError_t status, const char* expr, const char* file, int line);

// Bad input found on the device (kernels cannot throw); OR-ed into the error word.
enum DeviceError : unsigned {
  kTokenOutOfRange = 1u << 0,   // embedding: token id < 0 or >= vocab rows
  kTargetOutOfRange = 1u << 1,  // cross_entropy: target >= vocab
  kPositionOutOfRange = 1u << 2,  // rope_positions_*: position < 0 or >= table rows
};

// Names the op in Nsight timelines for as long as it lives (no-op without NVTX).
class NvtxRange {
 public:
  explicit NvtxRange(const char* name) {
#ifdef LUMINA_HAVE_NVTX
    nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
  ~NvtxRange() {
#ifdef LUMINA_HAVE_NVTX
    nvtxRangePop();
#endif
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace lumina::cuda

#define LUMINA_CUDA_CHECK(expr)                                                         \
  do {                                                                                  \
    const cudaError_t lumina_status_ = (expr);                                          \
    if (lumina_status_ != cudaSuccess)                                                  \
      ::lumina::cuda::fail_cuda(lumina_status_, #expr, __FILE__, __LINE__);             \
  } while (0)

// After a kernel launch: reports a bad launch configuration at once.
#define LUMINA_CUDA_CHECK_LAUNCH() LUMINA_CUDA_CHECK(cudaGetLastError())
