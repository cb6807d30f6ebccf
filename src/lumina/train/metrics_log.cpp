#include "lumina/train/metrics_log.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "lumina/core/error.h"
#include "lumina/io/atomic_file.h"

namespace lumina {

MetricsLog::MetricsLog(std::string path) : path_(std::move(path)) {}

void MetricsLog::truncate_after(int64_t step) {
  std::ifstream in(path_);
  if (!in) return;  // no log yet
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A torn last line (killed mid-write) is discarded with the rows after the checkpoint.
    if (row.is_discarded() || !row.contains("step")) continue;
    if (row["step"].get<int64_t>() <= step) kept << line << '\n';
  }
  write_file_atomic(path_, kept.str());
}

void MetricsLog::append(const nlohmann::json& row) {
  std::FILE* f = std::fopen(path_.c_str(), "a");
  LUMINA_CHECK(f, "cannot append to metrics file {}", path_);
  const std::string text = row.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

}  // namespace lumina
