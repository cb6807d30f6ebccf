#pragma once
// Content checksums: XXH3-64 of the xxHash library (XXH3_64bits, seed 0).
// Checkpoints record a file's checksum as 16 lowercase hex digits and verify
// it before loading.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace lumina {

uint64_t checksum_bytes(const void* data, size_t bytes);
// Streams the file in 1 MiB reads; errors name the path and the reason.
uint64_t checksum_file(const std::string& path);
// 16 lowercase hex digits, most significant first ("2d06800538d394c2").
std::string checksum_hex(uint64_t checksum);

// The checksum of bytes that arrive in pieces: equal to checksum_bytes() of
// their concatenation. Lets a writer checksum a file while writing it.
class StreamingChecksum {
 public:
  StreamingChecksum();
  ~StreamingChecksum();
  void update(const void* data, size_t bytes);
  uint64_t digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lumina
