// ParamStore::overwrite_grads_next: a step whose first gradient writes overwrite
// (GEMMs with beta 0, other ops after zeroing their parameter) gives the same
// gradients as zero_grads() then accumulating, for dense (tied and untied), MoE
// (dropless and with drops), MoD and hybrid models, over two micro-batches. The
// overwriting model starts from NaN gradients, so a gradient that no op wrote or
// zeroed would show.
#include <gtest/gtest.h>

#include "lumina/model/param_store.h"
#include "support/step_gradients.h"

namespace lumina {
namespace {

void expect_same_gradients(const ModelConfig& cfg) {
  const std::vector<double> accumulated = test::step_gradients(cfg, false);
  const std::vector<double> overwritten = test::step_gradients(cfg, true);
  ASSERT_EQ(accumulated.size(), overwritten.size());
  double norm = 0.0;
  for (size_t i = 0; i < accumulated.size(); ++i) {
    ASSERT_EQ(overwritten[i], accumulated[i]) << "gradient element " << i;
    norm += accumulated[i] * accumulated[i];
  }
  EXPECT_GT(norm, 0.0);  // the comparison is not of zeros
}

// The store's bookkeeping on its own: beta 0 once per parameter, a stack written
// in part zeroes the rest, grad_to_accumulate zeroes once, end_overwrite zeroes
// what nothing wrote and leaves the written values, and afterwards all accumulates.
TEST(GradOverwrite, StoreBookkeeping) {
  auto be = make_cpu_backend();
  ParamStore ps;
  for (const char* name : {"a", "b", "c", "d", "e"}) ps.declare(name, Shape{2}, ParamInit::ones, 0.0, false);
  ps.allocate(*be, DType::f32);
  auto grads = [&] {
    std::vector<float> out(static_cast<size_t>(ps.numel()));
    be->copy(Tensor(out.data(), DType::f32, Device::cpu, Shape{ps.numel()}), ps.grads_flat());
    return out;
  };
  be->fill(ps.grads_flat(), 7.0);
  ps.overwrite_grads_next();
  EXPECT_EQ(ps.grad_beta(0), 0.0);
  EXPECT_EQ(ps.grad_beta(0), 1.0);
  EXPECT_EQ(ps.grad_beta(0, 2), 1.0);  // b joins a written stack: zeroed, then accumulated onto
  EXPECT_EQ(ps.grad_beta(3), 0.0);
  be->fill(ps.grad_to_accumulate(2), 5.0);  // zeroed first, then this op's own write
  ps.end_overwrite();
  // a and d: written by their (pretend) GEMMs, left as they were; b zeroed; c written; e never written: zeroed.
  EXPECT_EQ(grads(), (std::vector<float>{7, 7, 0, 0, 5, 5, 7, 7, 0, 0}));
  EXPECT_EQ(ps.grad_beta(4), 1.0);  // after end_overwrite every write accumulates
  ps.grad_to_accumulate(0);  // no zeroing once the step's first writes are done
  EXPECT_EQ(grads()[0], 7.0f);
}

TEST(GradOverwrite, DenseTiedAndUntied) {
  expect_same_gradients(test::tiny_config(true));
  expect_same_gradients(test::tiny_config(false));
}

TEST(GradOverwrite, MoeDroplessAndWithDrops) {
  expect_same_gradients(test::tiny_moe_config(2, 0.0));
  expect_same_gradients(test::tiny_moe_config(1, 0.5));
}

TEST(GradOverwrite, ModAndHybrid) {
  expect_same_gradients(test::with_learned_mod(test::tiny_config(false)));
  expect_same_gradients(test::with_learned_mod(test::tiny_moe_config(2, 0.0)));
}

}  // namespace
}  // namespace lumina
