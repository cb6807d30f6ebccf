#pragma once
// Logging: leveled lines to stderr and, once attached, to a log file
// (experiments/<name>/logs/training.log). Thread-safe.
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace lumina {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

void set_log_level(LogLevel level);
LogLevel log_level_from_string(std::string_view name);  // "debug", "info", "warning", "error"
void attach_log_file(const std::string& path);          // appends; "" detaches
void log_line(LogLevel level, std::string_view message);

template <class... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) { log_line(LogLevel::info, fmt::format(f, std::forward<Args>(args)...)); }
template <class... Args>
void log_warning(fmt::format_string<Args...> f, Args&&... args) { log_line(LogLevel::warning, fmt::format(f, std::forward<Args>(args)...)); }
template <class... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) { log_line(LogLevel::debug, fmt::format(f, std::forward<Args>(args)...)); }
template <class... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) { log_line(LogLevel::error, fmt::format(f, std::forward<Args>(args)...)); }

}  // namespace lumina
