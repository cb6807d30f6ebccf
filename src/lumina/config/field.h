#pragma once
// The field table: every config field declared exactly once (section, name,
// type, default, valid range or values, help, the feature it needs).
// Defaults are the member initialisers of the component configs, read from a
// default-constructed RunConfig, so they too exist in one place.
//
// Declared in fields_<section>.cpp; iterated by the loader (load.cpp), the
// support check (supported.cpp), the TOML dump (dump.cpp) and the docs and
// `explain` text (docs.cpp).
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lumina/config/features.h"
#include "lumina/config/run_config.h"

namespace lumina {

enum class FieldType { boolean, integer, real, string, string_list, choice };

// One alternative per FieldType: boolean, integer, real, string and choice (std::string), string_list.
using FieldValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>>;

// One end of a numeric range.
struct Limit {
  double value = 0;
  bool exclusive = false;
};

// An allowed value of a choice field and the feature it needs.
struct Choice {
  std::string_view name;
  Feature feature = Feature::core;
};

struct Field {
  std::string_view section;  // "model"
  std::string_view name;     // "hidden_size"
  FieldType type = FieldType::boolean;
  std::string_view help;
  std::optional<Limit> min;  // integer and real fields
  std::optional<Limit> max;
  std::vector<Choice> choices;      // choice fields
  Feature feature = Feature::core;  // what a non-default value needs
  std::function<FieldValue(const RunConfig&)> get;
  std::function<void(RunConfig&, const FieldValue&)> set;
  FieldValue default_value;

  std::string key() const;  // "model.hidden_size"
};

// Sections in file order, with a one-line description each.
struct Section {
  std::string_view name;
  std::string_view help;
};
std::span<const Section> config_sections();

// The whole table, in declaration order (section by section).
std::span<const Field> config_fields();

// nullptr when there is no such field.
const Field* find_field(std::string_view section, std::string_view name);

// " (did you mean model.hidden_size?)" for the closest field key, or "" when none is close.
std::string suggest_field(std::string_view section, std::string_view name);
// " (did you mean [model]?)" or "".
std::string suggest_section(std::string_view section);
// " (did you mean \"fp32\"?)" or "" for a choice field.
std::string suggest_choice(const Field& field, std::string_view value);

// `value` as TOML: true, 256, 0.02, "text", ["a", "b"].
std::string format_value(const FieldValue& value);
// TOML basic string with escapes, quotes included.
std::string toml_quote(std::string_view text);
// "integer", "number", "bool", "string", "list of strings", "choice".
std::string_view type_name(FieldType type);
// "[1, 65536]", "(0, 1]", ">= 1", "> 0", "true, false", "any"; choices joined by ", ".
std::string allowed_text(const Field& field);

// Throws (message without location) when `value` is outside the field's range or choices.
void check_allowed(const Field& field, const FieldValue& value);

// Damerau-Levenshtein (optimal string alignment) distance.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace lumina
