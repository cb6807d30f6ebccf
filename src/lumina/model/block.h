#pragma once
// Pre-norm decoder block (LLaMA):
//   mid = x + attn(rmsnorm(x));  out = mid + ffn(rmsnorm(mid)),
// ffn = a dense SwiGLU MLP or, in MoE layers (layer_kinds.h), a mixture of
// experts (moe.h; its weighted aux + z losses are scaled by
// ModelContext::dloss_aux in backward).
// Memory: model.recompute_norms says which of the two rmsnorm outputs the
// backward recomputes from the block's saved inputs and rstd's (one pass over
// (N, C) each) instead of keeping them as (N, C) activations.
// Mixture-of-Depths layers (mod.h) run the block, or with mod_ffn_only its
// FFN half, on the routed tokens only, as a compact batch: the same
// activations, their first R rows used (planned for N, since capacity anneals
// from 1.0 and causal routing may pick any number of tokens).
#include <memory>
#include <optional>
#include <vector>

#include "lumina/model/attention.h"
#include "lumina/model/mlp.h"
#include "lumina/model/mod.h"
#include "lumina/model/moe.h"

namespace lumina {

class Block {
 public:
  // The FFN's activations: the member of the block's kind is planned, the other stays empty.
  struct FfnActivations {
    SwiGLUMlp::Activations mlp;  // dense layer
    MoeFfn::Activations moe;     // MoE layer (holds the routing and its statistics)
  };
  struct Activations {
    Tensor attn_rstd;  // (N)
    Tensor attn_norm;  // (N,C) the attention's rmsnorm output; empty when recomputed
    AttentionLayer::Activations attn;
    Tensor mid;        // (N,C) residual after attention
    Tensor ffn_rstd;   // (N)
    Tensor ffn_norm;   // (N,C) the FFN's rmsnorm output; empty when recomputed
    FfnActivations ffn;
    ModRouter::Activations mod;  // MoD layer: the routing (first R rows of the tensors above used)
  };
  // Scratch shared by all blocks (one block runs at a time, forward or backward).
  struct Scratch {
    Tensor norm, rstd;  // (N,C), (N): a recomputed rmsnorm output and rstd (empty when none is recomputed)
    Tensor dnorm;       // (N,C)
    AttentionLayer::Scratch attn;
    SwiGLUMlp::Scratch mlp;  // planned when some layer is dense
    MoeFfn::Scratch moe;     // planned when some layer is MoE (for its widest one)
    ModRouter::Scratch mod;  // planned when some layer is MoD
  };
  // `batch` sequences of one length, compact rows [begin, end): how attention
  // sees a (compact) batch. Dense: one run (B, 0, N).
  struct Run {
    int64_t batch, begin, end;
  };

  Block(ParamStore& ps, const ModelConfig& cfg, int layer);
  Activations plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const;
  // Scratch that serves every block of `blocks` (dense and MoE FFNs as they occur).
  static Scratch plan_scratch(const std::vector<Block>& blocks, Arena& arena, DType act, DType stat, int64_t B,
                              int64_t T);
  // For running ffn_forward() of any block of `blocks` on up to N tokens with one
  // shared set (generation): FFN activations, and the MoE scratch (empty without MoE layers).
  static FfnActivations plan_ffn(const std::vector<Block>& blocks, Arena& arena, DType act, int64_t N);
  static MoeFfn::Scratch plan_moe_scratch(const std::vector<Block>& blocks, Arena& arena, DType act, int64_t N);

  // x, out (N,C): block input and output (distinct buffers).
  void forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor out, Activations& a,
               Scratch& s) const;
  // dresid (N,C): in: d out; out: d x.
  void backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor dresid, const Activations& a,
                Scratch& s) const;
  // The FFN alone: out (N,C) = skip + ffn(x) (skip may be out), x (N,C) the
  // post-attention rmsnorm output; moe_scratch is used by MoE layers only. a and
  // moe_scratch may be planned for more tokens than N (the first N are used).
  void ffn_forward(const ModelContext& c, const Tensor& x, const Tensor& skip, Tensor out, FfnActivations& a,
                   MoeFfn::Scratch& moe_scratch) const;

  // What forward_cached() uses, shared by all blocks, for up to P tokens per call.
  struct CachedScratch {
    Tensor norm, rstd;  // (P,C), (P)
    AttentionLayer::Activations attn;
    FfnActivations ffn;
    MoeFfn::Scratch moe;
    ModRouter::Activations mod;  // planned when some layer is MoD
    ModRouter::Scratch mod_scratch;
  };
  static CachedScratch plan_cached(const std::vector<Block>& blocks, Arena& arena, DType act, DType stat, int64_t P);
  // Incremental decoding (batch 1), in place on x (n,C), the tokens at positions
  // first_position .. first_position+n-1. k_cache, v_cache (P, Hkv, D) hold the
  // cache_len tokens this layer cached so far; the tokens it runs now are appended
  // and cache_len grows by their count. A MoD layer decides per token causally
  // (mod.h), so it runs and caches only its routed tokens: they attend to the
  // earlier routed tokens of this layer alone.
  void forward_cached(const ModelContext& c, const RopeTables& rope, Tensor x, Tensor k_cache, Tensor v_cache,
                      int64_t& cache_len, int64_t first_position, CachedScratch& s) const;

  // Forward FLOPs (GEMMs and attention) of this layer run densely on B sequences of T tokens.
  double dense_forward_flops(int64_t B, int64_t T) const;

  const AttentionLayer& attention() const { return attn_; }
  bool is_mod() const { return mod_.has_value(); }
  const ModRouter* mod() const { return mod_ ? &*mod_ : nullptr; }  // nullptr outside MoD layers
  bool is_moe() const { return moe_.has_value(); }
  const MoeFfn* moe() const { return moe_ ? &*moe_ : nullptr; }  // nullptr in a dense layer
  double eps() const { return eps_; }

  ParamId input_layernorm, post_attention_layernorm;

 private:
  AttentionLayer attn_;
  std::optional<SwiGLUMlp> mlp_;  // exactly one of mlp_ and moe_ is set
  std::optional<MoeFfn> moe_;
  std::optional<ModRouter> mod_;
  int64_t hidden_, ffn_size_;
  double eps_;
  bool keep_attn_norm_, keep_ffn_norm_;  // model.recompute_norms

  // The halves on R rows (x, mid, out (R,C)) split into `runs`; positions (R) i32
  // (empty: position t within each sequence). Activations and scratch: their first R rows.
  void attention_half_forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor mid, Activations& a,
                         Scratch& s, const std::vector<Run>& runs, const Tensor& positions) const;
  void ffn_half_forward(const ModelContext& c, const Tensor& mid, Tensor out, Activations& a, Scratch& s) const;
  // dresid (R,C): in: d out, out: d mid (ffn half) / d x (attention half).
  void ffn_half_backward(const ModelContext& c, const Tensor& mid, Tensor dresid, const Activations& a,
                         Scratch& s) const;
  void attention_half_backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor dresid,
                          const Activations& a, Scratch& s, const std::vector<Run>& runs,
                          const Tensor& positions) const;
  // Forward FLOPs, 2 per multiply-add, of attention over `runs` (projections and the causal
  // q k^T and p v products) plus an FFN over ffn_tokens tokens (MoE: its router on them and
  // the experts on expert_rows kept assignments).
  double forward_flops(const std::vector<Run>& runs, int64_t ffn_tokens, int64_t expert_rows) const;
};

}  // namespace lumina
