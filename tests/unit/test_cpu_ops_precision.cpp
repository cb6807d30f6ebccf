// f32 against f64: every op (forward and backward) run on the same inputs in
// both dtypes. The f32 result must match the f64 one within
//   max_i |f32_i - f64_i| <= tol * max_i |f64_i|
// with tol = 2e-6 for element-wise/row ops and 4e-6 for attention (sums over
// the sequence) — the f32 paths use the fast exp and vectorised reductions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

constexpr double kRowOpTol = 2e-6;
constexpr double kAttentionTol = 4e-6;

void expect_agree(const HostTensor& f32, const HostTensor& f64, double tol, const char* what) {
  ASSERT_EQ(f32.numel(), f64.numel()) << what;
  double max_ref = 0.0, max_diff = 0.0;
  for (int64_t i = 0; i < f64.numel(); ++i) {
    max_ref = std::max(max_ref, std::fabs(f64.get(i)));
    max_diff = std::max(max_diff, std::fabs(f32.get(i) - f64.get(i)));
  }
  ASSERT_GT(max_ref, 0.0) << what << ": the reference is all zeros";
  EXPECT_LE(max_diff, tol * max_ref) << what << ": max difference " << max_diff << ", max |f64| " << max_ref;
}

// Inputs in f64 and the same values in f32.
struct Pair {
  HostTensor f64, f32;
  explicit Pair(HostTensor x) : f64(std::move(x)), f32(f64.as(DType::f32)) {
    f64 = f32.as(DType::f64);  // both hold f32-representable values
  }
  explicit Pair(Shape s) : f64(DType::f64, s), f32(DType::f32, s) {}
  const HostTensor& in(DType t) const { return t == DType::f64 ? f64 : f32; }
  HostTensor& in(DType t) { return t == DType::f64 ? f64 : f32; }
};

Pair randn(Shape s, uint64_t seed, double std = 1.0, double mean = 0.0) {
  return Pair(random_normal(DType::f64, s, seed, std, mean));
}

class CpuOpsPrecision : public ::testing::Test {
 protected:
  // Runs op(dtype) for f64 and f32.
  void both(const std::function<void(DType)>& op) {
    op(DType::f64);
    op(DType::f32);
  }
  std::unique_ptr<Backend> backend = make_cpu_backend();
};

TEST_F(CpuOpsPrecision, Rmsnorm) {
  const Shape s{64, 256};
  Pair x = randn(s, 1), w = randn(Shape{256}, 2, 0.2, 1.0), dy = randn(s, 3);
  Pair y(s), rstd(Shape{64}), dx(s), dw(Shape{256});
  both([&](DType t) {
    backend->rmsnorm_forward(y.in(t), rstd.in(t), x.in(t), w.in(t), 1e-5);
    backend->rmsnorm_backward(dx.in(t), dw.in(t), dy.in(t), x.in(t), w.in(t), rstd.in(t));
  });
  expect_agree(y.f32, y.f64, kRowOpTol, "rmsnorm y");
  expect_agree(rstd.f32, rstd.f64, kRowOpTol, "rmsnorm rstd");
  expect_agree(dx.f32, dx.f64, kRowOpTol, "rmsnorm dx");
  expect_agree(dw.f32, dw.f64, kRowOpTol, "rmsnorm dw");
}

TEST_F(CpuOpsPrecision, AttentionForwardBackward) {
  const Shape qs{2, 100, 4, 64}, ks{2, 100, 2, 64};
  Pair q = randn(qs, 1), k = randn(ks, 2), v = randn(ks, 3), dout = randn(qs, 4);
  Pair out(qs), lse(Shape{2, 4, 100});
  Pair dq(qs), dk(ks), dv(ks);
  both([&](DType t) {
    backend->attention_forward(out.in(t), lse.in(t), q.in(t), k.in(t), v.in(t));
    backend->attention_backward(dq.in(t), dk.in(t), dv.in(t), dout.in(t), q.in(t), k.in(t), v.in(t), out.in(t),
                                lse.in(t));
  });
  expect_agree(out.f32, out.f64, kAttentionTol, "attention out");
  expect_agree(lse.f32, lse.f64, kAttentionTol, "attention lse");
  expect_agree(dq.f32, dq.f64, kAttentionTol, "attention dq");
  expect_agree(dk.f32, dk.f64, kAttentionTol, "attention dk");
  expect_agree(dv.f32, dv.f64, kAttentionTol, "attention dv");
}

TEST_F(CpuOpsPrecision, Swiglu) {
  const Shape s{32, 768};
  Pair gate = randn(s, 1, 4.0), up = randn(s, 2), dout = randn(s, 3);
  Pair out(s), dgate(s), dup(s);
  both([&](DType t) {
    backend->swiglu_forward(out.in(t), gate.in(t), up.in(t));
    backend->swiglu_backward(dgate.in(t), dup.in(t), dout.in(t), gate.in(t), up.in(t));
  });
  expect_agree(out.f32, out.f64, kRowOpTol, "swiglu out");
  expect_agree(dgate.f32, dgate.f64, kRowOpTol, "swiglu dgate");
  expect_agree(dup.f32, dup.f64, kRowOpTol, "swiglu dup");
}

TEST_F(CpuOpsPrecision, CrossEntropy) {
  const int64_t rows = 64, vocab = 256;
  Pair logits = randn(Shape{rows, vocab}, 1, 4.0), dlosses = randn(Shape{rows}, 2);
  Pair losses(Shape{rows});
  HostTensor targets = random_ints(Shape{rows}, -1, vocab, 3);  // -1: masked
  both([&](DType t) { backend->cross_entropy(logits.in(t), losses.in(t), Tensor{}, targets, dlosses.in(t)); });
  expect_agree(losses.f32, losses.f64, kRowOpTol, "cross_entropy losses");
  expect_agree(logits.f32, logits.f64, kRowOpTol, "cross_entropy dlogits");
}

TEST_F(CpuOpsPrecision, RopeEmbeddingAdamw) {
  const Shape s{2, 16, 4, 64};
  Pair x = randn(s, 1);
  auto tables64 = rope_tables(DType::f64, 16, 64);
  auto tables32 = rope_tables(DType::f32, 16, 64);
  backend->rope_forward(x.f64, tables64.first, tables64.second, 0);
  backend->rope_forward(x.f32, tables32.first, tables32.second, 0);
  expect_agree(x.f32, x.f64, kRowOpTol, "rope");

  HostTensor tokens = random_ints(Shape{128}, 0, 50, 2);
  Pair dout = randn(Shape{128, 64}, 3), dtable(Shape{50, 64});
  both([&](DType t) { backend->embedding_backward(dtable.in(t), tokens, dout.in(t)); });
  expect_agree(dtable.f32, dtable.f64, kRowOpTol, "embedding dtable");

  Pair p = randn(Shape{1000}, 4), m(Shape{1000}), v(Shape{1000});
  AdamWParams h;
  h.weight_decay = 0.1;
  for (int64_t step = 1; step <= 3; ++step) {
    h.step = step;
    Pair g = randn(Shape{1000}, 10 + static_cast<uint64_t>(step));
    both([&](DType t) { backend->adamw_update(p.in(t), g.in(t), m.in(t), v.in(t), h, Tensor{}); });
  }
  expect_agree(p.f32, p.f64, kRowOpTol, "adamw param");
  expect_agree(m.f32, m.f64, kRowOpTol, "adamw m");
  expect_agree(v.f32, v.f64, kRowOpTol, "adamw v");
}

}  // namespace
}  // namespace lumina::test
