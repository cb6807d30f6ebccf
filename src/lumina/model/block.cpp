#include "lumina/model/block.h"

#include <fmt/format.h>

#include "lumina/model/layer_kinds.h"

namespace lumina {

Block::Block(ParamStore& ps, const ModelConfig& cfg, int layer)
    : input_layernorm(ps.declare(fmt::format("model.layers.{}.input_layernorm.weight", layer), Shape{cfg.hidden_size},
                                 ParamInit::ones, 0.0, false)),
      post_attention_layernorm(ps.declare(fmt::format("model.layers.{}.post_attention_layernorm.weight", layer),
                                          Shape{cfg.hidden_size}, ParamInit::ones, 0.0, false)),
      attn_(ps, cfg, layer),
      hidden_(cfg.hidden_size),
      ffn_size_(cfg.ffn_size()),
      eps_(cfg.rms_norm_eps),
      keep_attn_norm_(cfg.recompute_norms == "none"),
      keep_ffn_norm_(cfg.recompute_norms != "both") {
  if (is_moe_layer(cfg, layer)) moe_.emplace(ps, cfg, fmt::format("model.layers.{}.block_sparse_moe.", layer), layer);
  else mlp_.emplace(ps, cfg, fmt::format("model.layers.{}.mlp.", layer));
  if (is_mod_layer(cfg, layer)) mod_.emplace(ps, cfg, layer);
}

Block::Activations Block::plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const {
  const int64_t N = B * T;
  Activations a;
  a.attn_rstd = arena.alloc(stat, Shape{N});
  if (keep_attn_norm_) a.attn_norm = arena.alloc(act, Shape{N, hidden_});
  a.attn = attn_.plan(arena, act, stat, B, T);
  a.mid = arena.alloc(act, Shape{N, hidden_});
  a.ffn_rstd = arena.alloc(stat, Shape{N});
  if (keep_ffn_norm_) a.ffn_norm = arena.alloc(act, Shape{N, hidden_});
  if (moe_) a.ffn.moe = moe_->plan(arena, act, N);
  else a.ffn.mlp = mlp_->plan(arena, act, N);
  if (mod_) a.mod = mod_->plan(arena, act, stat, B, T);
  return a;
}

namespace {
const Block* first_dense(const std::vector<Block>& blocks) {
  for (const Block& b : blocks)
    if (!b.is_moe()) return &b;
  return nullptr;
}
// The MoE block with the most experts (its buffers fit every MoE block), or nullptr.
const Block* widest_moe(const std::vector<Block>& blocks) {
  const Block* widest = nullptr;
  for (const Block& b : blocks)
    if (b.is_moe() && (!widest || b.moe()->routing_params().num_experts > widest->moe()->routing_params().num_experts))
      widest = &b;
  return widest;
}
}  // namespace

Block::Scratch Block::plan_scratch(const std::vector<Block>& blocks, Arena& arena, DType act, DType stat, int64_t B,
                                   int64_t T) {
  Scratch s;
  if (blocks.empty()) return s;
  const Block& front = blocks.front();
  if (!front.keep_attn_norm_ || !front.keep_ffn_norm_) {  // a norm to recompute in backward
    s.norm = arena.alloc(act, Shape{B * T, front.hidden_});
    s.rstd = arena.alloc(stat, Shape{B * T});
  }
  s.dnorm = arena.alloc(act, Shape{B * T, front.hidden_});
  s.attn = front.attn_.plan_scratch(arena, act, B, T);
  if (const Block* dense = first_dense(blocks)) s.mlp = dense->mlp_->plan_scratch(arena, act, B * T);
  s.moe = plan_moe_scratch(blocks, arena, act, B * T);
  for (const Block& b : blocks)
    if (b.is_mod()) {
      s.mod = ModRouter::plan_scratch(arena, act, stat, B, T, front.hidden_);
      break;
    }
  return s;
}

Block::FfnActivations Block::plan_ffn(const std::vector<Block>& blocks, Arena& arena, DType act, int64_t N) {
  FfnActivations a;
  if (const Block* dense = first_dense(blocks)) a.mlp = dense->mlp_->plan(arena, act, N);
  if (const Block* moe = widest_moe(blocks)) a.moe = moe->moe_->plan(arena, act, N);
  return a;
}

MoeFfn::Scratch Block::plan_moe_scratch(const std::vector<Block>& blocks, Arena& arena, DType act, int64_t N) {
  const Block* moe = widest_moe(blocks);
  return moe ? moe->moe_->plan_scratch(arena, act, N) : MoeFfn::Scratch{};
}

namespace {

// Elements [begin, end) of t, flattened, viewed as `shape`.
Tensor elements(const Tensor& t, int64_t begin, int64_t end, Shape shape) {
  return t.view(Shape{t.numel()}).slice(begin, end).view(shape);
}

// The rows of one run in tensors planned per token as (B, T, H, D): (batch, L, H, D).
Tensor run_rows(const Tensor& t, const Block::Run& r) {
  const int64_t per_token = t.dim(2) * t.dim(3), len = (r.end - r.begin) / r.batch;
  return elements(t, r.begin * per_token, r.end * per_token, Shape{r.batch, len, t.dim(2), t.dim(3)});
}

AttentionLayer::Activations run_view(const AttentionLayer::Activations& a, const Block::Run& r) {
  const int64_t heads = a.lse.dim(1), len = (r.end - r.begin) / r.batch;
  AttentionLayer::Activations v;
  v.q = run_rows(a.q, r);
  v.k = run_rows(a.k, r);
  v.v = run_rows(a.v, r);
  v.y = run_rows(a.y, r);
  v.lse = elements(a.lse, r.begin * heads, r.end * heads, Shape{r.batch, heads, len});  // (batch, H, L)
  return v;
}

AttentionLayer::Scratch run_view(const AttentionLayer::Scratch& s, const Block::Run& r) {
  AttentionLayer::Scratch v;
  v.qkv = run_rows(s.qkv, r);
  v.dq = run_rows(s.dq, r);
  v.dk = run_rows(s.dk, r);
  v.dv = run_rows(s.dv, r);
  v.dy = run_rows(s.dy, r);
  return v;
}

Tensor first_rows(const Tensor& t, int64_t rows) {
  return t.prefix(t.rank() == 1 ? Shape{rows} : Shape{rows, t.numel() / t.dim(0)});
}

SwiGLUMlp::Activations first_rows(const SwiGLUMlp::Activations& a, int64_t rows) {
  return {first_rows(a.gate_up, rows), first_rows(a.h, rows)};
}

SwiGLUMlp::Scratch first_rows(const SwiGLUMlp::Scratch& s, int64_t rows) {
  return {first_rows(s.dgate_up, rows), first_rows(s.dh, rows)};
}

// The runs of a MoD selection: one run of B sequences when they all route the
// same number of tokens, else one run per sequence that routes any.
std::vector<Block::Run> selection_runs(const ModRouter::Selection& sel) {
  if (sel.uniform()) return {Block::Run{sel.batch, 0, sel.rows()}};
  std::vector<Block::Run> runs;
  for (int64_t b = 0; b < sel.batch; ++b) {
    const int64_t begin = sel.begin[static_cast<size_t>(b)], end = sel.begin[static_cast<size_t>(b + 1)];
    if (end > begin) runs.push_back({1, begin, end});
  }
  return runs;
}

}  // namespace

void Block::ffn_forward(const ModelContext& c, const Tensor& x, const Tensor& skip, Tensor out, FfnActivations& a,
                        MoeFfn::Scratch& moe_scratch) const {
  if (moe_) {  // the MoE adds into its residual
    if (out.data != skip.data) c.be().copy(out, skip);
    moe_->forward(c, x, out, a.moe, moe_scratch);
    return;
  }
  SwiGLUMlp::Activations rows = first_rows(a.mlp, x.dim(0));
  mlp_->forward(c, x, skip, out, rows);
}

void Block::attention_half_forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor mid,
                              Activations& a, Scratch& s, const std::vector<Run>& runs, const Tensor& positions) const {
  Backend& be = c.be();
  const int64_t R = x.dim(0);
  const Tensor norm = first_rows(keep_attn_norm_ ? a.attn_norm : s.norm, R);
  be.rmsnorm_forward(norm, first_rows(a.attn_rstd, R), x, c.weight(input_layernorm), eps_);
  for (const Run& r : runs) {  // the runs cover every row: mid = x + attention
    AttentionLayer::Activations av = run_view(a.attn, r);
    AttentionLayer::Scratch sv = run_view(s.attn, r);
    attn_.forward(c, rope, norm.slice(r.begin, r.end), x.slice(r.begin, r.end), mid.slice(r.begin, r.end), av, sv,
                  positions.empty() ? Tensor() : positions.slice(r.begin, r.end));
  }
}

void Block::ffn_half_forward(const ModelContext& c, const Tensor& mid, Tensor out, Activations& a, Scratch& s) const {
  const int64_t R = mid.dim(0);
  const Tensor norm = first_rows(keep_ffn_norm_ ? a.ffn_norm : s.norm, R);
  c.be().rmsnorm_forward(norm, first_rows(a.ffn_rstd, R), mid, c.weight(post_attention_layernorm), eps_);
  ffn_forward(c, norm, mid, out, a.ffn, s.moe);
}

void Block::ffn_half_backward(const ModelContext& c, const Tensor& mid, Tensor dresid, const Activations& a,
                              Scratch& s) const {
  Backend& be = c.be();
  const int64_t R = mid.dim(0);
  const Tensor norm = first_rows(keep_ffn_norm_ ? a.ffn_norm : s.norm, R), dnorm = first_rows(s.dnorm, R);
  // dresid = d out = d mid through the skip connection; add the FFN path.
  if (!keep_ffn_norm_) be.rmsnorm_forward(norm, first_rows(s.rstd, R), mid, c.weight(post_attention_layernorm), eps_);
  if (moe_) {
    moe_->backward(c, norm, dresid, dnorm, c.dloss_aux, a.ffn.moe, s.moe);
  } else {
    SwiGLUMlp::Scratch ms = first_rows(s.mlp, R);
    mlp_->backward(c, norm, dresid, dnorm, first_rows(a.ffn.mlp, R), ms);
  }
  be.rmsnorm_backward(dresid, c.grad(post_attention_layernorm), dnorm, mid, c.weight(post_attention_layernorm),
                      first_rows(a.ffn_rstd, R));
}

void Block::attention_half_backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor dresid,
                               const Activations& a, Scratch& s, const std::vector<Run>& runs,
                               const Tensor& positions) const {
  Backend& be = c.be();
  const int64_t R = x.dim(0);
  const Tensor norm = first_rows(keep_attn_norm_ ? a.attn_norm : s.norm, R), dnorm = first_rows(s.dnorm, R);
  // dresid = d mid = d x through the skip connection; add the attention path.
  if (!keep_attn_norm_) be.rmsnorm_forward(norm, first_rows(s.rstd, R), x, c.weight(input_layernorm), eps_);
  for (const Run& r : runs) {
    AttentionLayer::Scratch sv = run_view(s.attn, r);
    attn_.backward(c, rope, norm.slice(r.begin, r.end), dresid.slice(r.begin, r.end), dnorm.slice(r.begin, r.end),
                   run_view(a.attn, r), sv, positions.empty() ? Tensor() : positions.slice(r.begin, r.end));
  }
  be.rmsnorm_backward(dresid, c.grad(input_layernorm), dnorm, x, c.weight(input_layernorm),
                      first_rows(a.attn_rstd, R));
}

double Block::forward_flops(const std::vector<Run>& runs, int64_t ffn_tokens, int64_t expert_rows) const {
  const auto C = static_cast<double>(hidden_), F = static_cast<double>(ffn_size_);
  const auto Hq = static_cast<double>(attn_.num_heads()), Hkv = static_cast<double>(attn_.num_kv_heads());
  const auto D = static_cast<double>(attn_.head_dim());
  double flops = 0.0;
  for (const Run& r : runs) {
    const auto rows = static_cast<double>(r.end - r.begin), len = rows / static_cast<double>(r.batch);
    flops += 2.0 * rows * C * (2.0 * Hq + 2.0 * Hkv) * D;  // q, k, v and o projections
    // Causal q k^T and p v: L (L + 1) / 2 query-key pairs per sequence and head, 2 D multiply-adds each.
    flops += static_cast<double>(r.batch) * Hq * 2.0 * D * len * (len + 1.0);
  }
  const auto tokens = static_cast<double>(ffn_tokens);
  if (moe_)
    flops += 2.0 * tokens * C * static_cast<double>(moe_->routing_params().num_experts) +
             2.0 * static_cast<double>(expert_rows) * 3.0 * C * F;
  else
    flops += 2.0 * tokens * 3.0 * C * F;
  return flops;
}

double Block::dense_forward_flops(int64_t B, int64_t T) const {
  const int64_t N = B * T;
  return forward_flops({Run{B, 0, N}}, N, moe_ ? N * moe_->routing_params().top_k : 0);
}

Block::CachedScratch Block::plan_cached(const std::vector<Block>& blocks, Arena& arena, DType act, DType stat,
                                        int64_t P) {
  CachedScratch s;
  if (blocks.empty()) return s;
  const Block& front = blocks.front();
  s.norm = arena.alloc(act, Shape{P, front.hidden_});
  s.rstd = arena.alloc(stat, Shape{P});
  s.attn = front.attn_.plan(arena, act, stat, 1, P);
  s.ffn = plan_ffn(blocks, arena, act, P);
  s.moe = plan_moe_scratch(blocks, arena, act, P);
  for (const Block& b : blocks)
    if (b.is_mod()) {
      s.mod = b.mod_->plan(arena, act, stat, 1, P);
      s.mod_scratch = ModRouter::plan_scratch(arena, act, stat, 1, P, front.hidden_);
      break;
    }
  return s;
}

void Block::forward_cached(const ModelContext& c, const RopeTables& rope, Tensor x, Tensor k_cache, Tensor v_cache,
                           int64_t& cache_len, int64_t first_position, CachedScratch& s) const {
  Backend& be = c.be();
  const int64_t C = hidden_;
  // h (m,C) += attention over this layer's cache, then += ffn; the m tokens are appended to the cache.
  auto attention = [&](Tensor h, const Tensor& positions) {
    const int64_t m = h.dim(0);
    const Tensor norm = s.norm.prefix(Shape{m, C});
    be.rmsnorm_forward(norm, s.rstd.prefix(Shape{m}), h, c.weight(input_layernorm), eps_);
    attn_.forward_cached(c, rope, norm, h, k_cache, v_cache, cache_len, s.attn, positions);
    cache_len += m;
  };
  auto ffn = [&](Tensor h) {
    const int64_t m = h.dim(0);
    const Tensor norm = s.norm.prefix(Shape{m, C});
    be.rmsnorm_forward(norm, s.rstd.prefix(Shape{m}), h, c.weight(post_attention_layernorm), eps_);
    ffn_forward(c, norm, h, h, s.ffn, s.moe);
  };
  if (!mod_) {
    attention(x, Tensor());
    ffn(x);
    return;
  }
  ModelContext causal = c;
  causal.mod_causal = true;
  causal.training = false;
  if (mod_->ffn_only()) attention(x, Tensor());
  mod_->route(causal, x, 1, x.dim(0), s.mod, s.mod_scratch, first_position);
  const ModRouter::Selection& sel = s.mod.sel;
  const int64_t R = sel.rows();
  if (R == 0) return;
  const Tensor ys = s.mod.delta.prefix(Shape{R, C});  // the routed tokens, run through the block in place
  ModRouter::gather(be, ys, x, s.mod);
  if (!mod_->ffn_only()) attention(ys, s.mod.positions.prefix(Shape{R}));
  ffn(ys);
  ModRouter::combine(be, x, ys, x, s.mod);
}

void Block::forward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor out, Activations& a,
                    Scratch& s) const {
  const int64_t B = a.attn.q.dim(0), T = a.attn.q.dim(1), N = B * T, C = hidden_;
  const std::vector<Run> all{Run{B, 0, N}};
  if (!mod_) {
    attention_half_forward(c, rope, x, a.mid, a, s, all, Tensor());
    ffn_half_forward(c, a.mid, out, a, s);
    return;
  }
  Backend& be = c.be();
  ModRouter::Activations& m = a.mod;
  // x_route: what the router scores and the routed part starts from (x, or mid when FFN-only).
  if (mod_->ffn_only()) attention_half_forward(c, rope, x, a.mid, a, s, all, Tensor());
  const Tensor& x_route = mod_->ffn_only() ? a.mid : x;
  mod_->route(c, x_route, B, T, m, s.mod);
  const int64_t R = m.sel.rows();
  const Tensor xs = m.xs.prefix(Shape{R, C});
  const Tensor ys = m.delta.prefix(Shape{R, C});
  std::vector<Run> runs;
  if (R > 0) {
    ModRouter::gather(be, xs, x_route, m);
    if (mod_->ffn_only()) {
      ffn_half_forward(c, xs, ys, a, s);
    } else {
      runs = selection_runs(m.sel);
      const Tensor mid = a.mid.prefix(Shape{R, C});
      attention_half_forward(c, rope, xs, mid, a, s, runs, m.positions.prefix(Shape{R}));
      ffn_half_forward(c, mid, ys, a, s);
    }
  }
  ModRouter::combine(be, out, ys, x_route, m);
  // FLOPs from the shapes that ran, against the dense layer. An MoE FFN counts its
  // routed tokens' assignments before capacity, as the dense reference does, so
  // that expert-capacity drops do not count as MoD's savings.
  ModLayerStats& st = m.sel.stats;
  const int64_t expert_rows = moe_ ? R * moe_->routing_params().top_k : 0;
  st.flops = forward_flops(mod_->ffn_only() ? all : runs, R, expert_rows);
  if (mod_->type() == ModRoutingType::learned) st.flops += 2.0 * 2.0 * static_cast<double>(N * C);  // router, predictor
  st.dense_flops = dense_forward_flops(B, T);
}

void Block::backward(const ModelContext& c, const RopeTables& rope, const Tensor& x, Tensor dresid,
                     const Activations& a, Scratch& s) const {
  const int64_t B = a.attn.q.dim(0), T = a.attn.q.dim(1), N = B * T, C = hidden_;
  const std::vector<Run> all{Run{B, 0, N}};
  if (!mod_) {
    ffn_half_backward(c, a.mid, dresid, a, s);
    attention_half_backward(c, rope, x, dresid, a, s, all, Tensor());
    return;
  }
  // The routed part: dys (R,C) = g * d out of the routed rows, through the
  // compact half or block into d xs; then the combine's and router's terms.
  const ModRouter::Activations& m = a.mod;
  const Tensor& x_route = mod_->ffn_only() ? a.mid : x;
  const int64_t R = m.sel.rows();
  const Tensor xs = m.xs.prefix(Shape{R, C});  // gathered in forward
  const Tensor dys = s.mod.dys.prefix(Shape{R, C});
  if (R > 0) {
    ModRouter::backward_gates(c.be(), dresid, m, s.mod);
    if (mod_->ffn_only()) {
      ffn_half_backward(c, xs, dys, a, s);
    } else {
      ffn_half_backward(c, a.mid.prefix(Shape{R, C}), dys, a, s);
      attention_half_backward(c, rope, xs, dys, a, s, selection_runs(m.sel), m.positions.prefix(Shape{R}));
    }
  }
  mod_->backward_finish(c, x_route, dresid, dys, m, s.mod);
  if (mod_->ffn_only()) attention_half_backward(c, rope, x, dresid, a, s, all, Tensor());
}

}  // namespace lumina
