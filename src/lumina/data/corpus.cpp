#include "lumina/data/corpus.h"

#include <cmath>
#include <numbers>
#include <string>

#include "lumina/core/error.h"
#include "lumina/data/byte_tokenizer.h"
#include "lumina/data/text_reader.h"

namespace lumina {

namespace {

// Every document of `files`; a data.format other than auto must match each file's extension.
std::vector<std::string> read_all(const std::vector<std::string>& files, const std::string& format) {
  std::vector<std::string> docs;
  for (const std::string& f : files) {
    if (format != "auto") {
      const std::string detected = text_format_of(f) == TextFormat::txt ? "txt" : "jsonl";
      LUMINA_CHECK(detected == format, "data.format = \"{}\" but {} is read as {} (by its extension): rename the "
                   "file or set data.format = \"auto\"", format, f, detected);
    }
    for (std::string& d : read_documents(f)) docs.push_back(std::move(d));
  }
  return docs;
}

void append_encoded(const ByteTokenizer& tok, const std::string& doc, std::vector<int32_t>& out) {
  out.push_back(ByteTokenizer::kBos);
  for (int32_t id : tok.encode(doc)) out.push_back(id);
  out.push_back(ByteTokenizer::kEos);
}

}  // namespace

Corpus load_corpus(const DataConfig& cfg, int64_t model_vocab) {
  LUMINA_CHECK(!cfg.train_files.empty(), "data.train_files is empty: list at least one .txt or .jsonl file");
  LUMINA_CHECK(model_vocab >= ByteTokenizer::kVocabSize,
               "model.vocab_size = {} cannot hold the byte tokenizer's {} ids (256 bytes + BOS, EOS, PAD): set "
               "model.vocab_size >= {}", model_vocab, ByteTokenizer::kVocabSize, ByteTokenizer::kVocabSize);
  const ByteTokenizer tok;
  std::vector<std::string> train_docs = read_all(cfg.train_files, cfg.format);
  std::vector<std::string> val_docs = read_all(cfg.validation_files, cfg.format);
  if (val_docs.empty() && cfg.validation_split > 0.0) {
    const auto held = static_cast<size_t>(std::ceil(cfg.validation_split * static_cast<double>(train_docs.size())));
    LUMINA_CHECK(held < train_docs.size(), "data.validation_split = {} leaves no training documents out of {}",
                 cfg.validation_split, train_docs.size());
    val_docs.assign(std::make_move_iterator(train_docs.end() - static_cast<std::ptrdiff_t>(held)),
                    std::make_move_iterator(train_docs.end()));
    train_docs.resize(train_docs.size() - held);
  }
  Corpus c;
  c.bos_id = ByteTokenizer::kBos;
  c.train_documents = static_cast<int64_t>(train_docs.size());
  c.val_documents = static_cast<int64_t>(val_docs.size());
  for (const std::string& d : train_docs) append_encoded(tok, d, c.train_tokens);
  for (const std::string& d : val_docs) append_encoded(tok, d, c.val_tokens);
  return c;
}

double unigram_bits_per_token(const Corpus& corpus, int64_t vocab) {
  std::vector<double> counts(static_cast<size_t>(vocab), 1.0);  // add-one smoothing
  double total = static_cast<double>(vocab);
  for (size_t i = 1; i < corpus.train_tokens.size(); ++i) {
    if (corpus.train_tokens[i] == corpus.bos_id) continue;
    counts[static_cast<size_t>(corpus.train_tokens[i])] += 1.0;
    total += 1.0;
  }
  double bits = 0.0;
  int64_t n = 0;
  for (size_t i = 1; i < corpus.val_tokens.size(); ++i) {
    if (corpus.val_tokens[i] == corpus.bos_id) continue;
    bits -= std::log2(counts[static_cast<size_t>(corpus.val_tokens[i])] / total);
    ++n;
  }
  return n ? bits / static_cast<double>(n) : 0.0;
}

}  // namespace lumina
