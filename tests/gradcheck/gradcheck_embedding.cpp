// embedding: out = table[tokens]; dtable += scatter of dout (repeated tokens add up).
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, EmbeddingWithRepeatedTokens) {
  auto backend = make_cpu_backend();
  const int64_t vocab = 7, channels = 5;
  HostTensor tokens(DType::i32, Shape{12});
  const int32_t ids[12] = {3, 0, 3, 6, 1, 3, 0, 5, 5, 2, 3, 6};  // 3 four times, 4 never
  for (int i = 0; i < 12; ++i) tokens.set(i, ids[i]);
  HostTensor table = random_normal(DType::f64, Shape{vocab, channels}, 1);
  HostTensor r = random_normal(DType::f64, Shape{12, channels}, 2);
  HostTensor out(DType::f64, Shape{12, channels});
  auto forward = [&] { backend->embedding_forward(out, tokens, table); };

  // dtable starts non-zero: the backward accumulates onto it.
  const HostTensor dtable0 = random_normal(DType::f64, Shape{vocab, channels}, 3);
  HostTensor dtable = dtable0;
  backend->embedding_backward(dtable, tokens, r);
  HostTensor grad = dtable;
  backend->axpy(grad, dtable0, -1.0);
  for (int64_t c = 0; c < channels; ++c) EXPECT_EQ(grad.get(4 * channels + c), 0.0) << "unused row 4";

  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(table, grad, forward, {{out, r}}, o);
  EXPECT_TRUE(rep.passed(o)) << rep.str();

  // A second call adds the same gradient again.
  backend->embedding_backward(dtable, tokens, r);
  for (int64_t i = 0; i < dtable.numel(); ++i)
    EXPECT_NEAR(dtable.get(i), dtable0.get(i) + 2.0 * grad.get(i), 1e-12) << "element " << i;
}

}  // namespace
}  // namespace lumina::test
