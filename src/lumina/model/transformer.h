#pragma once
// LLaMA-style decoder: embedding -> L pre-norm blocks (dense or MoE FFN,
// layer_kinds.h) -> rmsnorm -> LM head (tied to the embedding or not) -> cross-entropy.
//
// Life cycle: construct (declares parameters, allocates nothing: model-info
// uses this) -> allocate(backend) -> prepare(B, T) (plans and allocates every
// activation once) -> per micro-batch: forward(...) then backward(dloss_aux).
// The LM head and the loss run in row chunks fused with their gradient, so
// full (B*T, V) logits never exist.
//
// Training objective with MoE layers. One optimizer step of M micro-batches
// (m = 1..M, each N = B*T tokens) minimises
//   J = sum_m CE_sum_m / valid_tokens_of_step  +  (1/M) sum_m sum_{MoE layers l} (aux_m,l + z_m,l)
// aux and z being the weighted losses of moe_routing.h, each a mean over the N
// routed tokens of its micro-batch (masked targets included: every input token
// is routed), so micro-batches weigh equally and with M = 1, J = mean CE + sum_l (aux_l + z_l).
// The trainer therefore passes forward(..., dloss_per_token = s / valid_tokens_of_step)
// and backward(dloss_aux = s / M), s being the fp16 loss scale (1 otherwise).
// The reported loss (ForwardResult::loss_sum) is the cross-entropy alone.
// MoD layers (mod.h) add their predictor losses to the auxiliary sum in the same
// way: (1/M) sum_m sum_{MoD layers l} kModPredictorLossWeight * mean BCE_m,l
// (ForwardResult::mod_predictor_loss); it reaches the predictor weights only.
#include <memory>
#include <optional>
#include <vector>

#include "lumina/core/arena.h"
#include "lumina/model/accounting.h"
#include "lumina/model/block.h"
#include "lumina/model/model_config.h"
#include "lumina/model/param_store.h"

namespace lumina {

// One MoE layer's routing statistics of a forward pass.
struct MoeLayerStats {
  int64_t layer = 0;        // block index
  int64_t assignments = 0;  // (token, expert) pairs routed, before capacity: N * moe_top_k
  MoeStats stats;
};

struct ForwardResult {
  double loss_sum = 0.0;     // sum of per-token losses over unmasked targets
  int64_t valid_tokens = 0;  // unmasked targets (target >= 0)
  int64_t correct = 0;       // unmasked targets whose argmax prediction is right
  // MoE: the weighted aux and z losses summed over the MoE layers (not in
  // loss_sum), and every MoE layer's statistics, in layer order.
  double aux_loss = 0.0, z_loss = 0.0;
  std::vector<MoeLayerStats> moe_layers;
  // MoD: every MoD layer's statistics, in layer order; the weighted predictor
  // losses summed over them (not in loss_sum); over all layers, the average depth
  // (layers whose routed part a token ran, dense layers counting 1 for every token)
  // and the fraction of the decoder layers' forward FLOPs saved against running them densely.
  std::vector<ModLayerStats> mod_layers;
  double mod_predictor_loss = 0.0;
  double mod_average_depth = 0.0, mod_flops_saved = 0.0;
};

class Transformer {
 public:
  explicit Transformer(const ModelConfig& cfg);

  const ModelConfig& config() const { return cfg_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }

  // Allocates parameters (master dtype f32, or f64 for gradient checks) and the
  // RoPE tables on the backend; act_dtype is the compute dtype of activations.
  void allocate(Backend& backend, DType master_dtype, DType act_dtype);
  // Bytes of activations + backward scratch for a (B, T) micro-batch in act_dtype, without allocating.
  size_t activation_bytes(int64_t B, int64_t T, DType act_dtype) const;
  // What training at (B, T) needs: f32 master weights, grads and AdamW state, plus activations.
  MemoryPlan memory_plan(int64_t B, int64_t T, DType act_dtype) const;
  // Allocates activations for micro-batches of B sequences of T tokens.
  void prepare(int64_t B, int64_t T);

  // tokens, targets: host (B*T) i32; target < 0 is masked. When dloss_per_token > 0
  // the LM head's gradients are computed in the same pass with d loss / d loss_n =
  // dloss_per_token for every unmasked n (e.g. 1 / tokens in the whole batch), and
  // backward() may follow. Otherwise this is an evaluation pass.
  ForwardResult forward(const int32_t* tokens, const int32_t* targets, double dloss_per_token);
  // Accumulates (+=) parameter gradients of the last forward's loss, with
  // dloss_aux = d objective / d(aux_loss + z_loss of that forward) (see the top).
  void backward(double dloss_aux);
  // Sets what the next forward() draws its training-only randomness from
  // (ModelContext::training, seed, step, micro); evaluation passes training = false.
  void set_training_step(bool training, uint64_t seed, int64_t step, int64_t micro);
  // MoD layers decide per token as generation does (ModelContext::mod_causal) in the next forwards.
  void set_mod_causal(bool causal) { ctx_.mod_causal = causal; }

  // For inference code (infer/), which runs the same modules with a KV cache.
  const ModelContext& context() const { return ctx_; }
  const RopeTables& rope() const { return rope_; }
  const std::vector<Block>& blocks() const { return blocks_; }
  // The routing MoE layer `layer` chose in the last forward, downloaded (nullopt for a dense layer).
  std::optional<MoeRoutingSnapshot> moe_routing(size_t layer) const;
  // The tokens (n = b*T + t, in compact-row order) MoD layer `layer` routed in the
  // last forward, downloaded; nullopt outside MoD layers.
  std::optional<std::vector<int32_t>> mod_routed_tokens(size_t layer) const;
  ParamId embed_tokens_id() const { return embed_tokens_; }
  ParamId final_norm_id() const { return final_norm_; }
  ParamId head_weight() const { return tie_ ? embed_tokens_ : lm_head_; }
  // Re-derives the compute-dtype weights from the master weights (no-op when they are the same buffer).
  // forward() does this first, unless mark_compute_weights_current() came after the last forward.
  void refresh_compute_weights();
  // The compute-dtype weights as one flat tensor laid out as the parameters, for an
  // optimizer that writes them along with its update (AdamW::step's compute_copy);
  // empty when the compute dtype is the master dtype (one buffer).
  Tensor compute_weights() const {
    return ctx_.weights_flat.data == params_.params_flat().data ? Tensor{} : ctx_.weights_flat;
  }
  // The caller has just written the master weights into compute_weights(): the next
  // forward() skips its cast (one forward only). Any other change to the master
  // weights in between needs refresh_compute_weights() (the trainer's expert
  // events rebuild the model, which starts unmarked).
  void mark_compute_weights_current() { compute_weights_current_ = true; }

 private:
  struct Plan {
    Tensor tokens, targets;            // (N) i32 on the device
    std::vector<Tensor> resid;         // L+1 x (N,C): resid[0] = embeddings, resid[l+1] = block l output
    std::vector<Block::Activations> blocks;
    Tensor final_norm, final_rstd;     // (N,C), (N)
    Tensor logits;                     // (R,V) one chunk of rows, R <= N
    Tensor losses, argmax, dlosses;    // (N)
    Tensor dfinal_norm;                // (N,C)
    Tensor dresid;                     // (N,C)
    Block::Scratch scratch;
  };
  Plan plan(Arena& arena, int64_t B, int64_t T, DType act) const;

  ModelConfig cfg_;
  bool tie_;
  ParamStore params_;
  ParamId embed_tokens_, final_norm_, lm_head_ = -1;
  std::vector<Block> blocks_;

  ModelContext ctx_;
  Buffer weights_buffer_;  // compute-dtype copy of the weights when act dtype != master dtype
  Buffer rope_buffer_;
  RopeTables rope_;
  Arena arena_;
  Plan plan_;
  int64_t B_ = 0, T_ = 0;
  bool have_head_grad_ = false;
  bool compute_weights_current_ = false;  // mark_compute_weights_current(), consumed by forward()
  std::vector<double> host_losses_;
  std::vector<int32_t> host_argmax_;
};

// Rows of LM-head logits computed at once in dtype `act`: bounds the (R, V) chunk to
// 512 MiB (8192 rows at V = 32768 in bf16). Each chunk adds its share into the
// f32 head gradient (V, C), a read and a write of all of it, so fewer, larger
// chunks save that traffic (4 instead of 16 chunks: ~0.8 ms per dense-124m step).
int64_t head_chunk_rows(int64_t rows, int64_t vocab, DType act);

}  // namespace lumina
