// io/atomic_file.h: atomic whole-file and streamed writes (the target holds
// the old or the new content, never a mix; no temporary file left behind),
// whole-file reads, and errors that name the path and the system's reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "lumina/io/atomic_file.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;
using test::fresh_test_dir;

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string pattern(size_t bytes, char seed) {
  std::string s(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i * 131 % 251));
  return s;
}

TEST(AtomicFile, WriteCreatesThenReplaces) {
  const std::string dir = fresh_test_dir(), path = dir + "/state.json";
  write_file_atomic(path, "first");
  EXPECT_EQ(read_file(path), "first");
  write_file_atomic(path, "second, longer");
  EXPECT_EQ(read_file(path), "second, longer");
  write_file_atomic(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"state.json"});
}

// Pieces smaller than, equal to and larger than the 1 MiB buffer, in an order
// that exercises gathering, flushing and direct writes.
TEST(AtomicFile, StreamedPiecesArriveInOrder) {
  const std::string dir = fresh_test_dir(), path = dir + "/big.bin";
  write_file_atomic(path, "old");
  const std::vector<std::string> pieces = {pattern(10, 'a'), pattern(1 << 20, 'b'), pattern(7, 'c'),
                                           pattern(3 * (1 << 20) + 5, 'd'), pattern((1 << 20) - 1, 'e'), ""};
  std::string expected;
  AtomicFileWriter writer(path);
  for (const std::string& p : pieces) {
    writer.write(p);
    expected += p;
  }
  EXPECT_EQ(writer.bytes_written(), expected.size());
  EXPECT_EQ(writer.temp_path(), path + ".tmp." + std::to_string(::getpid()));
  EXPECT_TRUE(std::filesystem::exists(writer.temp_path()));
  EXPECT_EQ(read_file(path), "old");  // nothing visible before commit
  writer.commit();
  EXPECT_EQ(read_file(path), expected);
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"big.bin"});
  EXPECT_EQ(error_of([&] { writer.write("more"); }), path + ": write after commit");
  EXPECT_EQ(error_of([&] { writer.commit(); }), path + ": commit called twice");
}

TEST(AtomicFile, AbandonedWriterLeavesTargetUntouched) {
  const std::string dir = fresh_test_dir(), path = dir + "/model.safetensors";
  write_file_atomic(path, "last good checkpoint");
  {
    AtomicFileWriter writer(path);
    writer.write(pattern(5 << 20, 'x'));  // past the buffer: bytes are already in the temporary file
  }
  EXPECT_EQ(read_file(path), "last good checkpoint");
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"model.safetensors"});
}

TEST(AtomicFile, ErrorsNamePathAndReason) {
  const std::string dir = fresh_test_dir();
  const std::string missing_dir = dir + "/no_such_dir/x.json";
  EXPECT_EQ(error_of([&] { write_file_atomic(missing_dir, "x"); }),
            "cannot create " + missing_dir + ".tmp." + std::to_string(::getpid()) + " (the temporary file for " +
                missing_dir + "): No such file or directory");
  EXPECT_EQ(error_of([&] { read_file(dir + "/absent.txt"); }),
            "cannot open " + dir + "/absent.txt: No such file or directory");
  EXPECT_EQ(error_of([&] { read_file(dir); }), "cannot read " + dir + ": Is a directory");
}

// rename() over a non-empty directory fails: the error says so and the
// temporary file is removed.
TEST(AtomicFile, FailedRenameRemovesTemporary) {
  const std::string dir = fresh_test_dir(), target = dir + "/occupied";
  std::filesystem::create_directories(target + "/child");
  AtomicFileWriter writer(target);
  writer.write("data");
  const std::string message = error_of([&] { writer.commit(); });
  EXPECT_EQ(message.rfind("cannot rename " + writer.temp_path() + " to " + target + ": ", 0), 0u) << message;
  EXPECT_FALSE(std::filesystem::exists(writer.temp_path()));
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"occupied"});
}

}  // namespace
}  // namespace lumina
