#pragma once
// Buffer: one owned allocation on a device. CPU buffers are 256-byte aligned
// host memory; device buffers come from a backend, which supplies the deleter
// (so core never includes a device runtime header).
#include <cstddef>
#include <memory>

#include "lumina/core/tensor.h"

namespace lumina {

class Buffer {
 public:
  using Deleter = void (*)(void*);

  Buffer() = default;
  Buffer(void* data, size_t bytes, Device device, Deleter deleter);
  static Buffer host(size_t bytes);  // zero-initialised host memory

  void* data() const { return data_.get(); }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  // View of the whole buffer (or its first shape.numel() elements) as a tensor.
  Tensor as_tensor(DType t, Shape s) const;

 private:
  std::unique_ptr<void, Deleter> data_{nullptr, nullptr};
  size_t bytes_ = 0;
  Device device_ = Device::cpu;
};

}  // namespace lumina
