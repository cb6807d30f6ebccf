// CudaBackend attention_forward / attention_backward against the CPU backend.
// Inputs are drawn once, rounded to the GPU dtype, and fed to both sides (the
// CPU computes in f32 on the rounded values). Outputs start as NaN so a value
// the GPU never writes fails the test. Tolerances, as ||x - ref|| / ||ref||:
//   bf16 / f16: 2e-2 (inputs, P and dS are rounded to 16 bits inside the kernels)
//   f32:        1e-5
// The bf16/f16 cases meant for cuDNN assert that cuDNN runs them (not the
// reference kernels), so a broken cuDNN path cannot hide behind the fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lumina/backend/backend.h"
#include "lumina/backend/cuda/attention.h"
#include "lumina/backend/cuda/cuda_backend.h"
#include "lumina/core/buffer.h"
#include "lumina/core/rng.h"

namespace lumina {
namespace {

constexpr double kTol16 = 2e-2;
constexpr double kTol32 = 1e-5;

float round_to(DType t, float x) {
  if (t == DType::bf16) return to_float(to_bf16(x));
  if (t == DType::f16) return to_float(to_f16(x));
  return x;
}

// n values ~ N(0, 1), rounded to `t`.
std::vector<float> random_values(int64_t n, uint64_t seed, DType t) {
  std::vector<float> v(static_cast<size_t>(n));
  Rng(seed, RngPurpose::test, 0).fill_normal(v.data(), n, 0.0, 1.0);
  for (float& x : v) x = round_to(t, x);
  return v;
}

double relative_error(const std::vector<float>& x, const std::vector<float>& ref) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(x[i]) - ref[i];
    diff += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(diff / norm);  // NaN when x holds a NaN
}

class Tensors {
 public:
  explicit Tensors(Backend& backend) : backend_(backend) {}

  // A tensor on the backend's device holding `values` in dtype t.
  Tensor make(const std::vector<float>& values, DType t, Shape s) {
    Tensor host = host_tensor(t, s);
    for (int64_t i = 0; i < s.numel(); ++i) set(host, i, values[static_cast<size_t>(i)]);
    if (backend_.device() == Device::cpu) return host;
    Tensor dev = empty(t, s);
    backend_.copy(dev, host);
    return dev;
  }
  // A device tensor filled with NaN.
  Tensor poisoned(DType t, Shape s) {
    Tensor dev = empty(t, s);
    backend_.fill(dev, std::numeric_limits<double>::quiet_NaN());
    return dev;
  }
  std::vector<float> read(const Tensor& t) {
    Tensor host = t;
    if (t.device != Device::cpu) {
      host = host_tensor(t.dtype, t.shape);
      backend_.copy(host, t);
    }
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = get(host, i);
    return v;
  }

 private:
  Tensor empty(DType t, Shape s) {
    buffers_.push_back(backend_.allocate(static_cast<size_t>(s.numel()) * dtype_size_bytes(t)));
    return buffers_.back().as_tensor(t, s);
  }
  Tensor host_tensor(DType t, Shape s) {
    buffers_.push_back(Buffer::host(static_cast<size_t>(s.numel()) * dtype_size_bytes(t)));
    return buffers_.back().as_tensor(t, s);
  }
  static void set(Tensor& t, int64_t i, float x) {
    if (t.dtype == DType::bf16) t.ptr<bf16>()[i] = to_bf16(x);
    else if (t.dtype == DType::f16) t.ptr<f16>()[i] = to_f16(x);
    else t.ptr<float>()[i] = x;
  }
  static float get(const Tensor& t, int64_t i) {
    if (t.dtype == DType::bf16) return to_float(t.ptr<bf16>()[i]);
    if (t.dtype == DType::f16) return to_float(t.ptr<f16>()[i]);
    return t.ptr<float>()[i];
  }

  Backend& backend_;
  std::vector<Buffer> buffers_;
};

struct Case {
  int64_t batch, q_len, kv_len, q_heads, kv_heads, head_dim;
  DType dtype;
  bool expect_cudnn;  // bf16/f16 shapes that cuDNN's fused attention must take
};

std::string describe(const Case& c) {
  return "B=" + std::to_string(c.batch) + " Tq=" + std::to_string(c.q_len) + " Tk=" + std::to_string(c.kv_len) +
         " Hq=" + std::to_string(c.q_heads) + " Hkv=" + std::to_string(c.kv_heads) +
         " D=" + std::to_string(c.head_dim) + " " + std::string(dtype_name(c.dtype));
}

AttentionShape shape_of(const Case& c) {
  AttentionShape s;
  s.batch = c.batch;
  s.q_len = c.q_len;
  s.kv_len = c.kv_len;
  s.q_heads = c.q_heads;
  s.kv_heads = c.kv_heads;
  s.head_dim = c.head_dim;
  return s;
}

class CudaAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0);
  }

  // Forward (and, when q_len == kv_len, backward) parity for one case.
  void check_case(const Case& c, int backward_calls = 1) {
    SCOPED_TRACE(describe(c));
    const double tol = c.dtype == DType::f32 ? kTol32 : kTol16;
    const Shape q_shape{c.batch, c.q_len, c.q_heads, c.head_dim};
    const Shape kv_shape{c.batch, c.kv_len, c.kv_heads, c.head_dim};
    const Shape lse_shape{c.batch, c.q_heads, c.q_len};
    const auto q = random_values(q_shape.numel(), 1, c.dtype);
    const auto k = random_values(kv_shape.numel(), 2, c.dtype);
    const auto v = random_values(kv_shape.numel(), 3, c.dtype);
    const bool backward = c.q_len == c.kv_len;
    if (c.expect_cudnn) {
      EXPECT_EQ(cuda_attention_fallback_reason(0, shape_of(c), c.dtype, false), "");
      if (backward) EXPECT_EQ(cuda_attention_fallback_reason(0, shape_of(c), c.dtype, true), "");
    }

    Tensors ct(*cpu_), gt(*gpu_);
    const Tensor cq = ct.make(q, DType::f32, q_shape), ck = ct.make(k, DType::f32, kv_shape),
                 cv = ct.make(v, DType::f32, kv_shape);
    const Tensor cout_ = ct.make(std::vector<float>(q.size()), DType::f32, q_shape);
    const Tensor clse = ct.make(std::vector<float>(static_cast<size_t>(lse_shape.numel())), DType::f32, lse_shape);
    cpu_->attention_forward(cout_, clse, cq, ck, cv);

    const Tensor gq = gt.make(q, c.dtype, q_shape), gk = gt.make(k, c.dtype, kv_shape),
                 gv = gt.make(v, c.dtype, kv_shape);
    const Tensor gout = gt.poisoned(c.dtype, q_shape), glse = gt.poisoned(DType::f32, lse_shape);
    gpu_->attention_forward(gout, glse, gq, gk, gv);
    EXPECT_LE(relative_error(gt.read(gout), ct.read(cout_)), tol) << "out";
    EXPECT_LE(relative_error(gt.read(glse), ct.read(clse)), tol) << "lse";
    if (!backward) return;

    const auto dout = random_values(q_shape.numel(), 4, c.dtype);
    const Tensor cdout = ct.make(dout, DType::f32, q_shape);
    const Tensor cdq = ct.make(std::vector<float>(q.size()), DType::f32, q_shape);
    const Tensor cdk = ct.make(std::vector<float>(k.size()), DType::f32, kv_shape);
    const Tensor cdv = ct.make(std::vector<float>(v.size()), DType::f32, kv_shape);
    cpu_->attention_backward(cdq, cdk, cdv, cdout, cq, ck, cv, cout_, clse);

    const Tensor gdout = gt.make(dout, c.dtype, q_shape);
    for (int call = 0; call < backward_calls; ++call) {
      SCOPED_TRACE("backward call " + std::to_string(call + 1));
      const Tensor gdq = gt.poisoned(c.dtype, q_shape), gdk = gt.poisoned(c.dtype, kv_shape),
                   gdv = gt.poisoned(c.dtype, kv_shape);
      gpu_->attention_backward(gdq, gdk, gdv, gdout, gq, gk, gv, gout, glse);
      EXPECT_LE(relative_error(gt.read(gdq), ct.read(cdq)), tol) << "dq";
      EXPECT_LE(relative_error(gt.read(gdk), ct.read(cdk)), tol) << "dk";
      EXPECT_LE(relative_error(gt.read(gdv), ct.read(cdv)), tol) << "dv";
    }
  }

  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_F(CudaAttention, Bf16GroupedQueryTwoToOneOddLength) { check_case({2, 100, 100, 4, 2, 64, DType::bf16, true}); }

TEST_F(CudaAttention, Bf16GroupedQueryFourToOneHeadDim128) {
  check_case({1, 128, 128, 16, 4, 128, DType::bf16, true});
}

TEST_F(CudaAttention, Bf16MultiHeadLengthNotMultipleOf128) { check_case({2, 200, 200, 4, 4, 128, DType::bf16, true}); }

TEST_F(CudaAttention, Bf16BackwardRepeatsExactly) {
  // A second backward of the same shape reuses the cached plan and workspace; its dq must not keep the first's sums.
  check_case({2, 64, 64, 8, 2, 64, DType::bf16, true}, 2);
}

TEST_F(CudaAttention, F16GroupedQuery) { check_case({2, 96, 96, 8, 2, 64, DType::f16, true}); }

// KV-cache calls (q_len < kv_len) run on the reference kernels by design (attention.h).
TEST_F(CudaAttention, Bf16DecodeSingleQuery) {
  const Case c{3, 1, 77, 8, 2, 64, DType::bf16, false};
  EXPECT_NE(cuda_attention_fallback_reason(0, shape_of(c), c.dtype, false), "");
  check_case(c);
}

TEST_F(CudaAttention, Bf16DecodeLongCacheManyChunks) { check_case({2, 4, 1000, 8, 2, 128, DType::bf16, false}); }

TEST_F(CudaAttention, Bf16PrefillContinuation) { check_case({2, 37, 100, 4, 2, 128, DType::bf16, false}); }

TEST_F(CudaAttention, Bf16HeadDimNotMultipleOf8UsesReference) {
  const Case c{2, 9, 9, 2, 1, 4, DType::bf16, false};
  EXPECT_NE(cuda_attention_fallback_reason(0, shape_of(c), c.dtype, false), "");
  check_case(c);
}

TEST_F(CudaAttention, F32GroupedQuery) { check_case({2, 50, 50, 4, 2, 64, DType::f32, false}); }

TEST_F(CudaAttention, F32MultiHeadOddHeadDim) { check_case({1, 33, 33, 3, 3, 20, DType::f32, false}); }

TEST_F(CudaAttention, F32Decode) { check_case({2, 3, 20, 4, 1, 32, DType::f32, false}); }

TEST_F(CudaAttention, F32DecodeLongCache) { check_case({1, 2, 300, 4, 4, 64, DType::f32, false}); }

TEST_F(CudaAttention, RejectsBadShapes) {
  Tensors gt(*gpu_);
  const auto make = [&](Shape s) { return gt.poisoned(DType::bf16, s); };
  const Tensor lse = gt.poisoned(DType::f32, {1, 4, 8});
  // q_len > kv_len
  EXPECT_THROW(gpu_->attention_forward(make({1, 8, 4, 64}), lse, make({1, 8, 4, 64}), make({1, 4, 2, 64}),
                                       make({1, 4, 2, 64})),
               Error);
  // query heads not a multiple of key/value heads
  const Tensor lse3 = gt.poisoned(DType::f32, {1, 3, 8});
  EXPECT_THROW(gpu_->attention_forward(make({1, 8, 3, 64}), lse3, make({1, 8, 3, 64}), make({1, 8, 2, 64}),
                                       make({1, 8, 2, 64})),
               Error);
  // backward with q_len < kv_len
  const Tensor lse_decode = gt.poisoned(DType::f32, {1, 4, 4});
  EXPECT_THROW(gpu_->attention_backward(make({1, 4, 4, 64}), make({1, 8, 2, 64}), make({1, 8, 2, 64}),
                                        make({1, 4, 4, 64}), make({1, 4, 4, 64}), make({1, 8, 2, 64}),
                                        make({1, 8, 2, 64}), make({1, 4, 4, 64}), lse_decode),
               Error);
  // lse must be f32
  EXPECT_THROW(gpu_->attention_forward(make({1, 8, 4, 64}), make({1, 4, 8}), make({1, 8, 4, 64}), make({1, 8, 2, 64}),
                                       make({1, 8, 2, 64})),
               Error);
}

}  // namespace
}  // namespace lumina
