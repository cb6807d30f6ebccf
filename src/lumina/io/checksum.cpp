#include "lumina/io/checksum.h"

#include <fcntl.h>
#include <xxhash.h>

#include <vector>

#include "lumina/io/posix.h"

namespace lumina {

struct StreamingChecksum::State {
  XXH3_state_t* xxh = XXH3_createState();
  ~State() { XXH3_freeState(xxh); }
};

StreamingChecksum::StreamingChecksum() : state_(std::make_unique<State>()) {
  LUMINA_CHECK(state_->xxh && XXH3_64bits_reset(state_->xxh) == XXH_OK,
               "cannot set up a checksum state (out of memory)");
}
StreamingChecksum::~StreamingChecksum() = default;

void StreamingChecksum::update(const void* data, size_t bytes) { XXH3_64bits_update(state_->xxh, data, bytes); }
uint64_t StreamingChecksum::digest() const { return XXH3_64bits_digest(state_->xxh); }

uint64_t checksum_bytes(const void* data, size_t bytes) { return XXH3_64bits(data, bytes); }

uint64_t checksum_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) fail_os("cannot open " + path + " to compute its checksum");
  StreamingChecksum sum;
  std::vector<char> chunk(size_t{1} << 20);
  while (true) {
    const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_os("cannot read " + path + " to compute its checksum");
    if (n == 0) break;
    sum.update(chunk.data(), static_cast<size_t>(n));
  }
  return sum.digest();
}

std::string checksum_hex(uint64_t checksum) { return fmt::format("{:016x}", checksum); }

}  // namespace lumina
