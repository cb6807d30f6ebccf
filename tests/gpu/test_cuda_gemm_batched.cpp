// gemm_batched (strided-batch cuBLASLt) against the CPU backend's gemm_batched:
// every transpose combination in f32, bf16 and f16 (c in the inputs' dtype),
// beta 0 (c poisoned, so it must not be read) and beta != 0, odd sizes whose
// batch strides are only 2-byte aligned in bf16; the weight-gradient form
// (bf16/f16 a and b, f32 c, beta = 1); an MoE-sized problem (G 8, M 1024,
// N 2048, K 768); G = 1 is bitwise the plain gemm; K = 0; bitwise repeatability.
// Bounds (cuda_parity.h): f32 1e-5 (no TF32), bf16 1e-2, f16 2e-3; f32 c from
// bf16/f16 inputs 1e-4 (same products, tensor-core f32 accumulation order).
#include <array>

#include "cuda_parity.h"

namespace lumina::test {
namespace {

constexpr double kTolHalfInF32Out = 1e-4;

struct BatchedShape {
  int64_t groups, m, n, k;
};

Shape a_shape(BatchedShape s, bool trans_a) { return trans_a ? Shape{s.groups, s.k, s.m} : Shape{s.groups, s.m, s.k}; }
Shape b_shape(BatchedShape s, bool trans_b) { return trans_b ? Shape{s.groups, s.n, s.k} : Shape{s.groups, s.k, s.n}; }

class CudaGemmBatched : public CudaParity {
 protected:
  // Runs c = alpha op(a) op(b) + beta c per batch entry on both backends; returns the relative error.
  double run(DType ab, DType c_dtype, BatchedShape s, bool trans_a, bool trans_b, double alpha, double beta,
             uint64_t seed) {
    std::vector<float> a = random_values(s.groups * s.m * s.k, seed, ab);
    std::vector<float> b = random_values(s.groups * s.k * s.n, seed + 1, ab);
    std::vector<float> c = random_values(s.groups * s.m * s.n, seed + 2, c_dtype);
    const Shape c_shape{s.groups, s.m, s.n};
    Tensor c_dev = beta == 0.0 ? poisoned(c_dtype, c_shape) : device(c, c_dtype, c_shape);
    gpu->gemm_batched(c_dev, device(a, ab, a_shape(s, trans_a)), trans_a, device(b, ab, b_shape(s, trans_b)), trans_b,
                      alpha, beta);
    cpu->gemm_batched(host(c, c_shape), host(a, a_shape(s, trans_a)), trans_a, host(b, b_shape(s, trans_b)), trans_b,
                      alpha, beta);
    return relative_error(read(c_dev), c);
  }
};

TEST_F(CudaGemmBatched, MatchesCpuForEveryTransposeAndDtype) {
  const std::array<BatchedShape, 2> shapes{BatchedShape{4, 64, 96, 128}, BatchedShape{3, 37, 19, 41}};
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const BatchedShape& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (double beta : {0.0, 0.5}) {
            SCOPED_TRACE(testing::Message() << dtype_name(dt) << " G" << s.groups << " m" << s.m << " n" << s.n
                                            << " k" << s.k << " ta" << ta << " tb" << tb << " beta" << beta);
            EXPECT_LE(run(dt, dt, s, ta, tb, 0.75, beta, seed += 3), tolerance(dt));
          }
}

// dW[g] (N_out, N_in) += dY[g]^T X[g]: bf16/f16 inputs into an f32 c with beta = 1, twice (micro-batches add up).
TEST_F(CudaGemmBatched, HalfInputsAccumulateIntoF32) {
  uint64_t seed = 500;
  for (DType dt : {DType::bf16, DType::f16})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " ta" << ta << " tb" << tb);
        EXPECT_LE(run(dt, DType::f32, BatchedShape{3, 37, 19, 41}, ta, tb, 1.0, 1.0, seed += 3), kTolHalfInF32Out);
        EXPECT_LE(run(dt, DType::f32, BatchedShape{5, 48, 40, 72}, ta, tb, 1.0, 0.0, seed += 3), kTolHalfInF32Out);
      }
  const BatchedShape s{3, 40, 24, 56};
  std::vector<float> dy = random_values(s.groups * s.k * s.m, 7, DType::bf16);
  std::vector<float> x = random_values(s.groups * s.k * s.n, 8, DType::bf16);
  std::vector<float> dw = random_values(s.groups * s.m * s.n, 9, DType::f32);
  const Shape dy_shape = a_shape(s, true), x_shape = b_shape(s, false), dw_shape{s.groups, s.m, s.n};
  Tensor dw_dev = device(dw, DType::f32, dw_shape);
  Tensor dy_dev = device(dy, DType::bf16, dy_shape), x_dev = device(x, DType::bf16, x_shape);
  for (int step = 0; step < 2; ++step) {
    gpu->gemm_batched(dw_dev, dy_dev, true, x_dev, false, 1.0, 1.0);
    cpu->gemm_batched(host(dw, dw_shape), host(dy, dy_shape), true, host(x, x_shape), false, 1.0, 1.0);
  }
  EXPECT_LE(relative_error(read(dw_dev), dw), kTolHalfInF32Out);
}

// MoE expert sizes: forward (x @ W^T) in f32 and bf16, the weight gradient (dY^T X, f32 c, beta = 1) in bf16.
TEST_F(CudaGemmBatched, MatchesCpuAtMoeSize) {
  const BatchedShape s{8, 1024, 2048, 768};
  EXPECT_LE(run(DType::f32, DType::f32, s, false, true, 1.0, 0.0, 900), kTolF32);
  EXPECT_LE(run(DType::bf16, DType::bf16, s, false, true, 1.0, 0.0, 910), kTolBf16);
  EXPECT_LE(run(DType::bf16, DType::f32, s, true, false, 1.0, 1.0, 920), kTolHalfInF32Out);
}

TEST_F(CudaGemmBatched, SingleEntryIsBitwiseTheGemm) {
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<float> a = random_values(96 * 256, 11, dt), b = random_values(80 * 256, 12, dt);
    Tensor a_dev = device(a, dt, Shape{1, 96, 256}), b_dev = device(b, dt, Shape{1, 80, 256});
    Tensor batched = poisoned(dt, Shape{1, 96, 80}), plain = poisoned(dt, Shape{96, 80});
    gpu->gemm_batched(batched, a_dev, false, b_dev, true);
    gpu->gemm(plain, a_dev.view(Shape{96, 256}), false, b_dev.view(Shape{80, 256}), true);
    EXPECT_EQ(read_bytes(batched), read_bytes(plain));
    std::vector<float> want(96 * 80);  // and both are right (poisoned outputs alone would also compare equal)
    cpu->gemm(host(want, Shape{96, 80}), host(a, Shape{96, 256}), false, host(b, Shape{80, 256}), true);
    EXPECT_LE(relative_error(read(batched), want), tolerance(dt));
  }
}

TEST_F(CudaGemmBatched, EmptySumScalesC) {
  std::vector<float> c = random_values(2 * 3 * 4, 21, DType::f32);
  Tensor c_dev = device(c, DType::f32, Shape{2, 3, 4});
  Tensor a = poisoned(DType::f32, Shape{2, 3, 0}), b = poisoned(DType::f32, Shape{2, 0, 4});
  gpu->gemm_batched(c_dev, a, false, b, false, 1.0, 0.5);
  for (float& v : c) v *= 0.5f;
  EXPECT_EQ(read(c_dev), c);
  gpu->gemm_batched(c_dev, a, false, b, false, 1.0, 0.0);
  EXPECT_EQ(read(c_dev), std::vector<float>(c.size(), 0.0f));
}

TEST_F(CudaGemmBatched, RepeatsBitwise) {
  for (DType dt : {DType::f32, DType::bf16}) {
    const BatchedShape s{4, 96, 80, 256};
    std::vector<float> a = random_values(s.groups * s.m * s.k, 31, dt), b = random_values(s.groups * s.k * s.n, 32, dt);
    Tensor a_dev = device(a, dt, a_shape(s, false)), b_dev = device(b, dt, b_shape(s, false));
    Tensor c1 = poisoned(dt, Shape{s.groups, s.m, s.n}), c2 = poisoned(dt, Shape{s.groups, s.m, s.n});
    gpu->gemm_batched(c1, a_dev, false, b_dev, false);
    gpu->gemm_batched(c2, a_dev, false, b_dev, false);
    EXPECT_EQ(read_bytes(c1), read_bytes(c2)) << dtype_name(dt);
  }
}

TEST_F(CudaGemmBatched, RejectsMismatchedShapesAndDtypes) {
  std::vector<float> v(24, 1.0f);
  Tensor a = device(v, DType::f32, Shape{2, 3, 4}), b = device(v, DType::f32, Shape{2, 4, 3});
  Tensor c = poisoned(DType::f32, Shape{2, 3, 3});
  EXPECT_THROW(gpu->gemm_batched(c, a, true, b, false), Error);                                  // inner dims 3 vs 4
  EXPECT_THROW(gpu->gemm_batched(c, a, false, device(v, DType::f32, Shape{3, 4, 2}), false), Error);  // G 2 vs 3
  EXPECT_THROW(gpu->gemm_batched(c, a.view(Shape{6, 4}), false, b, false), Error);               // a is 2-D
  EXPECT_THROW(gpu->gemm_batched(c, a, false, device(v, DType::bf16, Shape{2, 4, 3}), false), Error);  // f32 a, bf16 b
  Tensor c16 = poisoned(DType::bf16, Shape{2, 3, 3});
  EXPECT_THROW(gpu->gemm_batched(c16, a, false, b, false), Error);  // bf16 c, f32 inputs
}

}  // namespace
}  // namespace lumina::test
