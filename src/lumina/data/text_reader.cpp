#include "lumina/data/text_reader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "lumina/core/error.h"

namespace lumina {

namespace {

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
}

}  // namespace

TextFormat text_format_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".txt") return TextFormat::txt;
  if (ext == ".jsonl") return TextFormat::jsonl;
  fail("{}: unknown text format '{}': use a .txt file (documents separated by blank lines) or a .jsonl file (one "
       "{{\"text\": ...}} object per line)", path, ext);
}

TextReader::TextReader(std::string path) : path_(std::move(path)), format_(text_format_of(path_)) {
  in_.open(path_, std::ios::binary);
  if (!in_.is_open()) fail("cannot open {}: {}", path_, std::generic_category().message(errno));
  std::error_code ec;
  LUMINA_CHECK(std::filesystem::is_regular_file(path_, ec), "cannot read {}: not a regular file", path_);
  LUMINA_CHECK(std::filesystem::file_size(path_, ec) > 0, "{}: the file is empty", path_);
}

bool TextReader::read_line(std::string& line) {
  if (!std::getline(in_, line)) return false;
  ++lines_read_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::optional<std::string> TextReader::next() {
  std::optional<std::string> doc = format_ == TextFormat::txt ? next_txt() : next_jsonl();
  if (doc) ++documents_;
  LUMINA_CHECK(doc || documents_ > 0, "{}: no documents: the file holds only blank lines", path_);
  return doc;
}

std::optional<std::string> TextReader::next_txt() {
  std::string doc, line;
  bool started = false;
  while (read_line(line)) {
    if (is_blank(line)) {
      if (started) return doc;
      continue;
    }
    if (started) {
      doc += '\n';
    } else {
      started = true;
      document_line_ = lines_read_;
    }
    doc += line;
  }
  if (started) return doc;
  return std::nullopt;
}

std::optional<std::string> TextReader::next_jsonl() {
  std::string line;
  while (read_line(line)) {
    if (is_blank(line)) continue;
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}:{}: not valid JSON ({}): each line must be one JSON object such as {{\"text\": \"...\"}}", path_,
           lines_read_, e.what());
    }
    LUMINA_CHECK(object.is_object(), "{}:{}: expected a JSON object with a \"text\" string, got {}", path_, lines_read_,
                 object.type_name());
    const auto text = object.find("text");
    LUMINA_CHECK(text != object.end(),
                 "{}:{}: the object has no \"text\" field: each line needs {{\"text\": \"...\"}} (chat data with "
                 "\"conversation\" or \"messages\" belongs in finetuning files)", path_, lines_read_);
    LUMINA_CHECK(text->is_string(), "{}:{}: \"text\" is {}, not a string: write the document as a JSON string", path_,
                 lines_read_, text->type_name());
    document_line_ = lines_read_;
    return text->get<std::string>();
  }
  return std::nullopt;
}

std::vector<std::string> read_documents(const std::string& path) {
  TextReader reader(path);
  std::vector<std::string> docs;
  while (std::optional<std::string> doc = reader.next()) docs.push_back(std::move(*doc));
  return docs;
}

}  // namespace lumina
