// Fused q/k/v split + RoPE, forward and backward, against the CPU backend:
// tables in x's dtype and in f32, positions t and explicit positions, head dim
// 16 (packed path) and 12 (one pair per thread), GQA 4:2.
// Bounds per x's dtype (cuda_parity.h); the value heads are copied exactly.
#include "cuda_parity.h"

namespace lumina::test {
namespace {

using CudaRopeQkv = CudaParity;

TEST_F(CudaRopeQkv, ForwardAndBackwardMatchCpu) {
  uint64_t seed = 70;
  const int64_t batch = 2, seq = 5, q_heads = 4, kv_heads = 2, table_rows = 16;
  const std::vector<int32_t> chosen = {0, 3, 4, 9, 15, 1, 2, 5, 6, 7};
  for (const int64_t head_dim : {16, 12})
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (DType table_dt : {dt, DType::f32})
        for (bool explicit_positions : {false, true}) {
          SCOPED_TRACE(testing::Message() << dtype_name(dt) << " table " << dtype_name(table_dt) << " D " << head_dim
                                          << " positions " << explicit_positions);
          const Shape stacked{batch, seq, q_heads + 2 * kv_heads, head_dim};
          const Shape qs{batch, seq, q_heads, head_dim}, ks{batch, seq, kv_heads, head_dim};
          const Shape table_shape{table_rows, head_dim / 2};
          std::vector<float> cos, sin;
          rope_tables(table_rows, head_dim / 2, table_dt == DType::f32 ? DType::f32 : dt, cos, sin);
          Tensor cos_dev = device(cos, table_dt, table_shape), sin_dev = device(sin, table_dt, table_shape);
          std::vector<int32_t> where = chosen;
          Tensor where_dev = explicit_positions ? device_i32(where, Shape{batch * seq}) : Tensor();
          Tensor where_host = explicit_positions ? host_i32(where, Shape{batch * seq}) : Tensor();

          std::vector<float> qkv = random_values(stacked.numel(), seed++, dt);
          std::vector<float> q(static_cast<size_t>(qs.numel())), k(static_cast<size_t>(ks.numel())), v(k.size());
          cpu->rope_qkv_forward(host(q, qs), host(k, ks), host(v, ks), host(qkv, stacked), host(cos, table_shape),
                                host(sin, table_shape), where_host);
          Tensor q_dev = poisoned(dt, qs), k_dev = poisoned(dt, ks), v_dev = poisoned(dt, ks);
          gpu->rope_qkv_forward(q_dev, k_dev, v_dev, device(qkv, dt, stacked), cos_dev, sin_dev, where_dev);
          EXPECT_LE(relative_error(read(q_dev), q), tolerance(dt));
          EXPECT_LE(relative_error(read(k_dev), k), tolerance(dt));
          EXPECT_EQ(read(v_dev), v);

          std::vector<float> dq = random_values(qs.numel(), seed++, dt), dk = random_values(ks.numel(), seed++, dt);
          std::vector<float> dv = random_values(ks.numel(), seed++, dt), dqkv(static_cast<size_t>(stacked.numel()));
          cpu->rope_qkv_backward(host(dqkv, stacked), host(dq, qs), host(dk, ks), host(dv, ks), host(cos, table_shape),
                                 host(sin, table_shape), where_host);
          Tensor dqkv_dev = poisoned(dt, stacked);
          gpu->rope_qkv_backward(dqkv_dev, device(dq, dt, qs), device(dk, dt, ks), device(dv, dt, ks), cos_dev,
                                 sin_dev, where_dev);
          EXPECT_LE(relative_error(read(dqkv_dev), dqkv), tolerance(dt));
        }
}

TEST_F(CudaRopeQkv, PositionOutsideTheTableIsReported) {
  std::vector<float> cos, sin;
  rope_tables(4, 4, DType::f32, cos, sin);
  const Shape qs{1, 2, 1, 8};
  Tensor q = poisoned(DType::f32, qs), k = poisoned(DType::f32, qs), v = poisoned(DType::f32, qs);
  Tensor qkv = device(random_values(48, 3, DType::f32), DType::f32, Shape{1, 2, 3, 8});
  gpu->rope_qkv_forward(q, k, v, qkv, device(cos, DType::f32, Shape{4, 4}), device(sin, DType::f32, Shape{4, 4}),
                        device_i32({1, 4}, Shape{2}));
  EXPECT_THROW(gpu->synchronize(), Error);
}

}  // namespace
}  // namespace lumina::test
