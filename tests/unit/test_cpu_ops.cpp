// CPU backend forward ops against naive f64 implementations written here,
// for f32 and f64 inputs. Both sides see the same (dtype-rounded) inputs, so
// the difference is the op's own rounding: f64 within 1e-12, f32 within
// 2e-5 relative (+ a small absolute floor for values near 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gradcheck/host_tensor.h"
#include "lumina/backend/backend.h"

namespace lumina::test {
namespace {

using Vec = std::vector<double>;

class CpuOps : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  double rtol() const { return dt() == DType::f64 ? 1e-12 : 2e-5; }
  double atol() const { return dt() == DType::f64 ? 1e-13 : 2e-6; }
  HostTensor randn(Shape s, uint64_t seed, double std = 1.0, double mean = 0.0) const {
    return random_normal(dt(), s, seed, std, mean);
  }
  void expect_close(const HostTensor& got, const Vec& want, const char* what, double scale = 1.0) const {
    ASSERT_EQ(static_cast<size_t>(got.numel()), want.size()) << what;
    double worst = 0.0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double w = want[static_cast<size_t>(i)];
      const double excess = std::fabs(got.get(i) - w) / (atol() * scale + rtol() * std::fabs(w));
      if (!(excess <= worst)) {
        worst = excess;
        worst_i = i;
      }
    }
    EXPECT_LE(worst, 1.0) << what << ": element " << worst_i << " is " << got.get(worst_i) << ", expected "
                          << want[static_cast<size_t>(worst_i)];
  }
  std::unique_ptr<Backend> backend = make_cpu_backend();
};

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuOps, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST_P(CpuOps, GemmAllTransposes) {
  const int64_t m = 37, n = 29, k = 70;  // odd sizes: no kernel tail is special
  const double alpha = 0.5, beta = -1.5;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a " << ta << " trans_b " << tb);
      HostTensor a = randn(ta ? Shape{k, m} : Shape{m, k}, 1), b = randn(tb ? Shape{n, k} : Shape{k, n}, 2);
      HostTensor c = randn(Shape{m, n}, 3);
      Vec want(static_cast<size_t>(m * n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0.0;
          for (int64_t p = 0; p < k; ++p) s += a.get(ta ? p * m + i : i * k + p) * b.get(tb ? j * k + p : p * n + j);
          want[static_cast<size_t>(i * n + j)] = alpha * s + beta * c.get(i * n + j);
        }
      backend->gemm(c, a, ta, b, tb, alpha, beta);
      expect_close(c, want, "gemm", std::sqrt(static_cast<double>(k)));
    }
  }
}

TEST_P(CpuOps, GemmRejectsMismatchedShapes) {
  HostTensor a = randn(Shape{4, 3}, 1), b = randn(Shape{4, 5}, 2), c(dt(), Shape{4, 5});
  EXPECT_THROW(backend->gemm(c, a, false, b, false), Error);
}

TEST_P(CpuOps, EmbeddingForwardBackward) {
  const int64_t vocab = 11, channels = 40, n = 33;
  HostTensor table = randn(Shape{vocab, channels}, 1), tokens = random_ints(Shape{n}, 0, vocab, 2);
  HostTensor out(dt(), Shape{n, channels});
  backend->embedding_forward(out, tokens, table);
  Vec want(static_cast<size_t>(n * channels));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < channels; ++c)
      want[static_cast<size_t>(i * channels + c)] = table.get(static_cast<int64_t>(tokens.get(i)) * channels + c);
  expect_close(out, want, "embedding_forward");

  HostTensor dout = randn(Shape{n, channels}, 3), dtable = randn(Shape{vocab, channels}, 4);
  Vec dwant = dtable.values();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < channels; ++c)
      dwant[static_cast<size_t>(static_cast<int64_t>(tokens.get(i)) * channels + c)] += dout.get(i * channels + c);
  backend->embedding_backward(dtable, tokens, dout);
  expect_close(dtable, dwant, "embedding_backward", 4.0);

  tokens.set(5, vocab);  // out of range
  EXPECT_THROW(backend->embedding_forward(out, tokens, table), Error);
}

TEST_P(CpuOps, RmsnormForwardBackward) {
  const int64_t rows = 19, channels = 70;
  const double eps = 1e-5;
  HostTensor x = randn(Shape{rows, channels}, 1), w = randn(Shape{channels}, 2, 0.2, 1.0);
  HostTensor y(dt(), Shape{rows, channels}), rstd(dt(), Shape{rows});
  backend->rmsnorm_forward(y, rstd, x, w, eps);
  Vec want_y(static_cast<size_t>(rows * channels)), want_rstd(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t c = 0; c < channels; ++c) ss += x.get(r * channels + c) * x.get(r * channels + c);
    const double s = 1.0 / std::sqrt(ss / channels + eps);
    want_rstd[static_cast<size_t>(r)] = s;
    for (int64_t c = 0; c < channels; ++c)
      want_y[static_cast<size_t>(r * channels + c)] = x.get(r * channels + c) * s * w.get(c);
  }
  expect_close(y, want_y, "rmsnorm y");
  expect_close(rstd, want_rstd, "rmsnorm rstd");

  // Backward from the formula in backend.h (dx and dw accumulate onto their initial values).
  HostTensor dy = randn(Shape{rows, channels}, 3), dx = randn(Shape{rows, channels}, 4), dw = randn(Shape{channels}, 5);
  Vec want_dx = dx.values(), want_dw = dw.values();
  for (int64_t r = 0; r < rows; ++r) {
    const double s = rstd.get(r);
    double dot = 0.0;
    for (int64_t c = 0; c < channels; ++c) dot += w.get(c) * dy.get(r * channels + c) * x.get(r * channels + c);
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t i = r * channels + c;
      want_dx[static_cast<size_t>(i)] += s * (w.get(c) * dy.get(i) - x.get(i) * s * s * dot / channels);
      want_dw[static_cast<size_t>(c)] += dy.get(i) * x.get(i) * s;
    }
  }
  backend->rmsnorm_backward(dx, dw, dy, x, w, rstd);
  expect_close(dx, want_dx, "rmsnorm dx", 4.0);
  expect_close(dw, want_dw, "rmsnorm dw", 8.0);
}

TEST_P(CpuOps, RopeForwardBackwardFromAngles) {
  const int64_t batch = 2, seq = 5, heads = 3, head_dim = 16, offset = 3, half = head_dim / 2;
  const double theta = 10000.0;
  auto [cos, sin] = rope_tables(dt(), offset + seq, head_dim, theta);
  HostTensor x = randn(Shape{batch, seq, heads, head_dim}, 1);
  const HostTensor x0 = x;
  Vec want(static_cast<size_t>(x.numel()));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t base = ((b * seq + t) * heads + h) * head_dim;
          const double angle = static_cast<double>(offset + t) * std::pow(theta, -2.0 * i / head_dim);
          const double a = x0.get(base + i), c = x0.get(base + i + half);
          want[static_cast<size_t>(base + i)] = a * std::cos(angle) - c * std::sin(angle);
          want[static_cast<size_t>(base + i + half)] = c * std::cos(angle) + a * std::sin(angle);
        }
  backend->rope_forward(x, cos, sin, offset);
  expect_close(x, want, "rope_forward", 2.0);
  backend->rope_backward(x, cos, sin, offset);  // the inverse rotation restores x
  expect_close(x, x0.values(), "rope_backward(rope_forward(x))", 4.0);
  EXPECT_THROW(backend->rope_forward(x, cos, sin, offset + 1), Error);  // table too short
}

// Explicit softmax(q k^T / sqrt(D)) v with causal mask, GQA, query t at position Tk - Tq + t.
void naive_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, Vec& out, Vec& lse) {
  const int64_t batch = q.t().dim(0), tq = q.t().dim(1), hq = q.t().dim(2), dim = q.t().dim(3);
  const int64_t tk = k.t().dim(1), hkv = k.t().dim(2);
  out.assign(static_cast<size_t>(q.numel()), 0.0);
  lse.assign(static_cast<size_t>(batch * hq * tq), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t g = h / (hq / hkv);
      for (int64_t t = 0; t < tq; ++t) {
        const int64_t pos = tk - tq + t;
        Vec s(static_cast<size_t>(pos + 1));
        double mx = -INFINITY;
        for (int64_t j = 0; j <= pos; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < dim; ++d)
            dot += q.get(((b * tq + t) * hq + h) * dim + d) * k.get(((b * tk + j) * hkv + g) * dim + d);
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(dim));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0.0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        lse[static_cast<size_t>((b * hq + h) * tq + t)] = mx + std::log(sum);
        for (int64_t j = 0; j <= pos; ++j)
          for (int64_t d = 0; d < dim; ++d)
            out[static_cast<size_t>(((b * tq + t) * hq + h) * dim + d)] +=
                s[static_cast<size_t>(j)] / sum * v.get(((b * tk + j) * hkv + g) * dim + d);
      }
    }
}

TEST_P(CpuOps, AttentionMatchesExplicitSoftmax) {
  struct Case { int64_t batch, tq, tk, hq, hkv, dim; };
  // Training shapes (Tq == Tk) over one and several query/key blocks, and KV-cache decoding (Tq < Tk).
  for (const Case c : {Case{2, 7, 7, 4, 2, 16}, Case{1, 130, 130, 2, 1, 8}, Case{1, 300, 300, 2, 2, 8},
                       Case{2, 1, 40, 4, 2, 16}, Case{1, 70, 300, 4, 1, 8}}) {
    SCOPED_TRACE(::testing::Message() << "B " << c.batch << " Tq " << c.tq << " Tk " << c.tk << " Hq " << c.hq
                                      << " Hkv " << c.hkv << " D " << c.dim);
    HostTensor q = randn(Shape{c.batch, c.tq, c.hq, c.dim}, 1, 1.5);
    HostTensor k = randn(Shape{c.batch, c.tk, c.hkv, c.dim}, 2, 1.5), v = randn(Shape{c.batch, c.tk, c.hkv, c.dim}, 3);
    HostTensor out(dt(), q.t().shape), lse(dt(), Shape{c.batch, c.hq, c.tq});
    backend->attention_forward(out, lse, q, k, v);
    Vec want_out, want_lse;
    naive_attention(q, k, v, want_out, want_lse);
    expect_close(out, want_out, "attention out", 4.0);
    expect_close(lse, want_lse, "attention lse", 4.0);
  }
}

TEST_P(CpuOps, AttentionRejectsBadShapes) {
  HostTensor q = randn(Shape{1, 8, 3, 4}, 1), k = randn(Shape{1, 8, 2, 4}, 2), v = randn(Shape{1, 8, 2, 4}, 3);
  HostTensor out(dt(), q.t().shape), lse(dt(), Shape{1, 3, 8});
  EXPECT_THROW(backend->attention_forward(out, lse, q, k, v), Error);  // 3 query heads, 2 kv heads
  HostTensor q2 = randn(Shape{1, 9, 2, 4}, 1), out2(dt(), q2.t().shape), lse2(dt(), Shape{1, 2, 9});
  EXPECT_THROW(backend->attention_forward(out2, lse2, q2, k, v), Error);  // Tq > Tk
}

TEST_P(CpuOps, SwigluForwardBackward) {
  const Shape shape{13, 37};
  HostTensor gate = randn(shape, 1, 3.0), up = randn(shape, 2), out(dt(), shape);
  HostTensor dout = randn(shape, 3), dgate(dt(), shape), dup(dt(), shape);
  backend->swiglu_forward(out, gate, up);
  backend->swiglu_backward(dgate, dup, dout, gate, up);
  Vec want(static_cast<size_t>(out.numel())), want_dg(want.size()), want_du(want.size());
  for (int64_t i = 0; i < out.numel(); ++i) {
    const double g = gate.get(i), sig = 1.0 / (1.0 + std::exp(-g));
    want[static_cast<size_t>(i)] = g * sig * up.get(i);
    want_dg[static_cast<size_t>(i)] = dout.get(i) * up.get(i) * sig * (1.0 + g * (1.0 - sig));
    want_du[static_cast<size_t>(i)] = dout.get(i) * g * sig;
  }
  expect_close(out, want, "swiglu out");
  expect_close(dgate, want_dg, "swiglu dgate");
  expect_close(dup, want_du, "swiglu dup");
}

TEST_P(CpuOps, CrossEntropyLossesArgmaxAndGradient) {
  const int64_t rows = 9, vocab = 300;
  HostTensor logits = randn(Shape{rows, vocab}, 1, 3.0), targets = random_ints(Shape{rows}, 0, vocab, 2);
  targets.set(2, -1);
  targets.set(7, -1);
  logits.set(4 * vocab + 17, 50.0);  // a clear argmax
  HostTensor dlosses = randn(Shape{rows}, 3), losses(dt(), Shape{rows}), argmax(DType::i32, Shape{rows});
  Vec want_loss(rows), want_grad(static_cast<size_t>(rows * vocab));
  std::vector<int64_t> want_argmax(rows);
  for (int64_t n = 0; n < rows; ++n) {
    int64_t best = 0;  // first index of the maximum
    for (int64_t j = 1; j < vocab; ++j)
      if (logits.get(n * vocab + j) > logits.get(n * vocab + best)) best = j;
    want_argmax[static_cast<size_t>(n)] = best;
    const double mx = logits.get(n * vocab + best);
    double sum = 0.0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(logits.get(n * vocab + j) - mx);
    const auto t = static_cast<int64_t>(targets.get(n));
    want_loss[static_cast<size_t>(n)] = t < 0 ? 0.0 : mx + std::log(sum) - logits.get(n * vocab + t);
    for (int64_t j = 0; j < vocab; ++j)
      want_grad[static_cast<size_t>(n * vocab + j)] =
          t < 0 ? 0.0 : dlosses.get(n) * (std::exp(logits.get(n * vocab + j) - mx) / sum - (j == t ? 1.0 : 0.0));
  }
  EXPECT_EQ(want_argmax[4], 17);
  backend->cross_entropy(logits, losses, argmax, targets, Tensor{});
  expect_close(losses, want_loss, "losses without gradient", 8.0);
  for (int64_t n = 0; n < rows; ++n) EXPECT_EQ(argmax.get(n), want_argmax[static_cast<size_t>(n)]) << "row " << n;
  backend->cross_entropy(logits, losses, Tensor{}, targets, dlosses);  // argmax not requested
  expect_close(losses, want_loss, "losses with gradient", 8.0);
  expect_close(logits, want_grad, "dlogits");
  targets.set(0, vocab);
  EXPECT_THROW(backend->cross_entropy(logits, losses, argmax, targets, Tensor{}), Error);
}

TEST_P(CpuOps, ReductionsAndElementwise) {
  const int64_t n = 200003;  // several sum_squares chunks and a tail
  HostTensor x = randn(Shape{n}, 1), y = randn(Shape{n}, 2);
  double want = 0.0;
  for (int64_t i = 0; i < n; ++i) want += x.get(i) * x.get(i);
  EXPECT_NEAR(backend->sum_squares(x), want, 1e-12 * want);

  Vec want_y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) want_y[static_cast<size_t>(i)] = y.get(i) - 0.25 * x.get(i);
  backend->axpy(y, x, -0.25);
  expect_close(y, want_y, "axpy");
  for (auto& e : want_y) e *= 3.0;
  backend->scale(y, 3.0);
  expect_close(y, want_y, "scale");

  HostTensor z(dt(), Shape{n});
  backend->copy(z, y);
  EXPECT_TRUE(z.bitwise_equal(y));
  backend->fill(z, -2.5);
  for (int64_t i = 0; i < n; i += 997) ASSERT_EQ(z.get(i), -2.5);
  EXPECT_THROW(backend->copy(z, random_normal(DType::f64 == dt() ? DType::f32 : DType::f64, Shape{n}, 3)), Error);
}

}  // namespace
}  // namespace lumina::test
