#include "lumina/model/transformer.h"

#include <algorithm>
#include <cmath>

namespace lumina {

int64_t head_chunk_rows(int64_t rows, int64_t vocab, DType act) {
  constexpr int64_t kChunkBytes = int64_t{512} << 20;
  const int64_t elements = kChunkBytes / static_cast<int64_t>(dtype_size_bytes(act));
  return std::clamp<int64_t>(elements / std::max<int64_t>(vocab, 1), 1, rows);
}

Transformer::Transformer(const ModelConfig& cfg) : cfg_(cfg), tie_(cfg.tie_word_embeddings) {
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size;
  embed_tokens_ = params_.declare("model.embed_tokens.weight", Shape{V, C}, ParamInit::normal, cfg.init_std, true);
  blocks_.reserve(static_cast<size_t>(cfg.num_layers));
  for (int l = 0; l < cfg.num_layers; ++l) blocks_.emplace_back(params_, cfg, l);
  final_norm_ = params_.declare("model.norm.weight", Shape{C}, ParamInit::ones, 0.0, false);
  if (!tie_) lm_head_ = params_.declare("lm_head.weight", Shape{V, C}, ParamInit::normal, cfg.init_std, true);
}

void Transformer::allocate(Backend& backend, DType master_dtype, DType act_dtype) {
  params_.allocate(backend, master_dtype);
  ctx_.backend = &backend;
  ctx_.params = &params_;
  ctx_.act_dtype = act_dtype;
  ctx_.stat_dtype = stat_dtype_for(act_dtype);  // must match plan()
  if (act_dtype == master_dtype) {
    ctx_.weights_flat = params_.params_flat();
  } else {
    weights_buffer_ = backend.allocate(static_cast<size_t>(params_.numel()) * dtype_size_bytes(act_dtype));
    ctx_.weights_flat = weights_buffer_.as_tensor(act_dtype, Shape{params_.numel()});
  }

  // RoPE tables (P, D/2): angle(p, i) = p * theta^(-2i/D), computed in f64 on the host.
  const int64_t P = cfg_.max_position_embeddings, half = cfg_.head_dim() / 2;
  std::vector<double> cos_host(static_cast<size_t>(P * half)), sin_host(cos_host.size());
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(cfg_.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(2 * half));
      const double angle = static_cast<double>(p) * inv_freq;
      cos_host[static_cast<size_t>(p * half + i)] = std::cos(angle);
      sin_host[static_cast<size_t>(p * half + i)] = std::sin(angle);
    }
  }
  // Tables in f32 even for bf16/f16 activations: an 8-bit mantissa would blur
  // the angles of distant positions (f64 on the f64 gradient-check path).
  const DType table_dtype = act_dtype == DType::f64 ? DType::f64 : DType::f32;
  const size_t table_bytes = static_cast<size_t>(P * half) * dtype_size_bytes(table_dtype);
  rope_buffer_ = backend.allocate(2 * table_bytes);
  rope_.cos = rope_buffer_.as_tensor(table_dtype, Shape{P, half});
  rope_.sin = Tensor(static_cast<char*>(rope_buffer_.data()) + table_bytes, table_dtype, backend.device(), Shape{P, half});
  upload_f64(backend, rope_.cos, cos_host.data());
  upload_f64(backend, rope_.sin, sin_host.data());
}

Transformer::Plan Transformer::plan(Arena& arena, int64_t B, int64_t T, DType act) const {
  const DType stat = act == DType::f64 ? DType::f64 : DType::f32;
  const int64_t N = B * T, C = cfg_.hidden_size, V = cfg_.vocab_size;
  Plan p;
  p.tokens = arena.alloc(DType::i32, Shape{N});
  p.targets = arena.alloc(DType::i32, Shape{N});
  for (int64_t l = 0; l <= cfg_.num_layers; ++l) p.resid.push_back(arena.alloc(act, Shape{N, C}));
  for (const Block& b : blocks_) p.blocks.push_back(b.plan(arena, act, stat, B, T));
  p.final_norm = arena.alloc(act, Shape{N, C});
  p.final_rstd = arena.alloc(stat, Shape{N});
  p.logits = arena.alloc(act, Shape{head_chunk_rows(N, V, act), V});
  p.losses = arena.alloc(stat, Shape{N});
  p.argmax = arena.alloc(DType::i32, Shape{N});
  p.dlosses = arena.alloc(stat, Shape{N});
  p.dfinal_norm = arena.alloc(act, Shape{N, C});
  p.dresid = arena.alloc(act, Shape{N, C});
  p.scratch = Block::plan_scratch(blocks_, arena, act, stat, B, T);
  return p;
}

size_t Transformer::activation_bytes(int64_t B, int64_t T, DType act_dtype) const {
  Arena measuring = Arena::measuring(Device::cpu);
  plan(measuring, B, T, act_dtype);
  return measuring.peak_bytes();
}

MemoryPlan Transformer::memory_plan(int64_t B, int64_t T, DType act_dtype) const {
  MemoryPlan m;
  const int64_t master_bytes = params_.numel() * 4;
  m.weights_bytes = master_bytes;
  m.compute_weights_bytes = act_dtype == DType::f32 ? 0 : params_.numel() * static_cast<int64_t>(dtype_size_bytes(act_dtype));
  m.grads_bytes = master_bytes;
  m.optimizer_bytes = 2 * master_bytes;
  m.activations_bytes = static_cast<int64_t>(activation_bytes(B, T, act_dtype));
  return m;
}

void Transformer::prepare(int64_t B, int64_t T) {
  LUMINA_CHECK(ctx_.backend, "Transformer::prepare() before allocate()");
  LUMINA_CHECK(T <= cfg_.max_position_embeddings,
               "sequence length {} exceeds model.max_position_embeddings = {}: raise it or shorten train.seq_len", T,
               cfg_.max_position_embeddings);
  if (B == B_ && T == T_) return;
  arena_ = Arena(ctx_.backend->allocate(activation_bytes(B, T, ctx_.act_dtype)));
  plan_ = plan(arena_, B, T, ctx_.act_dtype);
  B_ = B;
  T_ = T;
}

ForwardResult Transformer::forward(const int32_t* tokens, const int32_t* targets, double dloss_per_token) {
  LUMINA_CHECK(B_ > 0, "Transformer::forward() before prepare()");
  Backend& be = *ctx_.backend;
  Plan& p = plan_;
  const int64_t N = B_ * T_, V = cfg_.vocab_size;
  for (int64_t n = 0; n < N; ++n) {
    LUMINA_CHECK(tokens[n] >= 0 && tokens[n] < V, "token id {} at position {} is outside the vocabulary [0, {})",
                 tokens[n], n, V);
    LUMINA_CHECK(targets[n] < V, "target id {} at position {} is outside the vocabulary [0, {})", targets[n], n, V);
  }
  be.copy(p.tokens, Tensor(const_cast<int32_t*>(tokens), DType::i32, Device::cpu, Shape{N}));
  be.copy(p.targets, Tensor(const_cast<int32_t*>(targets), DType::i32, Device::cpu, Shape{N}));
  if (!compute_weights_current_) refresh_compute_weights();
  compute_weights_current_ = false;

  be.embedding_forward(p.resid[0], p.tokens, ctx_.weight(embed_tokens_));
  for (size_t l = 0; l < blocks_.size(); ++l)
    blocks_[l].forward(ctx_, rope_, p.resid[l], p.resid[l + 1], p.blocks[l], p.scratch);
  be.rmsnorm_forward(p.final_norm, p.final_rstd, p.resid.back(), ctx_.weight(final_norm_), cfg_.rms_norm_eps);

  // LM head + cross-entropy in row chunks; with gradients, dlogits replace the
  // logits in place and flow straight into dfinal_norm and the head's gradient.
  have_head_grad_ = dloss_per_token > 0.0;
  if (have_head_grad_) be.fill(p.dlosses, dloss_per_token);
  const int64_t R = p.logits.dim(0);
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t r1 = std::min(N, r0 + R);
    Tensor logits = p.logits.slice(0, r1 - r0);
    Tensor x = p.final_norm.slice(r0, r1);
    linear_forward(ctx_, logits, x, head_weight());
    be.cross_entropy(logits, p.losses.slice(r0, r1), p.argmax.slice(r0, r1), p.targets.slice(r0, r1),
                     have_head_grad_ ? p.dlosses.slice(r0, r1) : Tensor{});
    if (have_head_grad_) linear_backward(ctx_, p.dfinal_norm.slice(r0, r1), logits, x, head_weight());
  }

  // Per-token losses and predictions back to the host (N values).
  host_losses_.resize(static_cast<size_t>(N));
  host_argmax_.resize(static_cast<size_t>(N));
  Tensor host_losses(host_losses_.data(), DType::f64, Device::cpu, Shape{N});
  if (ctx_.stat_dtype == DType::f64) {
    be.copy(host_losses, p.losses);
  } else {
    std::vector<float> staged(static_cast<size_t>(N));
    be.copy(Tensor(staged.data(), DType::f32, Device::cpu, Shape{N}), p.losses);
    std::copy(staged.begin(), staged.end(), host_losses_.begin());
  }
  be.copy(Tensor(host_argmax_.data(), DType::i32, Device::cpu, Shape{N}), p.argmax);
  ForwardResult result;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    result.loss_sum += host_losses_[static_cast<size_t>(n)];
    result.valid_tokens += 1;
    result.correct += host_argmax_[static_cast<size_t>(n)] == targets[n];
  }
  for (size_t l = 0; l < blocks_.size(); ++l) {
    if (!blocks_[l].is_moe()) continue;
    if (blocks_[l].is_mod() && p.blocks[l].mod.sel.rows() == 0) continue;  // MoD routed no token: no MoE pass
    MoeFfn::Activations& moe = p.blocks[l].ffn.moe;  // in a MoD layer: over the routed tokens only
    const MoeStats& st = blocks_[l].moe()->collect_stats(*ctx_.backend, moe, p.scratch.moe);
    result.aux_loss += st.aux_loss;
    result.z_loss += st.z_loss;
    const int64_t assignments = moe.tokens * blocks_[l].moe()->routing_params().top_k;
    result.moe_layers.push_back({static_cast<int64_t>(l), assignments, st});
  }
  if (cfg_.use_mod) {
    double depth = 0.0, flops = 0.0, dense_flops = 0.0;
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const double layer_dense = blocks_[l].dense_forward_flops(B_, T_);
      dense_flops += layer_dense;
      if (!blocks_[l].is_mod()) {
        depth += 1.0;
        flops += layer_dense;
        continue;
      }
      const ModLayerStats& st = blocks_[l].mod()->collect_stats(*ctx_.backend, p.blocks[l].mod);
      depth += st.capacity;
      flops += st.flops;
      result.mod_predictor_loss += kModPredictorLossWeight * st.predictor_loss;
      result.mod_layers.push_back(st);
    }
    result.mod_average_depth = depth;
    result.mod_flops_saved = 1.0 - flops / dense_flops;
  }
  return result;
}

std::optional<MoeRoutingSnapshot> Transformer::moe_routing(size_t layer) const {
  LUMINA_CHECK(layer < blocks_.size(), "moe_routing: layer {} of {}", layer, blocks_.size());
  if (!blocks_[layer].is_moe() || plan_.blocks.empty()) return std::nullopt;
  return blocks_[layer].moe()->snapshot(*ctx_.backend, plan_.blocks[layer].ffn.moe);
}

std::optional<std::vector<int32_t>> Transformer::mod_routed_tokens(size_t layer) const {
  LUMINA_CHECK(layer < blocks_.size(), "mod_routed_tokens: layer {} of {}", layer, blocks_.size());
  if (!blocks_[layer].is_mod() || plan_.blocks.empty()) return std::nullopt;
  return ModRouter::snapshot(*ctx_.backend, plan_.blocks[layer].mod);
}

void Transformer::set_training_step(bool training, uint64_t seed, int64_t step, int64_t micro) {
  ctx_.training = training;
  ctx_.seed = seed;
  ctx_.step = step;
  ctx_.micro = micro;
}

void Transformer::refresh_compute_weights() {
  if (ctx_.weights_flat.data != params_.params_flat().data) ctx_.backend->cast(ctx_.weights_flat, params_.params_flat());
}

void Transformer::backward(double dloss_aux) {
  LUMINA_CHECK(have_head_grad_, "Transformer::backward() needs a forward() with dloss_per_token > 0");
  Backend& be = *ctx_.backend;
  ctx_.dloss_aux = dloss_aux;
  Plan& p = plan_;
  be.fill(p.dresid, 0.0);
  be.rmsnorm_backward(p.dresid, ctx_.grad(final_norm_), p.dfinal_norm, p.resid.back(), ctx_.weight(final_norm_),
                      p.final_rstd);
  for (size_t l = blocks_.size(); l-- > 0;) blocks_[l].backward(ctx_, rope_, p.resid[l], p.dresid, p.blocks[l], p.scratch);
  be.embedding_backward(ctx_.grad(embed_tokens_), p.tokens, p.dresid);
  params_.end_overwrite();  // gradients nothing wrote this step are zeroed
  have_head_grad_ = false;
}

}  // namespace lumina
