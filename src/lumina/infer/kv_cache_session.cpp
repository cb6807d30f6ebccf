#include "lumina/infer/kv_cache_session.h"

namespace lumina {

namespace {
// Everything the session allocates, declared once for both the measuring and the real arena.
struct SessionTensors {
  std::vector<Tensor> k, v;
  Tensor tokens, x, norm, rstd, logits, logits_f32;
  AttentionLayer::Activations attn;
  SwiGLUMlp::Activations mlp;
};

SessionTensors plan_session(Arena& arena, const Transformer& m, int64_t P) {
  const ModelContext& c = m.context();
  const ModelConfig& cfg = m.config();
  const int64_t C = cfg.hidden_size, Hkv = cfg.num_kv_heads, D = cfg.head_dim();
  SessionTensors s;
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    s.k.push_back(arena.alloc(c.act_dtype, Shape{P, Hkv, D}));
    s.v.push_back(arena.alloc(c.act_dtype, Shape{P, Hkv, D}));
  }
  s.tokens = arena.alloc(DType::i32, Shape{P});
  s.x = arena.alloc(c.act_dtype, Shape{P, C});
  s.norm = arena.alloc(c.act_dtype, Shape{P, C});
  s.rstd = arena.alloc(c.stat_dtype, Shape{P});
  s.logits = arena.alloc(c.act_dtype, Shape{1, cfg.vocab_size});
  // Low-precision logits are widened on the device before the copy to the host.
  if (c.act_dtype != DType::f32 && c.act_dtype != DType::f64) s.logits_f32 = arena.alloc(DType::f32, Shape{1, cfg.vocab_size});
  if (!m.blocks().empty()) {
    s.attn = m.blocks().front().attention().plan(arena, c.act_dtype, c.stat_dtype, 1, P);
    s.mlp = m.blocks().front().mlp().plan(arena, c.act_dtype, P);
  }
  return s;
}
}  // namespace

KvCacheSession::KvCacheSession(Transformer& model, int64_t max_tokens) : model_(model), capacity_(max_tokens) {
  LUMINA_CHECK(max_tokens > 0 && max_tokens <= model.config().max_position_embeddings,
               "generation length {} must be in [1, model.max_position_embeddings = {}]", max_tokens,
               model.config().max_position_embeddings);
  Arena measuring = Arena::measuring(Device::cpu);
  plan_session(measuring, model, max_tokens);
  arena_ = Arena(model.context().be().allocate(measuring.peak_bytes()));
  SessionTensors s = plan_session(arena_, model, max_tokens);
  k_cache_ = std::move(s.k);
  v_cache_ = std::move(s.v);
  tokens_ = s.tokens;
  x_ = s.x;
  norm_ = s.norm;
  rstd_ = s.rstd;
  logits_ = s.logits;
  logits_f32_ = s.logits_f32;
  attn_ = s.attn;
  mlp_ = s.mlp;
  model.refresh_compute_weights();
}

std::vector<double> KvCacheSession::append(const int32_t* tokens, int64_t n) {
  LUMINA_CHECK(n > 0, "append: no tokens");
  LUMINA_CHECK(length_ + n <= capacity_, "context full: {} + {} tokens exceed the session capacity {}", length_, n,
               capacity_);
  const ModelContext& c = model_.context();
  Backend& be = c.be();
  const ModelConfig& cfg = model_.config();
  for (int64_t i = 0; i < n; ++i)
    LUMINA_CHECK(tokens[i] >= 0 && tokens[i] < cfg.vocab_size, "token id {} outside the vocabulary [0, {})", tokens[i],
                 cfg.vocab_size);
  Tensor tok = tokens_.slice(0, n);
  be.copy(tok, Tensor(const_cast<int32_t*>(tokens), DType::i32, Device::cpu, Shape{n}));
  Tensor x = x_.slice(0, n), norm = norm_.slice(0, n), rstd = rstd_.slice(0, n);
  be.embedding_forward(x, tok, c.weight(model_.embed_tokens_id()));
  const int64_t F = cfg.ffn_size();
  SwiGLUMlp::Activations mlp{mlp_.gate.prefix(Shape{n, F}), mlp_.up.prefix(Shape{n, F}), mlp_.h.prefix(Shape{n, F})};
  for (size_t l = 0; l < model_.blocks().size(); ++l) {
    const Block& b = model_.blocks()[l];
    be.rmsnorm_forward(norm, rstd, x, c.weight(b.input_layernorm), b.eps());
    b.attention().forward_cached(c, model_.rope(), norm, x, k_cache_[l], v_cache_[l], length_, attn_);
    be.rmsnorm_forward(norm, rstd, x, c.weight(b.post_attention_layernorm), b.eps());
    b.mlp().forward(c, norm, x, mlp);
  }
  Tensor last = x.slice(n - 1, n), last_norm = norm.slice(0, 1);
  be.rmsnorm_forward(last_norm, rstd.slice(0, 1), last, c.weight(model_.final_norm_id()), cfg.rms_norm_eps);
  linear_forward(c, logits_, last_norm, model_.head_weight());
  length_ += n;

  std::vector<double> out(static_cast<size_t>(cfg.vocab_size));
  if (logits_.dtype == DType::f64) {
    be.copy(Tensor(out.data(), DType::f64, Device::cpu, Shape{1, cfg.vocab_size}), logits_);
    return out;
  }
  Tensor wide = logits_;
  if (!logits_f32_.empty()) {
    be.cast(logits_f32_, logits_);
    wide = logits_f32_;
  }
  std::vector<float> staged(out.size());
  be.copy(Tensor(staged.data(), DType::f32, Device::cpu, Shape{1, cfg.vocab_size}), wide);
  std::copy(staged.begin(), staged.end(), out.begin());
  return out;
}

}  // namespace lumina
