#pragma once
// Documents from plain-text inputs, streamed one at a time. The format comes
// from the file extension (any case):
//
//   .txt    Documents are separated by one or more blank lines (empty, or
//           only spaces and tabs). Inside a document the lines are kept as
//           they are and joined with "\n"; a file without blank lines is one
//           document. "\r\n" line ends read as "\n".
//   .jsonl  One JSON object per line with a string field "text", which is the
//           document (other fields are ignored; "" is an empty document).
//           Blank lines are skipped. A line that is not valid JSON, not an
//           object, or lacks a string "text" is an error naming the file and
//           the 1-based line and saying what to fix.
//
// A missing file, an empty file, or one that holds no document (only blank
// lines) is an error.
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace lumina {

enum class TextFormat { txt, jsonl };

// The format of `path` by its extension; any other extension is an error.
TextFormat text_format_of(const std::string& path);

class TextReader {
 public:
  explicit TextReader(std::string path);

  // The next document, or nullopt after the last one.
  std::optional<std::string> next();
  // 1-based line of the file where the last returned document starts.
  int64_t document_line() const { return document_line_; }
  TextFormat format() const { return format_; }
  const std::string& path() const { return path_; }

 private:
  std::optional<std::string> next_txt();
  std::optional<std::string> next_jsonl();
  bool read_line(std::string& line);  // strips a trailing '\r'; counts lines

  std::string path_;
  TextFormat format_;
  std::ifstream in_;
  int64_t lines_read_ = 0;
  int64_t document_line_ = 0;
  int64_t documents_ = 0;
};

// Every document of a file, in order.
std::vector<std::string> read_documents(const std::string& path);

}  // namespace lumina
