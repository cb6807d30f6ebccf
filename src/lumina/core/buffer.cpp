#include "lumina/core/buffer.h"

#include <cstdlib>
#include <cstring>

namespace lumina {

namespace {
void host_free(void* p) { std::free(p); }
constexpr size_t kAlignBytes = 256;  // matches Arena, so arena tensors are 256-byte aligned on the host too
}  // namespace

Buffer::Buffer(void* data, size_t bytes, Device device, Deleter deleter)
    : data_(data, deleter), bytes_(bytes), device_(device) {}

Buffer Buffer::host(size_t bytes) {
  const size_t rounded = (bytes + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
  void* p = rounded ? std::aligned_alloc(kAlignBytes, rounded) : nullptr;
  LUMINA_CHECK(p || !rounded, "out of host memory allocating {} bytes", bytes);
  if (p) std::memset(p, 0, rounded);
  return Buffer(p, bytes, Device::cpu, host_free);
}

Tensor Buffer::as_tensor(DType t, Shape s) const {
  LUMINA_CHECK(static_cast<size_t>(s.numel()) * dtype_size_bytes(t) <= bytes_,
               "buffer of {} bytes is too small for {} {}", bytes_, dtype_name(t), s.str());
  return Tensor(data(), t, device_, s);
}

}  // namespace lumina
