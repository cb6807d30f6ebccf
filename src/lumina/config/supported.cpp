// check_supported: refuses fields whose feature this build does not implement
// yet (config/features.cpp), so a config never silently asks for something
// the trainer would ignore.
#include <fmt/format.h>

#include <vector>

#include "lumina/config/field.h"
#include "lumina/core/error.h"

namespace lumina {

namespace {
// The feature a field's current value needs, or Feature::core when it needs nothing new.
Feature needed_feature(const Field& f, const FieldValue& value) {
  if (f.type == FieldType::choice) {
    for (const Choice& c : f.choices)
      if (c.name == std::get<std::string>(value) && !feature_info(c.feature).implemented) return c.feature;
  }
  if (value != f.default_value && !feature_info(f.feature).implemented) return f.feature;
  return Feature::core;
}
}  // namespace

void check_supported(const RunConfig& config) {
  std::vector<std::string> refused;
  std::string first;
  for (const Field& f : config_fields()) {
    const FieldValue value = f.get(config);
    const Feature feature = needed_feature(f, value);
    if (feature == Feature::core) continue;
    if (refused.empty())
      first = fmt::format("{} = {}: not supported yet ({} is not implemented in this build); remove it or set it to {}",
                          f.key(), format_value(value), feature_info(feature).name, format_value(f.default_value));
    refused.push_back(f.key());
  }
  if (refused.empty()) return;
  if (refused.size() == 1) throw Error(first);
  fail("{} (and {} more unsupported: {})", first, refused.size() - 1,
       fmt::join(refused.begin() + 1, refused.end(), ", "));
}

}  // namespace lumina
