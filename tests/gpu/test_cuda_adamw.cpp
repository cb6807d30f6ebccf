// AdamW on a flat f32 range against the CPU backend, packed (numel % 4 == 0,
// aligned) and unpacked, with weight decay, bias correction at step 3 and a
// gradient scale. Bounds: param, m, v 1e-5; the update p_new - p_old 1e-3
// (it is ~1e-3 of p, so f32 rounding of p alone is ~1e-4 of it).
#include "cuda_parity.h"

namespace lumina::test {
namespace {

using CudaAdamW = CudaParity;

TEST_F(CudaAdamW, MatchesCpu) {
  AdamWParams h;
  h.lr = 1e-3;
  h.weight_decay = 0.1;
  h.step = 3;
  h.grad_scale = 0.5;
  for (int64_t n : {4096, 1027}) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    const Shape shape{n};
    std::vector<float> param = random_values(n, 70, DType::f32), grad = random_values(n, 71, DType::f32);
    std::vector<float> m = random_values(n, 72, DType::f32, 0.1), v = random_values(n, 73, DType::f32, 0.1);
    for (float& x : v) x *= x;  // second moments are >= 0
    const std::vector<float> param_before = param;
    Tensor p_dev = device(param, DType::f32, shape), m_dev = device(m, DType::f32, shape);
    Tensor v_dev = device(v, DType::f32, shape);
    gpu->adamw_update(p_dev, device(grad, DType::f32, shape), m_dev, v_dev, h, Tensor{});
    cpu->adamw_update(host(param, shape), host(grad, shape), host(m, shape), host(v, shape), h, Tensor{});

    const std::vector<float> p_gpu = read(p_dev);
    EXPECT_LE(relative_error(p_gpu, param), kTolF32);
    EXPECT_LE(relative_error(read(m_dev), m), kTolF32);
    EXPECT_LE(relative_error(read(v_dev), v), kTolF32);
    std::vector<float> step_gpu(p_gpu.size()), step_cpu(p_gpu.size());
    for (size_t i = 0; i < p_gpu.size(); ++i) {
      step_gpu[i] = p_gpu[i] - param_before[i];
      step_cpu[i] = param[i] - param_before[i];
    }
    EXPECT_LE(relative_error(step_gpu, step_cpu), 1e-3);
  }
}

// With a param_copy, the same update, and the copy is bitwise what cast makes of
// the updated param: bf16 and f16, packed and unpacked, and a copy whose start
// is not 8-byte aligned (the f32 operands are; the kernel falls back to scalars).
TEST_F(CudaAdamW, CopyIsTheCastOfTheUpdate) {
  AdamWParams h;
  h.lr = 1e-3;
  h.weight_decay = 0.1;
  for (DType copy_dtype : {DType::bf16, DType::f16})
    for (int64_t n : {4096, 1027})
      for (int64_t copy_offset : {0, 1}) {
        SCOPED_TRACE(testing::Message() << dtype_name(copy_dtype) << " n " << n << " copy offset " << copy_offset);
        const Shape shape{n};
        std::vector<float> param = random_values(n, 80, DType::f32), grad = random_values(n, 81, DType::f32);
        const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
        Tensor p_dev = device(param, DType::f32, shape), g_dev = device(grad, DType::f32, shape);
        Tensor m_dev = device(zeros, DType::f32, shape), v_dev = device(zeros, DType::f32, shape);
        Tensor p_plain = device(param, DType::f32, shape);
        Tensor m_plain = device(zeros, DType::f32, shape), v_plain = device(zeros, DType::f32, shape);
        const Tensor copy_buffer = poisoned(copy_dtype, Shape{n + 1});
        const Tensor copy = copy_buffer.slice(copy_offset, copy_offset + n);
        gpu->adamw_update(p_dev, g_dev, m_dev, v_dev, h, copy);
        gpu->adamw_update(p_plain, g_dev, m_plain, v_plain, h, Tensor{});
        EXPECT_EQ(read_bytes(p_dev), read_bytes(p_plain));
        EXPECT_EQ(read_bytes(m_dev), read_bytes(m_plain));
        const Tensor cast = poisoned(copy_dtype, shape);
        gpu->cast(cast, p_plain);
        EXPECT_EQ(read_bytes(copy), read_bytes(cast));
      }
}

}  // namespace
}  // namespace lumina::test
