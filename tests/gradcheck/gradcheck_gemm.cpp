// gemm: c = alpha op(a) op(b) + beta c0, all four transpose combinations, beta != 0.
// With L = sum(c * R): da = alpha R op(b)^T (transposed back when trans_a),
// db = alpha op(a)^T R (transposed back when trans_b), dc0 = beta R.
// gemm_add: d = a b^T + c (the residual form): da = R b, db = R^T a, dc = R.
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

TEST(Gradcheck, GemmAllTransposesWithBeta) {
  auto backend = make_cpu_backend();
  const int64_t m = 6, n = 4, k = 5;
  const double alpha = 0.7, beta = 0.3;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      SCOPED_TRACE(fmt::format("trans_a {} trans_b {}", ta, tb));
      // Untransposed a is (2, 3, K): leading dims are flattened to M = 6.
      HostTensor a = random_normal(DType::f64, ta ? Shape{k, m} : Shape{2, 3, k}, 1);
      HostTensor b = random_normal(DType::f64, tb ? Shape{n, k} : Shape{k, n}, 2);
      HostTensor c0 = random_normal(DType::f64, Shape{m, n}, 3);
      HostTensor r = random_normal(DType::f64, Shape{m, n}, 4);
      HostTensor c(DType::f64, Shape{m, n});
      auto forward = [&] {
        backend->copy(c, c0);
        backend->gemm(c, a, ta, b, tb, alpha, beta);
      };
      HostTensor da(DType::f64, a.t().shape), db(DType::f64, b.t().shape), dc0(DType::f64, c0.t().shape);
      if (!ta) backend->gemm(da, r, false, b, !tb, alpha);
      else backend->gemm(da, b, tb, r, true, alpha);
      if (!tb) backend->gemm(db, a, !ta, r, false, alpha);
      else backend->gemm(db, r, true, a, ta, alpha);
      backend->copy(dc0, r);
      backend->scale(dc0, beta);
      const GradcheckOptions o;
      for (auto [x, dx, name] : {std::tuple{&a, &da, "a"}, {&b, &db, "b"}, {&c0, &dc0, "c0"}}) {
        const GradcheckReport rep = check_gradient(*x, *dx, forward, {{c, r}}, o);
        EXPECT_TRUE(rep.passed(o)) << name << ": " << rep.str();
      }
    }
  }
}

TEST(Gradcheck, GemmAddResidual) {
  auto backend = make_cpu_backend();
  const int64_t m = 6, n = 4, k = 5;
  HostTensor a = random_normal(DType::f64, Shape{m, k}, 11), b = random_normal(DType::f64, Shape{n, k}, 12);
  HostTensor c = random_normal(DType::f64, Shape{m, n}, 13), r = random_normal(DType::f64, Shape{m, n}, 14);
  HostTensor d(DType::f64, Shape{m, n});
  auto forward = [&] { backend->gemm_add(d, a, false, b, true, c); };
  HostTensor da(DType::f64, a.t().shape), db(DType::f64, b.t().shape);
  backend->gemm(da, r, false, b, false);
  backend->gemm(db, r, true, a, false);
  HostTensor dc = r;
  const GradcheckOptions o;
  for (auto [x, dx, name] : {std::tuple{&a, &da, "a"}, {&b, &db, "b"}, {&c, &dc, "c"}}) {
    const GradcheckReport rep = check_gradient(*x, *dx, forward, {{d, r}}, o);
    EXPECT_TRUE(rep.passed(o)) << name << ": " << rep.str();
  }
  // In place (c = d) gives the same values.
  HostTensor inplace = c;
  backend->gemm_add(inplace, a, false, b, true, inplace);
  forward();
  EXPECT_TRUE(inplace.bitwise_equal(d));
}

}  // namespace
}  // namespace lumina::test
