#pragma once
// Test helpers: host tensors that own their memory, filled with reproducible
// random values (lumina::Rng, RngPurpose::test), read and written as double
// whatever their float dtype. Shared by tests/gradcheck and tests/unit.
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "lumina/core/buffer.h"
#include "lumina/core/rng.h"
#include "lumina/core/tensor.h"

namespace lumina::test {

class HostTensor {
 public:
  HostTensor(DType dtype, Shape shape)
      : buffer_(Buffer::host(static_cast<size_t>(shape.numel()) * dtype_size_bytes(dtype))),
        tensor_(buffer_.as_tensor(dtype, shape)) {}
  HostTensor(const HostTensor& other) : HostTensor(other.tensor_.dtype, other.tensor_.shape) {
    std::memcpy(tensor_.data, other.tensor_.data, tensor_.bytes());
  }
  HostTensor(HostTensor&&) = default;
  HostTensor& operator=(const HostTensor&) = delete;
  HostTensor& operator=(HostTensor&&) = default;

  Tensor& t() { return tensor_; }
  const Tensor& t() const { return tensor_; }
  operator Tensor() const { return tensor_; }  // NOLINT: lets a HostTensor be passed where a Tensor is taken
  int64_t numel() const { return tensor_.numel(); }

  double get(int64_t i) const {
    switch (tensor_.dtype) {
      case DType::f32: return static_cast<const float*>(tensor_.data)[i];
      case DType::f64: return static_cast<const double*>(tensor_.data)[i];
      case DType::i32: return static_cast<const int32_t*>(tensor_.data)[i];
      default: fail("HostTensor::get: unsupported dtype {}", dtype_name(tensor_.dtype));
    }
  }
  void set(int64_t i, double value) {
    switch (tensor_.dtype) {
      case DType::f32: static_cast<float*>(tensor_.data)[i] = static_cast<float>(value); return;
      case DType::f64: static_cast<double*>(tensor_.data)[i] = value; return;
      case DType::i32: static_cast<int32_t*>(tensor_.data)[i] = static_cast<int32_t>(value); return;
      default: fail("HostTensor::set: unsupported dtype {}", dtype_name(tensor_.dtype));
    }
  }
  std::vector<double> values() const {
    std::vector<double> v(static_cast<size_t>(numel()));
    for (int64_t i = 0; i < numel(); ++i) v[static_cast<size_t>(i)] = get(i);
    return v;
  }
  // Same values in another float dtype.
  HostTensor as(DType dtype) const {
    HostTensor out(dtype, tensor_.shape);
    for (int64_t i = 0; i < numel(); ++i) out.set(i, get(i));
    return out;
  }
  bool bitwise_equal(const HostTensor& o) const {
    return tensor_.dtype == o.tensor_.dtype && tensor_.shape == o.tensor_.shape &&
           std::memcmp(tensor_.data, o.tensor_.data, tensor_.bytes()) == 0;
  }

 private:
  Buffer buffer_;
  Tensor tensor_;
};

// Values mean + std * N(0, 1), drawn from stream `seed`.
inline HostTensor random_normal(DType dtype, Shape shape, uint64_t seed, double std = 1.0, double mean = 0.0) {
  HostTensor out(dtype, shape);
  const Rng rng(seed, RngPurpose::test, 0);
  for (int64_t i = 0; i < out.numel(); ++i) out.set(i, mean + std * rng.normal(static_cast<uint64_t>(i)));
  return out;
}

// i32 values uniform in [low, high), drawn from stream `seed`.
inline HostTensor random_ints(Shape shape, int32_t low, int32_t high, uint64_t seed) {
  HostTensor out(DType::i32, shape);
  const Rng rng(seed, RngPurpose::test, 0);
  for (int64_t i = 0; i < out.numel(); ++i)
    out.set(i, low + static_cast<int32_t>(rng.uniform(static_cast<uint64_t>(i)) * (high - low)));
  return out;
}

inline HostTensor filled(DType dtype, Shape shape, double value) {
  HostTensor out(dtype, shape);
  for (int64_t i = 0; i < out.numel(); ++i) out.set(i, value);
  return out;
}

// RoPE tables (P, D/2): cos/sin(p * theta^(-2i/D)), computed in f64.
inline std::pair<HostTensor, HostTensor> rope_tables(DType dtype, int64_t positions, int64_t head_dim,
                                                     double theta = 10000.0) {
  const int64_t half = head_dim / 2;
  HostTensor cos(dtype, Shape{positions, half}), sin(dtype, Shape{positions, half});
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p) * std::pow(theta, -2.0 * static_cast<double>(i) / head_dim);
      cos.set(p * half + i, std::cos(angle));
      sin.set(p * half + i, std::sin(angle));
    }
  return {std::move(cos), std::move(sin)};
}

}  // namespace lumina::test
