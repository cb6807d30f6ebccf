// The field table itself: integrity, the TOML dump round trip, the generated
// docs (must match docs/config.md), explain, and the typo distance.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "lumina/config/docs.h"
#include "lumina/config/field.h"
#include "lumina/io/atomic_file.h"
#include "support/test_files.h"

namespace lumina {
namespace {

TEST(ConfigTable, KeysAreUniqueDefaultsAllowedHelpPresent) {
  std::set<std::string> keys;
  for (const Field& f : config_fields()) {
    EXPECT_TRUE(keys.insert(f.key()).second) << "duplicate " << f.key();
    EXPECT_NO_THROW(check_allowed(f, f.default_value)) << f.key();
    EXPECT_FALSE(f.help.empty()) << f.key();
    EXPECT_EQ(f.type == FieldType::choice, !f.choices.empty()) << f.key();
  }
  EXPECT_GT(keys.size(), 100u);
  EXPECT_EQ(find_field("model", "hidden_size")->key(), "model.hidden_size");
  EXPECT_EQ(find_field("model", "nope"), nullptr);
}

// A value of the field's type that differs from its default and is allowed.
FieldValue non_default(const Field& f) {
  switch (f.type) {
    case FieldType::boolean: return !std::get<bool>(f.default_value);
    case FieldType::integer: {
      const int64_t d = std::get<int64_t>(f.default_value);
      const bool room_above = !f.max || static_cast<double>(d + 1) <= f.max->value;
      return room_above ? d + 1 : d - 1;
    }
    case FieldType::real: {
      const double d = std::get<double>(f.default_value);
      // Thirds are no short decimals: they test that the dump writes the shortest exact text.
      if (!f.max) return d + 1.0 / 3.0;
      if (d < f.max->value) return d + (f.max->value - d) / 3.0;
      return f.min ? (f.min->value + d) / 2.0 : d - 1.0;
    }
    case FieldType::string: return std::string("a \"quoted\" \\ path\nwith tab\t and \x01 and \xc3\xbc");
    case FieldType::string_list: return std::vector<std::string>{"x.txt", "dir/y z.jsonl"};
    case FieldType::choice: {
      for (auto it = f.choices.rbegin(); it != f.choices.rend(); ++it)
        if (std::string(it->name) != std::get<std::string>(f.default_value)) return std::string(it->name);
      break;
    }
  }
  return f.default_value;
}

TEST(ConfigTable, DumpLoadsBackToAnEqualConfig) {
  // Every field away from its default, so a field the dump or the loader missed shows up.
  RunConfig changed;
  for (const Field& f : config_fields()) {
    const FieldValue v = non_default(f);
    ASSERT_NE(v, f.default_value) << f.key();
    ASSERT_NO_THROW(check_allowed(f, v)) << f.key() << " = " << format_value(v);
    f.set(changed, v);
  }
  changed.optim.learning_rate = 0.1 + 0.2;  // 0.30000000000000004
  changed.model.rms_norm_eps = 1e-300;
  EXPECT_NE(changed.model, ModelConfig{});
  EXPECT_NE(changed.optim, OptimConfig{});
  EXPECT_NE(changed.train, TrainConfig{});
  EXPECT_NE(changed.data, DataConfig{});
  EXPECT_NE(changed.dist, DistConfig{});

  const std::string path = test::fresh_test_dir() + "/resolved.toml";
  write_resolved_config(changed, path);
  const RunConfig back = read_run_config(path);  // no cross-field rules: the values are arbitrary
  EXPECT_EQ(back, changed);
  for (const Field& f : config_fields()) EXPECT_EQ(f.get(back), f.get(changed)) << f.key();
  EXPECT_EQ(read_file(path), run_config_to_toml(changed));
}

TEST(ConfigTable, PresetsRoundTripThroughTheDump) {
  const std::string dir = test::fresh_test_dir();
  for (const char* name : {"debug_dense", "b7", "bench/cpu-small", "bench/moe-8x-124m"}) {
    LoadOptions o;
    o.preset = name;
    const RunConfig c = load_run_config("", o);
    const std::string path = dir + "/resolved.toml";
    write_resolved_config(c, path);
    EXPECT_EQ(load_run_config(path), c) << name;
  }
}

TEST(ConfigTable, FormatsValuesAsToml) {
  EXPECT_EQ(format_value(true), "true");
  EXPECT_EQ(format_value(int64_t{-1}), "-1");
  EXPECT_EQ(format_value(10000.0), "10000.0");
  EXPECT_EQ(format_value(1e-5), "1e-05");
  EXPECT_EQ(format_value(0.02), "0.02");
  EXPECT_EQ(format_value(std::string("a\"b\\c\n")), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(format_value(std::vector<std::string>{}), "[]");
  EXPECT_EQ(format_value(std::vector<std::string>{"a", "b"}), "[\"a\", \"b\"]");
}

TEST(ConfigTable, AllowedText) {
  EXPECT_EQ(allowed_text(*find_field("model", "hidden_size")), "[2, 65536]");
  EXPECT_EQ(allowed_text(*find_field("model", "rope_theta")), "> 0");
  EXPECT_EQ(allowed_text(*find_field("model", "rms_norm_eps")), "(0, 1)");
  EXPECT_EQ(allowed_text(*find_field("model", "use_moe")), "true, false");
  EXPECT_EQ(allowed_text(*find_field("train", "output_dir")), "any");
  EXPECT_EQ(allowed_text(*find_field("optim", "lr_schedule")), "cosine, linear, constant, wsd");
}

TEST(ConfigTable, DocsFileIsUpToDate) {
  const std::string path = std::string(LUMINA_SOURCE_DIR) + "/docs/config.md";
  const std::string on_disk = read_file(path);
  const std::string generated = config_reference_markdown();
  if (on_disk == generated) return;
  // Report the first line that differs rather than both whole files.
  std::istringstream disk_lines(on_disk), generated_lines(generated);
  std::string disk_line, generated_line;
  int line = 1;
  while (std::getline(disk_lines, disk_line) && std::getline(generated_lines, generated_line) &&
         disk_line == generated_line)
    ++line;
  ADD_FAILURE() << path << " is out of date with the field table (first difference at line " << line
                << "):\n  file:      " << disk_line << "\n  generated: " << generated_line
                << "\nrun `lumina config docs --output docs/config.md`";
}

TEST(ConfigTable, DocsHaveOneRowPerField) {
  const std::string md = config_reference_markdown();
  for (const Field& f : config_fields())
    EXPECT_NE(md.find(fmt::format("| `{}` | {} |", f.name, type_name(f.type))), std::string::npos) << f.key();
  EXPECT_NE(md.find("| `use_moe` | bool | `false` | true, false | yes |"), std::string::npos);
  EXPECT_NE(md.find("| `mtp_num_heads` | integer | `0` | [0, 16] | not yet (multi-token prediction) |"),
            std::string::npos);
  EXPECT_NE(md.find("| `precision` | choice | `\"auto\"` | auto, fp32, fp16, bf16, mixed_fp16, mixed_bf16, fp8_e4m3 "
                    "| only `auto`, `fp32`, `fp16`, `bf16`, `mixed_fp16`, `mixed_bf16` |"),
            std::string::npos);
}

TEST(ConfigTable, Explain) {
  EXPECT_EQ(explain_config("model.hidden_size"),
            "model.hidden_size\n  type:      integer\n  default:   128\n  allowed:   [2, 65536]\n"
            "  supported: yes\n  Width of the residual stream (d_model). Must be a multiple of num_heads.\n");
  EXPECT_EQ(explain_config("hidden_size"), explain_config("model.hidden_size"));
  EXPECT_NE(explain_config("model.use_moe").find("  supported: yes\n"), std::string::npos);
  EXPECT_NE(explain_config("model.mtp_num_heads").find("  supported: not yet (multi-token prediction)\n"),
            std::string::npos);
  const std::string section = explain_config("dist");
  EXPECT_EQ(section.rfind("[dist]  ", 0), 0u);
  EXPECT_NE(section.find("  zero_stage = 0  (integer: [0, 3])  supported: not yet (ZeRO sharding)\n"),
            std::string::npos);
  const std::string all = explain_config("");
  for (const Section& s : config_sections())
    EXPECT_NE(all.find(fmt::format("[{}]  ", s.name)), std::string::npos) << s.name;
  EXPECT_EQ(test::error_of([] { explain_config("model.hiden_size"); }),
            "unknown field model.hiden_size (did you mean model.hidden_size?)");
  EXPECT_EQ(test::error_of([] { explain_config("hiden_size"); }),
            "unknown field or section hiden_size (did you mean model.hidden_size?)");
}

TEST(ConfigTable, EditDistanceAndSuggestions) {
  EXPECT_EQ(edit_distance("hidden_size", "hidden_size"), 0u);
  EXPECT_EQ(edit_distance("hiden_size", "hidden_size"), 1u);
  EXPECT_EQ(edit_distance("hidden_szie", "hidden_size"), 1u);  // transposition
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(suggest_field("model", "num_kv_head"), " (did you mean model.num_kv_heads?)");
  EXPECT_EQ(suggest_field("train", "learning_rate"), " (did you mean optim.learning_rate?)");
  EXPECT_EQ(suggest_field("model", "completely_different"), "");
  EXPECT_EQ(suggest_section("optm"), " (did you mean [optim]?)");
  EXPECT_EQ(suggest_choice(*find_field("optim", "optimizer"), "adam"), " (did you mean \"adamw\"?)");
}

}  // namespace
}  // namespace lumina
