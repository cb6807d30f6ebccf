#include "lumina/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

namespace lumina {

namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;  // writes smaller than this are gathered

// fsync the directory holding `path`, so a rename inside it is durable.
void sync_parent_directory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) fail_os("cannot open directory " + dir + " to sync the rename of " + path);
  if (::fsync(fd.get()) != 0) fail_os("cannot sync directory " + dir + " after renaming " + path);
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp." + std::to_string(::getpid())) {
  fd_ = UniqueFd(::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd_.valid()) fail_os("cannot create " + temp_path_ + " (the temporary file for " + path_ + ")");
  buffer_.resize(kBufferBytes);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!fd_.valid()) return;  // committed, or commit() already removed the temporary file
  fd_.reset();
  ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  LUMINA_CHECK(fd_.valid(), "{}: write after commit", path_);
  if (bytes == 0) return;
  if (buffered_bytes_ + bytes > buffer_.size()) flush_buffer();
  if (bytes >= buffer_.size()) {
    write_fully(data, bytes);
  } else {
    std::memcpy(buffer_.data() + buffered_bytes_, data, bytes);
    buffered_bytes_ += bytes;
  }
  bytes_written_ += bytes;
}

void AtomicFileWriter::flush_buffer() {
  write_fully(buffer_.data(), buffered_bytes_);
  buffered_bytes_ = 0;
}

void AtomicFileWriter::write_fully(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_.get(), p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_os("cannot write " + temp_path_ + " (the temporary file for " + path_ + ")");
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  LUMINA_CHECK(fd_.valid(), "{}: commit called twice", path_);
  flush_buffer();
  if (::fsync(fd_.get()) != 0) fail_os("cannot sync " + temp_path_ + " to disk");
  // From here on a failure removes the temporary file; errno is kept for the message.
  const auto discard_and_fail = [this](const std::string& what) {
    const int code = errno;
    ::unlink(temp_path_.c_str());
    errno = code;
    fail_os(what);
  };
  if (fd_.close() != 0) discard_and_fail("cannot close " + temp_path_);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
    discard_and_fail("cannot rename " + temp_path_ + " to " + path_);
  sync_parent_directory(path_);
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFileWriter writer(path);
  writer.write(content);
  writer.commit();
}

std::string read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) fail_os("cannot open " + path);
  std::string content;
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0) content.reserve(static_cast<size_t>(st.st_size));
  char chunk[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_os("cannot read " + path);
    if (n == 0) break;
    content.append(chunk, static_cast<size_t>(n));
  }
  return content;
}

}  // namespace lumina
