// io/safetensors.h, valid files: round trip of every dtype and of metadata,
// the exact byte layout (hand-built file, and the reference implementation's
// own serialization test vectors), tensor order, views into the mapping,
// misaligned tensors from other writers, and the writer's input errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "lumina/core/buffer.h"
#include "lumina/core/rng.h"
#include "lumina/io/atomic_file.h"
#include "lumina/io/checksum.h"
#include "lumina/io/safetensors.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;
using test::fresh_test_dir;
using test::le64;
using test::write_bytes;

// A host tensor whose bytes are a deterministic pattern (distinct per seed).
struct OwnedTensor {
  Buffer buffer;
  Tensor tensor;
};
OwnedTensor make_tensor(DType t, Shape s, uint64_t seed) {
  OwnedTensor o{Buffer::host(static_cast<size_t>(s.numel()) * dtype_size_bytes(t)), {}};
  o.tensor = Tensor(o.buffer.data(), t, Device::cpu, s);
  const Rng rng(seed, RngPurpose::test, 0);
  auto* bytes = static_cast<unsigned char*>(o.buffer.data());
  for (size_t i = 0; i < o.buffer.bytes(); ++i) bytes[i] = static_cast<unsigned char>(rng.bits(i));
  return o;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && (a.bytes() == 0 || std::memcmp(a.data, b.data, a.bytes()) == 0);
}

std::string bytes_of(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s += static_cast<char>(v);
  return s;
}

TEST(Safetensors, DTypeNamesRoundTrip) {
  for (const SafetensorsDType& d : kSafetensorsDTypes) {
    EXPECT_EQ(safetensors_dtype_name(d.dtype), d.name);
    EXPECT_EQ(dtype_from_safetensors(d.name), d.dtype);
  }
  EXPECT_EQ(std::size(kSafetensorsDTypes), 11u);  // every lumina dtype has a safetensors name
  EXPECT_EQ(dtype_from_safetensors("BOOL"), std::nullopt);
  EXPECT_EQ(dtype_from_safetensors("f32"), std::nullopt);  // names are case-sensitive
}

// Every dtype, with a scalar, an empty tensor and a rank-5 tensor among them;
// the file order follows the reference sort (alignment descending, then name).
TEST(Safetensors, EveryDTypeRoundTrips) {
  const std::string path = fresh_test_dir() + "/all.safetensors";
  std::vector<OwnedTensor> owned;
  std::vector<NamedTensor> named;
  uint64_t seed = 1;
  for (const SafetensorsDType& d : kSafetensorsDTypes) {
    owned.push_back(make_tensor(d.dtype, Shape{3, 5}, seed++));
    named.push_back({std::string("t.") + std::string(d.name), owned.back().tensor});
  }
  owned.push_back(make_tensor(DType::u8, Shape{}, seed++));
  named.push_back({"scalar", owned.back().tensor});
  owned.push_back(make_tensor(DType::f32, Shape{0, 4}, seed++));
  named.push_back({"empty", owned.back().tensor});
  owned.push_back(make_tensor(DType::bf16, Shape{2, 1, 3, 1, 2}, seed++));
  named.push_back({"rank5", owned.back().tensor});
  const SafetensorsMetadata metadata = {{"format", "pt"}, {"lumina.step", "1200"}, {"note", "quote \" slash \\ é"}};
  save_safetensors(path, named, metadata);

  const SafetensorsFile file(path);
  EXPECT_EQ(file.metadata(), metadata);
  const std::vector<std::string> order = {"t.I64",  "t.F64", "empty", "t.F32",     "t.U32",     "t.I32",  "rank5",
                                          "t.BF16", "t.F16", "t.U16", "t.F8_E4M3", "t.F8_E5M2", "scalar", "t.U8"};
  EXPECT_EQ(file.names(), order);
  for (const NamedTensor& n : named) {
    ASSERT_TRUE(file.contains(n.name)) << n.name;
    const Tensor t = file.tensor(n.name);
    EXPECT_EQ(t.dtype, n.tensor.dtype) << n.name;
    EXPECT_TRUE(t.shape == n.tensor.shape) << n.name << " " << t.shape.str();
    EXPECT_EQ(t.device, Device::cpu);
    EXPECT_TRUE(same_bytes(t, n.tensor)) << n.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtype_size_bytes(t.dtype), 0u) << n.name;
  }
}

// Bytes asserted one by one: length, header text with its padding, then
// little-endian data in the sorted order (F32 "a" before U16 "b").
TEST(Safetensors, ByteLayoutMatchesHandBuiltFile) {
  const std::string path = fresh_test_dir() + "/layout.safetensors";
  float a[2] = {1.0f, -2.0f};
  uint16_t b[3] = {1, 0x0203, 0xFFFF};
  save_safetensors(path,
                   {{"b", Tensor(b, DType::u16, Device::cpu, Shape{3})},
                    {"a", Tensor(a, DType::f32, Device::cpu, Shape{2})}},
                   {{"format", "pt"}});
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"U16","shape":[3],"data_offsets":[8,14]}})";
  ASSERT_EQ(header.size(), 139u);
  const std::string expected = le64(144) + header + "     " +
                               bytes_of({0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0}) +  // 1.0f, -2.0f
                               bytes_of({0x01, 0x00, 0x03, 0x02, 0xFF, 0xFF});                // 1, 0x0203, 0xFFFF
  EXPECT_EQ(read_file(path), expected);
}

// Names and metadata are escaped as serde_json escapes them (the reference
// writer): quote, backslash and control characters; "/", DEL and UTF-8 as is.
TEST(Safetensors, HeaderEscapesLikeSerdeJson) {
  const std::string path = fresh_test_dir() + "/escape.safetensors";
  uint8_t x[1] = {9};
  save_safetensors(path, {{"a\"b\\c", Tensor(x, DType::u8, Device::cpu, Shape{1})}},
                   {{"k", std::string("\x01\x08\t\n\x0c\r\x1f\x7f/\xc3\xa9")}});
  const std::string header = std::string(R"({"__metadata__":{"k":"\u0001\b\t\n\f\r\u001f)") + "\x7f/\xc3\xa9" +
                             R"("},"a\"b\\c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(read_file(path), le64(padded.size()) + padded + "\x09");
  EXPECT_EQ(SafetensorsFile(path).metadata().at("k"), "\x01\x08\t\n\x0c\r\x1f\x7f/\xc3\xa9");
}

// The serialization tests of the reference implementation (huggingface/
// safetensors, safetensors/src/tensor.rs: test_serialization,
// test_serialization_forced_alignement, test_empty), reproduced byte for byte.
TEST(Safetensors, MatchesReferenceSerializationVectors) {
  const std::string dir = fresh_test_dir();
  float data[6] = {0, 1, 2, 3, 4, 5};
  const std::string floats =
      bytes_of({0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64});

  save_safetensors(dir + "/1.safetensors", {{"attn.0", Tensor(data, DType::f32, Device::cpu, Shape{1, 2, 3})}});
  EXPECT_EQ(read_file(dir + "/1.safetensors"),
            le64(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" + floats);

  save_safetensors(dir + "/2.safetensors", {{"attn0", Tensor(data, DType::f32, Device::cpu, Shape{1, 1, 2, 3})}});
  EXPECT_EQ(read_file(dir + "/2.safetensors"),
            le64(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + "       " + floats);

  const uint64_t checksum = save_safetensors(dir + "/3.safetensors", {});
  const std::string empty_file = le64(8) + "{}      ";
  EXPECT_EQ(read_file(dir + "/3.safetensors"), empty_file);
  EXPECT_EQ(checksum, checksum_bytes(empty_file.data(), empty_file.size()));
  save_safetensors(dir + "/4.safetensors", {}, {{"framework", "pt"}});
  EXPECT_EQ(read_file(dir + "/4.safetensors"), le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  const SafetensorsFile empty(dir + "/4.safetensors");
  EXPECT_TRUE(empty.names().empty());
  EXPECT_EQ(empty.metadata().at("framework"), "pt");
}

// Views point into copy-on-write pages: writing through one never changes the file.
TEST(Safetensors, ViewsAreCopyOnWrite) {
  const std::string path = fresh_test_dir() + "/cow.safetensors";
  float w[4] = {1, 2, 3, 4};
  save_safetensors(path, {{"w", Tensor(w, DType::f32, Device::cpu, Shape{2, 2})}});
  const std::string before = read_file(path);
  {
    const SafetensorsFile file(path);
    EXPECT_EQ(file.file_bytes(), before.size());
    float* p = file.tensor("w").ptr<float>();
    EXPECT_EQ(p[3], 4.0f);
    p[3] = 40.0f;
    EXPECT_EQ(file.tensor("w").ptr<float>()[3], 40.0f);
  }
  EXPECT_EQ(read_file(path), before);
}

// Other writers may leave a tensor at an offset that is not a multiple of its
// element size (no sorting, no padding): the reader copies it to aligned memory.
TEST(Safetensors, MisalignedTensorIsCopiedAligned) {
  const std::string path = fresh_test_dir() + "/unaligned.safetensors";
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  write_bytes(path, le64(header.size()) + header + bytes_of({7, 0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0}));
  ASSERT_NE((8 + header.size() + 1) % 4, 0u);  // "a" really is misaligned in the file
  SafetensorsFile opened(path);
  const SafetensorsFile file = std::move(opened);  // views stay valid when the file object moves
  EXPECT_EQ(file.names(), (std::vector<std::string>{"b", "a"}));
  const Tensor a = file.tensor("a");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % 4, 0u);
  EXPECT_EQ(a.ptr<float>()[0], 1.0f);
  EXPECT_EQ(a.ptr<float>()[1], -2.0f);
  EXPECT_EQ(file.tensor("b").ptr<uint8_t>()[0], 7);
}

// A tensor larger than the writer's buffer goes through the direct-write path;
// the returned checksum is the file's.
TEST(Safetensors, LargeTensorStreams) {
  const std::string path = fresh_test_dir() + "/large.safetensors";
  const OwnedTensor big = make_tensor(DType::bf16, Shape{1024, 3 * 1024 + 1}, 77);
  const OwnedTensor small = make_tensor(DType::f32, Shape{5}, 78);
  const uint64_t checksum =
      save_safetensors(path, {{"model.embed_tokens.weight", big.tensor}, {"model.norm.weight", small.tensor}});
  EXPECT_EQ(checksum, checksum_file(path));  // computed while writing, equal to reading it back
  const SafetensorsFile file(path);
  EXPECT_TRUE(same_bytes(file.tensor("model.embed_tokens.weight"), big.tensor));
  EXPECT_TRUE(same_bytes(file.tensor("model.norm.weight"), small.tensor));
}

TEST(Safetensors, WriterRejectsBadInput) {
  const std::string dir = fresh_test_dir(), path = dir + "/bad.safetensors";
  float x[2] = {1, 2};
  const Tensor t(x, DType::f32, Device::cpu, Shape{2});
  EXPECT_EQ(error_of([&] { save_safetensors(path, {{"w", t}, {"w", t}}); }), path + ": two tensors are named w");
  EXPECT_EQ(error_of([&] { save_safetensors(path, {{"", t}}); }), path + ": a tensor has an empty name");
  EXPECT_EQ(error_of([&] { save_safetensors(path, {{"__metadata__", t}}); }),
            path + ": \"__metadata__\" is reserved for the metadata and cannot name a tensor");
  EXPECT_EQ(error_of([&] { save_safetensors(path, {{"w", Tensor(x, DType::f32, Device::cuda, Shape{2})}}); }),
            path + ": tensor w is in cuda memory: copy it to the host before saving");
  EXPECT_EQ(error_of([&] { save_safetensors(path, {{"w", Tensor(nullptr, DType::f32, Device::cpu, Shape{2})}}); }),
            path + ": tensor w (2) has no data (a view from a measuring arena?)");
  EXPECT_EQ(error_of([&] { save_safetensors(path, {{"w", t}}, {{"bad", "\xff"}}); }).rfind(
                path + ": tensor names and metadata must be valid UTF-8 (", 0),
            0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir));  // nothing written, no temporary left
}

TEST(Safetensors, UnknownTensorNameIsAClearError) {
  const std::string path = fresh_test_dir() + "/names.safetensors";
  float x[1] = {1};
  std::vector<NamedTensor> named;
  for (const char* n : {"a", "b", "c", "d"}) named.push_back({n, Tensor(x, DType::f32, Device::cpu, Shape{1})});
  save_safetensors(path, named);
  const SafetensorsFile file(path);
  EXPECT_FALSE(file.contains("lm_head.weight"));
  EXPECT_EQ(error_of([&] { file.tensor("lm_head.weight"); }),
            path + ": no tensor named lm_head.weight (the file holds 4 tensors: a, b, c, ...)");
}

}  // namespace
}  // namespace lumina
