#pragma once
// Backend: the kernel-level op set. Every backend (cpu, cuda) implements all
// of it; modules run forward/backward only through this interface.
//
// Conventions (every op):
// - Tensors are contiguous row-major views; shapes are checked.
// - Float tensors of one call share one dtype (f32 or f64 on the CPU; the
//   CUDA backend adds bf16/f16 activations). Token ids and targets are i32.
// - Backward ops named d<x>: parameter gradients ACCUMULATE (+=) so that
//   micro-batches and shared weights add up; activation gradients are
//   OVERWRITTEN unless the op says "accumulates".
// - Saved statistics (rmsnorm rstd, attention lse) are f32 on f32/bf16/f16
//   paths and f64 on the f64 path (same dtype as the op for f32/f64).
// - No op allocates device memory; scratch comes from the caller or is
//   per-thread and bounded (the CUDA backend reserves its scratch once).
// - CUDA precision: activations f32, bf16 or f16; master weights, parameter
//   gradients and optimizer state f32 (the model casts weights to the
//   activation dtype each step with cast). So: gemm takes bf16/f16 a and b
//   with c in their dtype or f32 (weight gradients accumulate with beta = 1
//   into the f32 gradient buffer); rmsnorm dw and embedding dtable are f32;
//   rstd, lse, losses and dlosses are f32; cross_entropy takes f32/bf16/f16
//   logits and computes in f32; adamw_update is f32 only (its optional copy of
//   the updated weights any float dtype). All math and
//   accumulation is f32 (f32 gemm is exact f32, no TF32); sum_squares is f64.
#include <cstdint>
#include <memory>
#include <string>

#include "lumina/core/buffer.h"
#include "lumina/core/tensor.h"

namespace lumina {

struct AdamWParams {
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: p -= lr * wd * p
  int64_t step = 1;           // 1-based, for bias correction
  double grad_scale = 1.0;    // gradients are multiplied by this first (clipping, loss-scale undo)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;  // "cpu (OpenBLAS, 2 threads)", "cuda (NVIDIA H100 ...)"

  // ---- memory --------------------------------------------------------------
  virtual Buffer allocate(size_t bytes) = 0;  // zero-filled
  // dst = src (same dtype and numel; either may be on the host).
  virtual void copy(Tensor dst, const Tensor& src) = 0;
  virtual void fill(Tensor dst, double value) = 0;
  // dst = src converted to dst.dtype (same numel).
  virtual void cast(Tensor dst, const Tensor& src) = 0;
  virtual void synchronize() {}
  // Device memory held by this backend's buffers and workspaces, in bytes;
  // -1 where it is not tracked (the CPU: measure the process instead).
  virtual int64_t device_memory_bytes() const { return -1; }
  // Device memory free for new buffers now, in bytes; -1 where unknown (the CPU).
  virtual int64_t device_free_bytes() const { return -1; }

  // ---- dense algebra ----------------------------------------------------------
  // c = alpha * op(a) @ op(b) + beta * c, op(x) = x or x^T.
  // a: (M,K) or (K,M) when trans_a; b: (K,N) or (N,K) when trans_b; c: (M,N).
  // Leading dims of a/b/c are flattened (a (B,T,C) is (B*T, C)).
  virtual void gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha = 1.0,
                    double beta = 0.0) = 0;
  // d = op(a) @ op(b) + c: a residual connection in the GEMM (c (M,N) in d's dtype,
  // may be d itself), so the layer output needs no separate copy of its input.
  virtual void gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) = 0;
  // y += alpha * x (same shape).
  virtual void axpy(Tensor y, const Tensor& x, double alpha = 1.0) = 0;
  // x *= alpha.
  virtual void scale(Tensor x, double alpha) = 0;
  // Sum of squares of all elements, accumulated in f64 (global grad norm).
  virtual double sum_squares(const Tensor& x) = 0;

  // ---- embedding ------------------------------------------------------------
  // out (N, C) = table (V, C) [tokens (N)].
  virtual void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) = 0;
  // dtable (V, C) += scatter of dout (N, C) by tokens (N). Deterministic.
  virtual void embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) = 0;

  // ---- rmsnorm ----------------------------------------------------------------
  // y (N,C) = x * rstd * w,  rstd (N) = 1 / sqrt(mean_c(x^2) + eps) (saved).
  virtual void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) = 0;
  // dx (N,C) ACCUMULATES (+=: x is the residual stream), dw (C) +=.
  // dx = rstd * (w*dy - x * rstd^2 * mean_c(w*dy*x)).
  virtual void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                const Tensor& rstd) = 0;

  // ---- rotary position embedding (Hugging Face rotate-half layout) -------------
  // x (B,T,H,D) in place. Pairs (i, i + D/2), i < D/2, at position p = pos_offset + t:
  //   x_i' = x_i cos(p w_i) - x_{i+D/2} sin(p w_i);  x_{i+D/2}' = x_{i+D/2} cos + x_i sin,
  //   w_i = theta^(-2i/D). cos/sin: tables (P, D/2) in x's dtype, or f32 for bf16/f16 x
  //   (CUDA), P >= pos_offset + T.
  virtual void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) = 0;
  // dx (B,T,H,D) in place: the transpose (inverse) rotation.
  virtual void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) = 0;
  // The same rotations with one position per token: token (b, t) sits at
  // p = positions[b*T + t]; positions (B*T) i32 on x's device, each in [0, P)
  // (an out-of-range position is an error: thrown at once on the CPU, at the
  // next synchronisation on CUDA, which leaves that token unrotated).
  // For Mixture-of-Depths, whose routed tokens keep their original positions.
  virtual void rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions) = 0;
  virtual void rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin, const Tensor& positions) = 0;
  // Fused split + RoPE of one stacked projection, x [Wq; Wk; Wv]^T:
  // qkv (B,T,Hq+2Hkv,D) holds per token the Hq query heads, then the Hkv key
  // heads, then the Hkv value heads. q (B,T,Hq,D) = rope(query part),
  // k (B,T,Hkv,D) = rope(key part), v (B,T,Hkv,D) = value part (overwritten).
  // positions: as rope_positions_forward, or empty for p = t.
  virtual void rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos, const Tensor& sin,
                                const Tensor& positions) = 0;
  // The transpose: dqkv (B,T,Hq+2Hkv,D) = [rope^T(dq), rope^T(dk), dv] (overwritten).
  virtual void rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& cos,
                                 const Tensor& sin, const Tensor& positions) = 0;

  // ---- causal grouped-query attention -----------------------------------------------
  // q (B,Tq,Hq,D), k/v (B,Tk,Hkv,D), Hq % Hkv == 0, Tq <= Tk; query t sits at
  // position Tk - Tq + t and sees keys 0..that position (KV-cache decoding when Tq < Tk).
  // out (B,Tq,Hq,D) = softmax(q k^T / sqrt(D)) v;  lse (B,Hq,Tq) = log-sum-exp of the scaled scores (saved).
  // Memory: O(T) scratch per query row; never a (B,H,T,T) buffer.
  virtual void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) = 0;
  // Tq == Tk only. dq, dk, dv overwritten.
  virtual void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) = 0;

  // ---- SwiGLU -------------------------------------------------------------------
  // out (N,F) = silu(gate) * up, silu(g) = g * sigmoid(g).
  virtual void swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) = 0;
  // dgate, dup (N,F) overwritten.
  virtual void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) = 0;
  // The same over one (N, 2F) tensor holding [gate | up] in each row (one stacked
  // gate/up GEMM's output): out (N,F) = silu(gate_up[:, :F]) * gate_up[:, F:].
  virtual void swiglu_packed_forward(Tensor out, const Tensor& gate_up) = 0;
  // dgate_up (N, 2F) = [dgate | dup] per row, overwritten.
  virtual void swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) = 0;

  // ---- cross-entropy (one chunk of rows) ----------------------------------------------
  // logits (N,V); targets (N) i32, target < 0 = masked (loss 0, gradient 0).
  // losses (N) = logsumexp(logits) - logits[target]  (f32/f64 as logits' stat dtype);
  // argmax (N) i32 = the predicted token (for accuracy).
  // If dlosses (N) is non-empty, logits are OVERWRITTEN with
  // dlogits = dlosses[n] * (softmax(logits[n]) - onehot(target[n])): one fused pass.
  virtual void cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                             const Tensor& dlosses) = 0;

  // ---- mixture of experts (routing, token permutation, expert combine) --------------
  // N tokens, E experts, top-k. "stat" tensors are f32 (f64 on the f64 path), as
  // rstd/lse above; index tensors are i32. Every op is deterministic (fixed
  // reduction order for given shapes) and on the CUDA backend never syncs the host.
  //
  // Router, per token n over the experts with available[e] = 1 (A):
  //   s_e = (logits_{n,e} + noise_{n,e}) * inv_temperature     (noise (N,E) stat dtype, or empty: 0)
  //   probs (N,E) = softmax of s over A, exactly 0 outside A;  lse (N) = logsumexp_A(s)
  //   choice (N,k) = the k experts of A with the largest probs, by decreasing
  //                  probability, ties to the lower expert id
  //   weight (N,k) = probs_{n,choice} / sum_j probs_{n,choice_j}
  //   sums (E+2): [e] = sum_n probs_{n,e}; [E] = sum_n entropy_n (nats, -sum p log p
  //               over p > 0); [E+1] = sum_n lse_n^2.   All outputs overwritten.
  // logits: activation dtype; available (E) i32 (at least k ones).
  virtual void moe_router_forward(Tensor probs, Tensor lse, Tensor choice, Tensor weight, Tensor sums,
                                  const Tensor& logits, const Tensor& noise, const Tensor& available,
                                  double inv_temperature) = 0;
  // dlogits (N,E) (activation dtype, overwritten) = d/d logits of
  //   sum_{n,j kept} dweight_{n,j} weight_{n,j} + aux_coef * sum_e assigned_e sum_n probs_{n,e}
  //   + z_coef * sum_n lse_n^2 / 2,
  // kept = slot_row >= 0; entries of dweight (N,k) at dropped slots are ignored.
  // Per token: ds_e = p_e (a_e - sum_e' p_e' a_e') + z_coef lse p_e + [e = choice_j] w_j (g_j - sum_i w_i g_i),
  //   a_e = aux_coef * assigned_e, g_j = dweight_j if kept else 0; dlogits = ds * inv_temperature.
  virtual void moe_router_backward(Tensor dlogits, const Tensor& probs, const Tensor& lse, const Tensor& choice,
                                   const Tensor& weight, const Tensor& slot_row, const Tensor& dweight,
                                   const Tensor& assigned, double inv_temperature, double aux_coef,
                                   double z_coef) = 0;
  // Groups the N*k assignments (slot = n*k + j goes to expert choice[slot]) into
  // expert-contiguous rows. rank(slot) = earlier slots (slot order) with the same
  // expert; the slot is kept iff rank < capacity; kept_e = min(assigned_e, capacity).
  //   assigned (E) = assignments per expert (before capacity)
  //   group_begin (E+1): where expert e's rows start. group_stride == 0 (packed):
  //     group_begin[e+1] = group_begin[e] + round_up(kept_e, row_align), group_begin[0] = 0;
  //     group_stride > 0 (one slab per expert): group_begin[e] = e * group_stride,
  //     which needs capacity <= group_stride (checked).
  //   slot_row (N*k) = group_begin[e] + rank for kept slots, -1 for dropped ones
  //   row_token (R) = the token of row r, -1 for every row no kept slot fills
  //     (alignment padding, the unused tail); R = row_token.numel() must hold
  //     N*k + E*(row_align-1) rows (packed) or E*group_stride rows (slabs).
  virtual void moe_dispatch(Tensor slot_row, Tensor row_token, Tensor group_begin, Tensor assigned,
                            const Tensor& choice, int64_t capacity, int64_t row_align, int64_t group_stride) = 0;
  // rows (R,C) = x (N,C) [row_token]: row r = x[row_token[r]], zeros where row_token[r] < 0.
  virtual void moe_gather(Tensor rows, const Tensor& x, const Tensor& row_token) = 0;
  // out (N,C) (= or += when accumulate) sum over j with slot_row[n*k+j] >= 0 of
  //   weight_{n,j} * y[slot_row[n*k+j]], in j order; weight (N,k) stat dtype, or empty: 1.
  virtual void moe_combine(Tensor out, const Tensor& y, const Tensor& slot_row, const Tensor& weight,
                           bool accumulate) = 0;
  // The combine's backward: dy (R,C) row slot_row[n*k+j] = weight_{n,j} * dout_n; rows
  // with row_token < 0 are zeroed (every row is written). dweight (N,k) stat dtype
  // = dout_n . y[slot_row], 0 at dropped slots. Both overwritten.
  virtual void moe_combine_backward(Tensor dy, Tensor dweight, const Tensor& dout, const Tensor& y,
                                    const Tensor& slot_row, const Tensor& weight, const Tensor& row_token) = 0;
  // Batched gemm over a leading batch dim: for each b, c[b] = alpha op(a[b]) op(b[b]) + beta c[b];
  // a (G,M,K) or (G,K,M), b (G,K,N) or (G,N,K), c (G,M,N); dtypes as gemm.
  virtual void gemm_batched(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                            double alpha = 1.0, double beta = 0.0) = 0;

  // ---- mixture of depths (model/mod.h) --------------------------------------------
  // B sequences of T tokens, token n = b*T + t; the routed tokens form R compact
  // rows (row i holds token row_token[i]). Their inputs are gathered with
  // moe_gather and the block's output gradient scattered with
  // moe_combine_backward at k = 1 (slot_row = each token's compact row or -1,
  // weight = its gate). "stat" and index tensors as above; deterministic, no
  // host synchronisation on CUDA.
  //
  // Top-k of each sequence: the k tokens with the largest scores, ties to the
  // lower t, in increasing t as compact rows b*k .. b*k+k-1. scores (B,T) stat.
  //   row_token (B,k) i32 = b*T + t;  positions (B,k) i32 = t;
  //   slot_row (B*T) i32 = the token's compact row, -1 if not routed;
  //   gate (B*T) stat = sigmoid(score) if routed, else 0.     All overwritten.
  virtual void mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate,
                                const Tensor& scores, int64_t k) = 0;
  // The layer output, per token n, from x (N,C) and the block's output ys (R,C) on the routed rows:
  //   routed (slot_row[n] = i >= 0):  delta_i = ys_i - x_n;  out_n = x_n + gate_n delta_i
  //   otherwise:                      out_n = x_n
  // out (N,C) overwritten; delta (R,C) overwritten, and may be ys itself (in place).
  virtual void mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                           const Tensor& gate) = 0;
  // Backward of out = x + [routed] g (block(xs) - xs), g = sigmoid(x . w), into x and the router, per token n:
  //   routed (slot_row[n] = i >= 0):  dscores_n = dgate_n g_n (1 - g_n);
  //                                   dx_n = (1 - g_n) dx_n + dxs_i + dscores_n w
  //   otherwise:                      dscores_n = 0;  dx_n unchanged
  // dx (N,C) in: d out, out: d x (in place); dxs (R,C) = d xs through the block;
  // dgate, gate (N) stat; dscores (N) and w (C) activation dtype, both empty without a router.
  virtual void mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate,
                                  const Tensor& slot_row, const Tensor& gate, const Tensor& w) = 0;
  // The selection predictor, logits p (N) stat against labels y_n = [slot_row[n] >= 0]:
  //   sums (2) stat = [sum_n softplus(p_n) - y_n p_n,  #{n : (p_n > 0) == y_n}], or empty;
  //   dpred (N) activation dtype = dscale (sigmoid(p_n) - y_n), or empty.
  virtual void mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row,
                             double dscale) = 0;

  // ---- optimizer -----------------------------------------------------------------
  // AdamW on one flat range (param, grad, m, v same numel; param/m/v f32 or f64):
  //   g = grad * grad_scale; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  //   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p),  mhat = m/(1-b1^t), vhat = v/(1-b2^t).
  // param_copy: empty, or a float tensor of param's numel that receives the updated p
  // rounded to its dtype exactly as cast(param_copy, param) would (the model's
  // compute weights, written in the same pass instead of a second one).
  virtual void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                            Tensor param_copy) = 0;
};

// dst (f32, f64 or bf16, on any device) = the first dst.numel() values of the host
// array src, rounded to dst's dtype on the host, then one copy.
void upload_f64(Backend& backend, Tensor dst, const double* src);

// The CPU backend (OpenBLAS + OpenMP; f32 and f64).
std::unique_ptr<Backend> make_cpu_backend();
// True when the CPU has AVX-512 but OpenBLAS chose older kernels (it does not
// know the CPU model); OPENBLAS_CORETYPE=SkylakeX, set before the library
// loads, makes its GEMMs about 2x faster there.
bool openblas_skips_avx512();

}  // namespace lumina
