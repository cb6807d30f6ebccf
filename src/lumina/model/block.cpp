#include "lumina/model/block.h"

#include <fmt/format.h>

namespace lumina {

Block::Block(ParamStore& ps, const ModelConfig& cfg, int layer)
    : input_layernorm(ps.declare(fmt::format("model.layers.{}.input_layernorm.weight", layer), Shape{cfg.hidden_size},
                                 ParamInit::ones, 0.0, false)),
      post_attention_layernorm(ps.declare(fmt::format("model.layers.{}.post_attention_layernorm.weight", layer),
                                          Shape{cfg.hidden_size}, ParamInit::ones, 0.0, false)),
      attn_(ps, cfg, layer),
      mlp_(ps, cfg, fmt::format("model.layers.{}.mlp.", layer)),
      hidden_(cfg.hidden_size),
      eps_(cfg.rms_norm_eps) {}

Block::Activations Block::plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const {
  const int64_t N = B * T;
  Activations a;
  a.attn_rstd = arena.alloc(stat, Shape{N});
  a.attn = attn_.plan(arena, act, stat, B, T);
  a.mid = arena.alloc(act, Shape{N, hidden_});
  a.ffn_rstd = arena.alloc(stat, Shape{N});
  a.mlp = mlp_.plan(arena, act, N);
  return a;
}

Block::Scratch Block::plan_scratch(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const {
  Scratch s;
  s.norm = arena.alloc(act, Shape{B * T, hidden_});
  s.rstd = arena.alloc(stat, Shape{B * T});
  s.dnorm = arena.alloc(act, Shape{B * T, hidden_});
  s.attn = attn_.plan_scratch(arena, act, B, T);
  s.mlp = mlp_.plan_scratch(arena, act, B * T);
  return s;
}

void Block::forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor out, Activations& a,
                    Scratch& s) const {
  Backend& be = c.be();
  be.rmsnorm_forward(s.norm, a.attn_rstd, x, c.weight(input_layernorm), eps_);
  be.copy(a.mid, x);
  attn_.forward(c, rope, s.norm, a.mid, a.attn);
  be.rmsnorm_forward(s.norm, a.ffn_rstd, a.mid, c.weight(post_attention_layernorm), eps_);
  be.copy(out, a.mid);
  mlp_.forward(c, s.norm, out, a.mlp);
}

void Block::backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor dresid,
                     const Activations& a, Scratch& s) const {
  Backend& be = c.be();
  // dresid = d out = d mid through the skip connection; add the mlp path.
  be.rmsnorm_forward(s.norm, s.rstd, a.mid, c.weight(post_attention_layernorm), eps_);  // recompute its input
  mlp_.backward(c, s.norm, dresid, s.dnorm, a.mlp, s.mlp);
  be.rmsnorm_backward(dresid, c.grad(post_attention_layernorm), s.dnorm, a.mid, c.weight(post_attention_layernorm),
                      a.ffn_rstd);
  // dresid = d mid = d x through the skip connection; add the attention path.
  be.rmsnorm_forward(s.norm, s.rstd, x, c.weight(input_layernorm), eps_);
  attn_.backward(c, rope, s.norm, dresid, s.dnorm, a.attn, s.attn);
  be.rmsnorm_backward(dresid, c.grad(input_layernorm), s.dnorm, x, c.weight(input_layernorm), a.attn_rstd);
}

}  // namespace lumina
