// Reading a run config: TOML files, the preset chain and --set overrides,
// each value checked against its field (name, type, range, allowed values).
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "lumina/config/field.h"
#include "lumina/core/error.h"
#include "lumina/io/atomic_file.h"

namespace lumina {

namespace {

toml::table parse_toml(const std::string& text, const std::string& path) {
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    fail("{}:{}: {}", path, e.source().begin.line, e.description());
  }
}

std::string location(const std::string& path, const toml::node& node) {
  return fmt::format("{}:{}", path, node.source().begin.line);
}

// A table's entries in file order (toml::table iterates by key), so the first error reported is the first in the file.
std::vector<std::pair<std::string_view, const toml::node*>> entries_in_file_order(const toml::table& table) {
  std::vector<std::pair<std::string_view, const toml::node*>> entries;
  for (const auto& [key, node] : table) entries.emplace_back(key.str(), &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.second->source().begin < b.second->source().begin;
  });
  return entries;
}

// A TOML value as the user wrote it, for error messages.
std::string describe(const toml::node& node) {
  if (const auto* s = node.as_string()) return toml_quote(s->get());
  if (const auto* d = node.as_floating_point()) return format_value(d->get());
  if (node.is_table()) return "a table";
  std::ostringstream out;
  node.visit([&out](const auto& value) { out << value; });
  return out.str();
}

std::string expected_text(const Field& f) {
  switch (f.type) {
    case FieldType::boolean: return "a bool (true or false)";
    case FieldType::integer: return "an integer";
    case FieldType::real: return "a number";
    case FieldType::string: return "a string";
    case FieldType::string_list: return "a list of strings, e.g. [\"a.txt\", \"b.txt\"]";
    case FieldType::choice: return fmt::format("a string, one of {}", allowed_text(f));
  }
  return "?";
}

// Converts a TOML node to the field's type; throws "<key> = <value>: wrong type, ..." when it does not fit.
FieldValue node_to_value(const Field& f, const toml::node& node) {
  const auto wrong_type = [&]() -> FieldValue {
    fail("{} = {}: wrong type, expected {}", f.key(), describe(node), expected_text(f));
  };
  switch (f.type) {
    case FieldType::boolean:
      if (const auto* b = node.as_boolean()) return b->get();
      return wrong_type();
    case FieldType::integer:
      if (const auto* i = node.as_integer()) return i->get();
      return wrong_type();
    case FieldType::real:
      if (const auto* d = node.as_floating_point()) return d->get();
      if (const auto* i = node.as_integer()) return static_cast<double>(i->get());
      return wrong_type();
    case FieldType::string:
    case FieldType::choice:
      if (const auto* s = node.as_string()) return s->get();
      return wrong_type();
    case FieldType::string_list: {
      const auto* array = node.as_array();
      if (!array) return wrong_type();
      std::vector<std::string> items;
      for (const toml::node& item : *array) {
        const auto* s = item.as_string();
        if (!s) return wrong_type();
        items.push_back(s->get());
      }
      return items;
    }
  }
  return wrong_type();
}

// Range/choice check, then store; errors are "<where>: <key> = <value>: <problem>".
void assign(RunConfig& config, const Field& f, const FieldValue& value, const std::string& where) {
  try {
    check_allowed(f, value);
  } catch (const Error& e) {
    fail("{}: {} = {}: {}", where, f.key(), format_value(value), e.what());
  }
  f.set(config, value);
}

bool is_section(std::string_view name) {
  const auto sections = config_sections();
  return std::any_of(sections.begin(), sections.end(), [&](const Section& s) { return s.name == name; });
}

void apply_table(RunConfig& config, const toml::table& table, const std::string& path) {
  for (const auto& [key, node] : entries_in_file_order(table)) {
    if (key == "preset") continue;
    const std::string where = location(path, *node);
    const toml::table* section = node->as_table();
    if (!is_section(key)) {
      if (section) fail("{}: unknown section [{}]{}", where, key, suggest_section(key));
      fail("{}: unknown top-level key {}: fields belong in a section{}", where, key, suggest_field("", key));
    }
    if (!section) fail("{}: {} must be a table: write [{}] and its fields on the lines below", where, key, key);
    for (const auto& [name, value_node] : entries_in_file_order(*section)) {
      const std::string field_where = location(path, *value_node);
      const Field* f = find_field(key, name);
      if (!f) fail("{}: unknown field {}.{}{}", field_where, key, name, suggest_field(key, name));
      FieldValue value;
      try {
        value = node_to_value(*f, *value_node);
      } catch (const Error& e) {
        throw e.with_context(field_where);
      }
      assign(config, *f, value, field_where);
    }
  }
}

std::string available_presets(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

void apply_file(RunConfig& config, const std::string& path, const std::string& forced_preset,
                const std::string& configs_dir, std::vector<std::string>& chain);

// `where` names what asked for the preset ("x.toml:1", "--preset").
void apply_preset(RunConfig& config, const std::string& name, const std::string& where,
                  const std::string& configs_dir, std::vector<std::string>& chain) {
  const std::string path = fmt::format("{}/{}.toml", configs_dir, name);
  if (!std::filesystem::is_regular_file(path))
    fail("{}: preset \"{}\" not found: no file {} (presets there: {})", where, name, path,
         available_presets(configs_dir));
  if (std::find(chain.begin(), chain.end(), path) != chain.end())
    fail("preset cycle: {} -> {}", fmt::join(chain, " -> "), path);
  chain.push_back(path);
  apply_file(config, path, "", configs_dir, chain);
  chain.pop_back();
}

void apply_file(RunConfig& config, const std::string& path, const std::string& forced_preset,
                const std::string& configs_dir, std::vector<std::string>& chain) {
  const toml::table table = parse_toml(read_file(path), path);
  std::string preset = forced_preset;
  std::string where = "--preset";
  if (const toml::node* node = table.get("preset")) {
    const auto* name = node->as_string();
    if (!name)
      fail("{}: preset = {}: wrong type, expected a string naming a preset in {} (e.g. preset = \"debug\")",
           location(path, *node), describe(*node), configs_dir);
    if (!forced_preset.empty())
      fail("{}: preset = \"{}\" conflicts with --preset {}: keep one", location(path, *node), name->get(),
           forced_preset);
    preset = name->get();
    where = location(path, *node);
  }
  if (!preset.empty()) apply_preset(config, preset, where, configs_dir, chain);
  apply_table(config, table, path);
}

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return std::string(s.substr(first, last - first + 1));
}

// The value of `--set key=value` in the field's type: TOML syntax (256, 1e-3, true, "x", ["a"]),
// with bare words accepted for strings and choices and comma-separated bare words for lists.
FieldValue override_value(const Field& f, const std::string& text) {
  const bool bare_string = (f.type == FieldType::string || f.type == FieldType::choice) && !text.starts_with('"');
  if (bare_string) return text;
  if (f.type == FieldType::string_list && !text.starts_with('[')) {
    std::vector<std::string> items;
    std::string_view rest = text;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string item = trim(rest.substr(0, comma));
      if (!item.empty()) items.push_back(item);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    return items;
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
    fail("{} = {}: wrong type, expected {}", f.key(), toml_quote(text), expected_text(f));
  }
  if (parsed.size() != 1 || !parsed.get("v"))
    fail("{} = {}: wrong type, expected {}", f.key(), toml_quote(text), expected_text(f));
  return node_to_value(f, *parsed.get("v"));
}

void apply_override(RunConfig& config, const std::string& text) {
  const std::string where = fmt::format("--set {}", text);
  const auto eq = text.find('=');
  if (eq == std::string::npos) fail("{}: expected section.field=value", where);
  const std::string key = trim(std::string_view(text).substr(0, eq));
  const std::string value = trim(std::string_view(text).substr(eq + 1));
  const auto dot = key.find('.');
  if (dot == std::string::npos) fail("{}: name the field as section.field{}", where, suggest_field("", key));
  const std::string section = key.substr(0, dot);
  const std::string name = key.substr(dot + 1);
  const Field* f = find_field(section, name);
  if (!f) fail("{}: unknown field {}{}", where, key, suggest_field(section, name));
  FieldValue parsed;
  try {
    parsed = override_value(*f, value);
  } catch (const Error& e) {
    throw e.with_context(where);
  }
  assign(config, *f, parsed, where);
}

}  // namespace

std::string default_configs_dir() { return std::string(LUMINA_SOURCE_DIR) + "/configs"; }

RunConfig read_run_config(const std::string& path, const LoadOptions& options) {
  RunConfig config;
  const std::string configs_dir = options.configs_dir.empty() ? default_configs_dir() : options.configs_dir;
  std::vector<std::string> chain;
  if (!path.empty()) apply_file(config, path, options.preset, configs_dir, chain);
  else if (!options.preset.empty()) apply_preset(config, options.preset, "--preset", configs_dir, chain);
  for (const std::string& o : options.overrides) apply_override(config, o);
  return config;
}

RunConfig load_run_config(const std::string& path, const LoadOptions& options) {
  RunConfig config = read_run_config(path, options);
  try {
    validate(config);
  } catch (const Error& e) {
    if (!path.empty()) throw e.with_context(path);
    if (!options.preset.empty()) throw e.with_context("preset " + options.preset);
    throw;
  }
  return config;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  LoadOptions options;
  options.overrides = overrides;
  return load_run_config(path, options);
}

}  // namespace lumina
