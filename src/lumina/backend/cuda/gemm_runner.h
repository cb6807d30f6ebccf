#pragma once
// GemmRunner: row-major gemm on cuBLASLt, f32 accumulation (CUBLAS_COMPUTE_32F:
// f32 gemm stays exact f32, no TF32).
//
// Row-major is handled by swapping operands: a row-major (M,N) matrix is a
// column-major (N,M) one, so c = op(a) op(b) becomes c^T = op(b)^T op(a)^T and
// cuBLASLt sees m = N, n = M with b as its first operand.
//
// Strided batch: batch > 1 runs `batch` such gemms in one cublasLtMatmul, entry g
// at a/b/c + g * stride_a/b/c elements (batch count and strides on the layouts).
//
// One handle and one 32 MiB workspace per runner, allocated once. The matmul
// descriptor, the three layouts and the algorithm are cached per problem
// (shape, batch, transposes, dtypes, pointer alignments): after the first call of a
// shape, a gemm is one map lookup and one cublasLtMatmul.
//
// Autotuning: the first call of a problem times cuBLASLt's top kCandidates
// heuristic algorithms on the real operands (into a temporary output, so c is
// untouched), keeps the fastest and computes c with it; every later call uses
// the same algorithm, so a process repeats its results bitwise. The heuristic's first choice is often not
// the fastest for the thin shapes of a transformer (k/v projections, weight
// gradients). The choice can differ between processes, so GPU results are not
// bitwise reproducible across runs; LUMINA_GEMM_AUTOTUNE=0 keeps the
// heuristic's first choice instead.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "lumina/core/dtype.h"

namespace lumina {

struct GemmProblem {
  int64_t m = 0, n = 0, k = 0;  // c (m,n) = op(a) (m,k) @ op(b) (k,n), row-major
  bool trans_a = false, trans_b = false;
  DType ab = DType::f32;        // a and b: f32, bf16 or f16
  DType c = DType::f32;         // ab, or f32 with bf16/f16 a and b
  uint32_t align_a = 256, align_b = 256, align_c = 256;  // pointer alignment, bytes (power of 2, <= 256)
  int64_t batch = 1;                             // number of gemms; 1: a plain gemm (strides unused, leave 0)
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements from one batch entry to the next

  auto key() const {
    return std::tuple(m, n, k, trans_a, trans_b, ab, c, align_a, align_b, align_c, batch, stride_a, stride_b,
                      stride_c);
  }
};

class GemmRunner {
 public:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  static constexpr int kCandidates = 8;

  GemmRunner();  // on the current device
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  // d = alpha * op(a) @ op(b) + beta * c on `stream` (beta == 0: c is not read; c may be d;
  // p.align_c: the smaller alignment of c and d).
  void run(const GemmProblem& p, void* d, const void* c, const void* a, const void* b, float alpha, float beta,
           cudaStream_t stream);

  // Largest power of two <= 256 that divides the address.
  static uint32_t alignment_bytes(const void* p);
  // Largest power of two <= 256 that divides the address and the batch stride:
  // the alignment of every batch entry p + g * stride_bytes.
  static uint32_t alignment_bytes(const void* p, int64_t stride_bytes);

 private:
  struct Plan;
  Plan& plan(const GemmProblem& p);
  void autotune(Plan& pl, const GemmProblem& p, const void* c, const void* a, const void* b, float alpha, float beta,
                cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  bool autotune_ = true;
  std::map<decltype(GemmProblem{}.key()), std::unique_ptr<Plan>> plans_;
};

}  // namespace lumina
