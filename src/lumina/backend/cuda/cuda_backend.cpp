// CudaBackend construction, device memory, copies and device-side error reports.
#include "lumina/backend/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

#include "lumina/backend/cuda/attention.h"
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_check.h"
#include "lumina/backend/cuda/gemm_runner.h"

namespace lumina {

namespace cuda {

void fail_cuda(cudaError_t status, const char* expr, const char* file, int line) {
  std::string hint;
  if (status == cudaErrorNoKernelImageForDevice)
    hint = ": this lumina has no kernels for this GPU; rebuild with its compute capability in CMAKE_CUDA_ARCHITECTURES";
  fail("CUDA error {} ({}) in {} at {}:{}{}", cudaGetErrorName(status), cudaGetErrorString(status), expr, file, line,
       hint);
}

}  // namespace cuda

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Sizes of live device buffers: the Buffer deleter is a plain function, so the
// bytes it frees are looked up here. Never destroyed: buffers may outlive main().
struct AllocationRegistry {
  std::mutex mutex;
  std::unordered_map<void*, size_t> bytes_by_pointer;
  size_t live_bytes = 0;
};
AllocationRegistry& registry() {
  static auto* r = new AllocationRegistry;
  return *r;
}

void free_device(void* p) {
  AllocationRegistry& r = registry();
  {
    std::lock_guard lock(r.mutex);
    auto it = r.bytes_by_pointer.find(p);
    if (it != r.bytes_by_pointer.end()) {
      r.live_bytes -= it->second;
      r.bytes_by_pointer.erase(it);
    }
  }
  cudaFree(p);  // no throw from a deleter; fails only once the runtime has shut down
}

}  // namespace

bool cuda_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" / "no device" status
    return false;
  }
  return count > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  LUMINA_CHECK(cuda_available(),
               "no CUDA GPU is available (no NVIDIA driver or no device): run on a GPU machine or use the cpu backend");
  return std::make_unique<CudaBackend>(device_index);
}

CudaBackend::CudaBackend(int device_index) : device_index_(device_index) {
  int count = 0;
  LUMINA_CUDA_CHECK(cudaGetDeviceCount(&count));
  LUMINA_CHECK(device_index >= 0 && device_index < count, "CUDA device {} does not exist: this machine has {} GPU(s)",
               device_index, count);
  LUMINA_CUDA_CHECK(cudaSetDevice(device_index));
  cudaDeviceProp props{};
  LUMINA_CUDA_CHECK(cudaGetDeviceProperties(&props, device_index));
  device_name_ = props.name;
  compute_capability_ = 10 * props.major + props.minor;
  multiprocessor_count_ = props.multiProcessorCount;
  shared_memory_ = {static_cast<int64_t>(props.sharedMemPerBlockOptin),
                    static_cast<int64_t>(props.sharedMemPerMultiprocessor),
                    static_cast<int64_t>(props.reservedSharedMemPerBlock)};
  LUMINA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  gemm_ = std::make_unique<GemmRunner>();
  LUMINA_CUDA_CHECK(cudaMalloc(&scratch_, kScratchBytes));
  LUMINA_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&device_errors_), sizeof(unsigned)));
  LUMINA_CUDA_CHECK(cudaMemsetAsync(device_errors_, 0, sizeof(unsigned), stream_));
  LUMINA_CUDA_CHECK(cudaMallocHost(&host_words_, 16));
  std::memset(host_words_, 0, 16);
  LUMINA_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

CudaBackend::~CudaBackend() {
  // Destructors must not throw: errors here are ignored.
  cudaStreamSynchronize(stream_);
  gemm_.reset();
  cudaFreeHost(host_words_);
  cudaFree(device_errors_);
  cudaFree(scratch_);
  cudaStreamDestroy(stream_);
}

std::string CudaBackend::name() const {
  return fmt::format("cuda ({}, sm_{}, {} SMs)", device_name_, compute_capability_, multiprocessor_count_);
}

// Buffers from allocate() plus the fixed op scratch, the cuBLASLt workspace and
// cuDNN's attention workspace (shared by the backends on this GPU; it grows
// with the largest shape seen).
int64_t CudaBackend::device_memory_bytes() const {
  return static_cast<int64_t>(allocated_bytes() + kScratchBytes + GemmRunner::kWorkspaceBytes +
                              cuda_attention_workspace_bytes(device_index_));
}

// What cudaMemGetInfo reports free on the GPU (what other processes hold is not free).
int64_t CudaBackend::device_free_bytes() const {
  size_t free_bytes = 0, total_bytes = 0;
  LUMINA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(free_bytes);
}

size_t CudaBackend::allocated_bytes() {
  AllocationRegistry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.live_bytes;
}

Buffer CudaBackend::allocate(size_t bytes) {
  if (bytes == 0) return Buffer(nullptr, 0, Device::cuda, free_device);
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail("out of GPU memory: allocating {:.2f} GiB on {} with {:.2f} GiB of {:.2f} GiB free; lower the batch size or "
         "sequence length, or enable gradient checkpointing",
         static_cast<double>(bytes) / kGiB, device_name_, static_cast<double>(free_bytes) / kGiB,
         static_cast<double>(total_bytes) / kGiB);
  }
  LUMINA_CUDA_CHECK(status);
  LUMINA_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  {
    AllocationRegistry& r = registry();
    std::lock_guard lock(r.mutex);
    r.bytes_by_pointer[p] = bytes;
    r.live_bytes += bytes;
  }
  return Buffer(p, bytes, Device::cuda, free_device);
}

// A host source may be reused as soon as copy() returns (pageable memory is
// staged before the call returns); a host destination is complete on return.
void CudaBackend::copy(Tensor dst, const Tensor& src) {
  LUMINA_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(),
               "copy: dst is {} {} but src is {} {}; they must match (use cast to change dtype)", dtype_name(dst.dtype),
               dst.shape.str(), dtype_name(src.dtype), src.shape.str());
  const size_t bytes = dst.bytes();
  if (bytes == 0) return;
  if (dst.device == Device::cpu && src.device == Device::cpu) {
    std::memmove(dst.data, src.data, bytes);
    return;
  }
  cuda::NvtxRange range("copy");
  LUMINA_CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, bytes, cudaMemcpyDefault, stream_));
  if (dst.device == Device::cpu) synchronize();
}

void CudaBackend::synchronize() {
  queue_error_read();
  LUMINA_CUDA_CHECK(cudaStreamSynchronize(stream_));
  throw_device_errors();
}

void* CudaBackend::scratch(size_t bytes, const char* op) const {
  LUMINA_CHECK(bytes <= kScratchBytes,
               "{}: needs {:.1f} MiB of scratch but the CUDA backend reserves {} MiB; pass fewer rows per call", op,
               static_cast<double>(bytes) / (1 << 20), kScratchBytes >> 20);
  return scratch_;
}

void CudaBackend::queue_error_read() {
  LUMINA_CUDA_CHECK(cudaMemcpyAsync(host_words_, device_errors_, sizeof(unsigned), cudaMemcpyDeviceToHost, stream_));
}

void CudaBackend::throw_device_errors() {
  unsigned& word = *static_cast<unsigned*>(host_words_);
  const unsigned errors = word;
  if (errors == 0) return;
  word = 0;
  LUMINA_CUDA_CHECK(cudaMemsetAsync(device_errors_, 0, sizeof(unsigned), stream_));
  std::string what;
  if (errors & cuda::kTokenOutOfRange)
    what += "embedding: a token id is outside [0, vocab_size) (check the tokenizer's vocabulary against "
            "model.vocab_size); ";
  if (errors & cuda::kTargetOutOfRange)
    what += "cross_entropy: a target id is >= vocab_size (check the data against model.vocab_size); ";
  if (errors & cuda::kPositionOutOfRange)
    what += "rope_positions: a token position is outside the RoPE tables (raise model.max_position_embeddings); ";
  if (what.empty()) what = fmt::format("unknown device error bits {:#x}; ", errors);
  what.resize(what.size() - 2);
  fail("{} (found on the GPU; results of the ops since the last synchronisation are invalid)", what);
}

}  // namespace lumina
