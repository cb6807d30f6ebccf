#pragma once
// ProfilingBackend: wraps a backend and times every op. Each call is bracketed
// by synchronize() so the time is the op's own device time (the pipeline
// between ops is lost: the sum is a little above the real step time). GEMMs
// are keyed by their shape, so the table says which matmul costs what.
// For `lumina bench train --profile`; never used in training.
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "lumina/backend/backend.h"

namespace lumina {

struct OpTiming {
  int64_t calls = 0;
  double seconds = 0.0;
  // Floating-point operations of these calls, 2 per multiply-add, from the shapes:
  // gemm 2 M N K; attention forward 2 products (q k^T, p v) and backward 5
  // (recomputed q k^T, dv, dp, dq, dk) of 2 D flops per causal query-key pair. 0 for other ops.
  double flops = 0.0;
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  const std::map<std::string, OpTiming>& timings() const { return timings_; }
  void reset() { timings_.clear(); }

  Device device() const override { return inner_->device(); }
  std::string name() const override { return inner_->name() + " [profiled]"; }
  Buffer allocate(size_t bytes) override { return inner_->allocate(bytes); }
  void synchronize() override { inner_->synchronize(); }
  int64_t device_memory_bytes() const override { return inner_->device_memory_bytes(); }
  int64_t device_free_bytes() const override { return inner_->device_free_bytes(); }

  void copy(Tensor dst, const Tensor& src) override;
  void fill(Tensor dst, double value) override;
  void cast(Tensor dst, const Tensor& src) override;
  void gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
            double beta) override;
  void gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) override;
  void axpy(Tensor y, const Tensor& x, double alpha) override;
  void scale(Tensor x, double alpha) override;
  double sum_squares(const Tensor& x) override;
  void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) override;
  void embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) override;
  void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) override;
  void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override;
  void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) override;
  void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) override;
  void rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions) override;
  void rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin, const Tensor& positions) override;
  void rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos, const Tensor& sin,
                        const Tensor& positions) override;
  void rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& cos,
                         const Tensor& sin, const Tensor& positions) override;
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) override;
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Tensor& out, const Tensor& lse) override;
  void swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) override;
  void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) override;
  void swiglu_packed_forward(Tensor out, const Tensor& gate_up) override;
  void swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) override;
  void cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                     const Tensor& dlosses) override;
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
  void mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate, const Tensor& scores,
                        int64_t k) override;
  void mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                   const Tensor& gate) override;
  void mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate, const Tensor& slot_row,
                          const Tensor& gate, const Tensor& w) override;
  void mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row, double dscale) override;
  void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                    Tensor param_copy) override;

 private:
  // Runs f between two synchronize() calls and adds the time (and flops) under `key`.
  template <class F>
  auto timed(const std::string& key, F&& f, double flops = 0.0) {
    timings_[key].flops += flops;
    inner_->synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    struct Record {
      ProfilingBackend* self;
      const std::string& key;
      std::chrono::steady_clock::time_point t0;
      ~Record() {
        self->inner_->synchronize();
        OpTiming& t = self->timings_[key];
        t.calls += 1;
        t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    } record{this, key, t0};
    return f();
  }

  std::unique_ptr<Backend> inner_;
  std::map<std::string, OpTiming> timings_;
};

}  // namespace lumina
