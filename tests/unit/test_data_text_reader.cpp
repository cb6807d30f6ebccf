// data/text_reader.h: the .txt blank-line rule, .jsonl parsing, format by
// extension, and errors that name the file and line and say what to fix.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "lumina/data/text_reader.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;
using test::fresh_test_dir;
using test::write_bytes;

using Docs = std::vector<std::string>;

class TextReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_test_dir(); }
  // Writes `content` to dir/name and returns its path.
  std::string file(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    write_bytes(path, content);
    return path;
  }
  std::string dir_;
};

TEST_F(TextReaderTest, FormatFromExtension) {
  EXPECT_EQ(text_format_of("a/b.txt"), TextFormat::txt);
  EXPECT_EQ(text_format_of("B.TXT"), TextFormat::txt);
  EXPECT_EQ(text_format_of("x.jsonl"), TextFormat::jsonl);
  EXPECT_EQ(text_format_of("x.JsonL"), TextFormat::jsonl);
  EXPECT_EQ(error_of([] { text_format_of("data/x.csv"); }),
            "data/x.csv: unknown text format '.csv': use a .txt file (documents separated by blank lines) or a "
            ".jsonl file (one {\"text\": ...} object per line)");
  EXPECT_NE(error_of([] { text_format_of("data/README"); }).find("unknown text format ''"), std::string::npos);
}

TEST_F(TextReaderTest, TxtSplitsOnBlankLines) {
  const std::string path = file("a.txt",
                                "\n\nfirst line\nsecond line\n\n  \t\nnext doc\r\n\r\n"
                                "  indented stays\ntrailing  \n\n\n");
  EXPECT_EQ(read_documents(path), (Docs{"first line\nsecond line", "next doc", "  indented stays\ntrailing  "}));
}

TEST_F(TextReaderTest, TxtWithoutBlankLinesIsOneDocument) {
  EXPECT_EQ(read_documents(file("one.txt", "line 1\nline 2\nno final newline")),
            (Docs{"line 1\nline 2\nno final newline"}));
}

TEST_F(TextReaderTest, ReportsWhereEachDocumentStarts) {
  TextReader reader(file("lines.txt", "\nalpha\nbeta\n\n\ngamma\n"));
  EXPECT_EQ(reader.format(), TextFormat::txt);
  EXPECT_EQ(reader.next(), "alpha\nbeta");
  EXPECT_EQ(reader.document_line(), 2);
  EXPECT_EQ(reader.next(), "gamma");
  EXPECT_EQ(reader.document_line(), 6);
  EXPECT_EQ(reader.next(), std::nullopt);
  EXPECT_EQ(reader.next(), std::nullopt);
}

TEST_F(TextReaderTest, JsonlReadsTextFields) {
  const std::string path = file("d.jsonl",
                                "{\"text\": \"hello\\nworld\", \"id\": 1}\n"
                                "\n"
                                "   \r\n"
                                "{\"meta\": {\"a\": [1]}, \"text\": \"caf\\u00e9 \\\"q\\\"\"}\r\n"
                                "{\"text\": \"\"}\n"
                                "{\"text\": \"last, no newline\"}");
  EXPECT_EQ(read_documents(path), (Docs{"hello\nworld", "café \"q\"", "", "last, no newline"}));
  TextReader reader(path);
  reader.next();
  reader.next();
  EXPECT_EQ(reader.document_line(), 4);
}

TEST_F(TextReaderTest, JsonlErrorsNameFileAndLine) {
  const std::string bad_json = file("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n");
  const std::string message = error_of([&] { read_documents(bad_json); });
  EXPECT_EQ(message.rfind(bad_json + ":3: not valid JSON (", 0), 0u) << message;
  EXPECT_NE(message.find("each line must be one JSON object such as {\"text\": \"...\"}"), std::string::npos);

  EXPECT_EQ(error_of([&] { read_documents(file("arr.jsonl", "[\"text\"]\n")); }),
            dir_ + "/arr.jsonl:1: expected a JSON object with a \"text\" string, got array");
  EXPECT_EQ(error_of([&] { read_documents(file("missing.jsonl", "{\"text\": \"a\"}\n{\"conversation\": []}\n")); }),
            dir_ + "/missing.jsonl:2: the object has no \"text\" field: each line needs {\"text\": \"...\"} (chat "
                   "data with \"conversation\" or \"messages\" belongs in finetuning files)");
  EXPECT_EQ(error_of([&] { read_documents(file("num.jsonl", "\n\n{\"text\": 42}\n")); }),
            dir_ + "/num.jsonl:3: \"text\" is number, not a string: write the document as a JSON string");
  EXPECT_EQ(error_of([&] { read_documents(file("null.jsonl", "{\"text\": null}")); }),
            dir_ + "/null.jsonl:1: \"text\" is null, not a string: write the document as a JSON string");
}

// Documents before a bad line are delivered; the error comes when the reader reaches it.
TEST_F(TextReaderTest, StreamingStopsAtTheBadLine) {
  TextReader reader(file("mid.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\nnot json\n"));
  EXPECT_EQ(reader.next(), "a");
  EXPECT_EQ(reader.next(), "b");
  EXPECT_EQ(error_of([&] { reader.next(); }).rfind(dir_ + "/mid.jsonl:3: not valid JSON (", 0), 0u);
}

TEST_F(TextReaderTest, MissingEmptyAndBlankFiles) {
  EXPECT_EQ(error_of([&] { read_documents(dir_ + "/absent.txt"); }),
            "cannot open " + dir_ + "/absent.txt: No such file or directory");
  EXPECT_EQ(error_of([&] { read_documents(file("empty.jsonl", "")); }), dir_ + "/empty.jsonl: the file is empty");
  EXPECT_EQ(error_of([&] { read_documents(file("blank.txt", "\n \n\t\n")); }),
            dir_ + "/blank.txt: no documents: the file holds only blank lines");
  EXPECT_EQ(error_of([&] { read_documents(file("blank.jsonl", "\n\n")); }),
            dir_ + "/blank.jsonl: no documents: the file holds only blank lines");
  std::filesystem::create_directories(dir_ + "/folder.txt");
  EXPECT_EQ(error_of([&] { read_documents(dir_ + "/folder.txt"); }),
            "cannot read " + dir_ + "/folder.txt: not a regular file");
}

}  // namespace
}  // namespace lumina
