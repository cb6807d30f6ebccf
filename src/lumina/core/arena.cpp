#include "lumina/core/arena.h"

#include <algorithm>

namespace lumina {

namespace {
constexpr size_t kAlignBytes = 256;  // keeps every tensor aligned for vector loads and GEMM libraries
}

Tensor Arena::alloc(DType t, Shape s) {
  const size_t bytes = static_cast<size_t>(s.numel()) * dtype_size_bytes(t);
  const size_t offset = (used_ + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
  if (!measuring_) {
    LUMINA_CHECK(offset + bytes <= buffer_.bytes(),
                 "arena out of memory: {} {} needs {} bytes at offset {}, capacity {} (the activation plan is wrong)",
                 dtype_name(t), s.str(), bytes, offset, buffer_.bytes());
  }
  used_ = offset + bytes;
  peak_ = std::max(peak_, used_);
  void* p = measuring_ ? nullptr : static_cast<char*>(buffer_.data()) + offset;
  return Tensor(p, t, device_, s);
}

}  // namespace lumina
