#include "lumina/core/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "lumina/core/error.h"

namespace lumina {

namespace {
std::mutex g_mutex;
LogLevel g_level = LogLevel::info;
std::FILE* g_file = nullptr;

const char* level_tag(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warning: return "WARNING";
    case LogLevel::error: return "ERROR";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) {
  std::lock_guard lock(g_mutex);
  g_level = level;
}

LogLevel log_level_from_string(std::string_view name) {
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warning") return LogLevel::warning;
  if (name == "error") return LogLevel::error;
  fail("unknown log level '{}': use debug, info, warning or error", name);
}

void attach_log_file(const std::string& path) {
  std::lock_guard lock(g_mutex);
  if (g_file) std::fclose(g_file);
  g_file = nullptr;
  if (path.empty()) return;
  g_file = std::fopen(path.c_str(), "a");
  LUMINA_CHECK(g_file, "cannot open log file {} for appending", path);
}

void log_line(LogLevel level, std::string_view message) {
  std::lock_guard lock(g_mutex);
  if (g_file) {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fmt::print(g_file, "{} {} {}\n", stamp, level_tag(level), message);
    std::fflush(g_file);
  }
  if (level < g_level) return;
  if (level == LogLevel::info) fmt::print(stderr, "{}\n", message);
  else fmt::print(stderr, "[{}] {}\n", level_tag(level), message);
}

}  // namespace lumina
