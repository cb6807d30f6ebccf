#include "lumina/data/byte_tokenizer.h"

#include "lumina/core/error.h"

namespace lumina {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  text.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    LUMINA_CHECK(id >= 0 && id < kVocabSize,
                 "token id {} at position {} is not in the byte tokenizer's vocabulary [0, {})", id, i, kVocabSize);
    if (id < 256) text += static_cast<char>(id);
  }
  return text;
}

}  // namespace lumina
