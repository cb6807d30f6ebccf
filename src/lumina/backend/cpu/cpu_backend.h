#pragma once
// CpuBackend: the reference backend (OpenBLAS + OpenMP, f32 and f64).
// Each op family lives in its own file (gemm.cpp, rmsnorm.cpp, ...), forward
// and backward side by side; this header declares the class and the small
// helpers every file shares (dtype dispatch, argument checks).
//
// Invariants of every op here:
// - all tensors are host tensors (Device::cpu), contiguous, row-major;
// - float tensors of one call share one dtype, f32 or f64; saved statistics
//   (rstd, lse, losses) have that same dtype; token ids/targets/argmax are i32;
// - results are deterministic and do not depend on the number of OpenMP
//   threads (every reduction has a fixed order), except gemm, whose order is
//   OpenBLAS's (fixed for a fixed thread count);
// - parameter gradients accumulate (+=), activation gradients are overwritten
//   unless backend.h says "accumulates".
#include <algorithm>
#include <cstdint>
#include <string>

#include "lumina/backend/backend.h"

namespace lumina {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  std::string name() const override;

  // memory (reduce.cpp, cpu_backend.cpp)
  Buffer allocate(size_t bytes) override;
  void copy(Tensor dst, const Tensor& src) override;
  void fill(Tensor dst, double value) override;
  void cast(Tensor dst, const Tensor& src) override;

  // dense algebra (gemm.cpp, reduce.cpp)
  void gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
            double beta) override;
  void gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) override;
  void axpy(Tensor y, const Tensor& x, double alpha) override;
  void scale(Tensor x, double alpha) override;
  double sum_squares(const Tensor& x) override;

  // embedding.cpp
  void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) override;
  void embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) override;

  // rmsnorm.cpp
  void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) override;
  void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override;

  // rope.cpp
  void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) override;
  void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) override;
  void rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions) override;
  void rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin, const Tensor& positions) override;
  // rope_qkv.cpp
  void rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos, const Tensor& sin,
                        const Tensor& positions) override;
  void rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& cos,
                         const Tensor& sin, const Tensor& positions) override;

  // attention.cpp
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) override;
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Tensor& out, const Tensor& lse) override;

  // swiglu.cpp
  void swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) override;
  void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) override;
  void swiglu_packed_forward(Tensor out, const Tensor& gate_up) override;
  void swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) override;

  // cross_entropy.cpp
  void cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                     const Tensor& dlosses) override;

  // moe.cpp (routing, dispatch, gather, combine) and gemm.cpp (gemm_batched)
  void moe_router_forward(Tensor probs, Tensor lse, Tensor choice, Tensor weight, Tensor sums, const Tensor& logits,
                          const Tensor& noise, const Tensor& available, double inv_temperature) override;
  void moe_router_backward(Tensor dlogits, const Tensor& probs, const Tensor& lse, const Tensor& choice,
                           const Tensor& weight, const Tensor& slot_row, const Tensor& dweight, const Tensor& assigned,
                           double inv_temperature, double aux_coef, double z_coef) override;
  void moe_dispatch(Tensor slot_row, Tensor row_token, Tensor group_begin, Tensor assigned, const Tensor& choice,
                    int64_t capacity, int64_t row_align, int64_t group_stride) override;
  void moe_gather(Tensor rows, const Tensor& x, const Tensor& row_token) override;
  void moe_combine(Tensor out, const Tensor& y, const Tensor& slot_row, const Tensor& weight, bool accumulate) override;
  void moe_combine_backward(Tensor dy, Tensor dweight, const Tensor& dout, const Tensor& y, const Tensor& slot_row,
                            const Tensor& weight, const Tensor& row_token) override;
  void gemm_batched(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                    double beta) override;

  // mod.cpp (Mixture-of-Depths selection and backward)
  void mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate, const Tensor& scores,
                        int64_t k) override;
  void mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                   const Tensor& gate) override;
  void mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate, const Tensor& slot_row,
                          const Tensor& gate, const Tensor& w) override;
  void mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row, double dscale) override;

  // adamw.cpp
  void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                    Tensor param_copy) override;
};

namespace cpu {

// Calls f(T{}) with T = float for f32 and double for f64; anything else is an
// error naming the op.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default:
      fail("{}: the CPU backend computes in f32 or f64, got {} (cast the inputs first)", op, dtype_name(t));
  }
}

// Calls f(begin, end) for consecutive chunks of [0, n), `chunk` elements each
// (the last one shorter), in parallel when there is more than one chunk. The
// chunks depend only on n, never on the thread count.
template <class F>
void parallel_chunks(int64_t n, int64_t chunk, F&& f) {
  const int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t i = 0; i < chunks; ++i) f(i * chunk, std::min(n, (i + 1) * chunk));
}

// Row-major BLAS gemm on raw pointers (gemm.cpp): c = alpha op(a) op(b) + beta c,
// op(a) (m, k), op(b) (k, n), leading dims lda/ldb/ldc in elements.
void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// The per-token RoPE positions of rope_positions_* and rope_qkv_* (rope.cpp): throws
// unless positions is an i32 host tensor of `tokens` entries, each a row of the
// cos/sin tables (< table_rows); returns its data.
const int32_t* check_rope_positions(const Tensor& positions, int64_t tokens, int64_t table_rows, const char* op);

// Throws unless t is a non-null host tensor.
void check_host(const Tensor& t, const char* op, const char* name);
// Throws unless t is a host tensor of dtype `want`.
void check_host_dtype(const Tensor& t, DType want, const char* op, const char* name);

}  // namespace cpu
}  // namespace lumina
