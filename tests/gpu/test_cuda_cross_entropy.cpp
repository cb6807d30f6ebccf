// Fused cross-entropy against the CPU backend: losses, argmax and (with
// dlosses) dlogits written in place; masked targets (< 0) give loss 0 and a
// zero gradient row; without dlosses the logits are left untouched; a target
// >= V is reported at the next sync. Shapes cover rows off 16 bytes, rows
// staged whole in shared memory and rows past the stage, ties for the argmax,
// an all-masked chunk, and bitwise repeatability.
// Bounds: losses 1e-5 (f32 math on the same rounded logits); dlogits per the
// logits' dtype (cuda_parity.h); argmax exact (first index on ties, both sides).
#include <algorithm>
#include <initializer_list>

#include "cuda_parity.h"

namespace lumina::test {
namespace {

// Targets in [0, vocab), every fifth row masked (-1).
std::vector<int32_t> make_targets(int64_t rows, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i)
    t[static_cast<size_t>(i)] = i % 5 == 2 ? -1 : static_cast<int32_t>((i * 37 + 11) % vocab);
  return t;
}

class CudaCrossEntropy : public CudaParity {
 protected:
  // Runs both backends on `logits` (rows, vocab; already rounded to dt), stored on
  // the GPU in dt `offset` elements past the start of an allocation (offset 1 puts
  // no row on 16 bytes), and checks losses, argmax, masked rows and, with_grad,
  // the gradients written in place (else the logits must be left untouched).
  void check(DType dt, int64_t rows, int64_t vocab, const std::vector<float>& logits,
             const std::vector<int32_t>& targets, bool with_grad, uint64_t seed, int64_t offset = 0) {
    const Shape shape{rows, vocab};
    std::vector<float> dlosses = random_values(rows, seed, DType::f32, 0.1);
    for (float& d : dlosses) d = 1.0f / static_cast<float>(rows) + d * d;

    std::vector<float> cpu_logits = logits, losses(static_cast<size_t>(rows));
    std::vector<int32_t> argmax(static_cast<size_t>(rows)), cpu_targets = targets;
    Tensor dl_host = with_grad ? host(dlosses, Shape{rows}) : Tensor();
    cpu->cross_entropy(host(cpu_logits, shape), host(losses, Shape{rows}), host_i32(argmax, Shape{rows}),
                       host_i32(cpu_targets, Shape{rows}), dl_host);

    std::vector<float> padded(static_cast<size_t>(offset), 0.0f);
    padded.insert(padded.end(), logits.begin(), logits.end());
    Tensor allocation = device(padded, dt, Shape{rows * vocab + offset});
    Tensor logits_dev(static_cast<char*>(allocation.data) + offset * static_cast<int64_t>(dtype_size_bytes(dt)), dt,
                      Device::cuda, shape);
    const std::vector<uint8_t> logits_before = read_bytes(logits_dev);
    Tensor losses_dev = poisoned(DType::f32, Shape{rows}), argmax_dev = poisoned(DType::i32, Shape{rows});
    Tensor dl_dev = with_grad ? device(dlosses, DType::f32, Shape{rows}) : Tensor();
    gpu->cross_entropy(logits_dev, losses_dev, argmax_dev, device_i32(targets, Shape{rows}), dl_dev);

    const std::vector<float> gpu_losses = read(losses_dev);
    EXPECT_LE(relative_error(gpu_losses, losses), kTolF32);
    EXPECT_EQ(read_i32(argmax_dev), argmax);
    const std::vector<float> gpu_logits = read(logits_dev);
    for (int64_t r = 0; r < rows; ++r) {
      if (targets[static_cast<size_t>(r)] >= 0) continue;
      EXPECT_EQ(gpu_losses[static_cast<size_t>(r)], 0.0f) << "masked row " << r;
      if (!with_grad) continue;
      for (int64_t v = 0; v < vocab; ++v)
        ASSERT_EQ(gpu_logits[static_cast<size_t>(r * vocab + v)], 0.0f) << "masked row " << r;
    }
    if (with_grad) EXPECT_LE(relative_error(gpu_logits, cpu_logits), tolerance(dt));
    else EXPECT_EQ(read_bytes(logits_dev), logits_before);
  }

  // check() for every dtype, each vocab and with and without gradients: random
  // logits ~ N(0, 3^2), make_targets; seeds drawn from `seed` upwards.
  void check_random_rows(int64_t rows, std::initializer_list<int64_t> vocabs, uint64_t seed, int64_t offset = 0) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (int64_t vocab : vocabs)
        for (bool with_grad : {false, true}) {
          SCOPED_TRACE(testing::Message() << dtype_name(dt) << " V" << vocab << " grad " << with_grad);
          std::vector<float> logits = random_values(rows * vocab, seed++, dt, 3.0);
          check(dt, rows, vocab, logits, make_targets(rows, vocab), with_grad, seed++, offset);
        }
  }
};

TEST_F(CudaCrossEntropy, MatchesCpuWithMaskedTargets) {
  // 77: rows are not whole 16-byte packs (head and tail elements); f32 rows of
  // 32000 and 40000 exceed the shared-memory stage of an H100 (112 KB: their
  // last packs are read again from global memory), the others fit it.
  check_random_rows(37, {1000, 77, 32000, 40000, 256}, 50);
}

// Long rows: 50257 (GPT-2's vocabulary: odd, rows off 16 bytes, 100 KB in bf16,
// staged whole) and 262144 (mostly past the stage in every dtype).
TEST_F(CudaCrossEntropy, MatchesCpuOnLongRows) { check_random_rows(5, {50257, 262144}, 150); }

// A pointer one element past 16 bytes: even when V is a multiple of the pack,
// every row has head and tail elements; V = 5 is all head and tail.
TEST_F(CudaCrossEntropy, MatchesCpuOnUnalignedRows) { check_random_rows(11, {1024, 5}, 250, 1); }

// Rows built for the argmax (first index of the maximum): the maximum at the
// last index; ties in different packs, threads and warps, in the head and the
// tail of unaligned rows; a constant row (all tie: 0); a runner-up before it.
// Targets on and off the maximum, one row masked.
TEST_F(CudaCrossEntropy, ArgmaxTakesTheFirstMaximum) {
  const int64_t rows = 6;
  uint64_t seed = 350;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (int64_t vocab : {13, 1031, 32768, 50257})
      for (bool with_grad : {false, true}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " V" << vocab << " grad " << with_grad);
        std::vector<float> logits = random_values(rows * vocab, seed++, dt);  // |x| < 10 here
        auto at = [&](int64_t r, int64_t v) -> float& { return logits[static_cast<size_t>(r * vocab + v)]; };
        const int64_t last = vocab - 1;
        at(0, last) = 10.0f;
        at(1, 3) = at(1, vocab / 2) = at(1, last) = 10.0f;
        std::fill_n(logits.begin() + 2 * vocab, vocab, 0.0f);
        at(3, 0) = at(3, last) = 10.0f;
        at(4, vocab / 3 + 1) = at(4, 2 * vocab / 3) = at(4, vocab - 2) = 10.0f;
        at(5, 1) = 9.9375f;  // exact in bf16 and f16
        at(5, last) = 10.0f;
        const std::vector<int32_t> targets{static_cast<int32_t>(last), 0, static_cast<int32_t>(vocab / 2), -1,
                                           static_cast<int32_t>(last), 1};
        check(dt, rows, vocab, logits, targets, with_grad, seed++);
      }
}

// Every row masked: losses 0, gradients exactly 0, argmax still computed.
TEST_F(CudaCrossEntropy, AllMaskedChunk) {
  const int64_t rows = 16, vocab = 32768;
  uint64_t seed = 450;
  for (DType dt : {DType::f32, DType::bf16})
    for (bool with_grad : {false, true}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " grad " << with_grad);
      std::vector<float> logits = random_values(rows * vocab, seed++, dt, 3.0);
      check(dt, rows, vocab, logits, std::vector<int32_t>(static_cast<size_t>(rows), -1), with_grad, seed++);
    }
}

// Same inputs, same bits: losses, argmax and gradients of two runs.
TEST_F(CudaCrossEntropy, RepeatsBitwise) {
  const int64_t rows = 9, vocab = 50257;
  const std::vector<float> logits = random_values(rows * vocab, 550, DType::bf16, 3.0);
  const std::vector<int32_t> targets = make_targets(rows, vocab);
  const std::vector<float> dlosses = random_values(rows, 551, DType::f32);
  std::vector<std::vector<uint8_t>> results[2];
  for (auto& result : results) {
    Tensor x = device(logits, DType::bf16, Shape{rows, vocab});
    Tensor losses = poisoned(DType::f32, Shape{rows}), argmax = poisoned(DType::i32, Shape{rows});
    gpu->cross_entropy(x, losses, argmax, device_i32(targets, Shape{rows}), device(dlosses, DType::f32, Shape{rows}));
    result = {read_bytes(losses), read_bytes(argmax), read_bytes(x)};
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST_F(CudaCrossEntropy, TargetOutOfRangeIsReportedAtSync) {
  std::vector<float> logits = random_values(2 * 10, 60, DType::f32);
  Tensor losses = poisoned(DType::f32, Shape{2}), argmax = poisoned(DType::i32, Shape{2});
  gpu->cross_entropy(device(logits, DType::f32, Shape{2, 10}), losses, argmax, device_i32({3, 10}, Shape{2}),
                     Tensor());
  EXPECT_THROW(gpu->synchronize(), Error);
}

}  // namespace
}  // namespace lumina::test
