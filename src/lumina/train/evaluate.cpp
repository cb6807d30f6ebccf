#include "lumina/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace lumina {

EvalResult evaluate(Transformer& model, const TokenDataset& data, int64_t batch, int64_t max_batches) {
  const int64_t T = data.seq_len();
  const int64_t available = data.num_windows() / batch;
  LUMINA_CHECK(available > 0, "the validation split has {} sequences of {} tokens, fewer than one batch of {}: add "
               "validation data or lower train.batch_size", data.num_windows(), T, batch);
  const int64_t batches = max_batches > 0 ? std::min(max_batches, available) : available;
  std::vector<int32_t> inputs(static_cast<size_t>(batch * T)), targets(inputs.size());
  double loss_sum = 0.0;
  int64_t tokens = 0, correct = 0;
  model.set_training_step(false, 0, 0, 0);
  DataCursor cursor;  // unshuffled split, always from its start: every evaluation sees the same tokens
  for (int64_t b = 0; b < batches; ++b) {
    data.next_batch(cursor, batch, inputs.data(), targets.data());
    const ForwardResult r = model.forward(inputs.data(), targets.data(), 0.0);
    loss_sum += r.loss_sum;
    tokens += r.valid_tokens;
    correct += r.correct;
  }
  EvalResult e;
  e.tokens = tokens;
  e.loss = tokens ? loss_sum / static_cast<double>(tokens) : 0.0;
  e.perplexity = std::exp(std::min(e.loss, 50.0));
  e.bits_per_token = e.loss / std::numbers::ln2;
  e.accuracy = tokens ? static_cast<double>(correct) / static_cast<double>(tokens) : 0.0;
  return e;
}

}  // namespace lumina
