// RoPE forward and backward (in place) against the CPU backend, with cos/sin
// tables in x's dtype and in f32, and a position offset (KV-cache decoding).
// Bounds per x's dtype (cuda_parity.h). Backward after forward restores x.
#include "cuda_parity.h"

namespace lumina::test {
namespace {

using CudaRope = CudaParity;

TEST_F(CudaRope, ForwardAndBackwardMatchCpu) {
  uint64_t seed = 20;
  // head_dim 16: the packed path for every dtype; 12: half_dim 6, the one-pair-per-thread path.
  for (const int64_t head_dim : {16, 12})
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (DType table_dt : {dt, DType::f32}) {
      const int64_t batch = 2, seq = 5, heads = 3, positions = 12, offset = 4;
      const Shape shape{batch, seq, heads, head_dim};
      SCOPED_TRACE(testing::Message() << "x " << dtype_name(dt) << " table " << dtype_name(table_dt) << " D "
                                      << head_dim);
      std::vector<float> cos, sin;
      rope_tables(positions, head_dim / 2, table_dt == DType::f32 ? DType::f32 : dt, cos, sin);
      const Shape table_shape{positions, head_dim / 2};
      Tensor cos_dev = device(cos, table_dt, table_shape), sin_dev = device(sin, table_dt, table_shape);

      std::vector<float> x = random_values(shape.numel(), seed++, dt);
      Tensor x_dev = device(x, dt, shape);
      gpu->rope_forward(x_dev, cos_dev, sin_dev, offset);
      cpu->rope_forward(host(x, shape), host(cos, table_shape), host(sin, table_shape), offset);
      EXPECT_LE(relative_error(read(x_dev), x), tolerance(dt));

      std::vector<float> dx = random_values(shape.numel(), seed++, dt);
      Tensor dx_dev = device(dx, dt, shape);
      gpu->rope_backward(dx_dev, cos_dev, sin_dev, offset);
      cpu->rope_backward(host(dx, shape), host(cos, table_shape), host(sin, table_shape), offset);
      EXPECT_LE(relative_error(read(dx_dev), dx), tolerance(dt));
    }
}

TEST_F(CudaRope, BackwardInvertsForward) {
  const Shape shape{1, 7, 2, 8};
  std::vector<float> cos, sin;
  rope_tables(7, 4, DType::f32, cos, sin);
  std::vector<float> x = random_values(shape.numel(), 30, DType::f32);
  Tensor x_dev = device(x, DType::f32, shape);
  Tensor cos_dev = device(cos, DType::f32, Shape{7, 4}), sin_dev = device(sin, DType::f32, Shape{7, 4});
  gpu->rope_forward(x_dev, cos_dev, sin_dev, 0);
  gpu->rope_backward(x_dev, cos_dev, sin_dev, 0);
  EXPECT_LE(relative_error(read(x_dev), x), kTolF32);
}

TEST_F(CudaRope, RejectsShortTable) {
  std::vector<float> cos, sin;
  rope_tables(4, 4, DType::f32, cos, sin);
  Tensor x = poisoned(DType::f32, Shape{1, 3, 1, 8});
  Tensor c = device(cos, DType::f32, Shape{4, 4}), s = device(sin, DType::f32, Shape{4, 4});
  EXPECT_THROW(gpu->rope_forward(x, c, s, 2), Error);  // positions 2..4 need 5 rows
}

}  // namespace
}  // namespace lumina::test
