#pragma once
// Tensor: a non-owning, contiguous, row-major view (pointer, dtype, device,
// shape). Owners are Buffer, Arena and ParamStore. Views never outlive them.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "lumina/core/dtype.h"
#include "lumina/core/error.h"

namespace lumina {

enum class Device : uint8_t { cpu, cuda };
std::string_view device_name(Device d);

constexpr int kMaxRank = 5;

struct Shape {
  std::array<int64_t, kMaxRank> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d);
  int64_t operator[](int i) const { return dims[static_cast<size_t>(i)]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  std::string str() const;  // "(2, 3, 4)"
};

class Tensor {
 public:
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device = Device::cpu;
  Shape shape;

  Tensor() = default;
  Tensor(void* d, DType t, Device dev, Shape s) : data(d), dtype(t), device(dev), shape(s) {}

  bool empty() const { return data == nullptr; }
  int rank() const { return shape.rank; }
  int64_t dim(int i) const { return shape[i < 0 ? shape.rank + i : i]; }
  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size_bytes(dtype); }

  // Typed pointer; throws if T does not match dtype.
  template <class T>
  T* ptr() const {
    LUMINA_CHECK(dtype == dtype_of<T>(), "tensor dtype is {}, accessed as {}", dtype_name(dtype),
                 dtype_name(dtype_of<T>()));
    return static_cast<T*>(data);
  }
  // Same memory, another shape with the same number of elements.
  Tensor view(Shape s) const;
  // The first s.numel() elements viewed as s (scratch sized for a maximum, used for less).
  Tensor prefix(Shape s) const;
  // Rows [begin, end) along dim 0.
  Tensor slice(int64_t begin, int64_t end) const;
  // Merge all leading dims: (a, b, ..., n) -> (a*b*..., n).
  Tensor flatten_2d() const;
};

// Throws a clear error when `t` does not have shape `s` (names the tensor).
void check_shape(const Tensor& t, const Shape& s, const char* name);

}  // namespace lumina
