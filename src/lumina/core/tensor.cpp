#include "lumina/core/tensor.h"

#include <fmt/format.h>

namespace lumina {

std::string_view device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

Shape::Shape(std::initializer_list<int64_t> d) {
  LUMINA_CHECK(d.size() <= kMaxRank, "shape rank {} exceeds the maximum {}", d.size(), kMaxRank);
  for (int64_t v : d) dims[static_cast<size_t>(rank++)] = v;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[static_cast<size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (dims[static_cast<size_t>(i)] != o.dims[static_cast<size_t>(i)]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank; ++i) s += fmt::format("{}{}", i ? ", " : "", dims[static_cast<size_t>(i)]);
  return s + ")";
}

Tensor Tensor::view(Shape s) const {
  LUMINA_CHECK(s.numel() == numel(), "cannot view {} as {}", shape.str(), s.str());
  return Tensor(data, dtype, device, s);
}

Tensor Tensor::prefix(Shape s) const {
  LUMINA_CHECK(s.numel() <= numel(), "cannot view the first {} elements of {}", s.numel(), shape.str());
  return Tensor(data, dtype, device, s);
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  LUMINA_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= dim(0), "slice [{}, {}) out of range for {}",
               begin, end, shape.str());
  Shape s = shape;
  s.dims[0] = end - begin;
  const int64_t row = numel() / (dim(0) ? dim(0) : 1);
  return Tensor(static_cast<char*>(data) + static_cast<size_t>(begin * row) * dtype_size_bytes(dtype), dtype, device, s);
}

Tensor Tensor::flatten_2d() const {
  LUMINA_CHECK(rank() >= 1, "cannot flatten a scalar");
  int64_t rows = 1;
  for (int i = 0; i + 1 < rank(); ++i) rows *= dim(i);
  return view(Shape{rows, dim(-1)});
}

void check_shape(const Tensor& t, const Shape& s, const char* name) {
  LUMINA_CHECK(t.shape == s, "{}: expected shape {}, got {}", name, s.str(), t.shape.str());
}

}  // namespace lumina
