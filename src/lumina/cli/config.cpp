// lumina config: explain, show, validate and docs, all from the field table.
#include <fmt/format.h>

#include <memory>

#include "lumina/cli/commands.h"
#include "lumina/cli/config_options.h"
#include "lumina/config/docs.h"
#include "lumina/io/atomic_file.h"

namespace lumina::cli {

void register_config(CLI::App& app) {
  CLI::App* config = app.add_subcommand("config", "Explain, show, validate and document run configs");
  config->require_subcommand(1);

  auto field = std::make_shared<std::string>();
  CLI::App* explain = config->add_subcommand(
      "explain", "Describe every field, a section (model) or one field (model.hidden_size): type, default, "
                 "allowed values, support in this build, help");
  explain->add_option("field", *field, "section, section.field or field name");
  explain->callback([field] { fmt::print("{}", explain_config(*field)); });

  auto show_args = std::make_shared<ConfigOptions>();
  CLI::App* show = config->add_subcommand("show", "Print the resolved config (preset, file, --set) as TOML");
  show_args->add_to(*show);
  show->callback([show_args] { fmt::print("{}", run_config_to_toml(show_args->load_valid())); });

  auto validate_args = std::make_shared<ConfigOptions>();
  auto allow_unsupported = std::make_shared<bool>(false);
  CLI::App* validate = config->add_subcommand(
      "validate", "Check a config: fields, ranges, cross-field rules and support in this build; prints \"ok\"");
  validate_args->add_to(*validate);
  validate->add_flag("--allow-unsupported", *allow_unsupported,
                     "Accept fields this build does not implement yet (check the config only)");
  validate->callback([validate_args, allow_unsupported] {
    if (*allow_unsupported) validate_args->load_valid();
    else validate_args->load();
    fmt::print("ok\n");
  });

  auto output = std::make_shared<std::string>();
  CLI::App* docs =
      config->add_subcommand("docs", "Write the config reference (markdown) generated from the field table");
  docs->add_option("-o,--output", *output, "File to write atomically (e.g. docs/config.md); default: stdout");
  docs->callback([output] {
    const std::string text = config_reference_markdown();
    if (output->empty()) fmt::print("{}", text);
    else write_file_atomic(*output, text);
  });
}

}  // namespace lumina::cli
