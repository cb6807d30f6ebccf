// rope_qkv: the stacked q/k/v split with RoPE on the query and key heads;
// rope_qkv_backward is its transpose. Checked with positions t and with an
// explicit, non-contiguous position per token (Mixture-of-Depths' routed tokens).
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

void check_rope_qkv(bool explicit_positions) {
  auto backend = make_cpu_backend();
  const int64_t batch = 2, seq = 3, q_heads = 4, kv_heads = 2, head_dim = 8;
  auto [cos, sin] = rope_tables(DType::f64, 9, head_dim);
  HostTensor positions(DType::i32, Shape{batch * seq});
  const int32_t chosen[] = {0, 4, 8, 1, 2, 7};  // increasing within each sequence, gaps between
  for (int64_t i = 0; i < batch * seq; ++i) positions.t().ptr<int32_t>()[i] = chosen[i];
  const Tensor where = explicit_positions ? positions.t() : Tensor();

  HostTensor qkv = random_normal(DType::f64, Shape{batch, seq, q_heads + 2 * kv_heads, head_dim}, 1);
  HostTensor q(DType::f64, Shape{batch, seq, q_heads, head_dim});
  HostTensor k(DType::f64, Shape{batch, seq, kv_heads, head_dim}), v(DType::f64, k.t().shape);
  HostTensor rq = random_normal(DType::f64, q.t().shape, 2);
  HostTensor rk = random_normal(DType::f64, k.t().shape, 3), rv = random_normal(DType::f64, v.t().shape, 4);
  auto forward = [&] { backend->rope_qkv_forward(q, k, v, qkv, cos, sin, where); };
  HostTensor dqkv(DType::f64, qkv.t().shape);
  backend->rope_qkv_backward(dqkv, rq, rk, rv, cos, sin, where);
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(qkv, dqkv, forward, {{q, rq}, {k, rk}, {v, rv}}, o);
  EXPECT_TRUE(rep.passed(o)) << rep.str();

  // The value part is copied unrotated; the query part equals plain RoPE of its heads.
  forward();
  const int64_t heads = q_heads + 2 * kv_heads;
  for (int64_t n = 0; n < batch * seq; ++n)
    for (int64_t i = 0; i < head_dim; ++i)
      EXPECT_EQ(v.t().ptr<double>()[n * kv_heads * head_dim + i],
                qkv.t().ptr<double>()[(n * heads + q_heads + kv_heads) * head_dim + i]);
}

TEST(Gradcheck, RopeQkvWithPositionsT) { check_rope_qkv(false); }
TEST(Gradcheck, RopeQkvWithExplicitPositions) { check_rope_qkv(true); }

TEST(Gradcheck, RopeQkvQueryPartEqualsRope) {
  auto backend = make_cpu_backend();
  const int64_t batch = 1, seq = 4, q_heads = 2, kv_heads = 1, head_dim = 6;
  auto [cos, sin] = rope_tables(DType::f64, seq, head_dim);
  HostTensor qkv = random_normal(DType::f64, Shape{batch, seq, q_heads + 2 * kv_heads, head_dim}, 5);
  HostTensor q(DType::f64, Shape{batch, seq, q_heads, head_dim});
  HostTensor k(DType::f64, Shape{batch, seq, kv_heads, head_dim}), v(DType::f64, k.t().shape);
  backend->rope_qkv_forward(q, k, v, qkv, cos, sin, Tensor());
  HostTensor expect(DType::f64, q.t().shape);
  const int64_t heads = q_heads + 2 * kv_heads;
  for (int64_t n = 0; n < seq; ++n)
    for (int64_t i = 0; i < q_heads * head_dim; ++i)
      expect.t().ptr<double>()[n * q_heads * head_dim + i] = qkv.t().ptr<double>()[n * heads * head_dim + i];
  backend->rope_forward(expect, cos, sin, 0);
  for (int64_t i = 0; i < q.numel(); ++i) EXPECT_DOUBLE_EQ(q.t().ptr<double>()[i], expect.t().ptr<double>()[i]);
}

}  // namespace
}  // namespace lumina::test
