// lumina generate: sample text from a checkpoint with a KV cache.
#include <fmt/format.h>

#include <cstdio>

#include "lumina/cli/checkpoint_model.h"
#include "lumina/cli/commands.h"
#include "lumina/data/byte_tokenizer.h"
#include "lumina/infer/kv_cache_session.h"
#include "lumina/infer/sampling.h"

namespace lumina::cli {

namespace {

struct GenerateArgs {
  std::string checkpoint, prompt, device = "auto";
  int64_t max_new_tokens = 200;
  SamplingOptions sampling;
};

void run_generate(const GenerateArgs& a) {
  validate_sampling(a.sampling);
  LUMINA_CHECK(a.max_new_tokens > 0, "--max-new-tokens {} must be positive", a.max_new_tokens);
  LoadedModel loaded = load_checkpoint_model(a.checkpoint, a.device);
  Transformer& model = *loaded.model;
  const ByteTokenizer tok;
  std::vector<int32_t> prompt{ByteTokenizer::kBos};
  for (int32_t id : tok.encode(a.prompt)) prompt.push_back(id);
  const int64_t capacity = model.config().max_position_embeddings;
  LUMINA_CHECK(static_cast<int64_t>(prompt.size()) < capacity,
               "the prompt is {} tokens, the model's context is {}: shorten it", prompt.size(), capacity);
  const int64_t new_tokens = std::min<int64_t>(a.max_new_tokens, capacity - static_cast<int64_t>(prompt.size()));

  KvCacheSession session(model, capacity);
  std::vector<double> logits = session.append(prompt.data(), static_cast<int64_t>(prompt.size()));
  fmt::print("{}", a.prompt);
  std::fflush(stdout);
  for (int64_t i = 0; i < new_tokens; ++i) {
    const int32_t next = sample_token(logits, a.sampling, static_cast<uint64_t>(i));
    if (next == ByteTokenizer::kEos) break;
    fmt::print("{}", tok.decode(std::span<const int32_t>(&next, 1)));
    std::fflush(stdout);
    if (i + 1 < new_tokens) logits = session.append(&next, 1);
  }
  fmt::print("\n");
}

}  // namespace

void register_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a checkpoint (KV cache, temperature/top-k/top-p)");
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint, checkpoints/ or run directory")->required();
  cmd->add_option("--prompt", args->prompt, "Text to continue")->required();
  cmd->add_option("--max-new-tokens", args->max_new_tokens, "Tokens to generate at most");
  cmd->add_option("--temperature", args->sampling.temperature, "Softmax temperature (0: greedy)");
  cmd->add_option("--top-k", args->sampling.top_k, "Keep the k most likely tokens (0: all)");
  cmd->add_option("--top-p", args->sampling.top_p, "Keep the smallest set with this probability mass (1: all)");
  cmd->add_option("--seed", args->sampling.seed, "Sampling seed");
  cmd->add_option("--device", args->device, "auto, cpu or cuda");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace lumina::cli
