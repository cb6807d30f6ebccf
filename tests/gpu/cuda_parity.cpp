#include "cuda_parity.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "lumina/core/rng.h"

namespace lumina::test {

double tolerance(DType t) {
  switch (t) {
    case DType::bf16: return kTolBf16;
    case DType::f16: return kTolF16;
    default: return kTolF32;
  }
}

float round_to(DType t, float x) {
  if (t == DType::bf16) return to_float(to_bf16(x));
  if (t == DType::f16) return to_float(to_f16(x));
  return x;
}

std::vector<float> rounded(std::vector<float> v, DType t) {
  for (float& x : v) x = round_to(t, x);
  return v;
}

std::vector<float> random_values(int64_t n, uint64_t seed, DType t, double std) {
  std::vector<float> v(static_cast<size_t>(n));
  Rng(seed, RngPurpose::test, 0).fill_normal(v.data(), n, 0.0, std);
  return rounded(std::move(v), t);
}

void rope_tables(int64_t positions, int64_t half_dim, DType t, std::vector<float>& cos, std::vector<float>& sin) {
  cos.resize(static_cast<size_t>(positions * half_dim));
  sin.resize(cos.size());
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half_dim; ++i) {
      const double angle = static_cast<double>(p) * std::pow(10000.0, -static_cast<double>(i) / half_dim);
      cos[static_cast<size_t>(p * half_dim + i)] = round_to(t, static_cast<float>(std::cos(angle)));
      sin[static_cast<size_t>(p * half_dim + i)] = round_to(t, static_cast<float>(std::sin(angle)));
    }
}

double relative_error(const std::vector<float>& out, const std::vector<float>& ref) {
  EXPECT_EQ(out.size(), ref.size());
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < ref.size() && i < out.size(); ++i) {
    const double d = static_cast<double>(out[i]) - ref[i];
    diff += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(diff / (norm > 0.0 ? norm : 1.0));
}

void CudaParity::SetUp() {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
  cpu = make_cpu_backend();
  gpu = make_cuda_backend();
}

Tensor CudaParity::host(std::vector<float>& values, Shape s) {
  EXPECT_EQ(static_cast<int64_t>(values.size()), s.numel());
  return Tensor(values.data(), DType::f32, Device::cpu, s);
}

Tensor CudaParity::host_i32(std::vector<int32_t>& values, Shape s) {
  EXPECT_EQ(static_cast<int64_t>(values.size()), s.numel());
  return Tensor(values.data(), DType::i32, Device::cpu, s);
}

Tensor CudaParity::empty(DType t, Shape s) {
  buffers_.push_back(gpu->allocate(static_cast<size_t>(s.numel()) * dtype_size_bytes(t)));
  return buffers_.back().as_tensor(t, s);
}

Tensor CudaParity::device(const std::vector<float>& values, DType t, Shape s) {
  EXPECT_EQ(static_cast<int64_t>(values.size()), s.numel());
  Buffer staging = Buffer::host(static_cast<size_t>(s.numel()) * dtype_size_bytes(t));
  for (int64_t i = 0; i < s.numel(); ++i) {
    const float x = values[static_cast<size_t>(i)];
    if (t == DType::f32) static_cast<float*>(staging.data())[i] = x;
    else if (t == DType::bf16) static_cast<bf16*>(staging.data())[i] = to_bf16(x);
    else if (t == DType::f16) static_cast<f16*>(staging.data())[i] = to_f16(x);
    else ADD_FAILURE() << "device(): unsupported dtype " << dtype_name(t);
  }
  Tensor dev = empty(t, s);
  gpu->copy(dev, staging.as_tensor(t, s));
  return dev;
}

Tensor CudaParity::device_i32(const std::vector<int32_t>& values, Shape s) {
  std::vector<int32_t> copy = values;
  Tensor dev = empty(DType::i32, s);
  gpu->copy(dev, host_i32(copy, s));
  return dev;
}

Tensor CudaParity::poisoned(DType t, Shape s) {
  Tensor dev = empty(t, s);
  gpu->fill(dev, t == DType::i32 ? -7.0 : std::numeric_limits<double>::quiet_NaN());
  return dev;
}

std::vector<uint8_t> CudaParity::read_bytes(const Tensor& t) {
  Buffer staging = Buffer::host(t.bytes());
  gpu->copy(staging.as_tensor(t.dtype, t.shape), t);
  std::vector<uint8_t> bytes(t.bytes());
  if (!bytes.empty()) std::memcpy(bytes.data(), staging.data(), bytes.size());
  return bytes;
}

std::vector<float> CudaParity::read(const Tensor& t) {
  const std::vector<uint8_t> bytes = read_bytes(t);
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t.dtype == DType::f32) {
      std::memcpy(&v[i], bytes.data() + 4 * i, 4);
    } else if (t.dtype == DType::bf16) {
      bf16 x;
      std::memcpy(&x.bits, bytes.data() + 2 * i, 2);
      v[i] = to_float(x);
    } else if (t.dtype == DType::f16) {
      f16 x;
      std::memcpy(&x.bits, bytes.data() + 2 * i, 2);
      v[i] = to_float(x);
    } else {
      ADD_FAILURE() << "read(): unsupported dtype " << dtype_name(t.dtype);
    }
  }
  return v;
}

std::vector<int32_t> CudaParity::read_i32(const Tensor& t) {
  EXPECT_EQ(t.dtype, DType::i32);
  const std::vector<uint8_t> bytes = read_bytes(t);
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

}  // namespace lumina::test
