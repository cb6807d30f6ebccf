// lumina model-info: parameters, FLOPs per token and the training memory plan
// of a config, computed without allocating the model.
#include <fmt/format.h>

#include "lumina/cli/commands.h"
#include "lumina/cli/config_options.h"
#include "lumina/cli/format.h"
#include "lumina/model/accounting.h"
#include "lumina/model/transformer.h"

namespace lumina::cli {

namespace {

struct ModelInfoArgs {
  ConfigOptions config;
  int64_t batch = 0, seq = 0;
  std::string precision = "fp32";
};

void run_model_info(const ModelInfoArgs& a) {
  const RunConfig cfg = a.config.load_valid();
  const ModelConfig& m = cfg.model;
  const int64_t B = a.batch > 0 ? a.batch : cfg.train.batch_size;
  const int64_t T = a.seq > 0 ? a.seq : cfg.train.seq_len;
  const DType act = a.precision == "bf16" ? DType::bf16 : a.precision == "fp16" ? DType::f16 : DType::f32;
  LUMINA_CHECK(a.precision == "fp32" || a.precision == "bf16" || a.precision == "fp16",
               "--precision {}: use fp32, bf16 or fp16", a.precision);

  const ParamCounts p = count_params(m);
  const Transformer declared(m);  // declares every parameter, allocates nothing
  LUMINA_CHECK(declared.params().numel() == p.total, "internal: accounting {} != declared {}", p.total,
               declared.params().numel());
  fmt::print("model        hidden {} | layers {} | heads {} (kv {}, head dim {}) | ffn {} | vocab {} | {} head\n",
             m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads, m.head_dim(), m.ffn_size(), m.vocab_size,
             m.tie_word_embeddings ? "tied" : "untied");
  fmt::print("parameters   total {} ({}) | active {} ({})\n", with_commas(p.total), human_count(p.total),
             with_commas(p.active), human_count(p.active));
  fmt::print("             embedding {} | lm head {} | attention {} | ffn {} | norms {}{}\n", with_commas(p.embedding),
             with_commas(p.lm_head), with_commas(p.attention), with_commas(p.ffn), with_commas(p.norms),
             p.moe_layers ? fmt::format(" | experts {} | routers {}", with_commas(p.experts), with_commas(p.routers))
                          : "");
  fmt::print("             active per token (matmul weights incl. LM head) {} ({})\n", with_commas(p.active_matmul),
             human_count(p.active_matmul));
  if (p.moe_layers)
    fmt::print("moe          {} of {} layers (moe_pattern {}): {} experts, top-{}; active counts the router and {} "
               "experts per MoE layer\n",
               p.moe_layers, m.num_layers, m.moe_pattern, m.num_experts, m.moe_top_k, m.moe_top_k);
  const double flops = train_flops_per_token(m, T);
  fmt::print("flops/token  {:.4g} GFLOP training at seq {} (6 x active + 12 x layers x hidden x seq)\n", flops / 1e9, T);
  if (p.mod_layers) {
    const double mod_flops = mod_train_flops_per_token(m, T);
    fmt::print("mod          {} of {} layers ({} routing{}, capacity {}): {:.4g} GFLOP/token expected at the target "
               "capacity, {:.1f}% of the {:.4g} above{}\n",
               p.mod_layers, m.num_layers, m.mod_routing_type, m.mod_ffn_only ? ", FFN only" : "",
               m.mod_capacity_factor, mod_flops / 1e9, 100.0 * mod_flops / flops, flops / 1e9,
               m.mod_routing_type == "learned" ? fmt::format("; routers {}", with_commas(p.mod_routers)) : "");
  }
  const MemoryPlan plan = declared.memory_plan(B, T, act);
  fmt::print("memory plan  batch {} x seq {}, activations {}:\n", B, T, dtype_name(act));
  fmt::print("  weights (f32 master)   {:>12}\n", human_bytes(plan.weights_bytes));
  if (plan.compute_weights_bytes) fmt::print("  weights ({} copy)     {:>12}\n", dtype_name(act), human_bytes(plan.compute_weights_bytes));
  fmt::print("  gradients (f32)        {:>12}\n", human_bytes(plan.grads_bytes));
  fmt::print("  AdamW state (f32 m, v) {:>12}\n", human_bytes(plan.optimizer_bytes));
  fmt::print("  activations            {:>12}\n", human_bytes(plan.activations_bytes));
  fmt::print("  total                  {:>12}\n", human_bytes(plan.total_bytes()));
}

}  // namespace

void register_model_info(CLI::App& app) {
  auto args = std::make_shared<ModelInfoArgs>();
  CLI::App* cmd = app.add_subcommand("model-info", "Print parameter counts, FLOPs per token and the memory plan");
  args->config.add_to(*cmd);
  cmd->add_option("--batch", args->batch, "Micro-batch size (default: train.batch_size)");
  cmd->add_option("--seq", args->seq, "Sequence length (default: train.seq_len)");
  cmd->add_option("--precision", args->precision, "Activation dtype of the plan: fp32, bf16, fp16");
  cmd->callback([args] { run_model_info(*args); });
}

}  // namespace lumina::cli
