// Determinism of the CPU backend: two runs give bit-identical results, and so
// do runs with 1 and 3 OpenMP threads (every reduction has a fixed order;
// gemm is excluded: its order is OpenBLAS's).
#include <gtest/gtest.h>
#include <omp.h>

#include <functional>
#include <vector>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

// Runs `op` on fresh copies of `inputs` and returns the copies afterwards
// (ops write their outputs into some of them).
std::vector<HostTensor> run(const std::vector<HostTensor>& inputs, int threads,
                            const std::function<void(std::vector<HostTensor>&)>& op) {
  std::vector<HostTensor> t;
  for (const auto& x : inputs) t.emplace_back(x);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  op(t);
  omp_set_num_threads(saved);
  return t;
}

void expect_reproducible(const char* what, const std::vector<HostTensor>& inputs,
                         const std::function<void(std::vector<HostTensor>&)>& op) {
  const auto first = run(inputs, 3, op), second = run(inputs, 3, op), single = run(inputs, 1, op);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_TRUE(first[i].bitwise_equal(second[i])) << what << ": tensor " << i << " differs between two runs";
    EXPECT_TRUE(first[i].bitwise_equal(single[i])) << what << ": tensor " << i << " differs between 3 and 1 threads";
  }
}

TEST(CpuOpsDeterminism, Attention) {
  const Shape qs{2, 150, 4, 32}, ks{2, 150, 2, 32};
  std::vector<HostTensor> in;
  for (uint64_t s = 1; s <= 4; ++s) in.push_back(random_normal(DType::f32, s == 2 || s == 3 ? ks : qs, s));
  in.emplace_back(DType::f32, qs);                    // 4 out
  in.emplace_back(DType::f32, Shape{2, 4, 150});      // 5 lse
  in.emplace_back(DType::f32, qs);                    // 6 dq
  in.emplace_back(DType::f32, ks);                    // 7 dk
  in.emplace_back(DType::f32, ks);                    // 8 dv
  auto backend = make_cpu_backend();
  expect_reproducible("attention", in, [&](std::vector<HostTensor>& t) {
    backend->attention_forward(t[4], t[5], t[0], t[1], t[2]);
    backend->attention_backward(t[6], t[7], t[8], t[3], t[0], t[1], t[2], t[4], t[5]);
  });
}

TEST(CpuOpsDeterminism, RowOpsAndReductions) {
  auto backend = make_cpu_backend();
  const Shape s{512, 256};
  std::vector<HostTensor> in;
  in.push_back(random_normal(DType::f32, s, 1));                  // 0 x
  in.push_back(random_normal(DType::f32, Shape{256}, 2, 0.2, 1));  // 1 w
  in.push_back(random_normal(DType::f32, s, 3));                  // 2 dy
  in.emplace_back(DType::f32, s);                                 // 3 y
  in.emplace_back(DType::f32, Shape{512});                        // 4 rstd
  in.push_back(random_normal(DType::f32, s, 4));                  // 5 dx (accumulates)
  in.push_back(random_normal(DType::f32, Shape{256}, 5));          // 6 dw (accumulates)
  in.push_back(random_ints(Shape{512}, 0, 100, 6));               // 7 tokens
  in.push_back(random_normal(DType::f32, Shape{100, 256}, 7));     // 8 dtable
  in.push_back(random_ints(Shape{512}, -1, 256, 8));              // 9 targets
  in.emplace_back(DType::f32, Shape{512});                        // 10 losses
  in.emplace_back(DType::i32, Shape{512});                        // 11 argmax
  in.push_back(random_normal(DType::f32, Shape{512}, 9));          // 12 dlosses
  in.emplace_back(DType::f64, Shape{1});                          // 13 sum_squares result
  expect_reproducible("row ops", in, [&](std::vector<HostTensor>& t) {
    backend->rmsnorm_forward(t[3], t[4], t[0], t[1], 1e-5);
    backend->rmsnorm_backward(t[5], t[6], t[2], t[0], t[1], t[4]);
    backend->embedding_backward(t[8], t[7], t[2]);
    backend->cross_entropy(t[2], t[10], t[11], t[9], t[12]);
    t[13].set(0, backend->sum_squares(t[5]));
  });
}

}  // namespace
}  // namespace lumina::test
