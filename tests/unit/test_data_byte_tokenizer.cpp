// data/byte_tokenizer.h: ids are byte values, specials are 256..258, decode
// skips specials and rejects ids outside the vocabulary.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lumina/data/byte_tokenizer.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;

TEST(ByteTokenizer, SpecialIdsAndVocabulary) {
  static_assert(ByteTokenizer::kBos == 256 && ByteTokenizer::kEos == 257 && ByteTokenizer::kPad == 258);
  static_assert(ByteTokenizer::kVocabSize == 259);
}

TEST(ByteTokenizer, EncodesBytesIncludingUtf8AndNul) {
  const ByteTokenizer tok;
  EXPECT_EQ(tok.encode("Hi!"), (std::vector<int32_t>{72, 105, 33}));
  EXPECT_EQ(tok.encode("é€"), (std::vector<int32_t>{0xC3, 0xA9, 0xE2, 0x82, 0xAC}));  // UTF-8 bytes
  EXPECT_EQ(tok.encode(std::string("a\0b\xff", 4)), (std::vector<int32_t>{97, 0, 98, 255}));
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(ByteTokenizer, EveryByteRoundTrips) {
  const ByteTokenizer tok;
  std::string all(256, '\0');
  for (int b = 0; b < 256; ++b) all[static_cast<size_t>(b)] = static_cast<char>(b);
  const std::vector<int32_t> ids = tok.encode(all);
  for (int b = 0; b < 256; ++b) ASSERT_EQ(ids[static_cast<size_t>(b)], b);
  EXPECT_EQ(tok.decode(ids), all);
}

TEST(ByteTokenizer, DecodeSkipsSpecials) {
  const ByteTokenizer tok;
  const std::vector<int32_t> ids = {ByteTokenizer::kBos, 111, 107, ByteTokenizer::kEos, ByteTokenizer::kPad,
                                    ByteTokenizer::kPad};
  EXPECT_EQ(tok.decode(ids), "ok");
}

TEST(ByteTokenizer, DecodeRejectsUnknownIds) {
  const ByteTokenizer tok;
  const std::vector<int32_t> too_big = {104, 105, 259};
  EXPECT_EQ(error_of([&] { tok.decode(too_big); }),
            "token id 259 at position 2 is not in the byte tokenizer's vocabulary [0, 259)");
  const std::vector<int32_t> negative = {-1, 104};
  EXPECT_EQ(error_of([&] { tok.decode(negative); }),
            "token id -1 at position 0 is not in the byte tokenizer's vocabulary [0, 259)");
}

}  // namespace
}  // namespace lumina
