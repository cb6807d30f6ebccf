#pragma once
// SwiGLU feed-forward: out += down( silu(x Wg^T) * (x Wu^T) ).
// x (N,C); gate_up (N,2F) = [x Wg^T | x Wu^T] per row, from one GEMM over the
// stacked [Wg; Wu] (2F,C) (the two are declared one after the other); h (N,F);
// Wd (C,F). Backward is one GEMM each for d[Wg; Wu] and dx (K = 2F).
// gate_up and h are kept for backward (h for down_proj's weight gradient):
// recomputing h would save an (N, F) activation per layer but cost one
// elementwise pass over three (N, F) tensors, ~3% of a GPU step.
#include <string>

#include "lumina/core/arena.h"
#include "lumina/model/context.h"
#include "lumina/model/model_config.h"

namespace lumina {

class SwiGLUMlp {
 public:
  struct Activations {
    Tensor gate_up;  // (N, 2F)
    Tensor h;        // (N, F)
  };
  struct Scratch {
    Tensor dgate_up;  // (N, 2F)
    Tensor dh;        // (N, F)
  };

  // prefix: "model.layers.{i}.mlp." (Hugging Face names).
  SwiGLUMlp(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix);
  Activations plan(Arena& arena, DType act, int64_t N) const;
  Scratch plan_scratch(Arena& arena, DType act, int64_t N) const;

  // out (N,C) = skip + mlp(x) (skip may be out).
  void forward(const ModelContext& c, const Tensor& x, const Tensor& skip, Tensor out, Activations& a) const;
  // dx (N,C) = d mlp / dx given dresidual (N,C); overwritten.
  void backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, const Activations& a,
                Scratch& s) const;

  ParamId gate_proj, up_proj, down_proj;

 private:
  int64_t ffn_;
};

}  // namespace lumina
