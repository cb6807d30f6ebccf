// io/checksum.h: XXH3-64 against xxHash's own published sanity vectors, the
// streamed file checksum against the one-shot one, the hex form, errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lumina/io/atomic_file.h"
#include "lumina/io/checksum.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;
using test::fresh_test_dir;

// xxHash's sanity buffer (xsum_sanity_check.c, XSUM_fillTestBuffer).
std::string sanity_buffer(size_t bytes) {
  std::string b(bytes, '\0');
  uint64_t gen = 2654435761u;  // PRIME32
  for (size_t i = 0; i < bytes; ++i) {
    b[i] = static_cast<char>(gen >> 56);
    gen *= 11400714785074694797ull;  // PRIME64
  }
  return b;
}

TEST(Checksum, MatchesXxhashSanityVectors) {
  EXPECT_EQ(checksum_bytes(nullptr, 0), 0x2D06800538D394C2ull);
  const std::string b = sanity_buffer(2367);
  struct Vector { size_t bytes; uint64_t xxh3; };
  for (const Vector& v : {Vector{1, 0xC44BDFF4074EECDBull}, Vector{6, 0x27B56A84CD2D7325ull},
                          Vector{195, 0xCD94217EE362EC3Aull}, Vector{403, 0xCDEB804D65C6DEA4ull},
                          Vector{2048, 0xDD59E2C3A5F038E0ull}, Vector{2367, 0xCB37AEB9E5D361EDull}})
    EXPECT_EQ(checksum_bytes(b.data(), v.bytes), v.xxh3) << v.bytes << " bytes";
}

// Pieces of every size, including empty ones, give the one-shot checksum.
TEST(Checksum, StreamingEqualsOneShot) {
  const std::string b = sanity_buffer(2367);
  StreamingChecksum sum;
  size_t at = 0;
  for (size_t piece : {size_t{0}, size_t{1}, size_t{63}, size_t{0}, size_t{300}, size_t{1024}, size_t{979}}) {
    sum.update(b.data() + at, piece);
    at += piece;
  }
  ASSERT_EQ(at, b.size());
  EXPECT_EQ(sum.digest(), 0xCB37AEB9E5D361EDull);
  EXPECT_EQ(StreamingChecksum().digest(), 0x2D06800538D394C2ull);
}

TEST(Checksum, FileEqualsBytesAcrossReadChunks) {
  const std::string dir = fresh_test_dir();
  write_file_atomic(dir + "/sanity.bin", sanity_buffer(2367));
  EXPECT_EQ(checksum_file(dir + "/sanity.bin"), 0xCB37AEB9E5D361EDull);
  write_file_atomic(dir + "/empty.bin", "");
  EXPECT_EQ(checksum_file(dir + "/empty.bin"), 0x2D06800538D394C2ull);

  std::string big = sanity_buffer(3 * (1 << 20) + 5);  // spans four 1 MiB reads
  write_file_atomic(dir + "/big.bin", big);
  const uint64_t sum = checksum_file(dir + "/big.bin");
  EXPECT_EQ(sum, checksum_bytes(big.data(), big.size()));
  big[2 * (1 << 20) + 17] ^= 1;  // one flipped bit changes it
  write_file_atomic(dir + "/big.bin", big);
  EXPECT_NE(checksum_file(dir + "/big.bin"), sum);
}

TEST(Checksum, HexAndErrors) {
  EXPECT_EQ(checksum_hex(0x2D06800538D394C2ull), "2d06800538d394c2");
  EXPECT_EQ(checksum_hex(1), "0000000000000001");
  const std::string dir = fresh_test_dir();
  EXPECT_EQ(error_of([&] { checksum_file(dir + "/gone.safetensors"); }),
            "cannot open " + dir + "/gone.safetensors to compute its checksum: No such file or directory");
}

}  // namespace
}  // namespace lumina
