#pragma once
// Evaluation on a held-out split: mean loss, perplexity, bits per token
// (= bits per byte with the byte tokenizer) and next-token accuracy, over
// the first `max_batches` batches of the split in order (all when 0).
#include <cstdint>

#include "lumina/data/token_dataset.h"
#include "lumina/model/transformer.h"

namespace lumina {

struct EvalResult {
  double loss = 0.0;          // nats per target token
  double perplexity = 0.0;
  double bits_per_token = 0.0;
  double accuracy = 0.0;
  int64_t tokens = 0;
};

EvalResult evaluate(Transformer& model, const TokenDataset& data, int64_t batch, int64_t max_batches);

}  // namespace lumina
