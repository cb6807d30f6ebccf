// Writer: header first (its length is known before any data), then each
// tensor's bytes streamed from its view through an AtomicFileWriter.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_set>

#include "lumina/io/atomic_file.h"
#include "lumina/io/checksum.h"
#include "lumina/io/safetensors.h"

namespace lumina {

namespace {

// Rank of a dtype in the reference implementation's Dtype enum, which lists
// dtypes in increasing alignment (BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16
// I32 U32 F32 F64 I64 U64). Tensors are written in decreasing rank.
int alignment_rank(DType t) {
  switch (t) {
    case DType::u8: return 1;
    case DType::e5m2: return 3;
    case DType::e4m3: return 4;
    case DType::u16: return 6;
    case DType::f16: return 7;
    case DType::bf16: return 8;
    case DType::i32: return 9;
    case DType::u32: return 10;
    case DType::f32: return 11;
    case DType::f64: return 12;
    case DType::i64: return 13;
  }
  fail("dtype {} has no safetensors name", dtype_name(t));
}

void check_tensor(const std::string& path, const NamedTensor& t) {
  LUMINA_CHECK(!t.name.empty(), "{}: a tensor has an empty name", path);
  LUMINA_CHECK(t.name != "__metadata__", "{}: \"__metadata__\" is reserved for the metadata and cannot name a tensor",
               path);
  LUMINA_CHECK(t.tensor.device == Device::cpu, "{}: tensor {} is in {} memory: copy it to the host before saving",
               path, t.name, device_name(t.tensor.device));
  for (int i = 0; i < t.tensor.rank(); ++i)
    LUMINA_CHECK(t.tensor.dim(i) >= 0, "{}: tensor {} has a negative dimension in shape {}", path, t.name,
                 t.tensor.shape.str());
  LUMINA_CHECK(t.tensor.data || t.tensor.bytes() == 0,
               "{}: tensor {} {} has no data (a view from a measuring arena?)", path, t.name, t.tensor.shape.str());
}

// The header: compact JSON, padded with spaces to a multiple of 8 bytes.
std::string header_text(const std::string& path, const std::vector<const NamedTensor*>& order,
                        const SafetensorsMetadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const NamedTensor* t : order) {
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int i = 0; i < t->tensor.rank(); ++i) shape.push_back(t->tensor.dim(i));
    const uint64_t end = offset + t->tensor.bytes();
    header[t->name] = {{"dtype", safetensors_dtype_name(t->tensor.dtype)},
                       {"shape", std::move(shape)},
                       {"data_offsets", nlohmann::ordered_json::array({offset, end})}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: tensor names and metadata must be valid UTF-8 ({})", path, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

uint64_t save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                          const SafetensorsMetadata& metadata) {
  std::vector<const NamedTensor*> order;
  std::unordered_set<std::string_view> names;
  for (const NamedTensor& t : tensors) {
    check_tensor(path, t);
    LUMINA_CHECK(names.insert(t.name).second, "{}: two tensors are named {}", path, t.name);
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const NamedTensor* a, const NamedTensor* b) {
    const int ra = alignment_rank(a->tensor.dtype), rb = alignment_rank(b->tensor.dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });
  const std::string header = header_text(path, order, metadata);

  unsigned char length_le[8];
  for (int i = 0; i < 8; ++i) length_le[i] = static_cast<unsigned char>(uint64_t{header.size()} >> (8 * i));
  AtomicFileWriter writer(path);
  StreamingChecksum checksum;
  const auto put = [&](const void* data, size_t bytes) {
    writer.write(data, bytes);
    checksum.update(data, bytes);
  };
  put(length_le, sizeof length_le);
  put(header.data(), header.size());
  for (const NamedTensor* t : order) put(t->tensor.data, t->tensor.bytes());
  writer.commit();
  return checksum.digest();
}

}  // namespace lumina
