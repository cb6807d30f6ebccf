#pragma once
// Human-readable numbers for command output.
#include <cstdint>
#include <string>

namespace lumina::cli {

std::string with_commas(int64_t n);     // 1234567 -> "1,234,567"
std::string human_count(int64_t n);     // 1234567 -> "1.23M"
std::string human_bytes(int64_t bytes); // 1536 -> "1.50 KiB"
std::string utc_timestamp();              // now, "2026-11-23T14:05:09Z"

}  // namespace lumina::cli
