#pragma once
// safetensors files (the Hugging Face format, docs/formats.md):
//   8 bytes       N, the header length, unsigned little-endian
//   N bytes       JSON header: {"__metadata__": {string: string} (optional),
//                 name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...},
//                 padded with spaces to a multiple of 8
//   the rest      the data buffer; offsets are relative to its start, tensors
//                 are little-endian, row-major, packed, with no gaps or overlaps.
//
// The writer lays a file out as the reference implementation (the Rust core
// of huggingface/safetensors, used by its Python package) does for the same
// tensors and metadata: tensors sorted by decreasing dtype alignment then by
// name, compact JSON with "__metadata__" first, keys in the order dtype,
// shape, data_offsets. Every tensor then starts at a multiple of its element
// size, so the reader can hand out views straight into the mapped file.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lumina/core/buffer.h"
#include "lumina/core/tensor.h"
#include "lumina/io/mapped_file.h"

namespace lumina {

using SafetensorsMetadata = std::map<std::string, std::string>;

// A tensor to save: its name in the file and a view of host memory.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// The safetensors dtypes lumina reads and writes, with their names in the header.
struct SafetensorsDType {
  DType dtype;
  std::string_view name;
};
inline constexpr SafetensorsDType kSafetensorsDTypes[] = {
    {DType::f64, "F64"}, {DType::f32, "F32"}, {DType::bf16, "BF16"}, {DType::f16, "F16"},
    {DType::e4m3, "F8_E4M3"}, {DType::e5m2, "F8_E5M2"}, {DType::i64, "I64"}, {DType::i32, "I32"},
    {DType::u32, "U32"}, {DType::u16, "U16"}, {DType::u8, "U8"}};

// The safetensors dtype name ("F32", "BF16", "F8_E4M3", ...).
std::string_view safetensors_dtype_name(DType t);
// The lumina dtype for a safetensors dtype name; nullopt when lumina has none.
std::optional<DType> dtype_from_safetensors(std::string_view name);

// Writes the tensors and metadata to `path` atomically (io/atomic_file.h),
// streaming each tensor's bytes from its view: memory use does not grow with
// the file. Returns the file's checksum (io/checksum.h), computed on the way,
// so a checkpoint need not read the file back. Errors name the file and the
// tensor (duplicate or reserved name, device memory, missing data).
uint64_t save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                          const SafetensorsMetadata& metadata = {});

// A safetensors file mapped into memory and fully validated on opening:
// header length against the file size, JSON syntax, known dtypes, shape and
// dtype against the byte range, ranges inside the buffer, no overlaps or gaps,
// the buffer covered exactly. Any failure throws an error naming the file and,
// where one is at fault, the tensor.
//
// tensor() views point into the mapping (copy-on-write pages: writing to them
// never changes the file) and live as long as this object. A tensor that is
// not aligned to its element size in the file (writers that neither sort nor
// pad) is copied once into aligned host memory instead.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // Tensor names in file order (ascending data offsets).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  Tensor tensor(const std::string& name) const;
  const SafetensorsMetadata& metadata() const { return metadata_; }
  size_t file_bytes() const { return file_.size_bytes(); }

 private:
  MappedFile file_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Tensor> tensors_;
  std::vector<Buffer> aligned_copies_;
  SafetensorsMetadata metadata_;
};

}  // namespace lumina
