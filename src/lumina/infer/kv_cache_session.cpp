#include "lumina/infer/kv_cache_session.h"

namespace lumina {

namespace {
// Everything the session allocates, declared once for both the measuring and the real arena.
struct SessionTensors {
  std::vector<Tensor> k, v;
  Tensor tokens, x, logits, logits_f32;
  Block::CachedScratch scratch;
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
  s.logits = arena.alloc(c.act_dtype, Shape{1, cfg.vocab_size});
  // Low-precision logits are widened on the device before the copy to the host.
  if (c.act_dtype != DType::f32 && c.act_dtype != DType::f64) s.logits_f32 = arena.alloc(DType::f32, Shape{1, cfg.vocab_size});
  s.scratch = Block::plan_cached(m.blocks(), arena, c.act_dtype, c.stat_dtype, P);
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
  logits_ = s.logits;
  logits_f32_ = s.logits_f32;
  scratch_ = s.scratch;
  cache_len_.assign(k_cache_.size(), 0);
  model.refresh_compute_weights();
}

void KvCacheSession::reset() {
  length_ = 0;
  cache_len_.assign(k_cache_.size(), 0);
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
  Tensor x = x_.slice(0, n);
  be.embedding_forward(x, tok, c.weight(model_.embed_tokens_id()));
  for (size_t l = 0; l < model_.blocks().size(); ++l)
    model_.blocks()[l].forward_cached(c, model_.rope(), x, k_cache_[l], v_cache_[l], cache_len_[l], length_, scratch_);
  Tensor last = x.slice(n - 1, n), last_norm = scratch_.norm.slice(0, 1);
  be.rmsnorm_forward(last_norm, scratch_.rstd.slice(0, 1), last, c.weight(model_.final_norm_id()), cfg.rms_norm_eps);
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
