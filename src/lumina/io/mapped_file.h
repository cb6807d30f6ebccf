#pragma once
// A whole file mapped into memory, read-only on disk. The pages are mapped
// private and writable (copy on write): code may modify a view in place
// without the change ever reaching the file. Move-only; unmapped on
// destruction, so views into it must not outlive it.
#include <cstddef>
#include <string>

namespace lumina {

class MappedFile {
 public:
  explicit MappedFile(std::string path);  // errors name the path and the reason
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::byte* data() const { return data_; }  // null for an empty file
  size_t size_bytes() const { return size_bytes_; }
  const std::string& path() const { return path_; }

 private:
  void unmap();

  std::string path_;
  std::byte* data_ = nullptr;
  size_t size_bytes_ = 0;
};

}  // namespace lumina
