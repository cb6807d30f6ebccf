// Token embedding: a row gather and its scatter-add.
//   forward:  out (N, C) = table (V, C) [tokens (N)]
//   backward: dtable (V, C) += sum over n with tokens[n] = v of dout[n]   (parameter gradient: +=)
// The backward parallelises over column chunks of C: each thread owns whole
// columns and adds the tokens in order, so there are no races and the sum
// order is the token order whatever the thread count.
#include <algorithm>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/cpu/simd.h"

namespace lumina {

namespace {

void check_tokens(const int32_t* tokens, int64_t n, int64_t vocab, const char* op) {
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab) bad = i;
  LUMINA_CHECK(bad < 0, "{}: token id {} at position {} is outside the vocabulary [0, {}) (check the tokenizer "
               "and model.vocab_size)", op, bad < 0 ? 0 : tokens[bad], bad, vocab);
}

// dtable[tokens[n], c0:c1] += dout[n, c0:c1] for n in order.
template <class T>
LUMINA_CPU_CLONES void scatter_add_columns(T* __restrict dtable, const int32_t* tokens, const T* __restrict dout,
                                           int64_t n, int64_t channels, int64_t c0, int64_t c1) {
  for (int64_t i = 0; i < n; ++i) {
    T* dst = dtable + tokens[i] * channels;
    const T* src = dout + i * channels;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
  }
}

}  // namespace

void CpuBackend::embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) {
  cpu::check_host(out, "embedding_forward", "out");
  cpu::check_host_dtype(tokens, DType::i32, "embedding_forward", "tokens");
  cpu::check_host_dtype(table, out.dtype, "embedding_forward", "table");
  LUMINA_CHECK(table.rank() == 2, "embedding_forward: table must be (V, C), got {}", table.shape.str());
  const int64_t n = tokens.numel(), vocab = table.dim(0), channels = table.dim(1);
  check_shape(out, Shape{n, channels}, "embedding_forward: out");
  const int32_t* tok = tokens.ptr<int32_t>();
  check_tokens(tok, n, vocab, "embedding_forward");
  const size_t row_bytes = static_cast<size_t>(channels) * dtype_size_bytes(out.dtype);
  const char* src = static_cast<const char*>(table.data);
  char* dst = static_cast<char*>(out.data);
  // A row copy works for any element type.
#pragma omp parallel for schedule(static) if (n * channels > 65536)
  for (int64_t i = 0; i < n; ++i) std::copy_n(src + tok[i] * row_bytes, row_bytes, dst + i * row_bytes);
}

void CpuBackend::embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) {
  cpu::check_host(dtable, "embedding_backward", "dtable");
  cpu::check_host_dtype(tokens, DType::i32, "embedding_backward", "tokens");
  cpu::check_host_dtype(dout, dtable.dtype, "embedding_backward", "dout");
  LUMINA_CHECK(dtable.rank() == 2, "embedding_backward: dtable must be (V, C), got {}", dtable.shape.str());
  const int64_t n = tokens.numel(), vocab = dtable.dim(0), channels = dtable.dim(1);
  check_shape(dout, Shape{n, channels}, "embedding_backward: dout");
  const int32_t* tok = tokens.ptr<int32_t>();
  check_tokens(tok, n, vocab, "embedding_backward");
  cpu::dispatch_float(dtable.dtype, "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    // Column chunks of 64 bytes or more, so no two threads share a cache line of dtable.
    const int64_t column_chunk = std::max<int64_t>(64 / sizeof(T), (channels + 7) / 8 / 16 * 16);
    const int64_t chunks = (channels + column_chunk - 1) / column_chunk;
    T* dt = dtable.ptr<T>();
    const T* dy = dout.ptr<T>();
#pragma omp parallel for schedule(static) if (chunks > 1 && n * channels > 65536)
    for (int64_t c = 0; c < chunks; ++c)
      scatter_add_columns(dt, tok, dy, n, channels, c * column_chunk, std::min(channels, (c + 1) * column_chunk));
  });
}

}  // namespace lumina
