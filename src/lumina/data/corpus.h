#pragma once
// Corpus: the train and validation token streams of a run, built from
// DataConfig: documents read from data.train_files (txt / jsonl), encoded with
// the byte tokenizer as BOS text EOS each, back to back. Validation comes from
// data.validation_files, or else the last data.validation_split of the
// training documents (whole documents: no document is in both splits).
#include <cstdint>
#include <vector>

#include "lumina/data/data_config.h"

namespace lumina {

struct Corpus {
  std::vector<int32_t> train_tokens, val_tokens;
  int32_t bos_id = 0;
  int64_t train_documents = 0, val_documents = 0;
};

// model_vocab: the model's vocab_size, which must hold every token id.
Corpus load_corpus(const DataConfig& cfg, int64_t model_vocab);

// The baseline a language model must beat: cross-entropy in bits per token of
// the validation targets under the training split's unigram distribution
// (add-one smoothed over `vocab` ids). Targets are every token but the first
// and the BOS tokens, as in training.
double unigram_bits_per_token(const Corpus& corpus, int64_t vocab);

}  // namespace lumina
