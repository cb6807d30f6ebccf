// gemm (cuBLASLt) against the CPU backend: every transpose combination in f32,
// bf16 and f16 (c in the inputs' dtype), aligned and odd shapes, beta 0 (c
// poisoned, so it must not be read) and beta != 0; the weight-gradient form
// (bf16/f16 a and b, f32 c, beta = 1, 3-D a); bitwise repeatability.
// Bounds (cuda_parity.h): f32 1e-5 (no TF32), bf16 1e-2, f16 2e-3; f32 c from
// bf16/f16 inputs 1e-4 (same products, tensor-core f32 accumulation order).
#include <array>
#include <limits>

#include "cuda_parity.h"

namespace lumina::test {
namespace {

constexpr double kTolHalfInF32Out = 1e-4;

struct GemmShape {
  int64_t m, n, k;
};

class CudaGemm : public CudaParity {
 protected:
  // Runs c = alpha op(a) op(b) + beta c on both backends and returns the relative error.
  double run(DType ab, DType c_dtype, GemmShape s, bool trans_a, bool trans_b, double alpha, double beta,
             uint64_t seed) {
    std::vector<float> a = random_values(s.m * s.k, seed, ab);
    std::vector<float> b = random_values(s.k * s.n, seed + 1, ab);
    std::vector<float> c = random_values(s.m * s.n, seed + 2, c_dtype);
    const Shape a_shape = trans_a ? Shape{s.k, s.m} : Shape{s.m, s.k};
    const Shape b_shape = trans_b ? Shape{s.n, s.k} : Shape{s.k, s.n};
    const Shape c_shape{s.m, s.n};
    Tensor c_dev = beta == 0.0 ? poisoned(c_dtype, c_shape) : device(c, c_dtype, c_shape);
    gpu->gemm(c_dev, device(a, ab, a_shape), trans_a, device(b, ab, b_shape), trans_b, alpha, beta);
    cpu->gemm(host(c, c_shape), host(a, a_shape), trans_a, host(b, b_shape), trans_b, alpha, beta);
    return relative_error(read(c_dev), c);
  }
};

TEST_F(CudaGemm, MatchesCpuForEveryTransposeAndDtype) {
  const std::array<GemmShape, 2> shapes{GemmShape{64, 96, 128}, GemmShape{37, 53, 61}};
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const GemmShape& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (double beta : {0.0, 0.5}) {
            SCOPED_TRACE(testing::Message() << dtype_name(dt) << " m" << s.m << " n" << s.n << " k" << s.k << " ta"
                                            << ta << " tb" << tb << " beta" << beta);
            EXPECT_LE(run(dt, dt, s, ta, tb, 0.75, beta, seed += 3), tolerance(dt));
          }
}

TEST_F(CudaGemm, HalfInputsAccumulateIntoF32) {
  uint64_t seed = 500;
  for (DType dt : {DType::bf16, DType::f16})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " ta" << ta << " tb" << tb);
        EXPECT_LE(run(dt, DType::f32, GemmShape{48, 40, 72}, ta, tb, 1.0, 1.0, seed += 3), kTolHalfInF32Out);
        EXPECT_LE(run(dt, DType::f32, GemmShape{33, 17, 29}, ta, tb, 1.0, 0.0, seed += 3), kTolHalfInF32Out);
        EXPECT_LE(run(dt, DType::f32, GemmShape{128, 256, 1024}, ta, tb, 1.0, 1.0, seed += 3), kTolHalfInF32Out);
      }
}

// dW (out, in) += dY^T @ X with dY (B, T, out), X (B, T, in) in bf16 and dW f32:
// leading dims are flattened, and two calls accumulate (micro-batches).
TEST_F(CudaGemm, WeightGradientFormAccumulates) {
  const int64_t batch = 2, seq = 24, out = 48, in = 40;
  for (DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<float> dy = random_values(batch * seq * out, 7, dt), x = random_values(batch * seq * in, 8, dt);
    std::vector<float> dw = random_values(out * in, 9, DType::f32);
    Tensor dw_dev = device(dw, DType::f32, Shape{out, in});
    Tensor dy_dev = device(dy, dt, Shape{batch, seq, out}), x_dev = device(x, dt, Shape{batch, seq, in});
    for (int step = 0; step < 2; ++step) {
      gpu->gemm(dw_dev, dy_dev, true, x_dev, false, 1.0, 1.0);
      cpu->gemm(host(dw, Shape{out, in}), host(dy, Shape{batch * seq, out}), true, host(x, Shape{batch * seq, in}),
                false, 1.0, 1.0);
    }
    EXPECT_LE(relative_error(read(dw_dev), dw), kTolHalfInF32Out);
  }
}

TEST_F(CudaGemm, RepeatsBitwise) {
  for (DType dt : {DType::f32, DType::bf16}) {
    std::vector<float> a = random_values(96 * 256, 11, dt), b = random_values(256 * 80, 12, dt);
    Tensor a_dev = device(a, dt, Shape{96, 256}), b_dev = device(b, dt, Shape{256, 80});
    Tensor c1 = poisoned(dt, Shape{96, 80}), c2 = poisoned(dt, Shape{96, 80});
    gpu->gemm(c1, a_dev, false, b_dev, false);
    gpu->gemm(c2, a_dev, false, b_dev, false);
    EXPECT_EQ(read_bytes(c1), read_bytes(c2)) << dtype_name(dt);
  }
}

// gemm_add (d = a b^T + c, the residual form) against the CPU, into a separate d and in place
// (c = d); the separate d sits at an 8-byte offset, so C and D differ in alignment.
TEST_F(CudaGemm, AddMatchesCpuSeparateAndInPlace) {
  const int64_t m = 300, n = 96, k = 128;
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<float> a = random_values(m * k, 21, dt), b = random_values(n * k, 22, dt);
    std::vector<float> c = random_values(m * n, 23, dt), d(static_cast<size_t>(m * n));
    cpu->gemm_add(host(d, Shape{m, n}), host(a, Shape{m, k}), false, host(b, Shape{n, k}), true, host(c, Shape{m, n}));
    const Tensor a_dev = device(a, dt, Shape{m, k}), b_dev = device(b, dt, Shape{n, k});
    const Tensor c_dev = device(c, dt, Shape{m, n});
    const int64_t shift = 8 / static_cast<int64_t>(dtype_size_bytes(dt));
    const Tensor d_dev = poisoned(dt, Shape{m * n + shift}).slice(shift, shift + m * n).view(Shape{m, n});
    gpu->gemm_add(d_dev, a_dev, false, b_dev, true, c_dev);
    EXPECT_LE(relative_error(read(d_dev), d), tolerance(dt));
    gpu->gemm_add(c_dev, a_dev, false, b_dev, true, c_dev);  // in place
    EXPECT_LE(relative_error(read(c_dev), d), tolerance(dt));
  }
}

TEST_F(CudaGemm, RejectsMismatchedShapesAndDtypes) {
  std::vector<float> v(12, 1.0f);
  Tensor a = device(v, DType::f32, Shape{3, 4}), b = device(v, DType::f32, Shape{3, 4});
  Tensor c = poisoned(DType::f32, Shape{3, 3});
  EXPECT_THROW(gpu->gemm(c, a, false, b, false), Error);  // inner dims 4 vs 3
  Tensor b16 = device(v, DType::bf16, Shape{4, 3});
  EXPECT_THROW(gpu->gemm(c, a, false, b16, false), Error);  // f32 a with bf16 b
  Tensor c16 = poisoned(DType::bf16, Shape{3, 3});
  EXPECT_THROW(gpu->gemm(c16, a, false, device(v, DType::f32, Shape{4, 3}), false), Error);  // bf16 c, f32 inputs
}

}  // namespace
}  // namespace lumina::test
