// The assembled field table, lookups, "did you mean" suggestions and the
// text forms of values and ranges shared by errors, dumps and docs.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "lumina/config/field_builder.h"
#include "lumina/core/error.h"

namespace lumina {

namespace {
constexpr std::array kSections = {
    Section{"model", "Architecture: dense decoder, MoE, MoD, multi-token prediction (model/model_config.h)."},
    Section{"optim", "Optimizer, learning-rate schedule and fp16 loss scaling (optim/optim_config.h)."},
    Section{"train", "The run: batching, precision, modes, evaluation, logging, checkpoints, orchestrator, "
                     "Chinchilla (train/train_config.h)."},
    Section{"data", "Input files, format, tokenizer, loader, filters and curriculum (data/data_config.h)."},
    Section{"dist", "Multi-process training; ranks come from the launcher (dist/dist_config.h)."},
};

std::vector<Field> build_table() {
  std::vector<Field> fields;
  add_model_fields(fields);
  add_optim_fields(fields);
  add_train_fields(fields);
  add_data_fields(fields);
  add_dist_fields(fields);
  return fields;
}

// Distance under which a name counts as a likely typo of another.
size_t typo_budget(std::string_view name) { return std::max<size_t>(2, name.size() / 3); }

std::string format_number(double v, FieldType type) {
  if (type == FieldType::integer) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}
}  // namespace

std::string Field::key() const { return fmt::format("{}.{}", section, name); }

std::span<const Section> config_sections() { return kSections; }

std::span<const Field> config_fields() {
  static const std::vector<Field> fields = build_table();
  return fields;
}

const Field* find_field(std::string_view section, std::string_view name) {
  for (const Field& f : config_fields())
    if (f.section == section && f.name == name) return &f;
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  // d[i][j]: distance between a[:i] and b[:j]; adjacent transpositions cost 1.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string suggest_field(std::string_view section, std::string_view name) {
  const std::string full = fmt::format("{}.{}", section, name);
  const Field* best = nullptr;
  size_t best_score = typo_budget(name) + 1;
  for (const Field& f : config_fields()) {
    // A right name in the wrong section costs 1; a typo anywhere in the key costs its distance.
    const size_t by_name = edit_distance(name, f.name) + (f.section == section ? 0 : 1);
    const size_t score = std::min(by_name, edit_distance(full, f.key()));
    if (score < best_score) {
      best = &f;
      best_score = score;
    }
  }
  return best ? fmt::format(" (did you mean {}?)", best->key()) : std::string();
}

std::string suggest_section(std::string_view section) {
  const Section* best = nullptr;
  size_t best_score = typo_budget(section) + 1;
  for (const Section& s : config_sections()) {
    const size_t score = edit_distance(section, s.name);
    if (score < best_score) {
      best = &s;
      best_score = score;
    }
  }
  return best ? fmt::format(" (did you mean [{}]?)", best->name) : std::string();
}

std::string suggest_choice(const Field& field, std::string_view value) {
  const Choice* best = nullptr;
  size_t best_score = typo_budget(value) + 1;
  for (const Choice& c : field.choices) {
    const size_t score = edit_distance(value, c.name);
    if (score < best_score) {
      best = &c;
      best_score = score;
    }
  }
  return best ? fmt::format(" (did you mean \"{}\"?)", best->name) : std::string();
}

std::string toml_quote(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\u{:04X}", c);
        else out += ch;
    }
  }
  return out + "\"";
}

std::string format_value(const FieldValue& value) {
  struct Formatter {
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(int64_t v) const { return fmt::format("{}", v); }
    std::string operator()(double v) const {
      // Shortest text that reads back to the same double; TOML needs a '.' or exponent in a float.
      std::string s = fmt::format("{}", v);
      if (s.find_first_of(".eni") == std::string::npos) s += ".0";
      return s;
    }
    std::string operator()(const std::string& v) const { return toml_quote(v); }
    std::string operator()(const std::vector<std::string>& v) const {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_quote(v[i]);
      return out + "]";
    }
  };
  return std::visit(Formatter{}, value);
}

std::string_view type_name(FieldType type) {
  switch (type) {
    case FieldType::boolean: return "bool";
    case FieldType::integer: return "integer";
    case FieldType::real: return "number";
    case FieldType::string: return "string";
    case FieldType::string_list: return "list of strings";
    case FieldType::choice: return "choice";
  }
  return "?";
}

std::string allowed_text(const Field& field) {
  if (field.type == FieldType::boolean) return "true, false";
  if (field.type == FieldType::choice) {
    std::string out;
    for (size_t i = 0; i < field.choices.size(); ++i) out += (i ? ", " : "") + std::string(field.choices[i].name);
    return out;
  }
  const auto& lo = field.min;
  const auto& hi = field.max;
  if (lo && hi)
    return fmt::format("{}{}, {}{}", lo->exclusive ? "(" : "[", format_number(lo->value, field.type),
                       format_number(hi->value, field.type), hi->exclusive ? ")" : "]");
  if (lo) return fmt::format("{} {}", lo->exclusive ? ">" : ">=", format_number(lo->value, field.type));
  if (hi) return fmt::format("{} {}", hi->exclusive ? "<" : "<=", format_number(hi->value, field.type));
  return "any";
}

void check_allowed(const Field& field, const FieldValue& value) {
  if (field.type == FieldType::choice) {
    const std::string& v = std::get<std::string>(value);
    for (const Choice& c : field.choices)
      if (c.name == v) return;
    fail("not one of {}{}", allowed_text(field), suggest_choice(field, v));
  }
  if (field.type != FieldType::integer && field.type != FieldType::real) return;
  const double v = field.type == FieldType::integer ? static_cast<double>(std::get<int64_t>(value))
                                                    : std::get<double>(value);
  // Written as negations so NaN is out of every range.
  const bool above_min = !field.min || (field.min->exclusive ? v > field.min->value : v >= field.min->value);
  const bool below_max = !field.max || (field.max->exclusive ? v < field.max->value : v <= field.max->value);
  if (!std::isnan(v) && above_min && below_max) return;
  const bool interval = field.min && field.max;
  fail("out of range, must be {}{}", interval ? "in " : "", allowed_text(field));
}

}  // namespace lumina
