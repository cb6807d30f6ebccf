// lumina eval: loss, perplexity, bits per token and accuracy of a checkpoint on a file.
#include <fmt/format.h>

#include "lumina/cli/checkpoint_model.h"
#include "lumina/cli/commands.h"
#include "lumina/data/corpus.h"
#include "lumina/train/evaluate.h"

namespace lumina::cli {

void register_eval(CLI::App& app) {
  struct Args {
    std::string checkpoint, data, device = "auto";
    int64_t batch = 0, seq = 0, max_batches = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on a .txt or .jsonl file");
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint, checkpoints/ or run directory")->required();
  cmd->add_option("--data", args->data, "Text file to evaluate on")->required();
  cmd->add_option("--batch", args->batch, "Batch size (default: the run's train.batch_size)");
  cmd->add_option("--seq", args->seq, "Sequence length (default: the run's train.seq_len)");
  cmd->add_option("--max-batches", args->max_batches, "Evaluate at most this many batches (0: all)");
  cmd->add_option("--device", args->device, "auto, cpu or cuda");
  cmd->callback([args] {
    LoadedModel loaded = load_checkpoint_model(args->checkpoint, args->device);
    DataConfig data = loaded.config.data;
    data.train_files = {args->data};
    data.validation_files.clear();
    data.validation_split = 0.0;
    const Corpus corpus = load_corpus(data, loaded.config.model.vocab_size);
    const int64_t B = args->batch > 0 ? args->batch : loaded.config.train.batch_size;
    const int64_t T = args->seq > 0 ? args->seq : loaded.config.train.seq_len;
    const TokenDataset dataset(corpus.train_tokens, corpus.bos_id, T, 0, /*shuffle=*/false);
    loaded.model->prepare(B, T);
    const EvalResult e = evaluate(*loaded.model, dataset, B, args->max_batches);
    fmt::print("checkpoint {} | data {} ({} tokens evaluated)\n", loaded.checkpoint_dir, args->data, e.tokens);
    fmt::print("loss {:.4f} | perplexity {:.3f} | bits/token {:.4f} | accuracy {:.2f}%\n", e.loss, e.perplexity,
               e.bits_per_token, 100.0 * e.accuracy);
  });
}

}  // namespace lumina::cli
