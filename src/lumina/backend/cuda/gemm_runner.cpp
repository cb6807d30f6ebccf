#include "lumina/backend/cuda/gemm_runner.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "lumina/backend/cuda/cuda_check.h"
#include "lumina/core/error.h"

#define LUMINA_CUBLAS_CHECK(expr)                                                                     \
  do {                                                                                                \
    const cublasStatus_t lumina_status_ = (expr);                                                     \
    if (lumina_status_ != CUBLAS_STATUS_SUCCESS)                                                      \
      ::lumina::fail("cuBLASLt error {} ({}) in {}", cublasLtGetStatusName(lumina_status_),         \
                     cublasLtGetStatusString(lumina_status_), #expr);                                 \
  } while (0)

namespace lumina {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: fail("gemm: dtype {} is not supported on CUDA (use f32, bf16 or f16)", dtype_name(t));
  }
}

// Largest power of two <= 256 that divides x (256 for 0).
uint32_t largest_power_of_two_divisor(uintptr_t x) {
  if (x == 0) return 256;
  const uintptr_t lowest_bit = x & (~x + 1);
  return lowest_bit >= 256 ? 256u : static_cast<uint32_t>(lowest_bit);
}

}  // namespace

// Everything cuBLASLt needs for one problem, built once.
struct GemmRunner::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t first = nullptr;   // b: column-major view of row-major b
  cublasLtMatrixLayout_t second = nullptr;  // a: column-major view of row-major a
  cublasLtMatrixLayout_t out = nullptr;     // c and d: (n, m) column-major
  cublasLtMatmulAlgo_t algo{};
  // The heuristic's top candidates until the first run times them (empty after).
  std::vector<cublasLtMatmulHeuristicResult_t> candidates;

  ~Plan() {
    if (out) cublasLtMatrixLayoutDestroy(out);
    if (second) cublasLtMatrixLayoutDestroy(second);
    if (first) cublasLtMatrixLayoutDestroy(first);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

GemmRunner::GemmRunner() {
  const char* autotune = std::getenv("LUMINA_GEMM_AUTOTUNE");
  autotune_ = autotune == nullptr || std::string_view(autotune) != "0";
  LUMINA_CUBLAS_CHECK(cublasLtCreate(&handle_));
  LUMINA_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
}

GemmRunner::~GemmRunner() {
  plans_.clear();
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

uint32_t GemmRunner::alignment_bytes(const void* p) {
  return largest_power_of_two_divisor(reinterpret_cast<uintptr_t>(p));
}

uint32_t GemmRunner::alignment_bytes(const void* p, int64_t stride_bytes) {
  // The lowest set bit of the OR is the lower of the two lowest set bits.
  return largest_power_of_two_divisor(reinterpret_cast<uintptr_t>(p) | static_cast<uintptr_t>(stride_bytes));
}

GemmRunner::Plan& GemmRunner::plan(const GemmProblem& p) {
  auto& slot = plans_[p.key()];
  if (slot) return *slot;
  auto plan = std::make_unique<Plan>();
  const cudaDataType_t ab = cuda_type(p.ab), c = cuda_type(p.c);
  LUMINA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major: d (n, m) = op(b^T-view) (n, k) @ op(a^T-view) (k, m).
  const cublasOperation_t op_first = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  LUMINA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                                                     sizeof(op_first)));
  LUMINA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second,
                                                     sizeof(op_second)));
  // Row-major b is (k, n), or (n, k) when trans_b; its column-major view swaps the two.
  const int64_t b_rows = p.trans_b ? p.n : p.k, b_cols = p.trans_b ? p.k : p.n;
  const int64_t a_rows = p.trans_a ? p.k : p.m, a_cols = p.trans_a ? p.m : p.k;
  LUMINA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->first, ab, static_cast<uint64_t>(b_cols),
                                                 static_cast<uint64_t>(b_rows), b_cols));
  LUMINA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->second, ab, static_cast<uint64_t>(a_cols),
                                                 static_cast<uint64_t>(a_rows), a_cols));
  LUMINA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->out, c, static_cast<uint64_t>(p.n),
                                                 static_cast<uint64_t>(p.m), p.n));
  if (p.batch > 1) {
    LUMINA_CHECK(p.batch <= INT32_MAX, "gemm: batch count {} exceeds cuBLASLt's int32 limit; split the batch",
                 p.batch);
    const int32_t batch = static_cast<int32_t>(p.batch);
    // cuBLASLt's first operand is b, its second a.
    for (auto [layout, stride] :
         {std::pair{plan->first, p.stride_b}, {plan->second, p.stride_a}, {plan->out, p.stride_c}}) {
      LUMINA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                                                           sizeof(batch)));
      LUMINA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                           &stride, sizeof(stride)));
    }
  }

  cublasLtMatmulPreference_t preference = nullptr;
  LUMINA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const uint64_t workspace_bytes = kWorkspaceBytes;
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                       sizeof(workspace_bytes));
  // cuBLASLt's first operand is b, its second a.
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &p.align_b,
                                       sizeof(p.align_b));
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &p.align_a,
                                       sizeof(p.align_a));
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &p.align_c,
                                       sizeof(p.align_c));
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &p.align_c,
                                       sizeof(p.align_c));
  cublasLtMatmulHeuristicResult_t results[kCandidates]{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan->op, plan->first, plan->second,
                                                               plan->out, plan->out, preference, kCandidates,
                                                               results, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  LUMINA_CHECK(status == CUBLAS_STATUS_SUCCESS && found > 0,
               "gemm: cuBLASLt has no algorithm for {} x ({}x{}) @ ({}x{}), a/b {}, c {}, trans_a {}, trans_b {} ({})",
               p.batch, p.m, p.k, p.k, p.n, dtype_name(p.ab), dtype_name(p.c), p.trans_a, p.trans_b,
               cublasLtGetStatusString(status));
  plan->candidates.assign(results, results + found);
  plan->algo = results[0].algo;
  slot = std::move(plan);
  return *slot;
}

void GemmRunner::autotune(Plan& pl, const GemmProblem& p, const void* c, const void* a, const void* b, float alpha,
                          float beta, cudaStream_t stream) {
  // Each candidate writes d into a temporary buffer (c is read when beta != 0, never written):
  // one untimed run, then kTimedRuns timed back to back; the smallest total wins. With a batch,
  // d spans every entry: the last one starts (batch - 1) * stride_c elements in.
  constexpr int kTimedRuns = 3;
  const size_t d_bytes = static_cast<size_t>((p.batch - 1) * p.stride_c + p.m * p.n) * dtype_size_bytes(p.c);
  void* d = nullptr;
  LUMINA_CUDA_CHECK(cudaMalloc(&d, d_bytes));
  cudaEvent_t start = nullptr, stop = nullptr;
  LUMINA_CUDA_CHECK(cudaEventCreate(&start));
  LUMINA_CUDA_CHECK(cudaEventCreate(&stop));
  float best_ms = 0.0f;
  size_t best = 0;
  bool timed_any = false;
  for (size_t i = 0; i < pl.candidates.size(); ++i) {
    const cublasLtMatmulAlgo_t* algo = &pl.candidates[i].algo;
    auto launch = [&] {
      return cublasLtMatmul(handle_, pl.op, &alpha, b, pl.first, a, pl.second, &beta, c, pl.out, d, pl.out, algo,
                            workspace_, kWorkspaceBytes, stream);
    };
    if (launch() != CUBLAS_STATUS_SUCCESS) continue;  // a candidate may refuse these pointers; skip it
    LUMINA_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int r = 0; r < kTimedRuns; ++r) LUMINA_CUBLAS_CHECK(launch());
    LUMINA_CUDA_CHECK(cudaEventRecord(stop, stream));
    LUMINA_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    LUMINA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (!timed_any || ms < best_ms) {
      best_ms = ms;
      best = i;
      timed_any = true;
    }
  }
  cudaEventDestroy(stop);
  cudaEventDestroy(start);
  LUMINA_CUDA_CHECK(cudaFree(d));
  pl.algo = pl.candidates[best].algo;
  pl.candidates.clear();
  pl.candidates.shrink_to_fit();
}

void GemmRunner::run(const GemmProblem& p, void* d, const void* c, const void* a, const void* b, float alpha,
                     float beta, cudaStream_t stream) {
  Plan& pl = plan(p);
  // Tuned on its first run (autotune() then drops the candidates): every run of a shape,
  // the first included, uses one algorithm, so results repeat bitwise within the process.
  if (pl.candidates.size() > 1 && autotune_) autotune(pl, p, c, a, b, alpha, beta, stream);
  LUMINA_CUBLAS_CHECK(cublasLtMatmul(handle_, pl.op, &alpha, b, pl.first, a, pl.second, &beta, c, pl.out, d,
                                     pl.out, &pl.algo, workspace_, kWorkspaceBytes, stream));
}

}  // namespace lumina
