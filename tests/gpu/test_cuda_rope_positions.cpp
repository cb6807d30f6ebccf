// RoPE with one position per token (rope_positions_forward/backward, the MoD
// path) against the CPU backend: gapped increasing positions as MoD routing
// produces them, with cos/sin tables in x's dtype and in f32, the packed and
// the one-pair-per-thread paths. Also: contiguous positions equal the offset
// op bitwise, and an out-of-range position is reported at the next sync.
#include "cuda_parity.h"

namespace lumina::test {
namespace {

using CudaRopePositions = CudaParity;

TEST_F(CudaRopePositions, ForwardAndBackwardMatchCpu) {
  uint64_t seed = 40;
  const int64_t batch = 2, seq = 5, heads = 3, positions = 20;
  // Two sequences of 5 routed tokens out of 20: increasing, with gaps, different per sequence.
  std::vector<int32_t> pos{0, 3, 4, 9, 17, 1, 2, 8, 15, 19};
  for (const int64_t head_dim : {16, 12})
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (DType table_dt : {dt, DType::f32}) {
        const Shape shape{batch, seq, heads, head_dim};
        SCOPED_TRACE(testing::Message() << "x " << dtype_name(dt) << " table " << dtype_name(table_dt) << " D "
                                        << head_dim);
        std::vector<float> cos, sin;
        rope_tables(positions, head_dim / 2, table_dt == DType::f32 ? DType::f32 : dt, cos, sin);
        const Shape table_shape{positions, head_dim / 2};
        Tensor cos_dev = device(cos, table_dt, table_shape), sin_dev = device(sin, table_dt, table_shape);
        Tensor pos_dev = device_i32(pos, Shape{batch * seq});

        std::vector<float> x = random_values(shape.numel(), seed++, dt);
        Tensor x_dev = device(x, dt, shape);
        gpu->rope_positions_forward(x_dev, cos_dev, sin_dev, pos_dev);
        cpu->rope_positions_forward(host(x, shape), host(cos, table_shape), host(sin, table_shape),
                                    host_i32(pos, Shape{batch * seq}));
        EXPECT_LE(relative_error(read(x_dev), x), tolerance(dt));

        std::vector<float> dx = random_values(shape.numel(), seed++, dt);
        Tensor dx_dev = device(dx, dt, shape);
        gpu->rope_positions_backward(dx_dev, cos_dev, sin_dev, pos_dev);
        cpu->rope_positions_backward(host(dx, shape), host(cos, table_shape), host(sin, table_shape),
                                     host_i32(pos, Shape{batch * seq}));
        EXPECT_LE(relative_error(read(dx_dev), dx), tolerance(dt));
      }
}

TEST_F(CudaRopePositions, ContiguousPositionsEqualOffsetBitwise) {
  const Shape shape{2, 6, 2, 8};
  const int64_t offset = 3;
  std::vector<float> cos, sin;
  rope_tables(12, 4, DType::f32, cos, sin);
  Tensor cos_dev = device(cos, DType::f32, Shape{12, 4}), sin_dev = device(sin, DType::f32, Shape{12, 4});
  std::vector<int32_t> pos;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 6; ++t) pos.push_back(static_cast<int32_t>(offset + t));
  const std::vector<float> x = random_values(shape.numel(), 50, DType::f32);
  Tensor by_offset = device(x, DType::f32, shape), by_positions = device(x, DType::f32, shape);
  gpu->rope_forward(by_offset, cos_dev, sin_dev, offset);
  gpu->rope_positions_forward(by_positions, cos_dev, sin_dev, device_i32(pos, Shape{12}));
  EXPECT_EQ(read_bytes(by_offset), read_bytes(by_positions));
}

TEST_F(CudaRopePositions, ReportsOutOfRangePosition) {
  std::vector<float> cos, sin;
  rope_tables(4, 4, DType::f32, cos, sin);
  Tensor c = device(cos, DType::f32, Shape{4, 4}), s = device(sin, DType::f32, Shape{4, 4});
  const std::vector<float> x = random_values(8, 60, DType::f32);
  Tensor x_dev = device(x, DType::f32, Shape{1, 1, 1, 8});
  gpu->rope_positions_forward(x_dev, c, s, device_i32({4}, Shape{1}));  // the table has rows 0..3
  EXPECT_THROW(gpu->synchronize(), Error);
  gpu->synchronize();  // the error word was cleared by the throw
  EXPECT_THROW(gpu->rope_positions_forward(x_dev, c, s, device_i32({0, 1}, Shape{2})), Error);  // 2 entries for 1 token
}

}  // namespace
}  // namespace lumina::test
