#pragma once
// Causal grouped-query self-attention with RoPE (LLaMA layout):
//   q = x Wq^T (N, Hq*D), k = x Wk^T, v = x Wv^T (N, Hkv*D); rope(q), rope(k);
//   y = softmax(q k^T / sqrt(D)) v (causal);  out += y Wo^T  (into the residual stream).
// Training runs q/k/v as one GEMM against the stacked [Wq; Wk; Wv] (the three
// are declared one after another, so adjacent in the flat buffers) into an
// (N, (Hq+2Hkv)*D) scratch, split and rotated by one rope_qkv pass; backward
// mirrors it (one rope_qkv_backward, one weight-gradient GEMM, one dx GEMM).
// positions (optional, (B*T) i32 on the device): each token's RoPE position,
// for Mixture-of-Depths' routed tokens; empty: position t.
#include "lumina/core/arena.h"
#include "lumina/model/context.h"
#include "lumina/model/model_config.h"

namespace lumina {

struct RopeTables {
  Tensor cos, sin;  // (P, D/2), f32 (f64 on the f64 path), P = max_position_embeddings
};

class AttentionLayer {
 public:
  struct Activations {
    Tensor q, k, v;  // (B, T, Hq|Hkv, D), after rope
    Tensor y;        // (B, T, Hq, D), attention output before o_proj
    Tensor lse;      // (B, Hq, T)
  };
  struct Scratch {
    Tensor qkv;             // (B, T, Hq+2Hkv, D): the stacked projection, in backward its gradient
    Tensor dq, dk, dv, dy;  // same shapes as q, k, v, y
  };

  AttentionLayer(ParamStore& ps, const ModelConfig& cfg, int layer);
  Activations plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const;
  Scratch plan_scratch(Arena& arena, DType act, int64_t B, int64_t T) const;

  // x (N,C) normalised input; out (N,C) = skip + o_proj(attention(x)) (skip may be out).
  void forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, const Tensor& skip, Tensor out,
               Activations& a, Scratch& s, const Tensor& positions = Tensor()) const;
  // Incremental decoding (batch 1): x (n,C) holds tokens at positions pos..pos+n-1.
  // Their k, v are written into k_cache/v_cache (P, Hkv, D) rows pos..pos+n-1 and
  // attention runs over rows 0..pos+n-1. residual (n,C) += o_proj(y).
  // a: scratch from plan(arena, act, stat, 1, n_max), first n positions used.
  // positions (n) i32 (Mixture-of-Depths, whose caches hold only routed tokens):
  // the tokens' RoPE positions, pos then being only the cache row of the first.
  void forward_cached(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor residual, Tensor k_cache,
                      Tensor v_cache, int64_t pos, Activations& a, const Tensor& positions = Tensor()) const;
  // dresidual (N,C): gradient of the block output; dx (N,C) = gradient w.r.t. x (overwritten).
  void backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, const Tensor& dresidual, Tensor dx,
                const Activations& a, Scratch& s, const Tensor& positions = Tensor()) const;

  int64_t num_heads() const { return num_heads_; }
  int64_t num_kv_heads() const { return num_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

  ParamId q_proj, k_proj, v_proj, o_proj;

 private:
  int64_t num_heads_, num_kv_heads_, head_dim_;
};

}  // namespace lumina
