#pragma once
// Helpers for POSIX calls: errors that carry the system's reason, and an
// owning file descriptor that closes itself (after the error message is made).
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "lumina/core/error.h"

namespace lumina {

// Throws lumina::Error "<what>: <text of the current errno>", e.g.
// "cannot open data/x.txt: No such file or directory".
[[noreturn]] inline void fail_os(const std::string& what) {
  const int code = errno;
  fail("{}: {}", what, std::generic_category().message(code));
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and reports close()'s result (0 or -1 with errno set).
  int close() { return ::close(std::exchange(fd_, -1)); }
  void reset() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

}  // namespace lumina
