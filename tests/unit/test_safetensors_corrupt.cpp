// io/safetensors.h, broken files: every class of corruption gives an error
// that names the file, the tensor at fault and what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "lumina/io/atomic_file.h"
#include "lumina/io/safetensors.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;
using test::fresh_test_dir;
using test::le64;
using test::write_bytes;

class SafetensorsCorrupt : public ::testing::Test {
 protected:
  void SetUp() override { path_ = fresh_test_dir() + "/x.safetensors"; }

  // The error from opening a file made of `header` (given length) and `buffer_bytes` zero bytes.
  std::string open_error(const std::string& header, size_t buffer_bytes) {
    write_bytes(path_, le64(header.size()) + header + std::string(buffer_bytes, '\0'));
    return open_raw_error();
  }
  std::string open_raw_error() const {
    return error_of([&] { SafetensorsFile file(path_); });
  }
  // `message` with this test's path in front.
  std::string at_path(const std::string& message) const { return path_ + ": " + message; }

  std::string path_;
};

TEST_F(SafetensorsCorrupt, ValidFileOpens) {
  EXPECT_EQ(open_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "");
}

TEST_F(SafetensorsCorrupt, MissingFile) {
  EXPECT_EQ(open_raw_error(), "cannot open " + path_ + ": No such file or directory");
}

TEST_F(SafetensorsCorrupt, TruncatedFiles) {
  float x[4] = {1, 2, 3, 4};
  save_safetensors(path_, {{"w", Tensor(x, DType::f32, Device::cpu, Shape{4})}});
  const std::string good = read_file(path_);  // 8 + 56 header + 16 data

  write_bytes(path_, good.substr(0, good.size() - 1));
  EXPECT_EQ(open_raw_error(), at_path("tensor w: data_offsets [0,16] run past the end of the data buffer (15 bytes): "
                                      "the file is truncated or the header is wrong"));
  write_bytes(path_, good.substr(0, 40));
  EXPECT_EQ(open_raw_error(), at_path("the header length 56 runs past the end of the file (40 bytes): the file is "
                                      "truncated or not safetensors"));
  write_bytes(path_, good.substr(0, 5));
  EXPECT_EQ(open_raw_error(),
            at_path("the file is 5 bytes, too short for safetensors (it starts with an 8-byte header length)"));
  write_bytes(path_, "");
  EXPECT_EQ(open_raw_error(),
            at_path("the file is 0 bytes, too short for safetensors (it starts with an 8-byte header length)"));
}

TEST_F(SafetensorsCorrupt, BadHeaderLength) {
  write_bytes(path_, le64(uint64_t{1} << 40) + "{}");
  EXPECT_EQ(open_raw_error(), at_path("the header length 1099511627776 exceeds the limit of 100000000 bytes: not a "
                                      "safetensors file, or a corrupt one"));
  write_bytes(path_, le64(0) + "{}      ");
  EXPECT_EQ(open_raw_error(), at_path("the header does not start with '{': not a safetensors file"));
  EXPECT_EQ(open_error("[1, 2]  ", 0), at_path("the header does not start with '{': not a safetensors file"));
}

TEST_F(SafetensorsCorrupt, BadJson) {
  const std::string message = open_error(R"({"a":{"dtype":"F32",)", 0);
  EXPECT_EQ(message.rfind(at_path("the header is not valid JSON ("), 0), 0u) << message;
  const std::string trailing = open_error(R"({"a":1} x)", 0);
  EXPECT_EQ(trailing.rfind(at_path("the header is not valid JSON ("), 0), 0u) << trailing;
}

TEST_F(SafetensorsCorrupt, BadDType) {
  const std::string supported = "F64, F32, BF16, F16, F8_E4M3, F8_E5M2, I64, I32, U32, U16, U8";
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4),
            at_path("tensor w: dtype \"F12\" is not supported (lumina reads " + supported + ")"));
  EXPECT_EQ(open_error(R"({"mask":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", 1),
            at_path("tensor mask: dtype \"BOOL\" is not supported (lumina reads " + supported + ")"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
            at_path("tensor w: \"dtype\" must be a string, got 4"));
}

TEST_F(SafetensorsCorrupt, BadEntryStructure) {
  EXPECT_EQ(open_error(R"({"w":[0,4]})", 4),
            at_path("tensor w: expected an object with dtype, shape and data_offsets, got array"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4), at_path("tensor w: \"shape\" is missing"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
            at_path("tensor w: \"shape\" must hold non-negative integers, got [-1]"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
            at_path("tensor w: \"shape\" must hold non-negative integers, got [1.5]"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1],"data_offsets":[0,4]}})", 4),
            at_path("tensor w: \"shape\" must be a list of at most 5 dimensions, got [1,1,1,1,1,1]"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", 4),
            at_path("tensor w: \"data_offsets\" must be [begin, end] with 0 <= begin <= end, got [4]"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 4),
            at_path("tensor w: \"data_offsets\" must be [begin, end] with 0 <= begin <= end, got [4,0]"));
}

TEST_F(SafetensorsCorrupt, BadMetadata) {
  EXPECT_EQ(open_error(R"({"__metadata__":{"step":12}})", 0),
            at_path("__metadata__ must map strings to strings, but \"step\" holds number"));
  EXPECT_EQ(open_error(R"({"__metadata__":"pt"})", 0),
            at_path("__metadata__ must be an object of strings, not string"));
}

TEST_F(SafetensorsCorrupt, ShapeAndSizeDisagree) {
  EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20),
            at_path("tensor w: dtype \"F32\" and shape [2,3] need 24 bytes, but data_offsets [0,20] hold 20"));
  EXPECT_EQ(open_error(R"({"w":{"dtype":"BF16","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", 8),
            at_path("tensor w: dtype \"BF16\" and shape [4294967296,4294967296,4294967296] need more than 2^64 "
                    "bytes, but data_offsets [0,8] hold 8"));
}

TEST_F(SafetensorsCorrupt, OffsetsOutOfRange) {
  EXPECT_EQ(open_error(R"({"w":{"dtype":"U8","shape":[100],"data_offsets":[0,100]}})", 8),
            at_path("tensor w: data_offsets [0,100] run past the end of the data buffer (8 bytes): the file is "
                    "truncated or the header is wrong"));
}

TEST_F(SafetensorsCorrupt, OverlapGapAndTail) {
  EXPECT_EQ(open_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
            at_path("tensors a [0, 8] and b [4, 12] overlap in the data buffer"));
  EXPECT_EQ(open_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12),
            at_path("bytes [4, 8) of the data buffer, before tensor b, belong to no tensor"));
  EXPECT_EQ(open_error(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
            at_path("bytes [0, 4) of the data buffer, before tensor b, belong to no tensor"));
  EXPECT_EQ(open_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12),
            at_path("the data buffer holds 12 bytes but the tensors cover only 8: 4 bytes at the end belong to no "
                    "tensor"));
}

TEST_F(SafetensorsCorrupt, DuplicateName) {
  EXPECT_EQ(open_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
            at_path("the header names \"a\" twice"));
}

}  // namespace
}  // namespace lumina
