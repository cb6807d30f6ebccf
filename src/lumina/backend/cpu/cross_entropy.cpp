// Cross-entropy over one chunk of rows, fused with its backward.
// logits (N, V), targets (N) i32 (target < 0: masked), per row n with m = max_j logits[n, j]:
//   lse = m + log(sum_j exp(logits[n, j] - m))
//   losses[n] = lse - logits[n, target]              (0 when masked)
//   argmax[n] = first j with logits[n, j] = m        (i32; skipped when argmax is empty)
// With dlosses (N): logits[n, :] are OVERWRITTEN with
//   dlogits = dlosses[n] * (softmax(logits[n]) - onehot(target))   (0 when masked)
// in the same pass: exp(logits - m) is stored in place, then scaled.
// Rows are independent; they run in parallel over fixed row chunks.
#include <cmath>
#include <limits>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

template <class T>
LUMINA_CPU_CLONES T row_max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// The first j with x[j] == m (n when there is none, e.g. m is NaN).
template <class T>
LUMINA_CPU_CLONES int64_t first_index_of(const T* x, int64_t n, T m) {
  int64_t first = n;
#pragma omp simd reduction(min : first)
  for (int64_t j = 0; j < n; ++j) first = x[j] == m && j < first ? j : first;
  return first;
}

// sum_j exp(x[j] - shift), x unchanged.
template <class T>
LUMINA_CPU_CLONES T sum_exp(const T* x, int64_t n, T shift) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += cpu::exp_approx(x[j] - shift);
  return s;
}

// x[j] = exp(x[j] - shift); returns their sum.
template <class T>
LUMINA_CPU_CLONES T exp_in_place(T* x, int64_t n, T shift) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) {
    const T e = cpu::exp_approx(x[j] - shift);
    x[j] = e;
    s += e;
  }
  return s;
}

template <class T>
LUMINA_CPU_CLONES void scale_row(T* x, int64_t n, T alpha) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) x[j] *= alpha;
}

template <class T>
void cross_entropy_row(T* x, int64_t vocab, int32_t target, T* loss, int32_t* argmax, const T* dloss) {
  const T m = row_max(x, vocab);
  if (argmax) {
    const int64_t best = first_index_of(x, vocab, m);
    *argmax = static_cast<int32_t>(best < vocab ? best : 0);
  }
  const T target_logit = target >= 0 ? x[target] : T(0);
  if (!dloss) {
    *loss = target >= 0 ? m + std::log(sum_exp(x, vocab, m)) - target_logit : T(0);
    return;
  }
  if (target < 0) {
    *loss = 0;
    std::fill_n(x, vocab, T(0));
    return;
  }
  const T sum = exp_in_place(x, vocab, m);
  *loss = m + std::log(sum) - target_logit;
  scale_row(x, vocab, *dloss / sum);
  x[target] -= *dloss;
}

}  // namespace

void CpuBackend::cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                               const Tensor& dlosses) {
  const char* op = "cross_entropy";
  cpu::check_host(logits, op, "logits");
  LUMINA_CHECK(logits.rank() == 2, "{}: logits must be (N, V), got {}", op, logits.shape.str());
  const int64_t rows = logits.dim(0), vocab = logits.dim(1);
  LUMINA_CHECK(vocab > 0, "{}: logits have an empty vocab dim", op);
  cpu::check_host_dtype(losses, logits.dtype, op, "losses");
  cpu::check_host_dtype(targets, DType::i32, op, "targets");
  check_shape(losses, Shape{rows}, "cross_entropy: losses");
  check_shape(targets, Shape{rows}, "cross_entropy: targets");
  if (!argmax.empty()) {
    cpu::check_host_dtype(argmax, DType::i32, op, "argmax");
    check_shape(argmax, Shape{rows}, "cross_entropy: argmax");
  }
  if (!dlosses.empty()) {
    cpu::check_host_dtype(dlosses, logits.dtype, op, "dlosses");
    check_shape(dlosses, Shape{rows}, "cross_entropy: dlosses");
  }
  const int32_t* tp = targets.ptr<int32_t>();
  for (int64_t n = 0; n < rows; ++n)
    LUMINA_CHECK(tp[n] < vocab, "{}: target {} at row {} is outside the vocabulary [0, {})", op, tp[n], n, vocab);
  int32_t* ap = argmax.empty() ? nullptr : argmax.ptr<int32_t>();
  cpu::dispatch_float(logits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* xp = logits.ptr<T>();
    T* lp = losses.ptr<T>();
    const T* dp = dlosses.empty() ? nullptr : dlosses.ptr<T>();
    const int64_t row_chunk = std::max<int64_t>(1, 16384 / vocab);
    cpu::parallel_chunks(rows, row_chunk, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n)
        cross_entropy_row(xp + n * vocab, vocab, tp[n], lp + n, ap ? ap + n : nullptr, dp ? dp + n : nullptr);
    });
  });
}

}  // namespace lumina
