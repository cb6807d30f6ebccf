// CPU gemm_batched: c[g] = alpha op(a[g]) op(b[g]) + beta c[g] must equal G
// separate gemm calls bitwise (f32 and f64, every transpose combination,
// beta 0 and 1); empty problems, K = 0 (c = beta c) and bad shapes/dtypes.
#include <gtest/gtest.h>

#include <string>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

struct BatchedShape {
  int64_t groups, m, n, k;
};

class CpuGemmBatched : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  std::unique_ptr<Backend> backend = make_cpu_backend();
};

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuGemmBatched, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST_P(CpuGemmBatched, EqualsPerEntryGemmBitwise) {
  const double alpha = 0.75;
  uint64_t seed = 10;
  for (const BatchedShape s : {BatchedShape{3, 37, 19, 41}, BatchedShape{2, 64, 48, 130}, BatchedShape{1, 5, 7, 3}})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const double beta : {0.0, 1.0}) {
          SCOPED_TRACE(::testing::Message() << "G " << s.groups << " M " << s.m << " N " << s.n << " K " << s.k
                                            << " trans_a " << ta << " trans_b " << tb << " beta " << beta);
          const Shape a_entry = ta ? Shape{s.k, s.m} : Shape{s.m, s.k};
          const Shape b_entry = tb ? Shape{s.n, s.k} : Shape{s.k, s.n};
          HostTensor a = random_normal(dt(), Shape{s.groups, a_entry[0], a_entry[1]}, seed++);
          HostTensor b = random_normal(dt(), Shape{s.groups, b_entry[0], b_entry[1]}, seed++);
          HostTensor c0 = random_normal(dt(), Shape{s.groups, s.m, s.n}, seed++);
          HostTensor batched(c0), separate(c0);
          backend->gemm_batched(batched, a, ta, b, tb, alpha, beta);
          for (int64_t g = 0; g < s.groups; ++g)
            backend->gemm(separate.t().slice(g, g + 1).view(Shape{s.m, s.n}), a.t().slice(g, g + 1).view(a_entry),
                          ta, b.t().slice(g, g + 1).view(b_entry), tb, alpha, beta);
          EXPECT_TRUE(batched.bitwise_equal(separate));
          EXPECT_FALSE(batched.bitwise_equal(c0));  // the op wrote c
        }
}

TEST_P(CpuGemmBatched, EmptyProblems) {
  // K = 0: every entry is an empty sum, c = beta c.
  HostTensor a(dt(), Shape{2, 3, 0}), b(dt(), Shape{2, 0, 4});
  HostTensor c0 = random_normal(dt(), Shape{2, 3, 4}, 1), c(c0);
  backend->gemm_batched(c, a, false, b, false, 1.0, 0.5);
  // Halving is exact in f32 and f64.
  for (int64_t i = 0; i < c.numel(); ++i) EXPECT_EQ(c.get(i), 0.5 * c0.get(i)) << i;
  backend->gemm_batched(c, a, false, b, false, 1.0, 0.0);
  for (int64_t i = 0; i < c.numel(); ++i) EXPECT_EQ(c.get(i), 0.0) << i;
  // G = 0 and M = 0: nothing to compute.
  HostTensor a0(dt(), Shape{0, 3, 5}), b0(dt(), Shape{0, 5, 4}), none(dt(), Shape{0, 3, 4});
  EXPECT_NO_THROW(backend->gemm_batched(none, a0, false, b0, false));
  HostTensor am(dt(), Shape{2, 0, 5}), bm = random_normal(dt(), Shape{2, 5, 4}, 2), cm(dt(), Shape{2, 0, 4});
  EXPECT_NO_THROW(backend->gemm_batched(cm, am, false, bm, false));
}

TEST_P(CpuGemmBatched, RejectsBadShapesAndDtypes) {
  HostTensor a = random_normal(dt(), Shape{2, 3, 4}, 1), b = random_normal(dt(), Shape{2, 4, 5}, 2);
  HostTensor c(dt(), Shape{2, 3, 5});
  EXPECT_NO_THROW(backend->gemm_batched(c, a, false, b, false));
  EXPECT_THROW(backend->gemm_batched(c, a, true, b, false), Error);  // op(a) is (4, 3): inner dims 3 vs 4
  HostTensor b3 = random_normal(dt(), Shape{3, 4, 5}, 3);
  EXPECT_THROW(backend->gemm_batched(c, a, false, b3, false), Error);  // G 2 vs 3
  HostTensor a2 = random_normal(dt(), Shape{6, 4}, 4);
  EXPECT_THROW(backend->gemm_batched(c, a2, false, b, false), Error);  // a is 2-D
  HostTensor c_wide(dt(), Shape{2, 3, 6});
  EXPECT_THROW(backend->gemm_batched(c_wide, a, false, b, false), Error);  // N 5 vs 6
  HostTensor b_other = b.as(dt() == DType::f32 ? DType::f64 : DType::f32);
  EXPECT_THROW(backend->gemm_batched(c, a, false, b_other, false), Error);  // mixed dtypes
}

}  // namespace
}  // namespace lumina::test
