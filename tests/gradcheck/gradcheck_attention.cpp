// attention: out = softmax(q k^T / sqrt(D)) v (causal, GQA); dq, dk, dv overwritten.
// Shapes cover GQA 4:2 and Hq == Hkv, sequence lengths that are not multiples
// of the kernel's blocks (64 queries, 256 keys) and longer than one key block.
#include <gtest/gtest.h>

#include <limits>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

struct AttentionCase {
  int64_t batch, seq, q_heads, kv_heads, head_dim;
};

void check_attention(const AttentionCase& c) {
  SCOPED_TRACE(fmt::format("B {} T {} Hq {} Hkv {} D {}", c.batch, c.seq, c.q_heads, c.kv_heads, c.head_dim));
  auto backend = make_cpu_backend();
  const Shape q_shape{c.batch, c.seq, c.q_heads, c.head_dim}, kv_shape{c.batch, c.seq, c.kv_heads, c.head_dim};
  HostTensor q = random_normal(DType::f64, q_shape, 1);
  HostTensor k = random_normal(DType::f64, kv_shape, 2);
  HostTensor v = random_normal(DType::f64, kv_shape, 3);
  HostTensor r = random_normal(DType::f64, q_shape, 4);
  HostTensor out(DType::f64, q_shape), lse(DType::f64, Shape{c.batch, c.q_heads, c.seq});
  auto forward = [&] { backend->attention_forward(out, lse, q, k, v); };
  forward();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HostTensor dq = filled(DType::f64, q_shape, nan), dk = filled(DType::f64, kv_shape, nan);
  HostTensor dv = filled(DType::f64, kv_shape, nan);
  backend->attention_backward(dq, dk, dv, r, q, k, v, out, lse);
  const GradcheckOptions o;
  for (auto [x, dx, name] : {std::tuple{&q, &dq, "dq"}, {&k, &dk, "dk"}, {&v, &dv, "dv"}}) {
    const GradcheckReport rep = check_gradient(*x, *dx, forward, {{out, r}}, o);
    EXPECT_TRUE(rep.passed(o)) << name << ": " << rep.str();
  }
}

TEST(Gradcheck, AttentionGqaShort) { check_attention({2, 5, 4, 2, 8}); }
TEST(Gradcheck, AttentionGqaSeveralQueryBlocks) { check_attention({1, 70, 4, 2, 8}); }
TEST(Gradcheck, AttentionMhaSeveralKeyBlocks) { check_attention({1, 300, 2, 2, 4}); }

}  // namespace
}  // namespace lumina::test
