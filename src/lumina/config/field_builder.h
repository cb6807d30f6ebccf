#pragma once
// Helpers the fields_<section>.cpp files use to declare their fields: one
// call per field, binding a member pointer of the section's config struct to
// its name, range and help. Internal to config/.
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "lumina/config/field.h"

namespace lumina {

inline constexpr std::optional<Limit> at_least(double v) { return Limit{v, false}; }
inline constexpr std::optional<Limit> above(double v) { return Limit{v, true}; }
inline constexpr std::optional<Limit> at_most(double v) { return Limit{v, false}; }
inline constexpr std::optional<Limit> below(double v) { return Limit{v, true}; }
inline constexpr std::optional<Limit> unbounded = std::nullopt;

template <class S>
class SectionBuilder {
 public:
  SectionBuilder(std::vector<Field>& fields, std::string_view section, S RunConfig::*member)
      : fields_(fields), section_(section), member_(member) {}

  // Fields declared after this call need `feature` for a non-default value.
  void needs(Feature feature) { feature_ = feature; }

  void flag(bool S::*m, std::string_view name, std::string_view help) {
    add(m, FieldType::boolean, name, help);
  }
  void integer(int64_t S::*m, std::string_view name, std::optional<Limit> min,
               std::optional<Limit> max, std::string_view help) {
    add(m, FieldType::integer, name, help).min = min;
    fields_.back().max = max;
  }
  void real(double S::*m, std::string_view name, std::optional<Limit> min, std::optional<Limit> max,
            std::string_view help) {
    add(m, FieldType::real, name, help).min = min;
    fields_.back().max = max;
  }
  void text(std::string S::*m, std::string_view name, std::string_view help) {
    add(m, FieldType::string, name, help);
  }
  void list(std::vector<std::string> S::*m, std::string_view name, std::string_view help) {
    add(m, FieldType::string_list, name, help);
  }
  void choice(std::string S::*m, std::string_view name, std::vector<Choice> choices,
              std::string_view help) {
    add(m, FieldType::choice, name, help).choices = std::move(choices);
  }

 private:
  template <class T>
  Field& add(T S::*m, FieldType type, std::string_view name, std::string_view help) {
    Field f;
    f.section = section_;
    f.name = name;
    f.type = type;
    f.help = help;
    f.feature = feature_;
    f.get = [section = member_, m](const RunConfig& c) { return FieldValue((c.*section).*m); };
    f.set = [section = member_, m](RunConfig& c, const FieldValue& v) { (c.*section).*m = std::get<T>(v); };
    f.default_value = f.get(RunConfig{});
    fields_.push_back(std::move(f));
    return fields_.back();
  }

  std::vector<Field>& fields_;
  std::string_view section_;
  S RunConfig::*member_;
  Feature feature_ = Feature::core;
};

// Each fields_<section>.cpp appends its section's fields.
void add_model_fields(std::vector<Field>& fields);
void add_optim_fields(std::vector<Field>& fields);
void add_train_fields(std::vector<Field>& fields);
void add_data_fields(std::vector<Field>& fields);
void add_dist_fields(std::vector<Field>& fields);

}  // namespace lumina
