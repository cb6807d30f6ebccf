#pragma once
// Shared by the CPU-vs-CUDA parity tests of tests/gpu/test_cuda_*.cpp.
//
// Method: inputs are drawn once on the host and rounded to the GPU dtype; the
// CPU backend (the oracle, f32) runs on the rounded values, the CUDA backend on
// the same values stored in the GPU dtype. GPU outputs start as NaN ("poisoned")
// so an element a kernel never writes fails the comparison. Errors are
// ||out - ref|| / ||ref|| over the whole tensor (NaN fails every bound).
//
// Tolerances (relative, as above), by the dtype the GPU stores the output in:
//   f32 output from f32 math on identical inputs:   kTolF32  = 1e-5
//   bf16 output (8-bit mantissa: rounding 2^-9):     kTolBf16 = 1e-2
//   f16 output (11-bit mantissa: rounding 2^-12):    kTolF16  = 2e-3
// Tests that need another bound state it next to the assertion.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "lumina/backend/backend.h"
#include "lumina/backend/cuda/cuda_backend.h"
#include "lumina/core/buffer.h"

namespace lumina::test {

constexpr double kTolF32 = 1e-5;
constexpr double kTolBf16 = 1e-2;
constexpr double kTolF16 = 2e-3;

// The bound for an output stored in dtype t.
double tolerance(DType t);

// x rounded to dtype t and back to f32 (identity for f32).
float round_to(DType t, float x);
std::vector<float> rounded(std::vector<float> v, DType t);

// n values ~ N(0, std^2) from the project RNG (seeded), rounded to dtype t.
std::vector<float> random_values(int64_t n, uint64_t seed, DType t, double std = 1.0);

// RoPE tables cos/sin (positions, half_dim): angle p * 10000^(-i/half_dim), rounded to t.
void rope_tables(int64_t positions, int64_t half_dim, DType t, std::vector<float>& cos, std::vector<float>& sin);

// ||out - ref|| / ||ref||; NaN when out holds a NaN.
double relative_error(const std::vector<float>& out, const std::vector<float>& ref);

// Fixture: a CPU and a CUDA backend; skips (the only allowed skip) without a GPU.
class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override;

  // Host f32 tensor viewing `values` (the caller keeps the vector alive).
  static Tensor host(std::vector<float>& values, Shape s);
  static Tensor host_i32(std::vector<int32_t>& values, Shape s);
  // Device tensor of dtype t holding `values` rounded to t.
  Tensor device(const std::vector<float>& values, DType t, Shape s);
  Tensor device_i32(const std::vector<int32_t>& values, Shape s);
  // Device tensor of dtype t filled with NaN (or -7 for i32).
  Tensor poisoned(DType t, Shape s);
  // A device tensor's values, converted to f32.
  std::vector<float> read(const Tensor& t);
  std::vector<int32_t> read_i32(const Tensor& t);
  // The raw bytes of a device tensor (bitwise comparisons).
  std::vector<uint8_t> read_bytes(const Tensor& t);

  std::unique_ptr<Backend> cpu;
  std::unique_ptr<Backend> gpu;

 private:
  Tensor empty(DType t, Shape s);
  std::vector<Buffer> buffers_;
};

}  // namespace lumina::test
