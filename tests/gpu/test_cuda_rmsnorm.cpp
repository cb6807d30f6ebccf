// RMSNorm forward (y, rstd) and backward (dx accumulates, dw f32 accumulates)
// against the CPU backend: rows of 1, 2, 3 and 8 packs per lane (the warp-per-row
// kernels, bf16/f16 C = 192, 512, 768, 2048; several rows per warp), unpacked
// rows, more rows than the backward's 1024 dw partials take (4 per warp, 8 warps
// per block), 3-D x, and rows wide enough for the block-per-row
// kernels and more than 48 KiB of shared memory.
// Bounds: y and dx per their dtype (cuda_parity.h); rstd and dw (f32 math on
// the same rounded inputs) 1e-5. dw is bitwise repeatable.
#include "cuda_parity.h"

namespace lumina::test {
namespace {

struct NormShape {
  Shape x;
  int64_t rows, channels;
};

using CudaRmsnorm = CudaParity;

TEST_F(CudaRmsnorm, ForwardAndBackwardMatchCpu) {
  const NormShape shapes[] = {{Shape{67, 192}, 67, 192}, {Shape{5, 100}, 5, 100}, {Shape{300, 13}, 300, 13},
                              {Shape{2, 33, 64}, 66, 64},     {Shape{9000, 768}, 9000, 768},
                              {Shape{37, 512}, 37, 512},      {Shape{21, 2048}, 21, 2048},
                              {Shape{9000, 2048}, 9000, 2048},  {Shape{40000, 64}, 40000, 64},
                              {Shape{4, 16384}, 4, 16384}};  // dw partial row > 48 KiB of shared memory
  const double eps = 1e-5;
  uint64_t seed = 10;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const NormShape& s : shapes) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " x" << s.x.str());
      const int64_t n = s.rows, c = s.channels;
      std::vector<float> x = random_values(n * c, seed++, dt, 2.0);
      std::vector<float> w = random_values(c, seed++, DType::f32, 0.1);
      for (float& v : w) v = round_to(dt, 1.0f + v);
      std::vector<float> y_ref(static_cast<size_t>(n * c)), rstd_ref(static_cast<size_t>(n));
      cpu->rmsnorm_forward(host(y_ref, s.x), host(rstd_ref, Shape{n}), host(x, s.x), host(w, Shape{c}), eps);

      Tensor x_dev = device(x, dt, s.x), w_dev = device(w, dt, Shape{c});
      Tensor y = poisoned(dt, s.x), rstd = poisoned(DType::f32, Shape{n});
      gpu->rmsnorm_forward(y, rstd, x_dev, w_dev, eps);
      EXPECT_LE(relative_error(read(y), y_ref), tolerance(dt));
      EXPECT_LE(relative_error(read(rstd), rstd_ref), kTolF32);

      std::vector<float> dy = random_values(n * c, seed++, dt);
      std::vector<float> dx = random_values(n * c, seed++, dt);  // dx accumulates: start non-zero
      std::vector<float> dw = random_values(c, seed++, DType::f32);
      Tensor dx_dev = device(dx, dt, s.x), dw_dev = device(dw, DType::f32, Shape{c});
      gpu->rmsnorm_backward(dx_dev, dw_dev, device(dy, dt, s.x), x_dev, w_dev, device(rstd_ref, DType::f32, Shape{n}));
      cpu->rmsnorm_backward(host(dx, s.x), host(dw, Shape{c}), host(dy, s.x), host(x, s.x), host(w, Shape{c}),
                            host(rstd_ref, Shape{n}));
      EXPECT_LE(relative_error(read(dx_dev), dx), tolerance(dt));
      EXPECT_LE(relative_error(read(dw_dev), dw), kTolF32);
    }
}

TEST_F(CudaRmsnorm, WeightGradientIsBitwiseDeterministic) {
  const int64_t n = 1000, c = 256;
  Tensor x = device(random_values(n * c, 1, DType::bf16), DType::bf16, Shape{n, c});
  Tensor dy = device(random_values(n * c, 2, DType::bf16), DType::bf16, Shape{n, c});
  std::vector<float> ones(static_cast<size_t>(c), 1.0f), zeros(static_cast<size_t>(c), 0.0f);
  Tensor w = device(ones, DType::bf16, Shape{c});
  Tensor y = poisoned(DType::bf16, Shape{n, c}), rstd = poisoned(DType::f32, Shape{n});
  gpu->rmsnorm_forward(y, rstd, x, w, 1e-6);
  std::vector<std::vector<uint8_t>> runs;
  for (int run = 0; run < 2; ++run) {
    Tensor dx = device(std::vector<float>(static_cast<size_t>(n * c), 0.0f), DType::bf16, Shape{n, c});
    Tensor dw = device(zeros, DType::f32, Shape{c});
    gpu->rmsnorm_backward(dx, dw, dy, x, w, rstd);
    runs.push_back(read_bytes(dw));
  }
  EXPECT_EQ(runs[0], runs[1]);
}

}  // namespace
}  // namespace lumina::test
