#include "lumina/data/token_dataset.h"

#include <numeric>

#include "lumina/core/error.h"
#include "lumina/core/rng.h"

namespace lumina {

TokenDataset::TokenDataset(std::vector<int32_t> tokens, int32_t bos_id, int64_t seq_len, uint64_t seed, bool shuffle)
    : tokens_(std::move(tokens)), bos_id_(bos_id), seq_len_(seq_len), seed_(seed), shuffle_(shuffle) {
  LUMINA_CHECK(seq_len > 0, "sequence length must be positive");
  num_windows_ = tokens_.empty() ? 0 : (static_cast<int64_t>(tokens_.size()) - 1) / seq_len;
  LUMINA_CHECK(num_windows_ > 0, "the data has {} tokens, fewer than one sequence of {} + 1: add data or lower train.seq_len",
               tokens_.size(), seq_len);
}

void TokenDataset::window(int64_t w, int32_t* inputs, int32_t* targets) const {
  const int32_t* src = tokens_.data() + w * seq_len_;
  for (int64_t t = 0; t < seq_len_; ++t) {
    inputs[t] = src[t];
    targets[t] = src[t + 1] == bos_id_ ? -1 : src[t + 1];
  }
}

// Fisher-Yates with Philox draws keyed by (seed, epoch): the same permutation on every machine and resume.
int64_t TokenDataset::shuffled(int64_t epoch, int64_t position) const {
  if (!shuffle_) return position;
  if (cached_epoch_ != epoch) {
    order_.resize(static_cast<size_t>(num_windows_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    const Rng rng(seed_, RngPurpose::data_shuffle, static_cast<uint64_t>(epoch));
    for (int64_t i = num_windows_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng.uniform(static_cast<uint64_t>(i)) * static_cast<double>(i + 1));
      std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
    }
    cached_epoch_ = epoch;
  }
  return order_[static_cast<size_t>(position)];
}

void TokenDataset::next_batch(DataCursor& cursor, int64_t B, int32_t* inputs, int32_t* targets) const {
  for (int64_t b = 0; b < B; ++b) {
    if (cursor.position >= num_windows_) {
      cursor.epoch += 1;
      cursor.position = 0;
    }
    window(shuffled(cursor.epoch, cursor.position), inputs + b * seq_len_, targets + b * seq_len_);
    cursor.position += 1;
  }
}

}  // namespace lumina
