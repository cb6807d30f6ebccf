#include "lumina/backend/profiling_backend.h"

#include <fmt/format.h>

namespace lumina {

void ProfilingBackend::copy(Tensor dst, const Tensor& src) { timed("copy", [&] { inner_->copy(dst, src); }); }
void ProfilingBackend::fill(Tensor dst, double value) { timed("fill", [&] { inner_->fill(dst, value); }); }
void ProfilingBackend::cast(Tensor dst, const Tensor& src) { timed("cast", [&] { inner_->cast(dst, src); }); }

void ProfilingBackend::gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                            double beta) {
  // Key: gemm M x N x K with the transposes, e.g. "gemm 32768x2048x768 NT +=".
  const int64_t M = c.flatten_2d().dim(0), N = c.dim(-1);
  const Tensor a2 = a.flatten_2d();
  const int64_t K = trans_a ? a2.dim(0) : a2.dim(1);
  const std::string key = fmt::format("gemm {}x{}x{} {}{}{}", M, N, K, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N',
                                      beta != 0.0 ? " +=" : "");
  timed(key, [&] { inner_->gemm(c, a, trans_a, b, trans_b, alpha, beta); },
        2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
}

void ProfilingBackend::gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                                const Tensor& c) {
  // Key: "gemm M x N x K" with the transposes and " + c".
  const int64_t M = d.flatten_2d().dim(0), N = d.dim(-1);
  const Tensor a2 = a.flatten_2d();
  const int64_t K = trans_a ? a2.dim(0) : a2.dim(1);
  const std::string key = fmt::format("gemm {}x{}x{} {}{} + c", M, N, K, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N');
  timed(key, [&] { inner_->gemm_add(d, a, trans_a, b, trans_b, c); },
        2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
}

void ProfilingBackend::axpy(Tensor y, const Tensor& x, double alpha) { timed("axpy", [&] { inner_->axpy(y, x, alpha); }); }
void ProfilingBackend::scale(Tensor x, double alpha) { timed("scale", [&] { inner_->scale(x, alpha); }); }
double ProfilingBackend::sum_squares(const Tensor& x) {
  return timed("sum_squares", [&] { return inner_->sum_squares(x); });
}
void ProfilingBackend::embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) {
  timed("embedding_forward", [&] { inner_->embedding_forward(out, tokens, table); });
}
void ProfilingBackend::embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) {
  timed("embedding_backward", [&] { inner_->embedding_backward(dtable, tokens, dout); });
}
void ProfilingBackend::rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) {
  timed("rmsnorm_forward", [&] { inner_->rmsnorm_forward(y, rstd, x, w, eps); });
}
void ProfilingBackend::rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                        const Tensor& rstd) {
  timed("rmsnorm_backward", [&] { inner_->rmsnorm_backward(dx, dw, dy, x, w, rstd); });
}
void ProfilingBackend::rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  timed("rope_forward", [&] { inner_->rope_forward(x, cos, sin, pos_offset); });
}
void ProfilingBackend::rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) {
  timed("rope_backward", [&] { inner_->rope_backward(dx, cos, sin, pos_offset); });
}
void ProfilingBackend::rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin,
                                              const Tensor& positions) {
  timed("rope_positions_forward", [&] { inner_->rope_positions_forward(x, cos, sin, positions); });
}
void ProfilingBackend::rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin,
                                               const Tensor& positions) {
  timed("rope_positions_backward", [&] { inner_->rope_positions_backward(dx, cos, sin, positions); });
}
void ProfilingBackend::rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos,
                                        const Tensor& sin, const Tensor& positions) {
  timed("rope_qkv_forward", [&] { inner_->rope_qkv_forward(q, k, v, qkv, cos, sin, positions); });
}
void ProfilingBackend::rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                         const Tensor& cos, const Tensor& sin, const Tensor& positions) {
  timed("rope_qkv_backward", [&] { inner_->rope_qkv_backward(dqkv, dq, dk, dv, cos, sin, positions); });
}
namespace {
// 2 D flops per causal query-key pair and product: q (B,Tq,Hq,D) against k (B,Tk,.,D),
// query t seeing keys 0 .. Tk - Tq + t.
double attention_product_flops(const Tensor& q, const Tensor& k) {
  const auto Tq = static_cast<double>(q.dim(1)), Tk = static_cast<double>(k.dim(1));
  const double pairs = Tq * (Tk - Tq) + Tq * (Tq + 1.0) / 2.0;
  return 2.0 * static_cast<double>(q.dim(0) * q.dim(2) * q.dim(3)) * pairs;
}
}  // namespace

void ProfilingBackend::attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) {
  timed("attention_forward", [&] { inner_->attention_forward(out, lse, q, k, v); },
        2.0 * attention_product_flops(q, k));
}
void ProfilingBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q,
                                          const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  timed("attention_backward", [&] { inner_->attention_backward(dq, dk, dv, dout, q, k, v, out, lse); },
        5.0 * attention_product_flops(q, k));
}
void ProfilingBackend::swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) {
  timed("swiglu_forward", [&] { inner_->swiglu_forward(out, gate, up); });
}
void ProfilingBackend::swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate,
                                       const Tensor& up) {
  timed("swiglu_backward", [&] { inner_->swiglu_backward(dgate, dup, dout, gate, up); });
}
void ProfilingBackend::swiglu_packed_forward(Tensor out, const Tensor& gate_up) {
  timed("swiglu_forward", [&] { inner_->swiglu_packed_forward(out, gate_up); });
}
void ProfilingBackend::swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) {
  timed("swiglu_backward", [&] { inner_->swiglu_packed_backward(dgate_up, dout, gate_up); });
}
void ProfilingBackend::cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                                     const Tensor& dlosses) {
  timed("cross_entropy", [&] { inner_->cross_entropy(logits, losses, argmax, targets, dlosses); });
}
void ProfilingBackend::moe_router_forward(Tensor probs, Tensor lse, Tensor choice, Tensor weight, Tensor sums,
                                          const Tensor& logits, const Tensor& noise, const Tensor& available,
                                          double inv_temperature) {
  timed("moe_router_forward",
        [&] { inner_->moe_router_forward(probs, lse, choice, weight, sums, logits, noise, available, inv_temperature); });
}
void ProfilingBackend::moe_router_backward(Tensor dlogits, const Tensor& probs, const Tensor& lse, const Tensor& choice,
                                           const Tensor& weight, const Tensor& slot_row, const Tensor& dweight,
                                           const Tensor& assigned, double inv_temperature, double aux_coef,
                                           double z_coef) {
  timed("moe_router_backward", [&] {
    inner_->moe_router_backward(dlogits, probs, lse, choice, weight, slot_row, dweight, assigned, inv_temperature,
                                aux_coef, z_coef);
  });
}
void ProfilingBackend::moe_dispatch(Tensor slot_row, Tensor row_token, Tensor group_begin, Tensor assigned,
                                    const Tensor& choice, int64_t capacity, int64_t row_align, int64_t group_stride) {
  timed("moe_dispatch", [&] {
    inner_->moe_dispatch(slot_row, row_token, group_begin, assigned, choice, capacity, row_align, group_stride);
  });
}
void ProfilingBackend::moe_gather(Tensor rows, const Tensor& x, const Tensor& row_token) {
  timed("moe_gather", [&] { inner_->moe_gather(rows, x, row_token); });
}
void ProfilingBackend::moe_combine(Tensor out, const Tensor& y, const Tensor& slot_row, const Tensor& weight,
                                   bool accumulate) {
  timed("moe_combine", [&] { inner_->moe_combine(out, y, slot_row, weight, accumulate); });
}
void ProfilingBackend::moe_combine_backward(Tensor dy, Tensor dweight, const Tensor& dout, const Tensor& y,
                                            const Tensor& slot_row, const Tensor& weight, const Tensor& row_token) {
  timed("moe_combine_backward", [&] { inner_->moe_combine_backward(dy, dweight, dout, y, slot_row, weight, row_token); });
}
void ProfilingBackend::gemm_batched(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                                    double alpha, double beta) {
  // Key: "gemm_batched G x M x N x K" with the transposes; flops 2 G M N K.
  const int64_t G = c.dim(0), M = c.dim(1), N = c.dim(2), K = trans_a ? a.dim(1) : a.dim(2);
  const std::string key = fmt::format("gemm_batched {}x{}x{}x{} {}{}{}", G, M, N, K, trans_a ? 'T' : 'N',
                                      trans_b ? 'T' : 'N', beta != 0.0 ? " +=" : "");
  timed(key, [&] { inner_->gemm_batched(c, a, trans_a, b, trans_b, alpha, beta); },
        2.0 * static_cast<double>(G) * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
}

void ProfilingBackend::mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate,
                                        const Tensor& scores, int64_t k) {
  timed("mod_select_top_k", [&] { inner_->mod_select_top_k(row_token, positions, slot_row, gate, scores, k); });
}
void ProfilingBackend::mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                                   const Tensor& gate) {
  timed("mod_combine", [&] { inner_->mod_combine(out, delta, x, ys, slot_row, gate); });
}
void ProfilingBackend::mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate,
                                          const Tensor& slot_row, const Tensor& gate, const Tensor& w) {
  timed("mod_input_backward", [&] { inner_->mod_input_backward(dx, dscores, dxs, dgate, slot_row, gate, w); });
}
void ProfilingBackend::mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row,
                                     double dscale) {
  timed("mod_predictor", [&] { inner_->mod_predictor(dpred, sums, pred, slot_row, dscale); });
}

void ProfilingBackend::adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                                    Tensor param_copy) {
  timed("adamw_update", [&] { inner_->adamw_update(param, grad, m, v, h, param_copy); });
}

}  // namespace lumina
