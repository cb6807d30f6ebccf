// Reader: every number in the header is checked before it is used, so a
// corrupt or hostile file gives an error, never a read out of bounds.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "lumina/io/safetensors.h"

namespace lumina {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // byte range in the data buffer
};

std::string supported_dtypes() {
  std::string s;
  for (const SafetensorsDType& d : kSafetensorsDTypes) s += fmt::format("{}{}", s.empty() ? "" : ", ", d.name);
  return s;
}

// Parses the header JSON, rejecting a tensor name that appears twice (which
// a plain parse would silently overwrite).
json parse_header(const std::string& path, std::string_view text) {
  std::string duplicate;
  std::unordered_set<std::string> keys;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& value) {
    if (depth == 1 && event == json::parse_event_t::key && !keys.insert(value.get<std::string>()).second &&
        duplicate.empty())
      duplicate = value.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::parse_error& e) {
    fail("{}: the header is not valid JSON ({})", path, e.what());
  }
  LUMINA_CHECK(duplicate.empty(), "{}: the header names \"{}\" twice", path, duplicate);
  return header;
}

SafetensorsMetadata parse_metadata(const std::string& path, const json& value) {
  LUMINA_CHECK(value.is_object(), "{}: __metadata__ must be an object of strings, not {}", path, value.type_name());
  SafetensorsMetadata metadata;
  for (const auto& [key, v] : value.items()) {
    LUMINA_CHECK(v.is_string(), "{}: __metadata__ must map strings to strings, but \"{}\" holds {}", path, key,
                 v.type_name());
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

// One tensor's header entry, checked on its own: dtype known, shape valid,
// byte range inside the buffer and exactly as long as shape and dtype need.
Entry parse_entry(const std::string& path, const std::string& name, const json& value, uint64_t buffer_bytes) {
  const auto bad = [&](std::string_view why) { fail("{}: tensor {}: {}", path, name, why); };
  if (!value.is_object())
    bad(fmt::format("expected an object with dtype, shape and data_offsets, got {}", value.type_name()));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!value.contains(key)) bad(fmt::format("\"{}\" is missing", key));

  Entry e{name, DType::u8, Shape{}, 0, 0};
  const json& dtype = value["dtype"];
  if (!dtype.is_string()) bad(fmt::format("\"dtype\" must be a string, got {}", dtype.dump()));
  const std::optional<DType> t = dtype_from_safetensors(dtype.get<std::string>());
  if (!t) bad(fmt::format("dtype {} is not supported (lumina reads {})", dtype.dump(), supported_dtypes()));
  e.dtype = *t;

  const json& shape = value["shape"];
  if (!shape.is_array() || shape.size() > static_cast<size_t>(kMaxRank))
    bad(fmt::format("\"shape\" must be a list of at most {} dimensions, got {}", kMaxRank, shape.dump()));
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      bad(fmt::format("\"shape\" must hold non-negative integers, got {}", shape.dump()));
    e.shape.dims[static_cast<size_t>(e.shape.rank++)] = d.get<int64_t>();
    overflow |= __builtin_mul_overflow(numel, d.get<uint64_t>(), &numel);
  }

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned() || offsets[0].get<uint64_t>() > offsets[1].get<uint64_t>())
    bad(fmt::format("\"data_offsets\" must be [begin, end] with 0 <= begin <= end, got {}", offsets.dump()));
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end > buffer_bytes)
    bad(fmt::format("data_offsets {} run past the end of the data buffer ({} bytes): the file is truncated or the "
                    "header is wrong", offsets.dump(), buffer_bytes));
  uint64_t need = 0;
  overflow |= __builtin_mul_overflow(numel, uint64_t{dtype_size_bytes(e.dtype)}, &need);
  if (overflow || need != e.end - e.begin)
    bad(fmt::format("dtype {} and shape {} need {} bytes, but data_offsets {} hold {}", dtype.dump(), shape.dump(),
                    overflow ? std::string("more than 2^64") : std::to_string(need), offsets.dump(), e.end - e.begin));
  return e;
}

// Sorted by offset, the tensors must tile the buffer: no overlap, no gap, no tail.
void check_tiling(const std::string& path, const std::vector<Entry>& entries, uint64_t buffer_bytes) {
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    LUMINA_CHECK(e.begin >= covered, "{}: tensors {} [{}, {}] and {} [{}, {}] overlap in the data buffer", path,
                 previous ? previous->name : "", previous ? previous->begin : 0, covered, e.name, e.begin, e.end);
    LUMINA_CHECK(e.begin == covered, "{}: bytes [{}, {}) of the data buffer, before tensor {}, belong to no tensor",
                 path, covered, e.begin, e.name);
    covered = e.end;
    previous = &e;
  }
  LUMINA_CHECK(covered == buffer_bytes,
               "{}: the data buffer holds {} bytes but the tensors cover only {}: {} bytes at the end belong to no "
               "tensor", path, buffer_bytes, covered, buffer_bytes - covered);
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const uint64_t file_bytes = file_.size_bytes();
  LUMINA_CHECK(file_bytes >= 8, "{}: the file is {} bytes, too short for safetensors (it starts with an 8-byte header "
               "length)", path, file_bytes);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | static_cast<uint8_t>(file_.data()[i]);
  LUMINA_CHECK(header_bytes <= kMaxHeaderBytes,
               "{}: the header length {} exceeds the limit of {} bytes: not a safetensors file, or a corrupt one", path,
               header_bytes, kMaxHeaderBytes);
  LUMINA_CHECK(header_bytes <= file_bytes - 8,
               "{}: the header length {} runs past the end of the file ({} bytes): the file is truncated or not "
               "safetensors", path, header_bytes, file_bytes);
  const std::string_view text(reinterpret_cast<const char*>(file_.data() + 8), header_bytes);
  LUMINA_CHECK(!text.empty() && text.front() == '{', "{}: the header does not start with '{{': not a safetensors file",
               path);
  const json header = parse_header(path, text);

  std::byte* buffer = file_.data() + 8 + header_bytes;
  const uint64_t buffer_bytes = file_bytes - 8 - header_bytes;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") metadata_ = parse_metadata(path, value);
    else entries.push_back(parse_entry(path, key, value, buffer_bytes));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  check_tiling(path, entries, buffer_bytes);

  for (const Entry& e : entries) {
    Tensor t(buffer + e.begin, e.dtype, Device::cpu, e.shape);
    if (t.bytes() > 0 && reinterpret_cast<uintptr_t>(t.data) % dtype_size_bytes(e.dtype) != 0) {
      Buffer copy = Buffer::host(t.bytes());
      std::memcpy(copy.data(), t.data, t.bytes());
      t.data = copy.data();
      aligned_copies_.push_back(std::move(copy));
    }
    names_.push_back(e.name);
    tensors_.emplace(e.name, t);
  }
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  std::string some;
  for (size_t i = 0; i < names_.size() && i < 3; ++i) some += fmt::format("{}{}", i ? ", " : ": ", names_[i]);
  fail("{}: no tensor named {} (the file holds {} tensors{}{})", path(), name, names_.size(), some,
       names_.size() > 3 ? ", ..." : "");
}

}  // namespace lumina
