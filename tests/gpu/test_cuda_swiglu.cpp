// SwiGLU forward and backward against the CPU backend, in 16-byte packs (numel
// a multiple of the pack) and in single elements; and the packed-rows ops over
// (N, 2F) [gate | up] with F a multiple of the pack (2048, 40) or not (13).
// Bounds per dtype (cuda_parity.h).
#include "cuda_parity.h"

namespace lumina::test {
namespace {

using CudaSwiglu = CudaParity;

TEST_F(CudaSwiglu, ForwardAndBackwardMatchCpu) {
  uint64_t seed = 40;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (Shape shape : {Shape{33, 40}, Shape{7, 13}}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " " << shape.str());
      std::vector<float> gate = random_values(shape.numel(), seed++, dt, 2.0);
      std::vector<float> up = random_values(shape.numel(), seed++, dt);
      std::vector<float> dout = random_values(shape.numel(), seed++, dt);
      Tensor gate_dev = device(gate, dt, shape), up_dev = device(up, dt, shape);

      std::vector<float> out(static_cast<size_t>(shape.numel()));
      cpu->swiglu_forward(host(out, shape), host(gate, shape), host(up, shape));
      Tensor out_dev = poisoned(dt, shape);
      gpu->swiglu_forward(out_dev, gate_dev, up_dev);
      EXPECT_LE(relative_error(read(out_dev), out), tolerance(dt));

      std::vector<float> dgate(out.size()), dup(out.size());
      cpu->swiglu_backward(host(dgate, shape), host(dup, shape), host(dout, shape), host(gate, shape),
                           host(up, shape));
      Tensor dgate_dev = poisoned(dt, shape), dup_dev = poisoned(dt, shape);
      gpu->swiglu_backward(dgate_dev, dup_dev, device(dout, dt, shape), gate_dev, up_dev);
      EXPECT_LE(relative_error(read(dgate_dev), dgate), tolerance(dt));
      EXPECT_LE(relative_error(read(dup_dev), dup), tolerance(dt));
    }
}

TEST_F(CudaSwiglu, PackedRowsMatchCpu) {
  uint64_t seed = 60;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (auto [rows, F] : {std::pair<int64_t, int64_t>{9, 2048}, {33, 40}, {7, 13}}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " rows " << rows << " F " << F);
      const Shape packed{rows, 2 * F}, half{rows, F};
      std::vector<float> gate_up = random_values(packed.numel(), seed++, dt, 2.0);
      std::vector<float> dout = random_values(half.numel(), seed++, dt);
      Tensor gate_up_dev = device(gate_up, dt, packed);

      std::vector<float> out(static_cast<size_t>(half.numel()));
      cpu->swiglu_packed_forward(host(out, half), host(gate_up, packed));
      Tensor out_dev = poisoned(dt, half);
      gpu->swiglu_packed_forward(out_dev, gate_up_dev);
      EXPECT_LE(relative_error(read(out_dev), out), tolerance(dt));

      std::vector<float> dgate_up(gate_up.size());
      cpu->swiglu_packed_backward(host(dgate_up, packed), host(dout, half), host(gate_up, packed));
      Tensor dgate_up_dev = poisoned(dt, packed);
      gpu->swiglu_packed_backward(dgate_up_dev, device(dout, dt, half), gate_up_dev);
      EXPECT_LE(relative_error(read(dgate_up_dev), dgate_up), tolerance(dt));
    }
}

}  // namespace
}  // namespace lumina::test
