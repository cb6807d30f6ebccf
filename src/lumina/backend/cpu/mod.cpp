// Mixture-of-Depths ops (backend.h, "mixture of depths"): per-sequence top-k
// selection, the gated combine and its backward into the layer input and the
// router, and the selection predictor's loss and gradient. Float tensors are f32 or f64
// (one dtype per call: stat and activation dtypes agree on the CPU); index
// tensors i32. Work is split in fixed chunks (sequences or tokens) and sums
// add per-chunk f64 partials in chunk order: results do not depend on the
// thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/mod_checks.h"

namespace lumina {

namespace {

constexpr int64_t kTokenChunk = 256;  // tokens per parallel chunk

// Throws unless every compact row in slot_row (N) is < R (rows of `what`), or -1.
void check_slots(const int32_t* slot_row, int64_t N, int64_t R, const char* op, const char* what) {
  for (int64_t n = 0; n < N; ++n)
    LUMINA_CHECK(slot_row[n] >= -1 && slot_row[n] < R, "{}: slot_row[{}] = {} is outside {}'s {} rows", op, n,
                 slot_row[n], what, R);
}

template <class T>
T sigmoid(T x) {
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

}  // namespace

void CpuBackend::mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate,
                                  const Tensor& scores, int64_t k) {
  const char* op = "mod_select_top_k";
  cpu::check_host(scores, op, "scores");
  check_mod_select_top_k(row_token, positions, slot_row, gate, scores, k, op);
  for (const auto& [t, name] : {std::pair{&row_token, "row_token"}, {&positions, "positions"}, {&slot_row, "slot_row"}})
    cpu::check_host_dtype(*t, DType::i32, op, name);
  cpu::check_host_dtype(gate, scores.dtype, op, "gate");
  const int64_t B = scores.dim(0), T = scores.dim(1);
  auto* rt = row_token.ptr<int32_t>();
  auto* pos = positions.ptr<int32_t>();
  auto* sr = slot_row.ptr<int32_t>();
  cpu::dispatch_float(scores.dtype, op, [&](auto tag) {
    using F = decltype(tag);
    const F* s = scores.ptr<F>();
    F* g = gate.ptr<F>();
    cpu::parallel_chunks(B, 1, [&](int64_t b, int64_t) {
      const F* sb = s + b * T;
      std::vector<F> key(sb, sb + T);  // NaN counts as -inf: a total order, exactly k selected
      for (F& v : key)
        if (std::isnan(v)) v = -std::numeric_limits<F>::infinity();
      std::vector<int32_t> order(static_cast<size_t>(T));
      std::iota(order.begin(), order.end(), 0);
      // The k first under (score descending, t ascending), then back in t order.
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&key](int32_t i, int32_t j) {
        return key[i] > key[j] || (key[i] == key[j] && i < j);
      });
      std::sort(order.begin(), order.begin() + k);
      std::fill_n(sr + b * T, T, -1);
      std::fill_n(g + b * T, T, F(0));
      for (int64_t j = 0; j < k; ++j) {
        const int64_t t = order[static_cast<size_t>(j)], n = b * T + t, row = b * k + j;
        rt[row] = static_cast<int32_t>(n);
        pos[row] = static_cast<int32_t>(t);
        sr[n] = static_cast<int32_t>(row);
        g[n] = sigmoid(sb[t]);
      }
    });
  });
}

void CpuBackend::mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                             const Tensor& gate) {
  const char* op = "mod_combine";
  cpu::check_host(x, op, "x");
  check_mod_combine(out, delta, x, ys, slot_row, gate, op);
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&out, "out"}, {&delta, "delta"}, {&ys, "ys"},
                                {&gate, "gate"}})
    cpu::check_host_dtype(*t, x.dtype, op, name);
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  const int64_t N = x.dim(0), C = x.dim(1), R = ys.dim(0);
  const int32_t* sr = slot_row.ptr<int32_t>();
  check_slots(sr, N, R, op, "ys");
  cpu::dispatch_float(x.dtype, op, [&](auto tag) {
    using F = decltype(tag);
    F* o = out.ptr<F>();
    F* d = delta.ptr<F>();
    const F* xp = x.ptr<F>();
    const F* y = ys.ptr<F>();
    const F* g = gate.ptr<F>();
    cpu::parallel_chunks(N, kTokenChunk, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const F* xn = xp + n * C;
        F* on = o + n * C;
        if (sr[n] < 0) {
          std::copy_n(xn, C, on);
          continue;
        }
        const F* yi = y + static_cast<int64_t>(sr[n]) * C;  // may alias di (in place)
        F* di = d + static_cast<int64_t>(sr[n]) * C;
        for (int64_t c = 0; c < C; ++c) {
          const F dc = yi[c] - xn[c];
          di[c] = dc;
          on[c] = xn[c] + g[n] * dc;
        }
      }
    });
  });
}

void CpuBackend::mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate,
                                    const Tensor& slot_row, const Tensor& gate, const Tensor& w) {
  const char* op = "mod_input_backward";
  cpu::check_host(dx, op, "dx");
  check_mod_input_backward(dx, dscores, dxs, dgate, slot_row, gate, w, op);
  for (const auto& [t, name] : {std::pair{&dxs, "dxs"}, {&dgate, "dgate"}, {&gate, "gate"}})
    cpu::check_host_dtype(*t, dx.dtype, op, name);
  if (!dscores.empty()) {
    cpu::check_host_dtype(dscores, dx.dtype, op, "dscores");
    cpu::check_host_dtype(w, dx.dtype, op, "w");
  }
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  const int64_t N = dx.dim(0), C = dx.dim(1), R = dxs.dim(0);
  const int32_t* sr = slot_row.ptr<int32_t>();
  check_slots(sr, N, R, op, "dxs");
  cpu::dispatch_float(dx.dtype, op, [&](auto tag) {
    using F = decltype(tag);
    F* d = dx.ptr<F>();
    F* ds = dscores.empty() ? nullptr : dscores.ptr<F>();
    const F* wp = w.empty() ? nullptr : w.ptr<F>();
    const F* dr = dxs.ptr<F>();
    const F* dg = dgate.ptr<F>();
    const F* g = gate.ptr<F>();
    cpu::parallel_chunks(N, kTokenChunk, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        if (sr[n] < 0) {
          if (ds) ds[n] = F(0);
          continue;
        }
        const F keep = F(1) - g[n];
        const F dscore = ds ? dg[n] * g[n] * keep : F(0);
        F* dn = d + n * C;
        const F* di = dr + static_cast<int64_t>(sr[n]) * C;
        for (int64_t c = 0; c < C; ++c) dn[c] = keep * dn[c] + di[c] + (wp ? dscore * wp[c] : F(0));
        if (ds) ds[n] = dscore;
      }
    });
  });
}

void CpuBackend::mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row, double dscale) {
  const char* op = "mod_predictor";
  cpu::check_host(pred, op, "pred");
  check_mod_predictor(dpred, sums, pred, slot_row, op);
  if (!dpred.empty()) cpu::check_host_dtype(dpred, pred.dtype, op, "dpred");
  if (!sums.empty()) cpu::check_host_dtype(sums, pred.dtype, op, "sums");
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  const int64_t N = pred.numel();
  const int32_t* sr = slot_row.ptr<int32_t>();
  cpu::dispatch_float(pred.dtype, op, [&](auto tag) {
    using F = decltype(tag);
    const F* p = pred.ptr<F>();
    F* dp = dpred.empty() ? nullptr : dpred.ptr<F>();
    const int64_t chunks = (N + kTokenChunk - 1) / kTokenChunk;
    std::vector<double> bce(static_cast<size_t>(chunks), 0.0), agree(static_cast<size_t>(chunks), 0.0);
    cpu::parallel_chunks(N, kTokenChunk, [&](int64_t begin, int64_t end) {
      const auto chunk = static_cast<size_t>(begin / kTokenChunk);
      for (int64_t n = begin; n < end; ++n) {
        const double x = p[n], y = sr[n] >= 0 ? 1.0 : 0.0;
        bce[chunk] += std::max(x, 0.0) - y * x + std::log1p(std::exp(-std::abs(x)));  // softplus(x) - y x
        agree[chunk] += (x > 0.0) == (y > 0.0) ? 1.0 : 0.0;
        if (dp) dp[n] = static_cast<F>(dscale * (sigmoid(x) - y));
      }
    });
    if (sums.empty()) return;
    sums.ptr<F>()[0] = static_cast<F>(std::accumulate(bce.begin(), bce.end(), 0.0));
    sums.ptr<F>()[1] = static_cast<F>(std::accumulate(agree.begin(), agree.end(), 0.0));
  });
}

}  // namespace lumina
