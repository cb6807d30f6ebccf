#include "lumina/model/mlp.h"

#include <cmath>

namespace lumina {

SwiGLUMlp::SwiGLUMlp(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix) : ffn_(cfg.ffn_size()) {
  const int64_t C = cfg.hidden_size;
  const double residual_std = cfg.init_std / std::sqrt(2.0 * static_cast<double>(cfg.num_layers));
  gate_proj = ps.declare(prefix + "gate_proj.weight", Shape{ffn_, C}, ParamInit::normal, cfg.init_std, true);
  up_proj = ps.declare(prefix + "up_proj.weight", Shape{ffn_, C}, ParamInit::normal, cfg.init_std, true);
  down_proj = ps.declare(prefix + "down_proj.weight", Shape{C, ffn_}, ParamInit::normal, residual_std, true);
}

SwiGLUMlp::Activations SwiGLUMlp::plan(Arena& arena, DType act, int64_t N) const {
  Activations a;
  a.gate_up = arena.alloc(act, Shape{N, 2 * ffn_});
  a.h = arena.alloc(act, Shape{N, ffn_});
  return a;
}

SwiGLUMlp::Scratch SwiGLUMlp::plan_scratch(Arena& arena, DType act, int64_t N) const {
  Scratch s;
  s.dgate_up = arena.alloc(act, Shape{N, 2 * ffn_});
  s.dh = arena.alloc(act, Shape{N, ffn_});
  return s;
}

void SwiGLUMlp::forward(const ModelContext& c, const Tensor& x, const Tensor& skip, Tensor out, Activations& a) const {
  stacked_linear_forward(c, a.gate_up, x, gate_proj, 2);
  c.be().swiglu_packed_forward(a.h, a.gate_up);
  linear_forward_add(c, out, a.h, down_proj, skip);
}

void SwiGLUMlp::backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx,
                         const Activations& a, Scratch& s) const {
  linear_backward(c, s.dh, dresidual, a.h, down_proj);
  c.be().swiglu_packed_backward(s.dgate_up, s.dh, a.gate_up);
  stacked_linear_backward(c, dx, s.dgate_up, x, gate_proj, 2);
}

}  // namespace lumina
