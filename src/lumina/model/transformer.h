#pragma once
// Dense LLaMA-style decoder: embedding -> L pre-norm blocks -> rmsnorm -> LM
// head (tied to the embedding or not) -> cross-entropy.
//
// Life cycle: construct (declares parameters, allocates nothing: model-info
// uses this) -> allocate(backend) -> prepare(B, T) (plans and allocates every
// activation once) -> per micro-batch: forward(...) then backward().
// The LM head and the loss run in row chunks fused with their gradient, so
// full (B*T, V) logits never exist.
#include <memory>
#include <vector>

#include "lumina/core/arena.h"
#include "lumina/model/accounting.h"
#include "lumina/model/block.h"
#include "lumina/model/model_config.h"
#include "lumina/model/param_store.h"

namespace lumina {

struct ForwardResult {
  double loss_sum = 0.0;     // sum of per-token losses over unmasked targets
  int64_t valid_tokens = 0;  // unmasked targets (target >= 0)
  int64_t correct = 0;       // unmasked targets whose argmax prediction is right
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
  // Accumulates (+=) parameter gradients of the last forward's loss.
  void backward();
  // Sets what the next forward() draws its training-only randomness from
  // (ModelContext::training, seed, step, micro); evaluation passes training = false.
  void set_training_step(bool training, uint64_t seed, int64_t step, int64_t micro);

  // For inference code (infer/), which runs the same modules with a KV cache.
  const ModelContext& context() const { return ctx_; }
  const RopeTables& rope() const { return rope_; }
  const std::vector<Block>& blocks() const { return blocks_; }
  ParamId embed_tokens_id() const { return embed_tokens_; }
  ParamId final_norm_id() const { return final_norm_; }
  ParamId head_weight() const { return tie_ ? embed_tokens_ : lm_head_; }
  // Re-derives the compute-dtype weights from the master weights (no-op when they are the same buffer).
  void refresh_compute_weights();

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
  std::vector<double> host_losses_;
  std::vector<int32_t> host_argmax_;
};

// Rows of LM-head logits computed at once: bounds the (R, V) chunk to 2^26 elements
// (128 MiB in bf16), large enough that the head GEMMs run near peak.
int64_t head_chunk_rows(int64_t rows, int64_t vocab);

}  // namespace lumina
