#pragma once
// Crash-safe file writes and whole-file reads.
//
// Guarantee: at every instant the target path holds either its previous
// content or the complete new content, never a mix. The bytes go to
// "<path>.tmp.<pid>", which is fsynced, renamed over the target, and then the
// directory is fsynced so the rename itself survives a power loss. A writer
// that is destroyed before commit() (an exception, a signal that unwinds)
// removes its temporary file and leaves the target untouched; a process killed
// outright leaves at most a stale "<path>.tmp.<pid>" beside an intact target.
//
// Errors name the path and the operating system's reason ("No space left on
// device").
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lumina/io/posix.h"

namespace lumina {

// Streams content of any size (multi-GB checkpoints) to a file with the
// guarantee above. Small writes are buffered; large ones go straight through.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Flushes, fsyncs, renames over the target and fsyncs the directory.
  // Nothing may be written after commit().
  void commit();

  size_t bytes_written() const { return bytes_written_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void flush_buffer();
  void write_fully(const void* data, size_t bytes);

  std::string path_;
  std::string temp_path_;
  UniqueFd fd_{-1};
  std::vector<char> buffer_;
  size_t buffered_bytes_ = 0;
  size_t bytes_written_ = 0;
};

// Writes `content` to `path` atomically (see above).
void write_file_atomic(const std::string& path, std::string_view content);

// The whole content of a file; errors name the path and the reason.
std::string read_file(const std::string& path);

}  // namespace lumina
