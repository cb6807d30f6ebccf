#pragma once
// Pre-norm decoder block (LLaMA):
//   mid = x + attn(rmsnorm(x));  out = mid + mlp(rmsnorm(mid)).
// Memory: the two rmsnorm outputs are not kept for backward; they are
// recomputed there from the saved rstd's inputs (one cheap pass each), which
// saves 2 x (N, C) activations per layer.
#include <memory>

#include "lumina/model/attention.h"
#include "lumina/model/mlp.h"

namespace lumina {

class Block {
 public:
  struct Activations {
    Tensor attn_rstd;  // (N)
    AttentionLayer::Activations attn;
    Tensor mid;        // (N,C) residual after attention
    Tensor ffn_rstd;   // (N)
    SwiGLUMlp::Activations mlp;
  };
  // Scratch shared by all blocks (one block runs at a time, forward or backward).
  struct Scratch {
    Tensor norm, rstd;  // (N,C), (N): an rmsnorm output (and its recomputed rstd)
    Tensor dnorm;       // (N,C)
    AttentionLayer::Scratch attn;
    SwiGLUMlp::Scratch mlp;
  };

  Block(ParamStore& ps, const ModelConfig& cfg, int layer);
  Activations plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const;
  Scratch plan_scratch(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const;

  // x, out (N,C): block input and output (distinct buffers).
  void forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor out, Activations& a,
               Scratch& s) const;
  // dresid (N,C): in: d out; out: d x.
  void backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor dresid, const Activations& a,
                Scratch& s) const;

  const AttentionLayer& attention() const { return attn_; }
  const SwiGLUMlp& mlp() const { return mlp_; }
  double eps() const { return eps_; }

  ParamId input_layernorm, post_attention_layernorm;

 private:
  AttentionLayer attn_;
  SwiGLUMlp mlp_;
  int64_t hidden_;
  double eps_;
};

}  // namespace lumina
