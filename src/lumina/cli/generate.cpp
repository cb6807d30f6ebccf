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

// The bytes of `pending` up to the last UTF-8 sequence that is still
// incomplete (kept in `pending`), so a character split over tokens prints whole.
std::string take_complete_utf8(std::string& pending) {
  size_t keep_from = pending.size();
  for (size_t back = 1; back <= 3 && back <= pending.size(); ++back) {
    const auto byte = static_cast<unsigned char>(pending[pending.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: look further back for the lead
    const size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    if (length > back) keep_from = pending.size() - back;
    break;
  }
  std::string out = pending.substr(0, keep_from);
  pending.erase(0, keep_from);
  return out;
}

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
  std::string pending;  // decoded bytes not yet printed (an unfinished UTF-8 character)
  for (int64_t i = 0; i < new_tokens; ++i) {
    const int32_t next = sample_token(logits, a.sampling, static_cast<uint64_t>(i));
    if (next == ByteTokenizer::kEos) break;
    pending += tok.decode(std::span<const int32_t>(&next, 1));
    fmt::print("{}", take_complete_utf8(pending));
    std::fflush(stdout);
    if (i + 1 < new_tokens) logits = session.append(&next, 1);
  }
  fmt::print("{}\n", pending);
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
