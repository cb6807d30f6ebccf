// CudaBackend basics: zero-filled allocation and its byte count, copies in
// every direction, fill, cast between f32/bf16/f16 (bitwise equal to the host
// conversions), axpy and scale against the CPU backend, sum_squares (f64,
// deterministic), and the factory's errors. Bounds: exact where stated, else
// per dtype (cuda_parity.h).
#include <cmath>
#include <cstring>

#include "cuda_parity.h"
#include "lumina/backend/cuda/cuda_backend_impl.h"

namespace lumina::test {
namespace {

using CudaMemory = CudaParity;

TEST(CudaFactory, AvailabilityAndBadDeviceIndex) {
  if (!cuda_available()) {
    EXPECT_THROW(make_cuda_backend(0), Error);
    return;
  }
  EXPECT_THROW(make_cuda_backend(1000), Error);
  EXPECT_NE(make_cuda_backend(0)->name().find("cuda"), std::string::npos);
}

TEST_F(CudaMemory, AllocateIsZeroFilledAndCopiesRoundTrip) {
  const Shape shape{1000};
  Buffer buffer = gpu->allocate(1000 * sizeof(float));
  EXPECT_EQ(buffer.device(), Device::cuda);
  EXPECT_EQ(read(buffer.as_tensor(DType::f32, shape)), std::vector<float>(1000, 0.0f));

  std::vector<float> values = random_values(1000, 1, DType::f32), back(1000, -1.0f);
  Tensor a = buffer.as_tensor(DType::f32, shape);
  gpu->copy(a, host(values, shape));                 // host -> device
  Tensor b = poisoned(DType::f32, shape);
  gpu->copy(b, a);                                   // device -> device
  gpu->copy(host(back, shape), b);                   // device -> host
  EXPECT_EQ(back, values);
  EXPECT_THROW(gpu->copy(b, poisoned(DType::bf16, shape)), Error);  // dtypes differ
}

TEST_F(CudaMemory, CountsLiveBytes) {
  const size_t before = CudaBackend::allocated_bytes();
  {
    Buffer buffer = gpu->allocate(size_t{3} << 20);
    EXPECT_EQ(CudaBackend::allocated_bytes(), before + (size_t{3} << 20));
  }
  EXPECT_EQ(CudaBackend::allocated_bytes(), before);
}

TEST_F(CudaMemory, FillEveryDtype) {
  for (int64_t n : {1024, 1001}) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      Tensor t = poisoned(dt, Shape{n});
      gpu->fill(t, 1.5);
      EXPECT_EQ(read(t), std::vector<float>(static_cast<size_t>(n), 1.5f)) << dtype_name(dt);
    }
    Tensor ids = poisoned(DType::i32, Shape{n});
    gpu->fill(ids, 42.0);
    EXPECT_EQ(read_i32(ids), std::vector<int32_t>(static_cast<size_t>(n), 42));
  }
}

TEST_F(CudaMemory, CastMatchesHostConversionBitwise) {
  const DType dtypes[] = {DType::f32, DType::bf16, DType::f16};
  for (int64_t n : {1024, 1003})
    for (DType from : dtypes)
      for (DType to : dtypes) {
        SCOPED_TRACE(testing::Message() << dtype_name(from) << " -> " << dtype_name(to) << " n " << n);
        const std::vector<float> values = random_values(n, 2, from, 4.0);
        Tensor dst = poisoned(to, Shape{n});
        gpu->cast(dst, device(values, from, Shape{n}));
        EXPECT_EQ(read(dst), rounded(values, to));
      }
}

TEST_F(CudaMemory, AxpyAndScaleMatchCpu) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (int64_t n : {4096, 1001}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " n " << n);
      std::vector<float> y = random_values(n, 3, dt), x = random_values(n, 4, dt);
      Tensor y_dev = device(y, dt, Shape{n});
      gpu->axpy(y_dev, device(x, dt, Shape{n}), -0.25);
      gpu->scale(y_dev, 3.0);
      cpu->axpy(host(y, Shape{n}), host(x, Shape{n}), -0.25);
      cpu->scale(host(y, Shape{n}), 3.0);
      EXPECT_LE(relative_error(read(y_dev), y), tolerance(dt));
    }
}

// sum_squares against a host f64 sum: bound 1e-12 (f64 accumulation of exact squares).
TEST_F(CudaMemory, SumSquaresIsF64AndDeterministic) {
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t n : {1000003, 4096, 1}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " n " << n);
      const std::vector<float> values = random_values(n, 5, dt);
      double ref = 0.0;
      for (float v : values) ref += static_cast<double>(v) * v;
      Tensor t = device(values, dt, Shape{n});
      const double first = gpu->sum_squares(t);
      EXPECT_NEAR(first, ref, 1e-12 * ref);
      EXPECT_EQ(gpu->sum_squares(t), first);
    }
  EXPECT_EQ(gpu->sum_squares(poisoned(DType::f32, Shape{0})), 0.0);
}

}  // namespace
}  // namespace lumina::test
