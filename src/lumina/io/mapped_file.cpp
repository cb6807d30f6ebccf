#include "lumina/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <utility>

#include "lumina/io/posix.h"

namespace lumina {

MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) fail_os("cannot open " + path_);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_os("cannot stat " + path_);
  LUMINA_CHECK(S_ISREG(st.st_mode), "cannot map {}: not a regular file", path_);
  if (st.st_size == 0) return;
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) fail_os("cannot map " + path_ + " into memory");
  data_ = static_cast<std::byte*>(p);
  size_bytes_ = static_cast<size_t>(st.st_size);
}  // the mapping keeps the file open after fd closes

MappedFile::~MappedFile() { unmap(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_bytes_(std::exchange(other.size_bytes_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

void MappedFile::unmap() {
  if (data_) ::munmap(data_, size_bytes_);
  data_ = nullptr;
  size_bytes_ = 0;
}

}  // namespace lumina
