#pragma once
// Arena: a bump allocator over one Buffer. Sized at start-up from a plan (a
// first pass with a measuring arena), then tensors are carved out without any
// allocation in the step loop. reset() frees everything at once; mark()/
// rewind() free everything allocated after a mark (scratch space).
#include <cstddef>

#include "lumina/core/buffer.h"

namespace lumina {

class Arena {
 public:
  Arena() = default;
  // A measuring arena: hands out null tensors and only counts bytes.
  static Arena measuring(Device device) { Arena a; a.device_ = device; return a; }
  explicit Arena(Buffer buffer) : buffer_(std::move(buffer)), device_(buffer_.device()), measuring_(false) {}

  Tensor alloc(DType t, Shape s);
  size_t mark() const { return used_; }
  void rewind(size_t mark) { used_ = mark; }
  void reset() { used_ = 0; }

  size_t used_bytes() const { return used_; }
  size_t peak_bytes() const { return peak_; }
  size_t capacity_bytes() const { return buffer_.bytes(); }
  bool is_measuring() const { return measuring_; }
  Device device() const { return device_; }

 private:
  Buffer buffer_;
  Device device_ = Device::cpu;
  bool measuring_ = true;
  size_t used_ = 0;
  size_t peak_ = 0;
};

}  // namespace lumina
