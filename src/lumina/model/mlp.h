#pragma once
// SwiGLU feed-forward: out += down( silu(x Wg^T) * (x Wu^T) ).
// x (N,C); gate, up, h (N,F); Wg, Wu (F,C); Wd (C,F).
// Only gate and up are kept for backward; h = silu(gate) * up is recomputed
// there (one elementwise pass), saving an (N, F) activation per layer.
#include <string>

#include "lumina/core/arena.h"
#include "lumina/model/context.h"
#include "lumina/model/model_config.h"

namespace lumina {

class SwiGLUMlp {
 public:
  struct Activations {
    Tensor gate, up;  // (N, F)
  };
  struct Scratch {
    Tensor h, dgate, dup, dh;  // (N, F)
  };

  // prefix: "model.layers.{i}.mlp." (Hugging Face names).
  SwiGLUMlp(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix);
  Activations plan(Arena& arena, DType act, int64_t N) const;
  Scratch plan_scratch(Arena& arena, DType act, int64_t N) const;

  // residual (N,C) += mlp(x); h (N,F): scratch for silu(gate) * up.
  void forward(const ModelContext& c, const Tensor& x, Tensor residual, Activations& a, Tensor h) const;
  // dx (N,C) = d mlp / dx given dresidual (N,C); overwritten.
  void backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, const Activations& a,
                Scratch& s) const;

  ParamId gate_proj, up_proj, down_proj;

 private:
  int64_t ffn_;
};

}  // namespace lumina
