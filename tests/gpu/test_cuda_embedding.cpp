// Embedding forward (exact copy of table rows) and deterministic backward
// (dtable f32 += scatter of dout) against the CPU backend, with token counts
// that exercise the sort's shared-memory tiles (N <= 2048) and its global
// merge passes (N > 2048), heavy repeats of one token, and bad token ids.
// Bound: forward exact; backward 1e-5 (f32 sums of the same rounded values).
#include "cuda_parity.h"

namespace lumina::test {
namespace {

constexpr int64_t kVocab = 50;

// Token ids with many repeats: token 5 at every third position, the rest spread.
std::vector<int32_t> make_tokens(int64_t n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    tokens[static_cast<size_t>(i)] = i % 3 == 0 ? 5 : static_cast<int32_t>((i * i * 7 + 3) % kVocab);
  return tokens;
}

using CudaEmbedding = CudaParity;

TEST_F(CudaEmbedding, ForwardCopiesRows) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (int64_t channels : {24, 20}) {  // 20: bf16/f16 rows are not whole 16-byte packs
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " C" << channels);
      const int64_t n = 300;
      std::vector<int32_t> tokens = make_tokens(n);
      std::vector<float> table = random_values(kVocab * channels, 1, dt);
      std::vector<float> ref(static_cast<size_t>(n * channels));
      cpu->embedding_forward(host(ref, Shape{n, channels}), host_i32(tokens, Shape{n}),
                             host(table, Shape{kVocab, channels}));
      Tensor out = poisoned(dt, Shape{n, channels});
      gpu->embedding_forward(out, device_i32(tokens, Shape{n}), device(table, dt, Shape{kVocab, channels}));
      EXPECT_EQ(read(out), ref);
    }
}

TEST_F(CudaEmbedding, BackwardAccumulatesLikeCpu) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (int64_t n : {1, 300, 5000}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " N" << n);
      const int64_t channels = 24;
      std::vector<int32_t> tokens = make_tokens(n);
      std::vector<float> dout = random_values(n * channels, 2, dt);
      std::vector<float> dtable = random_values(kVocab * channels, 3, DType::f32);
      Tensor dtable_dev = device(dtable, DType::f32, Shape{kVocab, channels});
      gpu->embedding_backward(dtable_dev, device_i32(tokens, Shape{n}), device(dout, dt, Shape{n, channels}));
      cpu->embedding_backward(host(dtable, Shape{kVocab, channels}), host_i32(tokens, Shape{n}),
                              host(dout, Shape{n, channels}));
      EXPECT_LE(relative_error(read(dtable_dev), dtable), kTolF32);
    }
}

TEST_F(CudaEmbedding, BackwardIsBitwiseDeterministic) {
  const int64_t n = 4000, channels = 40;
  std::vector<int32_t> tokens = make_tokens(n);
  Tensor tokens_dev = device_i32(tokens, Shape{n});
  Tensor dout = device(random_values(n * channels, 4, DType::bf16), DType::bf16, Shape{n, channels});
  std::vector<float> zeros(static_cast<size_t>(kVocab * channels), 0.0f);
  Tensor first = device(zeros, DType::f32, Shape{kVocab, channels});
  Tensor second = device(zeros, DType::f32, Shape{kVocab, channels});
  gpu->embedding_backward(first, tokens_dev, dout);
  gpu->embedding_backward(second, tokens_dev, dout);
  EXPECT_EQ(read_bytes(first), read_bytes(second));
}

TEST_F(CudaEmbedding, BadTokenIdIsReportedAtSync) {
  const int64_t channels = 8;
  std::vector<int32_t> tokens{1, kVocab, 2};  // kVocab is one past the last row
  Tensor table = device(random_values(kVocab * channels, 5, DType::f32), DType::f32, Shape{kVocab, channels});
  Tensor out = poisoned(DType::f32, Shape{3, channels});
  gpu->embedding_forward(out, device_i32(tokens, Shape{3}), table);
  EXPECT_THROW(gpu->synchronize(), Error);
  EXPECT_NO_THROW(gpu->synchronize());  // reported once, then cleared
}

}  // namespace
}  // namespace lumina::test
