// cross_entropy: losses = lse - logit[target] (masked targets: 0); with
// dlosses, logits are overwritten by dlogits = dlosses (softmax - onehot).
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, CrossEntropyMaskedAndWeighted) {
  auto backend = make_cpu_backend();
  const int64_t rows = 6, vocab = 9;
  HostTensor logits = random_normal(DType::f64, Shape{rows, vocab}, 1, 2.0);
  HostTensor targets(DType::i32, Shape{rows});
  const int32_t ids[rows] = {3, -1, 0, 8, -1, 3};
  for (int64_t i = 0; i < rows; ++i) targets.set(i, ids[i]);
  HostTensor dlosses = random_normal(DType::f64, Shape{rows}, 2);
  HostTensor losses(DType::f64, Shape{rows}), argmax(DType::i32, Shape{rows});
  auto forward = [&] { backend->cross_entropy(logits, losses, argmax, targets, Tensor{}); };

  HostTensor dlogits = logits;  // overwritten in place by the fused backward
  HostTensor fused_losses(DType::f64, Shape{rows});
  backend->cross_entropy(dlogits, fused_losses, argmax, targets, dlosses);
  forward();
  for (int64_t n = 0; n < rows; ++n) {
    EXPECT_DOUBLE_EQ(fused_losses.get(n), losses.get(n)) << "row " << n;
    if (ids[n] < 0) {
      EXPECT_EQ(losses.get(n), 0.0) << "masked row " << n;
      for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(dlogits.get(n * vocab + j), 0.0) << "masked row " << n;
    }
  }
  const GradcheckOptions o;
  const GradcheckReport rep = check_gradient(logits, dlogits, forward, {{losses, dlosses}}, o);
  EXPECT_TRUE(rep.passed(o)) << rep.str();
}

}  // namespace
}  // namespace lumina::test
