// Causal grouped-query attention, flash style (no (T, T) score matrix).
// q (B, Tq, Hq, D), k/v (B, Tk, Hkv, D), out (B, Tq, Hq, D), lse (B, Hq, Tq);
// query head h reads kv head h / (Hq / Hkv); query t sits at position
// Tk - Tq + t and sees keys 0..that position. scale = 1 / sqrt(D).
//
// Forward, per (batch, query head, block of kQueryBlock queries), over key
// blocks of up to kKeyBlock keys (small BLAS GEMMs, single-threaded inside the
// parallel region):
//   S = scale q k^T (rows, cols);  m' = max(m, rowmax S);  P = exp(S - m')
//   l = l exp(m - m') + rowsum P;  O = O exp(m - m') + P v
// then out = O / l and lse = m + log l. Scratch per thread: kQueryBlock x kKeyBlock.
//
// Backward (Tq == Tk), per (batch, kv head) task, so one thread owns dk/dv of
// that head (no races, fixed order); per query head of the group and query
// block, with delta = rowsum(dout * out):
//   P = exp(scale q k^T - lse);  dP = dout v^T;  dS = P (dP - delta)
//   dq = scale dS k;  dk += scale dS^T q;  dv += P^T dout      (dq, dk, dv overwritten by the op)
#include <cmath>
#include <limits>
#include <vector>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;
// Below this many multiply-adds (B Hq Tq Tk D) one thread does the whole op:
// a parallel region costs more than the work.
constexpr int64_t kParallelMinWork = 1 << 18;

// Number of keys of a key block visible to row r: clamp(first_visible + r, 0, cols).
inline int64_t visible_keys(int64_t first_visible, int64_t r, int64_t cols) {
  return std::clamp<int64_t>(first_visible + r, 0, cols);
}

// Online-softmax step on a score block s (rows, cols; leading dim ld), in place:
// s becomes P = exp(s - m_new) on visible keys and 0 beyond; m, l updated;
// rescale[r] = exp(m_old - m_new) (the factor for the running output).
template <class T>
LUMINA_CPU_CLONES void softmax_block_online(T* __restrict s, int64_t ld, int64_t rows, int64_t cols,
                                            int64_t first_visible, T* __restrict m, T* __restrict l,
                                            T* __restrict rescale) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = s + r * ld;
    const int64_t visible = visible_keys(first_visible, r, cols);
    T block_max = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : block_max)
    for (int64_t j = 0; j < visible; ++j) block_max = row[j] > block_max ? row[j] : block_max;
    const T m_new = block_max > m[r] ? block_max : m[r];
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < visible; ++j) {
      const T p = cpu::exp_approx(row[j] - m_new);
      row[j] = p;
      sum += p;
    }
    for (int64_t j = visible; j < cols; ++j) row[j] = 0;
    // m[r] is -inf only before the first block, whose key 0 is visible to every row.
    const T factor = m[r] == -std::numeric_limits<T>::infinity() ? T(0) : cpu::exp_approx(m[r] - m_new);
    rescale[r] = factor;
    l[r] = l[r] * factor + sum;
    m[r] = m_new;
  }
}

// o[r, :] *= factor[r] for the rows of a block of the output (leading dim ld).
template <class T>
LUMINA_CPU_CLONES void scale_rows(T* __restrict o, int64_t ld, int64_t rows, int64_t dim, const T* __restrict factor) {
  for (int64_t r = 0; r < rows; ++r) {
    const T f = factor[r];
#pragma omp simd
    for (int64_t d = 0; d < dim; ++d) o[r * ld + d] *= f;
  }
}

// delta[r] = sum_d dout[r, d] * out[r, d].
template <class T>
LUMINA_CPU_CLONES void row_dots(T* __restrict delta, const T* __restrict dout, const T* __restrict out, int64_t ld,
                                int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t d = 0; d < dim; ++d) acc += dout[r * ld + d] * out[r * ld + d];
    delta[r] = acc;
  }
}

// Backward on one score block, in place: p = exp(p - lse[r]) (0 beyond the
// visible keys), ds = p * (ds - delta[r]). On entry p holds scale q k^T and
// ds holds dout v^T.
template <class T>
LUMINA_CPU_CLONES void softmax_block_backward(T* __restrict p, T* __restrict ds, int64_t ld, int64_t rows,
                                              int64_t cols, int64_t first_visible, const T* __restrict lse,
                                              const T* __restrict delta) {
  for (int64_t r = 0; r < rows; ++r) {
    T* prow = p + r * ld;
    T* dsrow = ds + r * ld;
    const int64_t visible = visible_keys(first_visible, r, cols);
    const T lse_r = lse[r], delta_r = delta[r];
#pragma omp simd
    for (int64_t j = 0; j < visible; ++j) {
      const T pj = cpu::exp_approx(prow[j] - lse_r);
      prow[j] = pj;
      dsrow[j] = pj * (dsrow[j] - delta_r);
    }
    for (int64_t j = visible; j < cols; ++j) prow[j] = dsrow[j] = 0;
  }
}

struct AttentionDims {
  int64_t batch, q_len, k_len, q_heads, kv_heads, head_dim;
  int64_t group() const { return q_heads / kv_heads; }
  int64_t q_row_stride() const { return q_heads * head_dim; }   // between consecutive t of one q head
  int64_t kv_row_stride() const { return kv_heads * head_dim; }  // between consecutive t of one kv head
};

AttentionDims check_attention_args(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const char* op) {
  cpu::check_host(q, op, "q");
  using Named = std::pair<const Tensor*, const char*>;
  for (const auto& [t, name] : {Named{&out, "out"}, Named{&lse, "lse"}, Named{&k, "k"}, Named{&v, "v"}})
    cpu::check_host_dtype(*t, q.dtype, op, name);
  LUMINA_CHECK(q.rank() == 4 && k.rank() == 4, "{}: q and k must be (B, T, H, D), got {} and {}", op,
               q.shape.str(), k.shape.str());
  const AttentionDims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
  check_shape(k, Shape{d.batch, d.k_len, d.kv_heads, d.head_dim}, "attention: k (must match q's batch and head dim)");
  check_shape(v, k.shape, "attention: v (must match k)");
  check_shape(out, q.shape, "attention: out (must match q)");
  check_shape(lse, Shape{d.batch, d.q_heads, d.q_len}, "attention: lse (B, Hq, Tq)");
  LUMINA_CHECK(d.kv_heads > 0 && d.q_heads % d.kv_heads == 0,
               "{}: query heads {} must be a multiple of kv heads {}", op, d.q_heads, d.kv_heads);
  LUMINA_CHECK(d.q_len <= d.k_len, "{}: {} queries but only {} keys (causal attention needs Tq <= Tk)", op, d.q_len,
               d.k_len);
  return d;
}

template <class T>
void attention_forward_impl(const AttentionDims& d, T* out, T* lse, const T* q, const T* k, const T* v) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const int64_t ldq = d.q_row_stride(), ldk = d.kv_row_stride(), offset = d.k_len - d.q_len;
  const int64_t q_blocks = (d.q_len + kQueryBlock - 1) / kQueryBlock;
  // Tasks ordered (batch, kv head, query head of the group, query block): neighbours share k/v.
  const int64_t tasks = d.batch * d.q_heads * q_blocks;
  const bool parallel = d.batch * d.q_heads * d.q_len * d.k_len * d.head_dim >= kParallelMinWork;
#pragma omp parallel if (parallel)
  {
    std::vector<T> scores(static_cast<size_t>(kQueryBlock * kKeyBlock));
    std::vector<T> m(kQueryBlock), l(kQueryBlock), rescale(kQueryBlock);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (d.q_heads * q_blocks);
      const int64_t h = task / q_blocks % d.q_heads;
      const int64_t i0 = task % q_blocks * kQueryBlock;
      const int64_t g = h / d.group();
      const int64_t rows = std::min(kQueryBlock, d.q_len - i0);
      const T* q_blk = q + ((b * d.q_len + i0) * d.q_heads + h) * d.head_dim;  // (rows, D), ld ldq
      T* o_blk = out + ((b * d.q_len + i0) * d.q_heads + h) * d.head_dim;
      const int64_t keys = offset + i0 + rows;  // keys 0..keys-1 are visible to some row of the block
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), T(0));
      for (int64_t k0 = 0; k0 < keys; k0 += kKeyBlock) {
        const int64_t cols = std::min(kKeyBlock, keys - k0);
        const T* k_blk = k + ((b * d.k_len + k0) * d.kv_heads + g) * d.head_dim;  // (cols, D), ld ldk
        const T* v_blk = v + ((b * d.k_len + k0) * d.kv_heads + g) * d.head_dim;
        // S (rows, cols) = scale q k^T
        cpu::blas_gemm(false, true, rows, cols, d.head_dim, scale, q_blk, ldq, k_blk, ldk, T(0), scores.data(),
                       kKeyBlock);
        softmax_block_online(scores.data(), kKeyBlock, rows, cols, offset + i0 + 1 - k0, m.data(), l.data(),
                             rescale.data());
        if (k0 > 0) scale_rows(o_blk, ldq, rows, d.head_dim, rescale.data());
        // O (rows, D) (+)= P v
        cpu::blas_gemm(false, false, rows, d.head_dim, cols, T(1), scores.data(), kKeyBlock, v_blk, ldk,
                       k0 > 0 ? T(1) : T(0), o_blk, ldq);
      }
      for (int64_t r = 0; r < rows; ++r) rescale[r] = T(1) / l[r];
      scale_rows(o_blk, ldq, rows, d.head_dim, rescale.data());
      T* lse_blk = lse + (b * d.q_heads + h) * d.q_len + i0;
      for (int64_t r = 0; r < rows; ++r) lse_blk[r] = m[r] + std::log(l[r]);
    }
  }
}

template <class T>
void attention_backward_impl(const AttentionDims& d, T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k,
                             const T* v, const T* out, const T* lse) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const int64_t ldq = d.q_row_stride(), ldk = d.kv_row_stride(), group = d.group();
  const int64_t tasks = d.batch * d.kv_heads;
  const bool parallel = d.batch * d.q_heads * d.q_len * d.k_len * d.head_dim >= kParallelMinWork;
#pragma omp parallel if (parallel)
  {
    std::vector<T> p(static_cast<size_t>(kQueryBlock * kKeyBlock)), ds(p.size());
    std::vector<T> delta(kQueryBlock);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / d.kv_heads, g = task % d.kv_heads;
      const int64_t kv_base = (b * d.k_len * d.kv_heads + g) * d.head_dim;  // (b, t=0, g, 0)
      for (int64_t t = 0; t < d.k_len; ++t) {
        std::fill_n(dk + kv_base + t * ldk, d.head_dim, T(0));
        std::fill_n(dv + kv_base + t * ldk, d.head_dim, T(0));
      }
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i0 = 0; i0 < d.q_len; i0 += kQueryBlock) {
          const int64_t rows = std::min(kQueryBlock, d.q_len - i0);
          const int64_t q_off = ((b * d.q_len + i0) * d.q_heads + h) * d.head_dim;  // (rows, D), ld ldq
          const T* q_blk = q + q_off;
          const T* do_blk = dout + q_off;
          T* dq_blk = dq + q_off;
          const T* lse_blk = lse + (b * d.q_heads + h) * d.q_len + i0;
          row_dots(delta.data(), do_blk, out + q_off, ldq, rows, d.head_dim);
          const int64_t keys = i0 + rows;
          for (int64_t k0 = 0; k0 < keys; k0 += kKeyBlock) {
            const int64_t cols = std::min(kKeyBlock, keys - k0);
            const int64_t kv_off = kv_base + k0 * ldk;  // (cols, D), ld ldk
            // P (rows, cols) = scale q k^T, dP = dout v^T
            cpu::blas_gemm(false, true, rows, cols, d.head_dim, scale, q_blk, ldq, k + kv_off, ldk, T(0), p.data(),
                           kKeyBlock);
            cpu::blas_gemm(false, true, rows, cols, d.head_dim, T(1), do_blk, ldq, v + kv_off, ldk, T(0), ds.data(),
                           kKeyBlock);
            softmax_block_backward(p.data(), ds.data(), kKeyBlock, rows, cols, i0 + 1 - k0, lse_blk, delta.data());
            // dq (rows, D) (+)= scale dS k;  dk (cols, D) += scale dS^T q;  dv (cols, D) += P^T dout
            cpu::blas_gemm(false, false, rows, d.head_dim, cols, scale, ds.data(), kKeyBlock, k + kv_off, ldk,
                           k0 > 0 ? T(1) : T(0), dq_blk, ldq);
            cpu::blas_gemm(true, false, cols, d.head_dim, rows, scale, ds.data(), kKeyBlock, q_blk, ldq, T(1),
                           dk + kv_off, ldk);
            cpu::blas_gemm(true, false, cols, d.head_dim, rows, T(1), p.data(), kKeyBlock, do_blk, ldq, T(1),
                           dv + kv_off, ldk);
          }
        }
      }
    }
  }
}

}  // namespace

void CpuBackend::attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) {
  const AttentionDims d = check_attention_args(out, lse, q, k, v, "attention_forward");
  if (out.numel() == 0) return;
  cpu::dispatch_float(q.dtype, "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    attention_forward_impl(d, out.ptr<T>(), lse.ptr<T>(), q.ptr<T>(), k.ptr<T>(), v.ptr<T>());
  });
}

void CpuBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  const char* op = "attention_backward";
  const AttentionDims d = check_attention_args(out, lse, q, k, v, op);
  LUMINA_CHECK(d.q_len == d.k_len, "{}: backward needs Tq == Tk (training), got Tq {} and Tk {}", op, d.q_len,
               d.k_len);
  using Named = std::pair<const Tensor*, const char*>;
  for (const auto& [t, name] : {Named{&dq, "dq"}, Named{&dk, "dk"}, Named{&dv, "dv"}, Named{&dout, "dout"}})
    cpu::check_host_dtype(*t, q.dtype, op, name);
  check_shape(dq, q.shape, "attention_backward: dq (must match q)");
  check_shape(dout, q.shape, "attention_backward: dout (must match q)");
  check_shape(dk, k.shape, "attention_backward: dk (must match k)");
  check_shape(dv, k.shape, "attention_backward: dv (must match k)");
  if (q.numel() == 0) return;
  cpu::dispatch_float(q.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    attention_backward_impl(d, dq.ptr<T>(), dk.ptr<T>(), dv.ptr<T>(), dout.ptr<T>(), q.ptr<T>(), k.ptr<T>(),
                            v.ptr<T>(), out.ptr<T>(), lse.ptr<T>());
  });
}

}  // namespace lumina
