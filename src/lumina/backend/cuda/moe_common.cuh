#pragma once
// Shared by the MoE op files (moe_router.cu, moe_dispatch.cu, moe_combine.cu):
// their size limits and operand checks (nvcc only).
#include <cstdint>

#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina::cuda {

// The router keeps a token's experts in registers (kMoeMaxExperts / 32 per lane)
// and dispatch counts per expert in shared memory; k choices live in registers.
constexpr int kMoeMaxExperts = 256;
constexpr int kMoeMaxTopK = 8;

// Throws unless t is a GPU tensor of dtype `want` and shape s.
inline void check_moe_operand(const Tensor& t, DType want, const Shape& s, const char* op, const char* name) {
  expect_device(t, op, name);
  expect_dtype(t, want, op, name);
  LUMINA_CHECK(t.shape == s, "{}: {} has shape {}, expected {}", op, name, t.shape.str(), s.str());
}

// Throws unless t is an i32 GPU tensor of n elements (slot_row may be (N*k) or (N, k)).
inline void check_moe_indices(const Tensor& t, int64_t n, const char* op, const char* name) {
  expect_device(t, op, name);
  expect_dtype(t, DType::i32, op, name);
  LUMINA_CHECK(t.numel() == n, "{}: {} has shape {} ({} elements), expected {} elements", op, name, t.shape.str(),
               t.numel(), n);
}

// Throws unless 1 <= E <= kMoeMaxExperts and 1 <= k <= min(E, kMoeMaxTopK).
inline void check_moe_sizes(int64_t experts, int64_t top_k, const char* op) {
  LUMINA_CHECK(experts >= 1 && experts <= kMoeMaxExperts,
               "{}: {} experts; the CUDA MoE kernels take 1 to {} (lower num_experts)", op, experts, kMoeMaxExperts);
  LUMINA_CHECK(top_k >= 1 && top_k <= experts && top_k <= kMoeMaxTopK,
               "{}: top-k = {} must be in [1, min(E = {}, {})] on CUDA (lower moe_top_k)", op, top_k, experts,
               kMoeMaxTopK);
}

}  // namespace lumina::cuda
