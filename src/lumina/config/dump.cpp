// The resolved config as TOML: every field of every section, in table order.
#include <fmt/format.h>

#include "lumina/config/field.h"
#include "lumina/io/atomic_file.h"

namespace lumina {

std::string run_config_to_toml(const RunConfig& config) {
  std::string out = "# Resolved lumina run config: every field, defaults included (see docs/config.md).\n";
  std::string_view section;
  for (const Field& f : config_fields()) {
    if (f.section != section) {
      section = f.section;
      out += fmt::format("\n[{}]\n", section);
    }
    out += fmt::format("{} = {}\n", f.name, format_value(f.get(config)));
  }
  return out;
}

void write_resolved_config(const RunConfig& config, const std::string& path) {
  write_file_atomic(path, run_config_to_toml(config));
}

}  // namespace lumina
