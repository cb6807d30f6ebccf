#pragma once
// TokenDataset: a tokenized split held in memory as one token stream, cut into
// fixed windows of T+1 tokens (inputs t[0..T), targets t[1..T]), visited in a
// per-epoch shuffled order. The order is a pure function of (seed, epoch), so
// the data position of a run is fully described by a DataCursor.
//
// Document boundaries: documents are stored as BOS text EOS, back to back.
// A target that is the BOS of the next document is masked (-1): the model is
// never trained to guess where an unrelated document begins.
#include <cstdint>
#include <string>
#include <vector>

namespace lumina {

struct DataCursor {
  int64_t epoch = 0;
  int64_t position = 0;  // windows of this epoch already consumed
};

class TokenDataset {
 public:
  TokenDataset(std::vector<int32_t> tokens, int32_t bos_id, int64_t seq_len, uint64_t seed, bool shuffle);

  int64_t num_windows() const { return num_windows_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t seq_len() const { return seq_len_; }

  // Fills B windows (B*T inputs and targets) starting at `cursor`, advancing it;
  // wraps into the next epoch (a new shuffle) when this one is exhausted.
  void next_batch(DataCursor& cursor, int64_t B, int32_t* inputs, int32_t* targets) const;
  // Window `w` (unshuffled index) into T inputs and T targets.
  void window(int64_t w, int32_t* inputs, int32_t* targets) const;

 private:
  int64_t shuffled(int64_t epoch, int64_t position) const;

  std::vector<int32_t> tokens_;
  int32_t bos_id_;
  int64_t seq_len_;
  int64_t num_windows_;
  uint64_t seed_;
  bool shuffle_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> order_;  // permutation of windows for cached_epoch_
};

}  // namespace lumina
