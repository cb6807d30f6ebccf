#pragma once
// Byte-level tokenizer: every byte of the UTF-8 text is one token, so any
// input encodes and nothing is ever unknown. Ids 0..255 are the byte values;
// three special tokens follow.
//
//   id 0..255  the byte with that value
//   256        BOS, begins each document
//   257        EOS, ends each document
//   258        PAD, fills unused positions
//   vocabulary size 259
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lumina {

class ByteTokenizer {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEos = 257;
  static constexpr int32_t kPad = 258;
  static constexpr int32_t kVocabSize = 259;

  // One id per byte; no BOS/EOS are added.
  std::vector<int32_t> encode(std::string_view text) const;
  // The bytes back; BOS, EOS and PAD are skipped. An id outside [0, 259) is an
  // error naming the id and its position.
  std::string decode(std::span<const int32_t> ids) const;
};

}  // namespace lumina
