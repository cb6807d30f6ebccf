// Fused cross-entropy against the CPU backend: losses, argmax and (with
// dlosses) dlogits written in place; masked targets (< 0) give loss 0 and a
// zero gradient row; without dlosses the logits are left untouched; a target
// >= V is reported at the next sync.
// Bounds: losses 1e-5 (f32 math on the same rounded logits); dlogits per the
// logits' dtype (cuda_parity.h); argmax exact (first index on ties, both sides).
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

using CudaCrossEntropy = CudaParity;

TEST_F(CudaCrossEntropy, MatchesCpuWithMaskedTargets) {
  const int64_t rows = 37;
  uint64_t seed = 50;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    // 77: rows are not whole 16-byte packs; 40000 in bf16/f16 and 32000 in f32 exceed
    // the register kernel (streaming kernel); 256, 1000, 32000 in bf16/f16 use it.
    for (int64_t vocab : {1000, 77, 32000, 40000, 256}) {
      for (bool with_grad : {false, true}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " V" << vocab << " grad " << with_grad);
        const Shape shape{rows, vocab};
        std::vector<float> logits = random_values(rows * vocab, seed++, dt, 3.0);
        std::vector<int32_t> targets = make_targets(rows, vocab);
        std::vector<float> dlosses = random_values(rows, seed++, DType::f32, 0.1);
        for (float& d : dlosses) d = 1.0f / static_cast<float>(rows) + d * d;

        std::vector<float> cpu_logits = logits, losses(static_cast<size_t>(rows));
        std::vector<int32_t> argmax(static_cast<size_t>(rows));
        Tensor dl_host = with_grad ? host(dlosses, Shape{rows}) : Tensor();
        cpu->cross_entropy(host(cpu_logits, shape), host(losses, Shape{rows}), host_i32(argmax, Shape{rows}),
                           host_i32(targets, Shape{rows}), dl_host);

        Tensor logits_dev = device(logits, dt, shape);
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
    }
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
