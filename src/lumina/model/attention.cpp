#include "lumina/model/attention.h"

#include <cmath>

#include <fmt/format.h>

namespace lumina {

AttentionLayer::AttentionLayer(ParamStore& ps, const ModelConfig& cfg, int layer)
    : num_heads_(cfg.num_heads), num_kv_heads_(cfg.num_kv_heads), head_dim_(cfg.head_dim()) {
  const int64_t C = cfg.hidden_size, D = head_dim_;
  const double std = cfg.init_std;
  const double residual_std = cfg.init_std / std::sqrt(2.0 * static_cast<double>(cfg.num_layers));
  const std::string p = fmt::format("model.layers.{}.self_attn.", layer);
  q_proj = ps.declare(p + "q_proj.weight", Shape{num_heads_ * D, C}, ParamInit::normal, std, true);
  k_proj = ps.declare(p + "k_proj.weight", Shape{num_kv_heads_ * D, C}, ParamInit::normal, std, true);
  v_proj = ps.declare(p + "v_proj.weight", Shape{num_kv_heads_ * D, C}, ParamInit::normal, std, true);
  o_proj = ps.declare(p + "o_proj.weight", Shape{C, num_heads_ * D}, ParamInit::normal, residual_std, true);
}

AttentionLayer::Activations AttentionLayer::plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const {
  Activations a;
  a.q = arena.alloc(act, Shape{B, T, num_heads_, head_dim_});
  a.k = arena.alloc(act, Shape{B, T, num_kv_heads_, head_dim_});
  a.v = arena.alloc(act, Shape{B, T, num_kv_heads_, head_dim_});
  a.y = arena.alloc(act, Shape{B, T, num_heads_, head_dim_});
  a.lse = arena.alloc(stat, Shape{B, num_heads_, T});
  return a;
}

AttentionLayer::Scratch AttentionLayer::plan_scratch(Arena& arena, DType act, int64_t B, int64_t T) const {
  Scratch s;
  s.qkv = arena.alloc(act, Shape{B, T, num_heads_ + 2 * num_kv_heads_, head_dim_});
  s.dq = arena.alloc(act, Shape{B, T, num_heads_, head_dim_});
  s.dk = arena.alloc(act, Shape{B, T, num_kv_heads_, head_dim_});
  s.dv = arena.alloc(act, Shape{B, T, num_kv_heads_, head_dim_});
  s.dy = arena.alloc(act, Shape{B, T, num_heads_, head_dim_});
  return s;
}

void AttentionLayer::forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, const Tensor& skip,
                             Tensor out, Activations& a, Scratch& s, const Tensor& positions) const {
  Backend& be = c.be();
  const int64_t N = x.dim(0);
  stacked_linear_forward(c, s.qkv.view(Shape{N, s.qkv.numel() / N}), x, q_proj, 3);  // [q | k | v] per row
  be.rope_qkv_forward(a.q, a.k, a.v, s.qkv, rope.cos, rope.sin, positions);
  be.attention_forward(a.y, a.lse, a.q, a.k, a.v);
  linear_forward_add(c, out, a.y.view(Shape{N, num_heads_ * head_dim_}), o_proj, skip);
}

void AttentionLayer::forward_cached(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor residual,
                                    Tensor k_cache, Tensor v_cache, int64_t pos, Activations& a,
                                    const Tensor& positions) const {
  Backend& be = c.be();
  const int64_t n = x.dim(0), total = pos + n;
  LUMINA_CHECK(total <= k_cache.dim(0), "KV cache full: {} positions requested, capacity {}", total, k_cache.dim(0));
  Tensor q = a.q.prefix(Shape{1, n, num_heads_, head_dim_});
  Tensor y = a.y.prefix(Shape{1, n, num_heads_, head_dim_});
  Tensor lse = a.lse.prefix(Shape{1, num_heads_, n});
  Tensor k_new = k_cache.slice(pos, total).view(Shape{1, n, num_kv_heads_, head_dim_});
  Tensor v_new = v_cache.slice(pos, total).view(Shape{1, n, num_kv_heads_, head_dim_});
  linear_forward(c, q.view(Shape{n, num_heads_ * head_dim_}), x, q_proj);
  linear_forward(c, k_new.view(Shape{n, num_kv_heads_ * head_dim_}), x, k_proj);
  linear_forward(c, v_new.view(Shape{n, num_kv_heads_ * head_dim_}), x, v_proj);
  if (positions.empty()) {
    be.rope_forward(q, rope.cos, rope.sin, pos);
    be.rope_forward(k_new, rope.cos, rope.sin, pos);
  } else {
    be.rope_positions_forward(q, rope.cos, rope.sin, positions);
    be.rope_positions_forward(k_new, rope.cos, rope.sin, positions);
  }
  be.attention_forward(y, lse, q, k_cache.slice(0, total).view(Shape{1, total, num_kv_heads_, head_dim_}),
                       v_cache.slice(0, total).view(Shape{1, total, num_kv_heads_, head_dim_}));
  linear_forward(c, residual, y.view(Shape{n, num_heads_ * head_dim_}), o_proj, 1.0);
}

void AttentionLayer::backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, const Tensor& dresidual,
                              Tensor dx, const Activations& a, Scratch& s, const Tensor& positions) const {
  Backend& be = c.be();
  const int64_t N = x.dim(0);
  const auto rows = [N](const Tensor& t) { return t.view(Shape{N, t.numel() / N}); };
  linear_backward(c, rows(s.dy), dresidual, rows(a.y), o_proj);
  be.attention_backward(s.dq, s.dk, s.dv, s.dy, a.q, a.k, a.v, a.y, a.lse);
  be.rope_qkv_backward(s.qkv, s.dq, s.dk, s.dv, rope.cos, rope.sin, positions);
  stacked_linear_backward(c, dx, rows(s.qkv), x, q_proj, 3);  // d[Wq; Wk; Wv] += dqkv^T x;  dx = dqkv [Wq; Wk; Wv]
}

}  // namespace lumina
